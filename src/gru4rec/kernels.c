/* CPU kernels for GRU4Rec training and evaluation (loaded with ctypes by gru4rec.native).
 *
 * A GRU4Rec step is tiny (B=32 rows, ~2000 score columns), so on a CPU the cost of running
 * it as dozens of separate tensor ops (dispatch, temporaries, one memory pass each) is
 * several times the arithmetic. These kernels fuse the element-wise work that follows the
 * score matmul (loss and its gradient) and the optimiser updates (row-sparse and dense
 * Adagrad with momentum) into single passes. Matrix products stay in PyTorch (BLAS). Two
 * more remove per-draw and per-comparison overheads: inverse-CDF sampling through a guide
 * table, and counting the scores above / equal to each target's in one pass (evaluation).
 *
 * Arithmetic follows gru4rec.nn.losses / gru4rec.nn.optim operation by operation (the
 * optimiser agrees with PyTorch's to float32 rounding: PyTorch's vectorised sqrt is not
 * correctly rounded, this one is). The library is compiled with -ffp-contract=off so that
 * results do not depend on where the compiler chooses to fuse a multiply-add. All matrices
 * are row-major float32, indices int64.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The loss kernels are written with GCC/Clang vector extensions (8 floats; the compiler
 * maps them to AVX2, SSE or NEON): the exponentials dominate and neither libm's expf nor a
 * scalar polynomial with a type pun auto-vectorises reliably. */
typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
#define W 8

static inline v8f load8(const float *p) { v8f v; memcpy(&v, p, sizeof v); return v; }
static inline void store8(float *p, v8f v) { memcpy(p, &v, sizeof v); }
static inline v8f splat(float a) { return (v8f){a, a, a, a, a, a, a, a}; }
static inline v8f select8(v8i mask, v8f a, v8f b) { /* mask ? a : b, lane by lane */
    return (v8f)(((v8i)a & mask) | ((v8i)b & ~mask));
}
static inline v8f max8(v8f a, v8f b) { return select8(a > b, a, b); }
static inline float hsum8(v8f v) {
    return ((v[0] + v[1]) + (v[2] + v[3])) + ((v[4] + v[5]) + (v[6] + v[7]));
}
static inline float hmax8(v8f v) {
    float m = v[0];
    for (int i = 1; i < W; i++) m = v[i] > m ? v[i] : m;
    return m;
}

/* exp(x): Cody-Waite range reduction x = n ln2 + r, |r| <= ln2/2, the degree-7 Taylor
 * polynomial of exp(r) (truncation error < 1e-8, below float rounding), and 2^n built in
 * the exponent bits. Inputs are clamped to [-87, 88], where float exp is finite and normal;
 * adding 1.5 * 2^23 rounds to the nearest integer. */
static inline v8f exp8(v8f x) {
    x = max8(x, splat(-87.0f));
    x = select8(x > splat(88.0f), splat(88.0f), x);
    v8f n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    v8f r = x - n * 0.693359375f - n * -2.12194440e-4f;
    v8f p = splat(1.0f / 5040.0f);
    p = p * r + 1.0f / 720.0f;
    p = p * r + 1.0f / 120.0f;
    p = p * r + 1.0f / 24.0f;
    p = p * r + 1.0f / 6.0f;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    p = p * r + 1.0f;
    v8i bits = (__builtin_convertvector(n, v8i) + 127) << 23;
    return p * (v8f)bits;
}

/* Rows are processed W floats at a time; the last, partial chunk goes through a padded copy
 * (cnt < W lanes are real, the others hold `fill`). */
static inline v8f loadn(const float *p, int64_t cnt, float fill) {
    if (cnt >= W) return load8(p);
    float t[W];
    for (int i = 0; i < W; i++) t[i] = i < cnt ? p[i] : fill;
    return load8(t);
}
static inline void storen(float *p, int64_t cnt, v8f v) {
    if (cnt >= W) {
        store8(p, v);
        return;
    }
    for (int i = 0; i < cnt; i++) p[i] = v[i];
}
static inline int64_t lanes(int64_t n, int64_t k) { return n - k < W ? n - k : W; }

/* Threads for a parallel loop over `work` elements: one per PARALLEL_MIN elements, at most
 * as many as PyTorch uses (its omp_set_num_threads also sets ours). Small work stays on
 * one thread, where waking the pool would cost more than it saves. */
#define PARALLEL_MIN 16384
#ifdef _OPENMP
#include <omp.h>
static inline int threads_for(int64_t work) {
    int64_t t = work / PARALLEL_MIN, most = omp_get_max_threads();
    return (int)(t < 1 ? 1 : t > most ? most : t);
}
#else
static inline int threads_for(int64_t work) { (void)work; return 1; }
#endif

/* Sum of the m per-row losses in row order (the same total for any thread count) and free
 * them; NaN when an allocation failed, which the trainer's finiteness check reports. */
static double sum_losses(double *loss, int64_t m, int failed) {
    double total = 0.0;
    if (loss != NULL && !failed)
        for (int64_t j = 0; j < m; j++) total += loss[j];
    else
        total = NAN;
    free(loss);
    return total;
}

static float row_max(const float *x, int64_t n) {
    v8f m = splat(-INFINITY);
    for (int64_t k = 0; k < n; k += W) m = max8(m, loadn(x + k, lanes(n, k), -INFINITY));
    return hmax8(m);
}

/* ---------------------------------------------------------------------------- losses */

/* BPR-max with score regularisation on the (m, n) raw scores r, overwritten with
 * d loss / d r (loss = sum of rows / batch). Row j's positive is column j; s is the softmax
 * of the row over its other columns. With x = ELU(r) (alpha 0: x = r),
 * sig_k = sigmoid(x_j - x_k), hit = sum s sig, reg = sum s x^2:
 *   loss_j = -log(hit + 1e-24) + bpreg reg
 *   d/dx_k = s_k (bpreg x_k (x_k + 2) - sig_k^2 / (hit+1e-24) + hit / (hit+1e-24) - bpreg reg)
 *   d/dx_j = -(hit - sum s sig^2) / (hit + 1e-24)
 * e and sg are scratch rows of n floats. Returns the summed row losses (not divided). */
static double bpr_max_row(float *x, int64_t j, int64_t n, float inv_batch, float bpreg,
                          float alpha, float *e, float *sg) {
    const v8f zero = splat(0.0f), one = splat(1.0f);
    {
        if (alpha > 0.0f) { /* ELU: x for x > 0, alpha (exp(x) - 1) otherwise */
            for (int64_t k = 0; k < n; k += W) {
                int64_t c = lanes(n, k);
                v8f v = loadn(x + k, c, 0.0f);
                v8f neg = alpha * (exp8(select8(v > zero, zero, v)) - 1.0f);
                storen(x + k, c, select8(v > zero, v, neg));
            }
        }
        float xp = x[j];
        x[j] = -INFINITY; /* max over the negatives only: no 0/0 when the positive wins big */
        float mx = row_max(x, n);
        x[j] = xp;
        /* e = exp(x - max) and sg = sigmoid(x_j - x) = 1 / (1 + e exp(max - x_j)): one exp
         * per score serves both (e <= 1 and exp8 clamps, so the product stays finite) */
        v8f vmx = splat(mx), shift = exp8(splat(mx - xp));
        for (int64_t k = 0; k < n; k += W) {
            int64_t c = lanes(n, k);
            v8f ev = exp8(loadn(x + k, c, 0.0f) - vmx);
            storen(e + k, c, ev);
            storen(sg + k, c, one / (one + ev * shift));
        }
        e[j] = 0.0f; /* the positive has weight 0 in the softmax over negatives */
        v8f se = zero, sh = zero, sq = zero, sd = zero;
        for (int64_t k = 0; k < n; k += W) {
            int64_t c = lanes(n, k);
            v8f ev = loadn(e + k, c, 0.0f), sv = loadn(sg + k, c, 0.0f);
            v8f v = loadn(x + k, c, 0.0f);
            se += ev;
            sh += ev * sv;
            sq += ev * (v * v);
            sd += ev * (sv * sv);
        }
        float sum_e = hsum8(se);
        float hit = hsum8(sh) / sum_e, reg = hsum8(sq) / sum_e, dsq = hsum8(sd) / sum_e;
        float hit_eps = hit + 1e-24f, inv_hit = 1.0f / hit_eps;
        double loss = -log((double)hit_eps) + (double)bpreg * reg;
        float c0 = hit * inv_hit - bpreg * reg, inv_sum = 1.0f / sum_e;
        float dpos = -(hit - dsq) * inv_hit;
        if (alpha > 0.0f) dpos *= xp > 0.0f ? 1.0f : xp + alpha;
        for (int64_t k = 0; k < n; k += W) {
            int64_t c = lanes(n, k);
            v8f v = loadn(x + k, c, 0.0f), ev = loadn(e + k, c, 0.0f);
            v8f sv = loadn(sg + k, c, 0.0f);
            v8f g = (ev * inv_sum) * (bpreg * (v * (v + 2.0f)) - (sv * sv) * inv_hit + c0);
            if (alpha > 0.0f) g *= select8(v > zero, one, v + alpha); /* ELU derivative */
            storen(x + k, c, g * inv_batch);
        }
        x[j] = dpos * inv_batch;
        return loss;
    }
}

double bpr_max_rows(float *r, int64_t m, int64_t n, float inv_batch, float bpreg,
                    float alpha) {
    double *loss = malloc((size_t)m * sizeof(double));
    int failed = loss == NULL;
    /* rows are independent: split them over the threads PyTorch uses (same OpenMP pool) */
#pragma omp parallel num_threads(threads_for(m * n)) reduction(| : failed)
    {
        float *e = malloc((size_t)(2 * n) * sizeof(float)); /* scratch: exp and sigmoid */
        failed |= e == NULL;
        if (e != NULL && loss != NULL) {
#pragma omp for schedule(static)
            for (int64_t j = 0; j < m; j++)
                loss[j] = bpr_max_row(r + j * n, j, n, inv_batch, bpreg, alpha, e, e + n);
        }
        free(e);
    }
    return sum_losses(loss, m, failed);
}

/* Softmax cross-entropy on the (m, n) raw scores r, overwritten with d loss / d r.
 * With log_q (n values, may be NULL) the scores are first shifted by -logq * log_q.
 * loss_j = -log(p_jj + 1e-24), gradient w_j (p_jk - [k == j]), w_j = p_jj/(p_jj+1e-24)/B.
 * Returns the summed row losses (not divided). */
static double xe_row(float *z, int64_t j, int64_t n, float inv_batch, const float *log_q,
                     float logq) {
    {
        if (log_q != NULL) {
            for (int64_t k = 0; k < n; k += W) {
                int64_t c = lanes(n, k);
                storen(z + k, c, loadn(z + k, c, 0.0f) - logq * loadn(log_q + k, c, 0.0f));
            }
        }
        v8f vmx = splat(row_max(z, n)), se = splat(0.0f);
        for (int64_t k = 0; k < n; k += W) {
            int64_t c = lanes(n, k);
            v8f ev = exp8(loadn(z + k, c, -INFINITY) - vmx); /* padding lanes: exp -> ~0 */
            storen(z + k, c, ev);
            se += c == W ? ev : select8(__builtin_convertvector(
                                            (v8f){0, 1, 2, 3, 4, 5, 6, 7} < (float)c, v8i),
                                        ev, splat(0.0f));
        }
        float sum_e = hsum8(se);
        float pj = z[j] / sum_e;
        double loss = -log((double)(pj + 1e-24f));
        float w = pj / (pj + 1e-24f) * inv_batch, scale = w / sum_e;
        for (int64_t k = 0; k < n; k += W) {
            int64_t c = lanes(n, k);
            storen(z + k, c, loadn(z + k, c, 0.0f) * scale);
        }
        z[j] -= w;
        return loss;
    }
}

double xe_rows(float *r, int64_t m, int64_t n, float inv_batch, const float *log_q,
               float logq) {
    double *loss = malloc((size_t)m * sizeof(double));
    if (loss == NULL) return NAN;
#pragma omp parallel for schedule(static) num_threads(threads_for(m * n))
    for (int64_t j = 0; j < m; j++) loss[j] = xe_row(r + j * n, j, n, inv_batch, log_q, logq);
    return sum_losses(loss, m, 0);
}

/* ---------------------------------------------------------------------------- GRU cell */

/* The element-wise parts of one GRU layer (gru4rec.nn.network: gates [candidate, reset,
 * update], reset applied to h before the recurrent product, tanh candidate). The matrix
 * products between them stay in BLAS; fusing the ~10 small tensor ops on each side of them
 * into one pass removes most of a step's dispatch overhead. a: (m, 3H) input
 * pre-activations (bias included, row stride lda); all other matrices are contiguous. */
static inline v8f sigmoid8(v8f x) { return 1.0f / (1.0f + exp8(-x)); }
static inline v8f tanh8(v8f x) { /* sign(x) (1 - e) / (1 + e), e = exp(-2|x|) <= 1 */
    v8f ax = select8(x < splat(0.0f), -x, x);
    v8f e = exp8(-2.0f * ax);
    v8f t = (1.0f - e) / (1.0f + e);
    return select8(x < splat(0.0f), -t, t);
}

/* rz = sigmoid(a[:, H:] + hr) (m, 2H) and rh = r * h (m, H), with hr = h @ Wrz (m, 2H). */
void gru_gates(const float *a, int64_t lda, const float *hr, const float *h, int64_t m,
               int64_t hd, float *rz, float *rh) {
    for (int64_t i = 0; i < m; i++) {
        const float *ai = a + i * lda + hd, *hri = hr + i * 2 * hd, *hi = h + i * hd;
        float *rzi = rz + i * 2 * hd;
        for (int64_t k = 0; k < 2 * hd; k += W) {
            int64_t c = lanes(2 * hd, k);
            storen(rzi + k, c, sigmoid8(loadn(ai + k, c, 0.0f) + loadn(hri + k, c, 0.0f)));
        }
        for (int64_t k = 0; k < hd; k += W) {
            int64_t c = lanes(hd, k);
            storen(rh + i * hd + k, c, loadn(rzi + k, c, 0.0f) * loadn(hi + k, c, 0.0f));
        }
    }
}

/* c = tanh(a[:, :H] + hc) and out = lerp(h, c, z) (as torch.lerp computes it) times the
 * dropout multiplier (mask may be NULL), with hc = (r * h) @ Wh. When h_aug is given the
 * output is also written into its first H columns (row stride H + 1). */
void gru_output(const float *a, int64_t lda, const float *hc, const float *h, const float *rz,
                const float *mask, int64_t m, int64_t hd, float *c_out, float *out,
                float *h_aug) {
    for (int64_t i = 0; i < m; i++) {
        const float *ai = a + i * lda, *hci = hc + i * hd, *hi = h + i * hd;
        const float *zi = rz + i * 2 * hd + hd;
        for (int64_t k = 0; k < hd; k += W) {
            int64_t c = lanes(hd, k);
            v8f cv = tanh8(loadn(ai + k, c, 0.0f) + loadn(hci + k, c, 0.0f));
            v8f hv = loadn(hi + k, c, 0.0f), zv = loadn(zi + k, c, 0.0f);
            v8f o = select8(zv < splat(0.5f), hv + zv * (cv - hv),
                            cv - (cv - hv) * (1.0f - zv));
            if (mask != NULL) o = o * loadn(mask + i * hd + k, c, 0.0f);
            storen(c_out + i * hd + k, c, cv);
            storen(out + i * hd + k, c, o);
            if (h_aug != NULL) storen(h_aug + i * (hd + 1) + k, c, o);
        }
    }
}

/* Backward, part 1, from dout = d loss / d out (m, H; times the dropout multiplier when
 * mask is given): the candidate and update-gate pre-activation gradients,
 * dvx[:, :H] = dout z (1 - c^2) and dvx[:, 2H:] = dout (c - h) z (1 - z). */
void gru_back_out(const float *dout, const float *mask, const float *rz, const float *c,
                  const float *h, int64_t m, int64_t hd, float *dvx) {
    for (int64_t i = 0; i < m; i++) {
        const float *zi = rz + i * 2 * hd + hd;
        float *di = dvx + i * 3 * hd;
        for (int64_t k = 0; k < hd; k += W) {
            int64_t n = lanes(hd, k), o = i * hd + k;
            v8f d = loadn(dout + o, n, 0.0f);
            if (mask != NULL) d = d * loadn(mask + o, n, 0.0f);
            v8f zv = loadn(zi + k, n, 0.0f), cv = loadn(c + o, n, 0.0f);
            v8f hv = loadn(h + o, n, 0.0f);
            storen(di + k, n, (d * zv) * (1.0f - cv * cv));
            storen(di + 2 * hd + k, n, (d * (cv - hv)) * (zv * (1.0f - zv)));
        }
    }
}

/* Backward, part 2: dvx[:, H:2H] = dr h r (1 - r) with dr = dvx[:, :H] @ Wh^T (m, H), and
 * db (3H) = the column sums of dvx (rows added in order). */
void gru_back_gates(const float *dr, const float *h, const float *rz, int64_t m, int64_t hd,
                    float *dvx, float *db) {
    for (int64_t i = 0; i < m; i++) {
        const float *ri = rz + i * 2 * hd;
        float *di = dvx + i * 3 * hd + hd;
        for (int64_t k = 0; k < hd; k += W) {
            int64_t n = lanes(hd, k), o = i * hd + k;
            v8f rv = loadn(ri + k, n, 0.0f);
            v8f g = (loadn(dr + o, n, 0.0f) * loadn(h + o, n, 0.0f)) * (rv * (1.0f - rv));
            storen(di + k, n, g);
        }
    }
    for (int64_t k = 0; k < 3 * hd; k += W) {
        int64_t n = lanes(3 * hd, k);
        v8f acc = splat(0.0f);
        for (int64_t i = 0; i < m; i++) acc += loadn(dvx + i * 3 * hd + k, n, 0.0f);
        storen(db + k, n, acc);
    }
}

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

/* ---------------------------------------------------------------------------- sampling */

/* Inverse-CDF sampling with a guide table: out[i] = the first k with cdf[k] > u[i] (as
 * searchsorted(cdf, u, right=True)), clamped to n - 1. guide[b] (k_guide entries) is the
 * first k with cdf[k] > b / k_guide, so the scan from there takes ~1-2 probes instead of a
 * ~17-level binary search with a cache miss at each level. */
void sample_cdf(const double *cdf, int64_t n, const int64_t *guide, int64_t k_guide,
                const double *u, int64_t count, int64_t *out) {
    for (int64_t i = 0; i < count; i++) {
        double v = u[i];
        int64_t b = (int64_t)(v * (double)k_guide);
        int64_t k = guide[b < k_guide ? b : k_guide - 1];
        while (k > 0 && cdf[k - 1] > v) k--; /* v * k_guide may have rounded up a bucket */
        while (k < n - 1 && cdf[k] <= v) k++;
        out[i] = k;
    }
}

/* log Q of the n score columns cols for cross-entropy with logQ: the support of the item for
 * the m in-batch columns, support^alpha (alpha * log support) for the sampled ones. */
void log_q_columns(float *out, const int64_t *cols, int64_t n, int64_t m,
                   const float *log_support, float alpha) {
    for (int64_t k = 0; k < n; k++) {
        float ls = log_support[cols[k]];
        out[k] = k < m ? ls : alpha * ls;
    }
}

/* ----------------------------------------------------------------------------- scoring */

/* out (m, n) = h (m, kd) @ W^T + b: the scores of a few session states against every item
 * (serving). BLAS runs this skinny product at a fraction of the CPU's speed. The item
 * weights come packed in panels of 32 items (panel t: kd rows of 32 floats, contiguous,
 * zero padded; see gru4rec.native.Kernels.pack_panels), so each panel is one sequential
 * 13 KB read that stays in L1 while up to 3 rows of h use it with 12 independent
 * accumulators. */
#define SCORE_TILE (4 * W)
#define SCORE_ROWS(MR)                                                                      \
    static inline void score_tile_##MR(const float *h, int64_t kd, const float *panel,     \
                                       const float *b, float *out, int64_t ldo,            \
                                       int64_t cnt) {                                      \
        v8f a[MR][4];                                                                      \
        for (int v = 0; v < 4; v++) {                                                      \
            v8f bv = loadn(b + v * W, lanes(cnt, v * W), 0.0f);                            \
            for (int r = 0; r < MR; r++) a[r][v] = bv;                                     \
        }                                                                                  \
        for (int64_t k = 0; k < kd; k++) {                                                 \
            const float *w = panel + k * SCORE_TILE;                                       \
            v8f w0 = load8(w), w1 = load8(w + W), w2 = load8(w + 2 * W);                   \
            v8f w3 = load8(w + 3 * W);                                                     \
            for (int r = 0; r < MR; r++) {                                                 \
                v8f hv = splat(h[r * kd + k]);                                             \
                a[r][0] += hv * w0, a[r][1] += hv * w1, a[r][2] += hv * w2;                \
                a[r][3] += hv * w3;                                                        \
            }                                                                              \
        }                                                                                  \
        for (int r = 0; r < MR; r++)                                                       \
            for (int v = 0; v < 4 && v * W < cnt; v++)                                     \
                storen(out + r * ldo + v * W, lanes(cnt, v * W), a[r][v]);                 \
    }
SCORE_ROWS(1)
SCORE_ROWS(2)
SCORE_ROWS(3)

void score_rows(const float *h, int64_t m, int64_t kd, const float *panels, const float *b,
                int64_t n, float *out) {
    int64_t tiles = (n + SCORE_TILE - 1) / SCORE_TILE;
#pragma omp parallel for schedule(static) num_threads(threads_for(m * n * kd / 64))
    for (int64_t t = 0; t < tiles; t++) {
        int64_t i0 = t * SCORE_TILE, cnt = n - i0 < SCORE_TILE ? n - i0 : SCORE_TILE;
        const float *panel = panels + t * kd * SCORE_TILE;
        for (int64_t r = 0; r < m; r += 3) {
            const float *hr = h + r * kd;
            float *o = out + r * n + i0;
            if (m - r >= 3)
                score_tile_3(hr, kd, panel, b + i0, o, n, cnt);
            else if (m - r == 2)
                score_tile_2(hr, kd, panel, b + i0, o, n, cnt);
            else
                score_tile_1(hr, kd, panel, b + i0, o, n, cnt);
        }
    }
}

/* ---------------------------------------------------------------------------- evaluation */

/* For each of the m rows of an (m, n) score block (row stride ld): add to greater[i] and
 * equal[i] the number of scores above / equal to t[i]. One pass over the block, where
 * (s > t).sum() and (s == t).sum() take four passes and two temporaries. */
void count_vs_target(const float *s, int64_t m, int64_t n, int64_t ld, const float *t,
                     int64_t *greater, int64_t *equal) {
#pragma omp parallel for schedule(static) num_threads(threads_for(m * n)) /* rows */
    for (int64_t i = 0; i < m; i++) {
        const float *row = s + i * ld;
        v8f vt = splat(t[i]);
        v8i gt = {0, 0, 0, 0, 0, 0, 0, 0}, eq = gt;
        int64_t k = 0;
        for (; k + W <= n; k += W) {
            v8f v = load8(row + k);
            gt -= (v8i)(v > vt); /* a true lane is -1 */
            eq -= (v8i)(v == vt);
        }
        int64_t g = 0, e = 0;
        for (int j = 0; j < W; j++) {
            g += gt[j];
            e += eq[j];
        }
        for (; k < n; k++) {
            g += row[k] > t[i];
            e += row[k] == t[i];
        }
        greater[i] += g;
        equal[i] += e;
    }
}
