// The packed engine's other layers over bordered NHWC maps (see include/ckernels.h): MaxPool2d(3,
// stride 2, padding 1), NCHW <-> bordered NHWC, and the global average pool.
#include "internal.h"
#include <math.h>

// MARK: - Other layers (plain C, vectorised by the compiler for the selected instruction set:
// each body is compiled three times, for AVX-512, for AVX2 + FMA, and for the baseline, and
// tp_isa_selected() picks one; off x86 only the baseline exists)

#define AI __attribute__((always_inline))

static inline AI void maxpool3s2_body(const tp_map *in, const tp_map *out, int64_t row_begin, int64_t row_end) {
    const int64_t c = in->c;
    for (int64_t row = row_begin; row < row_end; row++) {
        const int64_t n = row / out->h, oy = row % out->h;
        const int64_t y0 = 2 * oy - 1 < 0 ? 0 : 2 * oy - 1, y1 = 2 * oy + 2 > in->h ? in->h : 2 * oy + 2;
        for (int64_t ox = 0; ox < out->w; ox++) {
            const int64_t x0 = 2 * ox - 1 < 0 ? 0 : 2 * ox - 1, x1 = 2 * ox + 2 > in->w ? in->w : 2 * ox + 2;
            float *d = out->data + pixel_index(out, n, oy, ox);
            for (int64_t ch = 0; ch < c; ch++) d[ch] = -INFINITY;
            for (int64_t y = y0; y < y1; y++) {
                for (int64_t x = x0; x < x1; x++) {
                    const float *s = in->data + pixel_index(in, n, y, x);
                    for (int64_t ch = 0; ch < c; ch++) {
                        float v = s[ch];
                        d[ch] = v <= d[ch] ? d[ch] : v;  // v > max, or v is NaN
                    }
                }
            }
        }
    }
}

static inline AI void from_nchw_body(const float *src, const tp_map *out, int64_t row_begin, int64_t row_end) {
    const int64_t plane = (int64_t)out->h * out->w;
    for (int64_t row = row_begin; row < row_end; row++) {
        const int64_t n = row / out->h, y = row % out->h;
        for (int64_t x = 0; x < out->w; x++) {
                float *d = out->data + pixel_index(out, n, y, x);
                const float *s = src + n * out->c * plane + y * out->w + x;
                for (int64_t ch = 0; ch < out->c; ch++) d[ch] = s[ch * plane];
        }
    }
}

static inline AI void to_nchw_body(const tp_map *in, float *dst) {
    const int64_t plane = (int64_t)in->h * in->w;
    for (int64_t n = 0; n < in->n; n++)
        for (int64_t y = 0; y < in->h; y++)
            for (int64_t x = 0; x < in->w; x++) {
                const float *s = in->data + pixel_index(in, n, y, x);
                float *d = dst + n * in->c * plane + y * in->w + x;
                for (int64_t ch = 0; ch < in->c; ch++) d[ch * plane] = s[ch];
            }
}

static inline AI void global_average_body(const tp_map *in, float *dst) {
    const int64_t plane = (int64_t)in->h * in->w;
    for (int64_t n = 0; n < in->n; n++) {
        float *d = dst + n * in->c;
        for (int64_t ch = 0; ch < in->c; ch++) d[ch] = 0;
        for (int64_t y = 0; y < in->h; y++)
            for (int64_t x = 0; x < in->w; x++) {
                const float *s = in->data + pixel_index(in, n, y, x);
                for (int64_t ch = 0; ch < in->c; ch++) d[ch] += s[ch];
            }
        for (int64_t ch = 0; ch < in->c; ch++) d[ch] /= (float)plane;
    }
}

#if TP_HAVE_X86
#define VARIANTS(NAME, PARAMS, ARGS)                                                                                   \
    static TP_AVX512 void NAME##_avx512 PARAMS { NAME##_body ARGS; }                                                  \
    static TP_AVX2 void NAME##_avx2 PARAMS { NAME##_body ARGS; }                                                      \
    static void NAME##_base PARAMS { NAME##_body ARGS; }
#define DISPATCH(NAME, ARGS)                                                                                           \
    switch (tp_isa_selected()) {                                                                                       \
    case TP_ISA_AVX512: NAME##_avx512 ARGS; break;                                                                     \
    case TP_ISA_AVX2: NAME##_avx2 ARGS; break;                                                                         \
    default: NAME##_base ARGS; break;                                                                                  \
    }
#else
#define VARIANTS(NAME, PARAMS, ARGS)
#define DISPATCH(NAME, ARGS) NAME##_body ARGS;
#endif

VARIANTS(maxpool3s2, (const tp_map *in, const tp_map *out, int64_t row_begin, int64_t row_end), (in, out, row_begin, row_end))
VARIANTS(from_nchw, (const float *src, const tp_map *out, int64_t row_begin, int64_t row_end), (src, out, row_begin, row_end))
VARIANTS(to_nchw, (const tp_map *in, float *dst), (in, dst))
VARIANTS(global_average, (const tp_map *in, float *dst), (in, dst))

void tp_maxpool3s2(const tp_map *in, const tp_map *out, int64_t row_begin, int64_t row_end) {
    DISPATCH(maxpool3s2, (in, out, row_begin, row_end))
}
void tp_from_nchw(const float *src, const tp_map *out, int64_t row_begin, int64_t row_end) {
    DISPATCH(from_nchw, (src, out, row_begin, row_end))
}
void tp_to_nchw(const tp_map *in, float *dst) { DISPATCH(to_nchw, (in, dst)) }
void tp_global_average(const tp_map *in, float *dst) { DISPATCH(global_average, (in, dst)) }
