// The AVX-512 micro-kernels: a tile of up to 14 output pixels times 16 or 32 output channels,
// accumulated in zmm registers over the reduction, with bias, residual and ReLU fused in the
// store. Two families: `tile_M_NV` reads a packed input panel (grouped and Winograd convolutions),
// `direct_M_NV` / `direct7_M_NV` read the input map in place. Every loop is unrolled by a pragma,
// so that the accumulators stay in registers at SwiftPM's -O2: `make check-kernels`
// (Benchmarks/kernel_codegen.py) compiles this file and fails if any of them spills a zmm register.
// The tables at the end of each family are the only way in (conv.c and winograd.c pick a kernel
// from them).
#include "internal.h"

#if TP_HAVE_X86
/// The accumulators of a tile start from the bias.
static inline __attribute__((always_inline)) TP_AVX512 void tile_init(const int M, const int NV, __m512 acc[TP_TILE][2],
                                                                      const float *bias) {
#pragma clang loop unroll(full)
    for (int j = 0; j < NV; j++) {
        __m512 b = _mm512_loadu_ps(bias + 16 * j);
#pragma clang loop unroll(full)
        for (int i = 0; i < M; i++) acc[i][j] = b;
    }
}

/// The epilogue of a tile: plus the residual (at `res_shift` floats from the output; it may be
/// the output itself), ReLU, and pixel i stored at `out + off[i]`, `valid` channels (the rest
/// masked off).
static inline __attribute__((always_inline)) TP_AVX512 void
tile_store(const int M, const int NV, __m512 acc[TP_TILE][2], float *out, const int64_t *off, int64_t res_shift,
           int has_res, int relu, int valid) {
    const __m512 zero = _mm512_setzero_ps();
#pragma clang loop unroll(full)
    for (int j = 0; j < NV; j++) {
        int lanes = valid - 16 * j;
        if (lanes <= 0) break;
        __mmask16 mask = lanes >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << lanes) - 1);
#pragma clang loop unroll(full)
        for (int i = 0; i < M; i++) {
            float *o = out + off[i] + 16 * j;
            __m512 v = acc[i][j];
            if (has_res) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, o + res_shift));
            if (relu) v = _mm512_max_ps(v, zero);
            _mm512_mask_storeu_ps(o, mask, v);
        }
    }
}

/// One tile: M pixels (of a packed panel) times 16 * NV output channels over `kp` reduction rows,
/// then bias, residual (at `res_shift` floats from the output; it may be the output itself) and
/// ReLU; pixel i is stored at `out + off[i]`, `valid` channels (the rest masked off).
static inline __attribute__((always_inline)) TP_AVX512 void
tile(const int M, const int NV, const float *a, int64_t kp, const float *w, const float *bias, float *out,
     const int64_t *off, int64_t res_shift, int has_res, int relu, int valid, const char *pf, int64_t pf_step) {
    __m512 acc[TP_TILE][2];  // fixed sizes (not variable-length arrays): all of it lives in registers
    tile_init(M, NV, acc, bias);
    for (int64_t r = 0; r < kp; r += 16, a += TP_TILE * 16) {
        // Weights the next call will need, fetched into L2 a little at a time (pf_step bytes per
        // 16 rows) while this tile computes.
        for (int64_t q = 0; q < pf_step; q += 64) _mm_prefetch(pf + q, _MM_HINT_T1);
        pf += pf_step;
#pragma clang loop unroll(full)
        for (int c = 0; c < 16; c++) {
            __m512 wv[2];
#pragma clang loop unroll(full)
            for (int j = 0; j < NV; j++) wv[j] = _mm512_load_ps(w + 16 * j);
            w += 16 * NV;
#pragma clang loop unroll(full)
            for (int i = 0; i < M; i++) {
                __m512 x = _mm512_set1_ps(a[i * 16 + c]);
#pragma clang loop unroll(full)
                for (int j = 0; j < NV; j++) acc[i][j] = _mm512_fmadd_ps(x, wv[j], acc[i][j]);
            }
        }
    }
    tile_store(M, NV, acc, out, off, res_shift, has_res, relu, valid);
}

#define TILE(M, NV)                                                                                                    \
    static TP_AVX512 void tile_##M##_##NV(const float *a, int64_t kp, const float *w, const float *bias, float *out,   \
                                          const int64_t *off, int64_t res_shift, int has_res, int relu, int valid,      \
                                          const char *pf, int64_t pf_step) {                                           \
        tile(M, NV, a, kp, w, bias, out, off, res_shift, has_res, relu, valid, pf, pf_step);                           \
    }
#define TILES(NV) TILE(1, NV) TILE(2, NV) TILE(3, NV) TILE(4, NV) TILE(5, NV) TILE(6, NV) TILE(7, NV) TILE(8, NV) \
    TILE(9, NV) TILE(10, NV) TILE(11, NV) TILE(12, NV) TILE(13, NV) TILE(14, NV)
TILES(1)
TILES(2)
#define TABLE(NV) { tile_1_##NV, tile_2_##NV, tile_3_##NV, tile_4_##NV, tile_5_##NV, tile_6_##NV, tile_7_##NV,        \
    tile_8_##NV, tile_9_##NV, tile_10_##NV, tile_11_##NV, tile_12_##NV, tile_13_##NV, tile_14_##NV }
const tile_fn tp_tile_kernels[2][TP_TILE] = { TABLE(1), TABLE(2) };

/// Pixel j (0 to 13) of a row as base + k * (pixel stride) with k in {0, 1, 2, 4, 8}, an x86
/// address scale, from one of four bases (pixels 0, 3, 4 and 9): with the stride in one
/// register, 14 pixels need five registers instead of one offset per pixel (which the compiler
/// spills to the stack, reloading them in the inner loop).
#define PIXEL_BASE(j) ((j) == 3 || (j) == 5 || (j) == 7 || (j) == 11 ? 1 : (j) == 6 || (j) == 12 ? 2 : (j) >= 9 && (j) != 11 && (j) != 12 ? 3 : 0)
static const int pixel_base_at[4] = {0, 3, 4, 9};

static inline __attribute__((always_inline)) const float *pixel_at(const char *const base[4], int64_t stride_bytes, int j,
                                                                    int c) {
    const int b = PIXEL_BASE(j);
    return (const float *)(base[b] + (j - pixel_base_at[b]) * stride_bytes) + c;
}

/// The direct kernel (convolutions without groups; see `direct_runs`): like `tile`, but it reads
/// the input map itself instead of a packed panel. Pixel i's input starts at a0 + i * lda (i < S)
/// or a1 + (i - S) * lda (a tile of two rows of S pixels); the reduction runs tap by tap (tap t at
/// `tap_off[t]` floats from the pixel), `cin` floats each, in the packed weights' order.
static inline __attribute__((always_inline)) TP_AVX512 void
tile_direct(const int M, const int NV, const int S, const float *a0, const float *a1, int64_t lda, const int64_t *tap_off,
            int64_t taps, int64_t cin, const float *w, const float *bias, float *out, const int64_t *off,
            int64_t res_shift, int has_res, int relu, int valid, const char *pf, int64_t pf_step, const char *pf0,
            int64_t pf0_step) {
    __m512 acc[TP_TILE][2];
    tile_init(M, NV, acc, bias);
    const int64_t sb = lda * 4;  // bytes from one pixel to the next
    for (int64_t t = 0; t < taps; t++) {
        const float *p0 = a0 + tap_off[t], *p1 = a1 + tap_off[t];
        const char *b0[4], *b1[4];
        for (int q = 0; q < 4; q++) {
            b0[q] = (const char *)p0 + pixel_base_at[q] * sb;
            b1[q] = (const char *)p1 + pixel_base_at[q] * sb;
        }
        for (int64_t r = 0; r + 16 <= cin; r += 16, p0 += 16, p1 += 16) {
            for (int64_t q = 0; q < pf_step; q += 64) _mm_prefetch(pf + q, _MM_HINT_T1);
            pf += pf_step;
            for (int64_t q = 0; q < pf0_step; q += 64) _mm_prefetch(pf0 + q, _MM_HINT_T0);
            pf0 += pf0_step;
#pragma clang loop unroll(full)
            for (int c = 0; c < 16; c++) {
                __m512 wv[2];
#pragma clang loop unroll(full)
                for (int j = 0; j < NV; j++) wv[j] = _mm512_load_ps(w + 16 * j);
                w += 16 * NV;
#pragma clang loop unroll(full)
                for (int i = 0; i < M; i++) {
                    __m512 x = _mm512_set1_ps(i < S ? *pixel_at(b0, sb, i, c) : *pixel_at(b1, sb, i - S, c));
#pragma clang loop unroll(full)
                    for (int j = 0; j < NV; j++) acc[i][j] = _mm512_fmadd_ps(x, wv[j], acc[i][j]);
                }
            }
            for (int q = 0; q < 4; q++) { b0[q] += 64; b1[q] += 64; }
        }
        // The rows past the last multiple of 16 (the stem's runs of 21), one at a time.
        for (int64_t c = 0; c < cin % 16; c++) {
            __m512 wv[2];
#pragma clang loop unroll(full)
            for (int j = 0; j < NV; j++) wv[j] = _mm512_load_ps(w + 16 * j);
            w += 16 * NV;
#pragma clang loop unroll(full)
            for (int i = 0; i < M; i++) {
                __m512 x = _mm512_set1_ps(i < S ? p0[i * lda + c] : p1[(i - S) * lda + c]);
#pragma clang loop unroll(full)
                for (int j = 0; j < NV; j++) acc[i][j] = _mm512_fmadd_ps(x, wv[j], acc[i][j]);
            }
        }
    }
    tile_store(M, NV, acc, out, off, res_shift, has_res, relu, valid);
}

#define DIRECT(M, NV, S, NAME)                                                                                         \
    static TP_AVX512 void NAME(const float *a0, const float *a1, int64_t lda, const int64_t *tap_off, int64_t taps,    \
                               int64_t cin, const float *w, const float *bias, float *out, const int64_t *off,         \
                               int64_t res_shift, int has_res, int relu, int valid, const char *pf, int64_t pf_step, \
                               const char *pf0, int64_t pf0_step) {                                                    \
        tile_direct(M, NV, S, a0, a1, lda, tap_off, taps, cin, w, bias, out, off, res_shift, has_res, relu, valid, pf, \
                    pf_step, pf0, pf0_step);                                                                           \
    }
// One row of M pixels (S = M), and two rows of 7 (S = 7, M = 8 to 14: 7x7 maps).
#define ROW(M, NV) DIRECT(M, NV, M, direct_##M##_##NV)
#define ROWS(NV) ROW(1, NV) ROW(2, NV) ROW(3, NV) ROW(4, NV) ROW(5, NV) ROW(6, NV) ROW(7, NV) ROW(8, NV) ROW(9, NV) \
    ROW(10, NV) ROW(11, NV) ROW(12, NV) ROW(13, NV) ROW(14, NV)
#define PAIR(M, NV) DIRECT(M, NV, 7, direct7_##M##_##NV)
#define PAIRS(NV) PAIR(8, NV) PAIR(9, NV) PAIR(10, NV) PAIR(11, NV) PAIR(12, NV) PAIR(13, NV) PAIR(14, NV)
ROWS(1)
ROWS(2)
PAIRS(1)
PAIRS(2)
#define DIRECT_TABLE(NV) { direct_1_##NV, direct_2_##NV, direct_3_##NV, direct_4_##NV, direct_5_##NV, direct_6_##NV,  \
    direct_7_##NV, direct_8_##NV, direct_9_##NV, direct_10_##NV, direct_11_##NV, direct_12_##NV, direct_13_##NV,       \
    direct_14_##NV }
#define PAIR_TABLE(NV) { direct7_8_##NV, direct7_9_##NV, direct7_10_##NV, direct7_11_##NV, direct7_12_##NV,             \
    direct7_13_##NV, direct7_14_##NV }
const direct_fn tp_direct_rows[2][TP_TILE] = { DIRECT_TABLE(1), DIRECT_TABLE(2) };
const direct_fn tp_direct_pairs[2][TP_TILE - 7] = { PAIR_TABLE(1), PAIR_TABLE(2) };
#endif
