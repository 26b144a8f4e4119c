/* ------------------------------------------------------------------------- optimiser */

/* acc + g * g rounded once, as PyTorch's addcmul_ does where the CPU has FMA. */
#ifdef __FMA__
#define ACC_ADD(acc, g) fmaf((g), (g), (acc))
#else
#define ACC_ADD(acc, g) ((acc) + (g) * (g))
#endif

/* Adagrad + momentum on one contiguous run of c values (see gru4rec.nn.optim):
 * acc += g^2; step = (g / sqrt(acc + eps)) * -lr; v = v * mom + step; p += v
 * (without momentum p += step; vel may then be NULL). */
static inline void adagrad_run(float *p, float *acc, float *vel, const float *g, int64_t c,
                               float lr, float mom, float eps) {
    if (mom > 0.0f) {
#pragma omp simd
        for (int64_t i = 0; i < c; i++) {
            float a = ACC_ADD(acc[i], g[i]);
            acc[i] = a;
            float v = vel[i] * mom + (g[i] / sqrtf(a + eps)) * -lr;
            vel[i] = v;
            p[i] += v;
        }
    } else {
#pragma omp simd
        for (int64_t i = 0; i < c; i++) {
            float a = ACC_ADD(acc[i], g[i]);
            acc[i] = a;
            p[i] += (g[i] / sqrtf(a + eps)) * -lr;
        }
    }
}

/* Dense update of n values. */
void adagrad_dense(float *p, float *acc, float *vel, const float *g, int64_t n, float lr,
                   float mom, float eps) {
    adagrad_run(p, acc, vel, g, n, lr, mom, eps);
}

/* Row-sparse update, phase 1: add the k gradient rows g (row stride ldg, `width` values,
 * width <= c) of table rows idx into the per-distinct-row buffer buf (rows of c floats).
 * slot (one int32 per table row, -1 = not yet in the buffer) maps a table row to its buffer
 * row, uniq lists the distinct table rows in order of first appearance. Duplicates are
 * summed in the order given (as index_add_ into zeros). Returns the new
 * number of distinct rows (u on entry: rows already in the buffer). */
int64_t rows_accumulate(int32_t *slot, float *buf, int64_t *uniq, int64_t u, int64_t c,
                        const int64_t *idx, int64_t k, const float *g, int64_t ldg,
                        int64_t width) {
    for (int64_t i = 0; i < k; i++) {
        int64_t row = idx[i];
        int32_t s = slot[row];
        float *dst;
        const float *src = g + i * ldg;
        if (s < 0) { /* first occurrence: copy (the row of zeros it would be added to) */
            s = (int32_t)u++;
            slot[row] = s;
            uniq[s] = row;
            dst = buf + (int64_t)s * c;
            memcpy(dst, src, (size_t)width * sizeof(float));
            if (width < c) memset(dst + width, 0, (size_t)(c - width) * sizeof(float));
            continue;
        }
        dst = buf + (int64_t)s * c;
#pragma omp simd
        for (int64_t q = 0; q < width; q++) dst[q] += src[q];
    }
    return u;
}

/* Row-sparse update, phase 2: Adagrad on the u distinct rows gathered by rows_accumulate
 * (table rows of c floats), then clear their slots for the next step. */
#define PREFETCH_ROWS 8 /* rows ahead: the tables are far larger than the caches */
static inline void prefetch_row(const float *row, int64_t c) {
    for (int64_t q = 0; q < c; q += 64 / sizeof(float)) __builtin_prefetch(row + q, 1, 0);
}

void rows_apply(float *p, float *acc, float *vel, int64_t c, int32_t *slot, const float *buf,
                const int64_t *uniq, int64_t u, float lr, float mom, float eps) {
    /* distinct rows: independent updates, split over the threads */
#pragma omp parallel for schedule(static) num_threads(threads_for(u * c))
    for (int64_t s = 0; s < u; s++) {
        if (s + PREFETCH_ROWS < u) { /* random rows: the hardware prefetcher cannot guess */
            int64_t next = uniq[s + PREFETCH_ROWS] * c;
            prefetch_row(p + next, c);
            prefetch_row(acc + next, c);
            if (vel) prefetch_row(vel + next, c);
        }
        int64_t row = uniq[s];
        adagrad_run(p + row * c, acc + row * c, vel ? vel + row * c : NULL, buf + s * c, c,
                    lr, mom, eps);
        slot[row] = -1;
    }
}

/* Row-sparse update of the output table straight from d loss / d scores: column j of the
 * (m, n) score gradient g belongs to table row cols[j], whose gradient is g[:, j]^T h
 * (h: (m, c) rows [state, 1], c = the table width). Extra gradient rows (k2 of them, `w2`
 * leading values each, row stride ld2; the input rows of the shared embedding) add to
 * their table rows. Every distinct row is summed (occurrences in order: the columns, then
 * the extra rows) and updated once with Adagrad, as rows_accumulate + rows_apply would do
 * after the (n, c) product g^T h, but without materialising that product: the distinct
 * rows are split over the threads and each sums its own columns in registers.
 * slot (n_rows int32, all -1) is restored on return; work needs 3 (n + k2) + 1 int64s.
 * Returns the number of distinct rows. */
/* grad (cp floats) += sum_i g[i, j] h[i] over the m rows h of cp floats (zero padded), in
 * blocks of NV <= 8 vectors: NV independent accumulators hide the FMA latency, and a
 * compile-time NV lets the compiler keep them all in registers. */
#define OUTER_BLOCK(NV)                                                                   \
    static inline void outer_block_##NV(float *grad, const float *g, int64_t m, int64_t n, \
                                        int64_t j, const float *h, int64_t cp) {          \
        v8f a[NV];                                                                        \
        for (int v = 0; v < NV; v++) a[v] = splat(0.0f);                                  \
        for (int64_t i = 0; i < m; i++) {                                                 \
            v8f gi = splat(g[i * n + j]);                                                 \
            for (int v = 0; v < NV; v++) a[v] += gi * load8(h + i * cp + v * W);          \
        }                                                                                 \
        for (int v = 0; v < NV; v++) store8(grad + v * W, load8(grad + v * W) + a[v]);    \
    }
OUTER_BLOCK(1)
OUTER_BLOCK(2)
OUTER_BLOCK(3)
OUTER_BLOCK(4)
OUTER_BLOCK(5)
OUTER_BLOCK(6)
OUTER_BLOCK(7)
OUTER_BLOCK(8)

static void outer_row_grad(float *grad, int64_t cp, const float *g, int64_t m, int64_t n,
                           int64_t j, const float *h) {
    for (int64_t v0 = 0; v0 < cp; v0 += 8 * W) {
        float *gr = grad + v0;
        const float *hv = h + v0;
        switch ((cp - v0) / W < 8 ? (cp - v0) / W : 8) {
        case 1: outer_block_1(gr, g, m, n, j, hv, cp); break;
        case 2: outer_block_2(gr, g, m, n, j, hv, cp); break;
        case 3: outer_block_3(gr, g, m, n, j, hv, cp); break;
        case 4: outer_block_4(gr, g, m, n, j, hv, cp); break;
        case 5: outer_block_5(gr, g, m, n, j, hv, cp); break;
        case 6: outer_block_6(gr, g, m, n, j, hv, cp); break;
        case 7: outer_block_7(gr, g, m, n, j, hv, cp); break;
        default: outer_block_8(gr, g, m, n, j, hv, cp); break;
        }
    }
}

int64_t outer_rows_update(float *p, float *acc, float *vel, int64_t c, int32_t *slot,
                          const int64_t *cols, const float *g, int64_t m, int64_t n,
                          const float *h, const int64_t *idx2, const float *g2, int64_t k2,
                          int64_t ld2, int64_t w2, int64_t *work, float lr, float mom,
                          float eps) {
    int64_t total = n + k2, u = 0;
    int64_t *entry_slot = work, *start = work + total, *order = work + 2 * total + 1;
    for (int64_t e = 0; e < total; e++) { /* distinct rows in order of first occurrence */
        int64_t row = e < n ? cols[e] : idx2[e - n];
        if (slot[row] < 0) slot[row] = (int32_t)u++;
        entry_slot[e] = slot[row];
    }
    /* counting sort of the occurrences by slot (stable: each row keeps its order) */
    memset(start, 0, (size_t)(u + 1) * sizeof(int64_t));
    for (int64_t e = 0; e < total; e++) start[entry_slot[e] + 1]++;
    for (int64_t s = 0; s < u; s++) start[s + 1] += start[s];
    for (int64_t e = 0; e < total; e++) order[start[entry_slot[e]]++] = e;
    for (int64_t s = u; s > 0; s--) start[s] = start[s - 1]; /* undo the fill's shift */
    start[0] = 0;
    int64_t cp = (c + W - 1) / W * W; /* h and the gradient padded to whole vectors */
    float *hp = calloc((size_t)(m * cp), sizeof(float));
    int failed = hp == NULL;
    for (int64_t i = 0; hp != NULL && i < m; i++)
        memcpy(hp + i * cp, h + i * c, (size_t)c * sizeof(float));
#pragma omp parallel num_threads(failed ? 1 : threads_for(n * m * c / 8)) \
    reduction(| : failed)
    {
        float *grad = failed ? NULL : malloc((size_t)cp * sizeof(float));
        failed |= grad == NULL;
        if (grad != NULL) {
            /* dynamic: popular rows carry many columns; chunks keep the prefetch useful */
#pragma omp for schedule(dynamic, 32)
            for (int64_t s = 0; s < u; s++) {
                int64_t row = -1;
                if (s + PREFETCH_ROWS < u) { /* random rows: the hardware cannot guess */
                    int64_t e = order[start[s + PREFETCH_ROWS]];
                    int64_t next = (e < n ? cols[e] : idx2[e - n]) * c;
                    prefetch_row(p + next, c);
                    prefetch_row(acc + next, c);
                    if (vel) prefetch_row(vel + next, c);
                }
                memset(grad, 0, (size_t)cp * sizeof(float));
                for (int64_t q = start[s]; q < start[s + 1]; q++) {
                    int64_t e = order[q];
                    if (e < n) {
                        row = cols[e];
                        outer_row_grad(grad, cp, g, m, n, e, hp);
                    } else {
                        row = idx2[e - n];
                        const float *src = g2 + (e - n) * ld2;
                        for (int64_t v = 0; v < w2; v++) grad[v] += src[v];
                    }
                }
                adagrad_run(p + row * c, acc + row * c, vel ? vel + row * c : NULL, grad, c,
                            lr, mom, eps);
            }
            free(grad);
        }
    }
    free(hp);
    for (int64_t e = 0; e < total; e++) slot[e < n ? cols[e] : idx2[e - n]] = -1;
    return failed ? -1 : u;
}

