// Winograd F(2x2, 3x3) (Lavin and Gray): Y = Aᵀ [(G g Gᵀ) ⊙ (Bᵀ d B)] A for each 2x2 output tile,
// 2.25x fewer multiplications than the direct 3x3 convolution. The weight transform (at bind
// time, plain C), the input transform into panels, and the 16 GEMMs (by the panel micro-kernel)
// with the output transform, bias, residual and ReLU (AVX-512, and the same with AVX2 + FMA).
#include "internal.h"

/// Winograd F(2x2, 3x3) weights: U = G g Gᵀ (4x4) per output and input channel, times scale[o],
/// as [block][point of U][input channel (padded to 16)][16 * nv].
void tp_winograd_pack_weights(const tp_conv *c, const float *weight, const float *scale, float *packed) {
    static const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
    const int64_t nb = block_width(c), kp = reduction(c);
    for (int64_t i = 0; i < tp_conv_packed_count(c); i++) packed[i] = 0;
    for (int64_t o = 0; o < c->cout; o++) {
        const int64_t b = o / nb, j = o % nb;
        for (int64_t ic = 0; ic < c->cin; ic++) {
            const float *g = weight + (o * c->cin + ic) * 9;
            double gg[4][3];  // G g
            for (int r = 0; r < 4; r++)
                for (int col = 0; col < 3; col++) gg[r][col] = G[r][0] * g[col] + G[r][1] * g[3 + col] + G[r][2] * g[6 + col];
            for (int r = 0; r < 4; r++)
                for (int q = 0; q < 4; q++) {
                    const double u = gg[r][0] * G[q][0] + gg[r][1] * G[q][1] + gg[r][2] * G[q][2];
                    packed[((b * 16 + r * 4 + q) * kp + ic) * nb + j] = (float)(u * scale[o]);
                }
        }
    }
}

#if TP_HAVE_X86
/// Winograd: the 2x2 output tiles of group `g` (TP_TILE tiles, row-major over the tile grid):
/// their count, and each one's top-left output pixel.
static int winograd_tiles(const tp_map *out, int64_t g, int64_t ys[TP_TILE], int64_t xs[TP_TILE]) {
    const int64_t tw = (out->w + 1) / 2, total = ((out->h + 1) / 2) * tw;
    int m = 0;
    for (int64_t q = g * TP_TILE; q < total && m < TP_TILE; q++, m++) { ys[m] = 2 * (q / tw); xs[m] = 2 * (q % tw); }
    return m;
}

/// Winograd input transform of tile group `g` of image `n`: V = Bᵀ d B for each 4x4 input tile d
/// (rows and columns from -1, the border; beyond it, past an odd edge, zeros), 16 channels at a
/// time, into 16 panels (one per point of V) in pack_tile's layout.
TP_AVX512 void tp_winograd_input(const tp_conv *c, const tp_map *in, const tp_map *out, int64_t n, int64_t g,
                                float *panel) {
    int64_t ys[TP_TILE], xs[TP_TILE];
    const int m = winograd_tiles(out, g, ys, xs);
    const int64_t kp = reduction(c), point = kp * TP_TILE;
    for (int i = 0; i < m; i++) {
        const int64_t y0 = ys[i] - 1, x0 = xs[i] - 1;
        for (int64_t ch = 0; ch < c->cin; ch += 16) {
            __m512 d[4][4];
            for (int r = 0; r < 4; r++)
                for (int q = 0; q < 4; q++)
                    d[r][q] = (y0 + r <= in->h && x0 + q <= in->w)
                        ? _mm512_loadu_ps(in->data + pixel_index(in, n, y0 + r, x0 + q) + ch) : _mm512_setzero_ps();
            __m512 t[4][4];  // Bᵀ d
            for (int q = 0; q < 4; q++) {
                t[0][q] = _mm512_sub_ps(d[0][q], d[2][q]);
                t[1][q] = _mm512_add_ps(d[1][q], d[2][q]);
                t[2][q] = _mm512_sub_ps(d[2][q], d[1][q]);
                t[3][q] = _mm512_sub_ps(d[1][q], d[3][q]);
            }
            float *dst = panel + ((ch / 16) * TP_TILE + i) * 16;
            for (int r = 0; r < 4; r++) {  // (Bᵀ d) B
                _mm512_storeu_ps(dst + (r * 4 + 0) * point, _mm512_sub_ps(t[r][0], t[r][2]));
                _mm512_storeu_ps(dst + (r * 4 + 1) * point, _mm512_add_ps(t[r][1], t[r][2]));
                _mm512_storeu_ps(dst + (r * 4 + 2) * point, _mm512_sub_ps(t[r][2], t[r][1]));
                _mm512_storeu_ps(dst + (r * 4 + 3) * point, _mm512_sub_ps(t[r][1], t[r][3]));
            }
        }
    }
    // Padding rows of the reduction (none: cin is a multiple of 16 for Winograd).
}

/// Winograd: for blocks [b0, b1) of tile group `g`, the 16 GEMMs M = V U (one per point), then
/// the output transform Y = Aᵀ M A of each 2x2 tile, with bias, residual and ReLU.
TP_AVX512 void tp_winograd_run(const tp_conv *c, const tp_map *out, const tp_map *residual, int relu, int64_t n,
                              int64_t g, const float *panel, int64_t b0, int64_t b1, const char *pf, int64_t pf_step) {
    static const float zeros[32] __attribute__((aligned(64))) = {0};
    int64_t ys[TP_TILE], xs[TP_TILE], off[TP_TILE];
    const int m = winograd_tiles(out, g, ys, xs);
    const int64_t nb = block_width(c), kp = reduction(c), chunks = kp / 16;
    float mbuf[16 * TP_TILE * 32] __attribute__((aligned(64)));  // M: [point][tile][channel of the block]
    for (int i = 0; i < TP_TILE; i++) off[i] = i * nb;
    const tile_fn fn = tp_tile_kernels[c->nv - 1][m - 1];
    const int64_t res_shift = residual ? residual->data - out->data : 0;
    const __m512 zero = _mm512_setzero_ps();
    for (int64_t b = b0; b < b1; b++) {
        const float *w = c->weight + b * block_floats(c);
        for (int p = 0; p < 16; p++)
            fn(panel + p * kp * TP_TILE, kp, w + p * kp * nb, zeros, mbuf + p * TP_TILE * nb, off, 0, 0, 0, (int)nb,
               pf + p * chunks * pf_step, pf_step);
        const int valid = (int)(c->cout - b * nb < nb ? c->cout - b * nb : nb);
        for (int64_t j = 0; j < c->nv; j++) {
            const int lanes = valid - 16 * (int)j;
            if (lanes <= 0) break;
            const __mmask16 mask = lanes >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << lanes) - 1);
            const __m512 bias = _mm512_loadu_ps(c->bias + b * nb + 16 * j);
            for (int i = 0; i < m; i++) {
                __m512 v[4][4];
#pragma clang loop unroll(full)
                for (int p = 0; p < 16; p++) v[p / 4][p % 4] = _mm512_load_ps(mbuf + (p * TP_TILE + i) * nb + 16 * j);
                __m512 s0[4], s1[4];  // Aᵀ M
#pragma clang loop unroll(full)
                for (int q = 0; q < 4; q++) {
                    s0[q] = _mm512_add_ps(_mm512_add_ps(v[0][q], v[1][q]), v[2][q]);
                    s1[q] = _mm512_sub_ps(_mm512_sub_ps(v[1][q], v[2][q]), v[3][q]);
                }
                __m512 y[2][2];  // (Aᵀ M) A
                y[0][0] = _mm512_add_ps(_mm512_add_ps(s0[0], s0[1]), s0[2]);
                y[0][1] = _mm512_sub_ps(_mm512_sub_ps(s0[1], s0[2]), s0[3]);
                y[1][0] = _mm512_add_ps(_mm512_add_ps(s1[0], s1[1]), s1[2]);
                y[1][1] = _mm512_sub_ps(_mm512_sub_ps(s1[1], s1[2]), s1[3]);
#pragma clang loop unroll(full)
                for (int dy = 0; dy < 2; dy++)
#pragma clang loop unroll(full)
                    for (int dx = 0; dx < 2; dx++) {
                        if (ys[i] + dy >= out->h || xs[i] + dx >= out->w) continue;
                        float *o = out->data + pixel_index(out, n, ys[i] + dy, xs[i] + dx) + b * nb + 16 * j;
                        __m512 r = _mm512_add_ps(y[dy][dx], bias);
                        if (residual) r = _mm512_add_ps(r, _mm512_maskz_loadu_ps(mask, o + res_shift));
                        if (relu) r = _mm512_max_ps(r, zero);
                        _mm512_mask_storeu_ps(o, mask, r);
                    }
            }
        }
    }
}
/// tp_winograd_input with AVX2: the same transform, 8 channels at a time.
TP_AVX2 void tp_winograd_input_avx2(const tp_conv *c, const tp_map *in, const tp_map *out, int64_t n, int64_t g,
                                    float *panel) {
    int64_t ys[TP_TILE], xs[TP_TILE];
    const int m = winograd_tiles(out, g, ys, xs);
    const int64_t kp = reduction(c), point = kp * TP_TILE;
    for (int i = 0; i < m; i++) {
        const int64_t y0 = ys[i] - 1, x0 = xs[i] - 1;
        for (int64_t ch = 0; ch < c->cin; ch += 8) {
            __m256 d[4][4];
            for (int r = 0; r < 4; r++)
                for (int q = 0; q < 4; q++)
                    d[r][q] = (y0 + r <= in->h && x0 + q <= in->w)
                        ? _mm256_loadu_ps(in->data + pixel_index(in, n, y0 + r, x0 + q) + ch) : _mm256_setzero_ps();
            __m256 t[4][4];  // Bᵀ d
            for (int q = 0; q < 4; q++) {
                t[0][q] = _mm256_sub_ps(d[0][q], d[2][q]);
                t[1][q] = _mm256_add_ps(d[1][q], d[2][q]);
                t[2][q] = _mm256_sub_ps(d[2][q], d[1][q]);
                t[3][q] = _mm256_sub_ps(d[1][q], d[3][q]);
            }
            float *dst = panel + ((ch / 16) * TP_TILE + i) * 16 + ch % 16;
            for (int r = 0; r < 4; r++) {  // (Bᵀ d) B
                _mm256_storeu_ps(dst + (r * 4 + 0) * point, _mm256_sub_ps(t[r][0], t[r][2]));
                _mm256_storeu_ps(dst + (r * 4 + 1) * point, _mm256_add_ps(t[r][1], t[r][2]));
                _mm256_storeu_ps(dst + (r * 4 + 2) * point, _mm256_sub_ps(t[r][2], t[r][1]));
                _mm256_storeu_ps(dst + (r * 4 + 3) * point, _mm256_sub_ps(t[r][1], t[r][3]));
            }
        }
    }
}

/// tp_winograd_run with AVX2: the GEMMs by the AVX2 panel kernels, the output transform 8
/// channels at a time.
TP_AVX2 void tp_winograd_run_avx2(const tp_conv *c, const tp_map *out, const tp_map *residual, int relu, int64_t n,
                                  int64_t g, const float *panel, int64_t b0, int64_t b1, const char *pf,
                                  int64_t pf_step) {
    static const float zeros[32] __attribute__((aligned(64))) = {0};
    int64_t ys[TP_TILE], xs[TP_TILE], off[TP_TILE];
    const int m = winograd_tiles(out, g, ys, xs);
    const int64_t nb = block_width(c), kp = reduction(c), chunks = kp / 16;
    float mbuf[16 * TP_TILE * 32] __attribute__((aligned(64)));  // M: [point][tile][channel of the block]
    for (int i = 0; i < TP_TILE; i++) off[i] = i * nb;
    const tile_fn fn = tp_tile_kernels_avx2[c->nv - 1][m - 1];
    const int64_t res_shift = residual ? residual->data - out->data : 0;
    const __m256 zero = _mm256_setzero_ps();
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    for (int64_t b = b0; b < b1; b++) {
        const float *w = c->weight + b * block_floats(c);
        for (int p = 0; p < 16; p++)
            fn(panel + p * kp * TP_TILE, kp, w + p * kp * nb, zeros, mbuf + p * TP_TILE * nb, off, 0, 0, 0, (int)nb,
               pf + p * chunks * pf_step, pf_step);
        const int valid = (int)(c->cout - b * nb < nb ? c->cout - b * nb : nb);
        for (int64_t j = 0; j < 2 * c->nv; j++) {
            const int lanes = valid - 8 * (int)j;
            if (lanes <= 0) break;
            const __m256i mask = _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes), lane);
            const __m256 bias = _mm256_loadu_ps(c->bias + b * nb + 8 * j);
            for (int i = 0; i < m; i++) {
                __m256 v[4][4];
                for (int p = 0; p < 16; p++) v[p / 4][p % 4] = _mm256_load_ps(mbuf + (p * TP_TILE + i) * nb + 8 * j);
                __m256 s0[4], s1[4];  // Aᵀ M
                for (int q = 0; q < 4; q++) {
                    s0[q] = _mm256_add_ps(_mm256_add_ps(v[0][q], v[1][q]), v[2][q]);
                    s1[q] = _mm256_sub_ps(_mm256_sub_ps(v[1][q], v[2][q]), v[3][q]);
                }
                __m256 y[2][2];  // (Aᵀ M) A
                y[0][0] = _mm256_add_ps(_mm256_add_ps(s0[0], s0[1]), s0[2]);
                y[0][1] = _mm256_sub_ps(_mm256_sub_ps(s0[1], s0[2]), s0[3]);
                y[1][0] = _mm256_add_ps(_mm256_add_ps(s1[0], s1[1]), s1[2]);
                y[1][1] = _mm256_sub_ps(_mm256_sub_ps(s1[1], s1[2]), s1[3]);
                for (int dy = 0; dy < 2; dy++)
                    for (int dx = 0; dx < 2; dx++) {
                        if (ys[i] + dy >= out->h || xs[i] + dx >= out->w) continue;
                        float *o = out->data + pixel_index(out, n, ys[i] + dy, xs[i] + dx) + b * nb + 8 * j;
                        __m256 r = _mm256_add_ps(y[dy][dx], bias);
                        if (residual) r = _mm256_add_ps(r, _mm256_maskload_ps(o + res_shift, mask));
                        if (relu) r = _mm256_max_ps(r, zero);
                        _mm256_maskstore_ps(o, mask, r);
                    }
            }
        }
    }
}
#endif
