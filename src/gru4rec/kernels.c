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
double bpr_max_rows(float *r, int64_t m, int64_t n, float inv_batch, float bpreg,
                    float alpha, float *e, float *sg) {
    double total = 0.0;
    const v8f zero = splat(0.0f), one = splat(1.0f);
    for (int64_t j = 0; j < m; j++) {
        float *x = r + j * n;
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
        total += -log((double)hit_eps) + (double)bpreg * reg;
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
    }
    return total;
}

/* Softmax cross-entropy on the (m, n) raw scores r, overwritten with d loss / d r.
 * With log_q (n values, may be NULL) the scores are first shifted by -logq * log_q.
 * loss_j = -log(p_jj + 1e-24), gradient w_j (p_jk - [k == j]), w_j = p_jj/(p_jj+1e-24)/B.
 * Returns the summed row losses (not divided). */
double xe_rows(float *r, int64_t m, int64_t n, float inv_batch, const float *log_q,
               float logq) {
    double total = 0.0;
    for (int64_t j = 0; j < m; j++) {
        float *z = r + j * n;
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
        total += -log((double)(pj + 1e-24f));
        float w = pj / (pj + 1e-24f) * inv_batch, scale = w / sum_e;
        for (int64_t k = 0; k < n; k += W) {
            int64_t c = lanes(n, k);
            storen(z + k, c, loadn(z + k, c, 0.0f) * scale);
        }
        z[j] -= w;
    }
    return total;
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

/* ---------------------------------------------------------------------------- evaluation */

/* For each of the m rows of an (m, n) score block (row stride ld): add to greater[i] and
 * equal[i] the number of scores above / equal to t[i]. One pass over the block, where
 * (s > t).sum() and (s == t).sum() take four passes and two temporaries. */
void count_vs_target(const float *s, int64_t m, int64_t n, int64_t ld, const float *t,
                     int64_t *greater, int64_t *equal) {
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
