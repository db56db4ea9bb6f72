// The AVX2 + FMA micro-kernels, for CPUs without AVX-512 (or forced with TORCHPORT_ISA=avx2). The
// packed weights are the AVX-512 path's (blocks of 16 * nv channels, 16 floats = two ymm), so
// planning and packing are shared; only the register tile differs: with 16 ymm registers, a
// sub-tile is up to 6 pixels x 16 channels (12 accumulators, 2 weight vectors, 1 broadcast).
// `tile2_MS` (packed panel) and `direct2_MS` (input map in place) are the sub-tiles; the
// `tile_M_NV` / `direct_M_NV` / `direct7_M_NV` wrappers cover the driver's tiles of up to 14
// pixels x 16 * NV channels with them (pixels in runs of up to 6, each 16-channel half in turn) and fill
// tables of the AVX-512 tables' shapes. `make check-kernels` (Benchmarks/kernel_codegen.py) fails
// if a sub-tile spills a ymm register.
#include "internal.h"

#if TP_HAVE_X86
/// Pixels per AVX2 sub-tile.
#define SUB 6

/// The lanes of a ymm below `lanes` (0 to 8), as a maskload/maskstore mask.
static inline __attribute__((always_inline)) TP_AVX2 __m256i lane_mask(int lanes) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/// The accumulators of a sub-tile start from the bias (16 channels).
static inline __attribute__((always_inline)) TP_AVX2 void sub_init(const int MS, __m256 acc[SUB][2], const float *bias) {
    const __m256 b0 = _mm256_loadu_ps(bias), b1 = _mm256_loadu_ps(bias + 8);
#pragma clang loop unroll(full)
    for (int i = 0; i < MS; i++) { acc[i][0] = b0; acc[i][1] = b1; }
}

/// The epilogue of a sub-tile: plus the residual (at `res_shift` floats from the output), ReLU,
/// pixel i stored at `out + off[i]`, `valid` channels of the 16 (1 to 16; the rest left alone).
static inline __attribute__((always_inline)) TP_AVX2 void sub_store(const int MS, __m256 acc[SUB][2], float *out,
                                                                    const int64_t *off, int64_t res_shift, int has_res,
                                                                    int relu, int valid) {
    const __m256 zero = _mm256_setzero_ps();
#pragma clang loop unroll(full)
    for (int h = 0; h < 2; h++) {
        const int lanes = valid - 8 * h;
        if (lanes <= 0) break;
        if (lanes >= 8) {
#pragma clang loop unroll(full)
            for (int i = 0; i < MS; i++) {
                float *o = out + off[i] + 8 * h;
                __m256 v = acc[i][h];
                if (has_res) v = _mm256_add_ps(v, _mm256_loadu_ps(o + res_shift));
                if (relu) v = _mm256_max_ps(v, zero);
                _mm256_storeu_ps(o, v);
            }
        } else {
            const __m256i mask = lane_mask(lanes);
#pragma clang loop unroll(full)
            for (int i = 0; i < MS; i++) {
                float *o = out + off[i] + 8 * h;
                __m256 v = acc[i][h];
                if (has_res) v = _mm256_add_ps(v, _mm256_maskload_ps(o + res_shift, mask));
                if (relu) v = _mm256_max_ps(v, zero);
                _mm256_maskstore_ps(o, mask, v);
            }
        }
    }
}

/// A panel sub-tile: MS pixels (pixel i's 16 rows at a + i * 16, the next 16 rows TP_TILE * 16
/// floats on) times 16 output channels (row r's at w + r * wstride) over `kp` rows, then bias,
/// residual, ReLU and the store (see sub_store). `pf_step` bytes from `pf` per 16 rows go to L2.
static inline __attribute__((always_inline)) TP_AVX2 void
tile2(const int MS, const float *a, int64_t kp, const float *w, int64_t wstride, const float *bias, float *out,
      const int64_t *off, int64_t res_shift, int has_res, int relu, int valid, const char *pf, int64_t pf_step) {
    __m256 acc[SUB][2];
    sub_init(MS, acc, bias);
    for (int64_t r = 0; r < kp; r += 16, a += TP_TILE * 16) {
        for (int64_t q = 0; q < pf_step; q += 64) _mm_prefetch(pf + q, _MM_HINT_T1);
        pf += pf_step;
#pragma clang loop unroll(full)
        for (int c = 0; c < 16; c++) {
            const __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
            w += wstride;
#pragma clang loop unroll(full)
            for (int i = 0; i < MS; i++) {
                const __m256 x = _mm256_broadcast_ss(a + i * 16 + c);
                acc[i][0] = _mm256_fmadd_ps(x, w0, acc[i][0]);
                acc[i][1] = _mm256_fmadd_ps(x, w1, acc[i][1]);
            }
        }
    }
    sub_store(MS, acc, out, off, res_shift, has_res, relu, valid);
}

/// A direct sub-tile: pixel i's input at px[i] (tap t at `tap_off[t]` floats from it, `cin` floats
/// each, in the packed weights' order), times 16 output channels (row r's at w + r * wstride);
/// prefetching `pf_step` bytes from `pf` (L2) and `pf0_step` from `pf0` (L1) per 16 rows.
static inline __attribute__((always_inline)) TP_AVX2 void
direct2(const int MS, const float *const *px, const int64_t *tap_off, int64_t taps, int64_t cin, const float *w,
        int64_t wstride, const float *bias, float *out, const int64_t *off, int64_t res_shift, int has_res, int relu,
        int valid, const char *pf, int64_t pf_step, const char *pf0, int64_t pf0_step) {
    __m256 acc[SUB][2];
    sub_init(MS, acc, bias);
    for (int64_t t = 0; t < taps; t++) {
        const float *p[SUB];
#pragma clang loop unroll(full)
        for (int i = 0; i < MS; i++) p[i] = px[i] + tap_off[t];
        int64_t r = 0;
        for (; r + 16 <= cin; r += 16) {
            for (int64_t q = 0; q < pf_step; q += 64) _mm_prefetch(pf + q, _MM_HINT_T1);
            pf += pf_step;
            for (int64_t q = 0; q < pf0_step; q += 64) _mm_prefetch(pf0 + q, _MM_HINT_T0);
            pf0 += pf0_step;
#pragma clang loop unroll(full)
            for (int c = 0; c < 16; c++) {
                const __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
                w += wstride;
#pragma clang loop unroll(full)
                for (int i = 0; i < MS; i++) {
                    const __m256 x = _mm256_broadcast_ss(p[i] + r + c);
                    acc[i][0] = _mm256_fmadd_ps(x, w0, acc[i][0]);
                    acc[i][1] = _mm256_fmadd_ps(x, w1, acc[i][1]);
                }
            }
        }
        // The rows past the last multiple of 16 (the stem's runs of 21), one at a time.
        for (; r < cin; r++) {
            const __m256 w0 = _mm256_loadu_ps(w), w1 = _mm256_loadu_ps(w + 8);
            w += wstride;
#pragma clang loop unroll(full)
            for (int i = 0; i < MS; i++) {
                const __m256 x = _mm256_broadcast_ss(p[i] + r);
                acc[i][0] = _mm256_fmadd_ps(x, w0, acc[i][0]);
                acc[i][1] = _mm256_fmadd_ps(x, w1, acc[i][1]);
            }
        }
    }
    sub_store(MS, acc, out, off, res_shift, has_res, relu, valid);
}

// The sub-tiles, one function per pixel count (the ones `make check-kernels` checks).
#define SUB_TILE(MS)                                                                                                   \
    static TP_AVX2 __attribute__((noinline)) void tile2_##MS(const float *a, int64_t kp, const float *w,               \
                                                             int64_t wstride, const float *bias, float *out,           \
                                                             const int64_t *off, int64_t res_shift, int has_res,       \
                                                             int relu, int valid, const char *pf, int64_t pf_step) {   \
        tile2(MS, a, kp, w, wstride, bias, out, off, res_shift, has_res, relu, valid, pf, pf_step);                   \
    }                                                                                                                  \
    static TP_AVX2 __attribute__((noinline)) void direct2_##MS(                                                        \
        const float *const *px, const int64_t *tap_off, int64_t taps, int64_t cin, const float *w, int64_t wstride,    \
        const float *bias, float *out, const int64_t *off, int64_t res_shift, int has_res, int relu, int valid,        \
        const char *pf, int64_t pf_step, const char *pf0, int64_t pf0_step) {                                          \
        direct2(MS, px, tap_off, taps, cin, w, wstride, bias, out, off, res_shift, has_res, relu, valid, pf, pf_step,  \
                pf0, pf0_step);                                                                                        \
    }
SUB_TILE(1)
SUB_TILE(2)
SUB_TILE(3)
SUB_TILE(4)
SUB_TILE(5)
SUB_TILE(6)

typedef void (*tile2_fn)(const float *, int64_t, const float *, int64_t, const float *, float *, const int64_t *,
                         int64_t, int, int, int, const char *, int64_t);
typedef void (*direct2_fn)(const float *const *, const int64_t *, int64_t, int64_t, const float *, int64_t,
                           const float *, float *, const int64_t *, int64_t, int, int, int, const char *, int64_t,
                           const char *, int64_t);
static const tile2_fn tile2_of[SUB] = {tile2_1, tile2_2, tile2_3, tile2_4, tile2_5, tile2_6};
static const direct2_fn direct2_of[SUB] = {direct2_1, direct2_2, direct2_3, direct2_4, direct2_5, direct2_6};

/// Splits M pixels into ceil(M / 6) sub-tiles of nearly equal sizes (14: 5, 5, 4; 8: 4, 4): a
/// sub-tile of 2 pixels would load its weights for 4 FMAs. Returns the count.
static int sub_tiles(int M, int sizes[TP_TILE]) {
    const int k = (M + SUB - 1) / SUB;
    for (int q = 0; q < k; q++) sizes[q] = M / k + (q < M % k);
    return k;
}

/// M pixels of a packed panel times 16 * NV channels (tile_fn's contract, see microkernels_avx512.c:
/// `tile`), as sub-tiles: each 16-channel half, pixels in runs of up to 6 (see sub_tiles). The prefetch goes with
/// the first sub-tile.
static void tile_avx2(int M, int NV, const float *a, int64_t kp, const float *w, const float *bias, float *out,
                      const int64_t *off, int64_t res_shift, int has_res, int relu, int valid, const char *pf,
                      int64_t pf_step) {
    int sizes[TP_TILE];
    const int k = sub_tiles(M, sizes);
    for (int j = 0; j < NV; j++) {
        int lanes = valid - 16 * j;
        if (lanes <= 0) break;
        if (lanes > 16) lanes = 16;
        for (int q = 0, i0 = 0; q < k; i0 += sizes[q++]) {
            const int ms = sizes[q], first = j == 0 && q == 0;
            tile2_of[ms - 1](a + i0 * 16, kp, w + 16 * j, 16 * NV, bias + 16 * j, out + 16 * j, off + i0, res_shift,
                             has_res, relu, lanes, pf, first ? pf_step : 0);
        }
    }
}

/// The direct kernel's contract (see microkernels_avx512.c: `tile_direct`; pixel i at a0 + i * lda
/// for i < S, else a1 + (i - S) * lda), as sub-tiles.
static void direct_avx2(int M, int NV, int S, const float *a0, const float *a1, int64_t lda, const int64_t *tap_off,
                        int64_t taps, int64_t cin, const float *w, const float *bias, float *out, const int64_t *off,
                        int64_t res_shift, int has_res, int relu, int valid, const char *pf, int64_t pf_step,
                        const char *pf0, int64_t pf0_step) {
    const float *px[TP_TILE];
    for (int i = 0; i < M; i++) px[i] = i < S ? a0 + i * lda : a1 + (i - S) * lda;
    int sizes[TP_TILE];
    const int k = sub_tiles(M, sizes);
    for (int j = 0; j < NV; j++) {
        int lanes = valid - 16 * j;
        if (lanes <= 0) break;
        if (lanes > 16) lanes = 16;
        for (int q = 0, i0 = 0; q < k; i0 += sizes[q++]) {
            const int ms = sizes[q], first = j == 0 && q == 0;
            direct2_of[ms - 1](px + i0, tap_off, taps, cin, w + 16 * j, 16 * NV, bias + 16 * j, out + 16 * j, off + i0,
                               res_shift, has_res, relu, lanes, pf, first ? pf_step : 0, pf0, first ? pf0_step : 0);
        }
    }
}

#define TILE(M, NV)                                                                                                    \
    static void tile_##M##_##NV(const float *a, int64_t kp, const float *w, const float *bias, float *out,             \
                                const int64_t *off, int64_t res_shift, int has_res, int relu, int valid,                \
                                const char *pf, int64_t pf_step) {                                                     \
        tile_avx2(M, NV, a, kp, w, bias, out, off, res_shift, has_res, relu, valid, pf, pf_step);                      \
    }
#define TILES(NV) TILE(1, NV) TILE(2, NV) TILE(3, NV) TILE(4, NV) TILE(5, NV) TILE(6, NV) TILE(7, NV) TILE(8, NV) \
    TILE(9, NV) TILE(10, NV) TILE(11, NV) TILE(12, NV) TILE(13, NV) TILE(14, NV)
TILES(1)
TILES(2)
#define TABLE(NV) { tile_1_##NV, tile_2_##NV, tile_3_##NV, tile_4_##NV, tile_5_##NV, tile_6_##NV, tile_7_##NV,        \
    tile_8_##NV, tile_9_##NV, tile_10_##NV, tile_11_##NV, tile_12_##NV, tile_13_##NV, tile_14_##NV }
const tile_fn tp_tile_kernels_avx2[2][TP_TILE] = { TABLE(1), TABLE(2) };

#define DIRECT(M, NV, S, NAME)                                                                                         \
    static void NAME(const float *a0, const float *a1, int64_t lda, const int64_t *tap_off, int64_t taps, int64_t cin, \
                     const float *w, const float *bias, float *out, const int64_t *off, int64_t res_shift,             \
                     int has_res, int relu, int valid, const char *pf, int64_t pf_step, const char *pf0,               \
                     int64_t pf0_step) {                                                                               \
        direct_avx2(M, NV, S, a0, a1, lda, tap_off, taps, cin, w, bias, out, off, res_shift, has_res, relu, valid, pf, \
                    pf_step, pf0, pf0_step);                                                                           \
    }
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
const direct_fn tp_direct_rows_avx2[2][TP_TILE] = { DIRECT_TABLE(1), DIRECT_TABLE(2) };
const direct_fn tp_direct_pairs_avx2[2][TP_TILE - 7] = { PAIR_TABLE(1), PAIR_TABLE(2) };
#endif
