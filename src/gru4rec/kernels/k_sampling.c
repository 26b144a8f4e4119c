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
 * zero padded; see gru4rec.kernels.Kernels.pack_panels), so each panel is one sequential
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

