/* CPU kernels for GRU4Rec training and evaluation (loaded with ctypes by gru4rec.kernels).
 *
 * A GRU4Rec step is tiny (B=32 rows, ~2000 score columns), so on a CPU the cost of running
 * it as dozens of separate tensor ops (dispatch, temporaries, one memory pass each) is
 * several times the arithmetic. These kernels fuse the element-wise work that follows the
 * score matmul (loss and its gradient) and the optimiser updates (row-sparse and dense
 * Adagrad with momentum) into single passes. Matrix products stay in PyTorch (BLAS). Two
 * more remove per-draw and per-comparison overheads: inverse-CDF sampling through a guide
 * table, and counting the scores above / equal to each target's in one pass (evaluation).
 * The session-kNN baselines' candidate pools, neighbour choice and item sums (k_knn.c) run
 * here too, in float64 and bit-equal to their numpy path.
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
/* One translation unit, in parts of one concern each: */
#include "k_common.h"   /* vectors, thread counts, reductions */
#include "k_losses.c"   /* bpr-max and cross-entropy rows with their gradient */
#include "k_gru.c"      /* the GRU cell's element-wise passes, forward and backward */
#include "k_optim.c"    /* Adagrad: dense, row-sparse, and output rows from g^T h */
#include "k_sampling.c" /* inverse-CDF sampling, log Q, scoring rows, rank counts */
#include "k_knn.c"      /* session kNN: recent pools, top-k neighbours, their item sums */

/* ------------------------------------------------------------------------------ identity */

/* What the loader checks before using a library: the hash of the source it was built from
 * (a library older than kernels.c is not used), the variant it was built for and whether
 * it runs its loops on OpenMP threads. The build passes the first two with -D. */
#ifndef GRU4REC_SOURCE_HASH
#define GRU4REC_SOURCE_HASH ""
#endif
#ifndef GRU4REC_VARIANT
#define GRU4REC_VARIANT ""
#endif
const char *gru4rec_source_hash(void) { return GRU4REC_SOURCE_HASH; }
const char *gru4rec_variant(void) { return GRU4REC_VARIANT; }
int gru4rec_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

/* The x86-64 microarchitecture level this CPU (and its operating system, which must save
 * the wider registers) supports: 1 baseline, 3 AVX2/FMA/BMI2 (x86-64-v3), 4 AVX-512
 * F/BW/CD/DQ/VL (x86-64-v4); 0 on other architectures. The loader asks the generic build,
 * so no instruction beyond the baseline runs before the answer is known. */
int gru4rec_x86_level(void) {
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
#if !defined(__clang__) && __GNUC__ >= 12
    int v3 = __builtin_cpu_supports("x86-64-v3") != 0;
    int v4 = __builtin_cpu_supports("x86-64-v4") != 0;
#else
    int v3 = __builtin_cpu_supports("avx") && __builtin_cpu_supports("avx2") &&
             __builtin_cpu_supports("fma") && __builtin_cpu_supports("bmi") &&
             __builtin_cpu_supports("bmi2");
    int v4 = v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
             __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512vl");
#endif
    return v4 ? 4 : v3 ? 3 : 1;
#else
    return 0;
#endif
}
