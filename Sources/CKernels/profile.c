// The machine's peak: the ceiling of the roofline that `torchport bench --profile` sets each
// convolution against.
#include "internal.h"

#if TP_HAVE_X86
static TP_AVX512 double fma_loop(int64_t iterations) {
    __m512 acc[12];
    for (int i = 0; i < 12; i++) acc[i] = _mm512_set1_ps(0.001f * (float)i);
    const __m512 a = _mm512_set1_ps(0.9999f), b = _mm512_set1_ps(1e-4f);
    for (int64_t n = 0; n < iterations; n++)
        for (int i = 0; i < 12; i++) acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    float sum = 0;
    for (int i = 0; i < 12; i++) sum += _mm512_reduce_add_ps(acc[i]);
    return sum;
}
#endif

double tp_fma_flops(int64_t iterations, double *sink) {
#if TP_HAVE_X86
    if (!tp_kernels_available()) return 0;
    *sink += fma_loop(iterations);
    return (double)iterations * 12 * 16 * 2;
#else
    (void)iterations; (void)sink;
    return 0;
#endif
}
