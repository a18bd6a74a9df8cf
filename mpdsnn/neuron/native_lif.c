/* The compiled backend's forward charge on CPU, by hand (mpdsnn/neuron/native.py builds it).
 *
 * Why by hand: inductor accumulates a sum fused into a pointwise loop in one vector register
 * chain (or a cascade held in memory), which cost DS-ATGO's charge kernel +0.1-0.2 ms a step
 * on a million potentials; an OpenMP SIMD reduction spreads the sums over independent lanes and
 * they cost nothing measurable here (docs/bench.md).
 *
 * Exactness: the charge is the reference's expression in the reference's order,
 * tau * U(t-1) * (1 - S(t-1)) + s_in * I(t), built with -ffp-contract=off (no FMA); only the
 * sums of U and U^2 (float64, DS-ATGO's statistics) are reassociated by the SIMD reduction.
 */
#include <stdint.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__APPLE__)
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CLONES
#endif

/* The body of the charge for element i: S(t-1) into spike_out[i] and U(t) into `u`; scalars
 * th, t, s are read once per call from 0-d tensors' memory. The one place of the expression. */
#define CHARGE_ELEMENT(T)                                                                     \
  const T p = u_prev[i];                                                                       \
  const T keep = p < th ? (T)1 : (T)0;                                                         \
  spike_out[i] = p >= th ? (T)1 : (T)0;                                                        \
  const T u = t * p * keep + s * x[i];

/* A loop that stores each `u` the statement ELEMENT computes into u_out and returns sum(U) and
 * sum(U^2) in sums[0], sums[1], accumulated in float64 over independent SIMD lanes. */
#define STORE_AND_SUM(ELEMENT)                                                                \
  double total = 0, squares = 0;                                                               \
  _Pragma("omp simd reduction(+ : total, squares)")                                            \
  for (int64_t i = 0; i < n; ++i) {                                                            \
    ELEMENT                                                                                    \
    u_out[i] = u;                                                                              \
    const double d = (double)u;                                                                \
    total += d;                                                                                \
    squares += d * d;                                                                          \
  }                                                                                            \
  sums[0] = total;                                                                             \
  sums[1] = squares;

/* S(t-1) = U(t-1) >= theta(t-1) and U(t). */
#define DEFINE_CHARGE(T, SUFFIX)                                                              \
  CLONES void charge_##SUFFIX(const T* u_prev, const T* fire, const T* x, const T* tau,      \
                              const T* scale, T* u_out, T* spike_out, int64_t n) {            \
    const T th = *fire, t = *tau, s = *scale;                                                 \
    _Pragma("omp simd")                                                                        \
    for (int64_t i = 0; i < n; ++i) {                                                          \
      CHARGE_ELEMENT(T)                                                                        \
      u_out[i] = u;                                                                            \
    }                                                                                          \
  }

/* The same, also returning sum(U(t)) and sum(U(t)^2). */
#define DEFINE_CHARGE_SUMS(T, SUFFIX)                                                         \
  CLONES void charge_sums_##SUFFIX(const T* u_prev, const T* fire, const T* x, const T* tau, \
                                   const T* scale, T* u_out, T* spike_out, int64_t n,         \
                                   double* sums) {                                            \
    const T th = *fire, t = *tau, s = *scale;                                                 \
    STORE_AND_SUM(CHARGE_ELEMENT(T))                                                           \
  }

/* Step 0: U(0) = s_in * I(0) and its sums. */
#define DEFINE_FIRST_SUMS(T, SUFFIX)                                                          \
  CLONES void first_sums_##SUFFIX(const T* x, const T* scale, T* u_out, int64_t n,            \
                                  double* sums) {                                             \
    const T s = *scale;                                                                        \
    STORE_AND_SUM(const T u = s * x[i];)                                                       \
  }

DEFINE_CHARGE(float, f32)
DEFINE_CHARGE(double, f64)
DEFINE_CHARGE_SUMS(float, f32)
DEFINE_CHARGE_SUMS(double, f64)
DEFINE_FIRST_SUMS(float, f32)
DEFINE_FIRST_SUMS(double, f64)
