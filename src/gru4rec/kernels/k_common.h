/* Shared helpers of the CPU kernels: 8-float vectors (GCC/Clang vector extensions),
 * the OpenMP team size, and small reductions. Included by kernels.c. */
#pragma once

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
