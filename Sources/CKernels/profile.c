// The machine's peak: the ceiling of the roofline that `torchport bench --profile` sets each
// convolution against, with the selected instruction set's vectors (zmm or ymm).
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

/// The same with AVX2 + FMA: 12 chains of ymm (8 floats).
static TP_AVX2 double fma_loop_avx2(int64_t iterations) {
    __m256 acc[12];
    for (int i = 0; i < 12; i++) acc[i] = _mm256_set1_ps(0.001f * (float)i);
    const __m256 a = _mm256_set1_ps(0.9999f), b = _mm256_set1_ps(1e-4f);
    for (int64_t n = 0; n < iterations; n++)
        for (int i = 0; i < 12; i++) acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    float lanes[8], sum = 0;
    for (int i = 0; i < 12; i++) {
        _mm256_storeu_ps(lanes, acc[i]);
        for (int l = 0; l < 8; l++) sum += lanes[l];
    }
    return sum;
}
#endif

double tp_fma_flops(int64_t iterations, double *sink) {
#if TP_HAVE_X86
    switch (tp_isa_selected()) {
    case TP_ISA_AVX512: *sink += fma_loop(iterations); return (double)iterations * 12 * 16 * 2;
    case TP_ISA_AVX2: *sink += fma_loop_avx2(iterations); return (double)iterations * 12 * 8 * 2;
    default: return 0;
    }
#else
    (void)iterations; (void)sink;
    return 0;
#endif
}
