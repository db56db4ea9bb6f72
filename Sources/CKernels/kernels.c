// Torchport's convolution kernels (AVX-512) over bordered NHWC maps: 14x32 micro-kernels with
// bias, residual and ReLU fused, one that reads the input map in place (the direct kernel) and one
// over packed input panels (Winograd F(2x2, 3x3), with its transforms, and grouped convolutions).
// See include/ckernels.h for the layouts and docs/performance.md for the design.
#include "ckernels.h"
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/// Output pixels per tile (the micro-kernel's rows).
#define TP_TILE 14

#if defined(__x86_64__)
#include <immintrin.h>
#define TP_HAVE_X86 1
#define TP_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,fma")))
#else
#define TP_HAVE_X86 0
#define TP_AVX512
#endif

int tp_kernels_available(void) {
#if TP_HAVE_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq")
        && __builtin_cpu_supports("avx512bw");
#else
    return 0;
#endif
}

#if TP_HAVE_X86
/// tp_kernels_available(), asked of the CPU once: the convolution entry points check it on every
/// call (a few hundred per forward pass).
static int kernels_ready(void) {
    static _Atomic int cached = -1;
    int v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v < 0) {
        v = tp_kernels_available();
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return v;
}
#endif

/// Where the packed kernels cannot run (tp_kernels_available() is 0), the packed engine never
/// binds; reaching a convolution entry point anyway is a bug in the caller: say so and stop,
/// rather than fault on an illegal instruction or return outputs never written.
static void unavailable(const char *function) {
    fprintf(stderr, "CKernels: %s called, but the packed-engine kernels cannot run on this CPU or build "
                    "(tp_kernels_available() is 0)\n", function);
    abort();
}

// MARK: - Planning and packing

static int32_t block_width(const tp_conv *c) { return 16 * c->nv; }

/// First input channel read by block `b`.
static int64_t block_cin_start(const tp_conv *c, int64_t b) {
    if (c->groups == 1) return 0;
    int64_t cout_g = c->cout / c->groups, cin_g = c->cin / c->groups;
    return (b * block_width(c) / cout_g) * cin_g;
}

/// The reduction length of one GEMM: taps times the block's input channels (Winograd: the input
/// channels), rounded up to 16.
static int64_t reduction(const tp_conv *c) {
    int64_t k = c->winograd ? c->block_cin : (int64_t)c->kernel * c->kernel * c->block_cin;
    return (k + 15) / 16 * 16;
}

/// GEMMs per tile: 16 with Winograd F(2x2, 3x3) (one per point of the 4x4 transformed tile), else 1.
static int64_t gemms(const tp_conv *c) { return c->winograd ? 16 : 1; }

/// Floats of one block's packed weights.
static int64_t block_floats(const tp_conv *c) { return gemms(c) * reduction(c) * 16 * c->nv; }

/// Whether blocks of 16 * nv channels tile the groups (several whole groups per block, or a
/// block inside one group), with no partial last block.
static int groups_fit(const tp_conv *c, int nv) {
    int32_t nb = 16 * nv, cout_g = c->cout / c->groups;
    if (c->cout % nb != 0) return 0;
    return nb % cout_g == 0 || cout_g % nb == 0;
}

int tp_conv_plan(tp_conv *c, int64_t in_bytes, int winograd) {
    if (c->cin <= 0 || c->cout <= 0 || c->kernel <= 0 || c->stride <= 0 || c->groups <= 0) return 0;
    c->winograd = winograd && c->kernel == 3 && c->stride == 1 && c->pad == 1 && c->groups == 1 && c->cin % 16 == 0;
    c->direct = !c->winograd && c->groups == 1 && c->kernel <= 7;
    if (c->cin % c->groups != 0 || c->cout % c->groups != 0) return 0;
    if (c->groups > 1) {
        // Prefer blocks that hold few groups (less multiplying by zeros).
        int32_t cout_g = c->cout / c->groups;
        int nv = 0;
        for (int cand = 1; cand <= 2; cand++) {
            if (!groups_fit(c, cand)) continue;
            if (nv == 0 || (16 * cand <= cout_g && cand > nv)) nv = cand;
        }
        if (nv == 0) return 0;
        c->nv = nv;
        int32_t nb = 16 * nv;
        c->block_cin = nb >= cout_g ? (nb / cout_g) * (c->cin / c->groups) : c->cin / c->groups;
    } else {
        c->nv = c->cout <= 16 ? 1 : 2;
        c->block_cin = c->cin;
    }
    c->blocks = (c->cout + block_width(c) - 1) / block_width(c);
    // Grouped blocks read different channels, so their input is packed per block: blocks inside.
    int64_t weight_bytes = tp_conv_packed_count(c) * 4;
    // Blocks outside when the weights outweigh the input and would not stay in L2 across
    // tiles (measured: 28x28x128 3x3 and 14x14 1x1 convolutions with 1 MiB of weights run faster
    // with blocks inside, 14x14x256 3x3 stride 2 and layer4 outside).
    c->blocks_outer = c->groups == 1 && weight_bytes > in_bytes && weight_bytes > (1 << 20);
    return 1;
}

int64_t tp_conv_packed_count(const tp_conv *c) {
    return (int64_t)c->blocks * block_floats(c);
}

/// Winograd F(2x2, 3x3) weights: U = G g Gᵀ (4x4) per output and input channel, times scale[o],
/// as [block][point of U][input channel (padded to 16)][16 * nv].
static void pack_winograd(const tp_conv *c, const float *weight, const float *scale, float *packed) {
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

void tp_conv_pack(const tp_conv *c, const float *weight, const float *scale, const float *shift, float *packed, float *bias) {
    const int64_t nb = block_width(c), k = c->kernel, kk = k * k, kp = reduction(c);
    if (c->winograd) {
        pack_winograd(c, weight, scale, packed);
        for (int64_t o = 0; o < c->blocks * nb; o++) bias[o] = o < c->cout ? shift[o] : 0;
        return;
    }
    const int64_t cin_g = c->cin / c->groups, cout_g = c->cout / c->groups;
    float *p = packed;
    for (int64_t b = 0; b < c->blocks; b++) {
        const int64_t start = block_cin_start(c, b);
        // Row r of the reduction is tap r / block_cin, input channel start + r % block_cin.
        for (int64_t r = 0; r < kp; r++) {
            const int64_t t = r / c->block_cin, in_ch = start + r % c->block_cin;
            for (int64_t j = 0; j < nb; j++) {
                const int64_t o = b * nb + j;
                float v = 0;
                if (t < kk && o < c->cout && in_ch / cin_g == o / cout_g) {
                    v = weight[(o * cin_g + in_ch % cin_g) * kk + t] * scale[o];
                }
                *p++ = v;
            }
        }
        for (int64_t j = 0; j < nb; j++) {
            const int64_t o = b * nb + j;
            bias[b * nb + j] = o < c->cout ? shift[o] : 0;
        }
    }
}

static inline int64_t pixel_index(const tp_map *m, int64_t n, int64_t y, int64_t x) {
    int64_t hp = m->h + 2 * m->border, wp = m->w + 2 * m->border;
    return ((n * hp + y + m->border) * wp + x + m->border) * m->cs;
}

int64_t tp_conv_tiles(const tp_conv *c, const tp_map *out) {
    if (c->winograd) return ((int64_t)((out->h + 1) / 2) * ((out->w + 1) / 2) + TP_TILE - 1) / TP_TILE;
    if (out->w <= TP_TILE / 2) return (out->h + 1) / 2;
    return (int64_t)out->h * ((out->w + TP_TILE - 1) / TP_TILE);
}

int64_t tp_conv_panel_floats(const tp_conv *c) { return gemms(c) * reduction(c) * TP_TILE; }

#if TP_HAVE_X86
/// The output pixels of tile `t` (of any image): their count (at most TP_TILE), and each one's
/// (y, x). Tiles are 14 pixels of a row; maps 7 wide or less put two whole rows in a tile.
static int tile_pixels(const tp_map *out, int64_t t, int64_t ys[TP_TILE], int64_t xs[TP_TILE]) {
    int m = 0;
    if (out->w <= TP_TILE / 2) {
        for (int64_t y = 2 * t; y < 2 * t + 2 && y < out->h; y++)
            for (int64_t x = 0; x < out->w; x++) { ys[m] = y; xs[m] = x; m++; }
    } else {
        const int64_t per_row = (out->w + TP_TILE - 1) / TP_TILE, y = t / per_row, x0 = (t % per_row) * TP_TILE;
        for (int64_t x = x0; x < x0 + TP_TILE && x < out->w; x++) { ys[m] = y; xs[m] = x; m++; }
    }
    return m;
}

/// Copies `len` floats from `src` into panel rows [r, r + len) of pixel `i` (see pack_tile), in
/// pieces that end at multiples of 16 rows, with masked moves.
static inline TP_AVX512 void copy_run(float *panel, int i, int64_t r, const float *src, int64_t len) {
    while (len > 0) {
        const int64_t off = r & 15, n = 16 - off < len ? 16 - off : len;
        const __mmask16 mask = (__mmask16)((1u << n) - 1);
        _mm512_mask_storeu_ps(panel + ((r >> 4) * TP_TILE + i) * 16 + off, mask, _mm512_maskz_loadu_ps(mask, src));
        src += n; r += n; len -= n;
    }
}

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
static TP_AVX512 void winograd_input(const tp_conv *c, const tp_map *in, const tp_map *out, int64_t n, int64_t g,
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

/// Packs the input of tile `t` of image `n` for the channels from `cin0`: the panel holds, per
/// 16 rows of the reduction (tap-major, then channel), the tile's pixels one after the other,
/// 16 floats each: element (r, i) at ((r / 16) * TP_TILE + i) * 16 + r % 16. Rows past the
/// reduction are zero.
static TP_AVX512 void pack_tile(const tp_conv *c, const tp_map *in, const tp_map *out, int64_t n, int64_t t, int64_t cin0,
                                float *panel) {
    if (c->winograd) {
        winograd_input(c, in, out, n, t, panel);
        return;
    }
    int64_t ys[TP_TILE], xs[TP_TILE];
    const int m = tile_pixels(out, t, ys, xs);
    const int64_t k = c->kernel, s = c->stride, cb = c->block_cin, kp = reduction(c);
    const int64_t wp = in->w + 2 * in->border;
    // One run per tap, or per row of taps when a row of the input holds them back to back.
    const int whole_rows = in->cs == cb;
    for (int i = 0; i < m; i++) {
        const float *p = in->data + pixel_index(in, n, ys[i] * s - c->pad, xs[i] * s - c->pad) + cin0;
        for (int64_t ky = 0; ky < k; ky++) {
            if (whole_rows) {
                copy_run(panel, i, ky * k * cb, p + ky * wp * in->cs, k * cb);
            } else {
                for (int64_t kx = 0; kx < k; kx++) copy_run(panel, i, (ky * k + kx) * cb, p + (ky * wp + kx) * in->cs, cb);
            }
        }
        for (int64_t r = k * k * cb; r < kp; r++) panel[((r >> 4) * TP_TILE + i) * 16 + (r & 15)] = 0;
    }
}
#endif

// MARK: - The micro-kernel

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

typedef void (*tile_fn)(const float *, int64_t, const float *, const float *, float *, const int64_t *, int64_t, int,
                        int, int, const char *, int64_t);
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
static const tile_fn tiles[2][TP_TILE] = { TABLE(1), TABLE(2) };

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

typedef void (*direct_fn)(const float *, const float *, int64_t, const int64_t *, int64_t, int64_t, const float *,
                          const float *, float *, const int64_t *, int64_t, int, int, int, const char *, int64_t,
                          const char *, int64_t);
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
static const direct_fn direct_rows[2][TP_TILE] = { DIRECT_TABLE(1), DIRECT_TABLE(2) };
static const direct_fn direct_pairs[2][TP_TILE - 7] = { PAIR_TABLE(1), PAIR_TABLE(2) };

/// How a tile runs without a panel: the kernel, its two row starts and the pixel stride, the
/// reduction's runs (`taps` of `run` floats, tap t at `tap_off[t]` floats from a pixel), and where
/// its outputs go (pixel i at `base + off[i]` in the output map).
typedef struct {
    direct_fn fn;
    const float *a0, *a1;
    int64_t lda, taps, run, base;
    int64_t off[TP_TILE], tap_off[49];
} direct_tile;

/// How the direct kernel walks the reduction: `taps` runs of `run` floats. Per tap (ky, kx) and
/// its input channels; or, when the input's pixels are dense (the stem: 3 channels, no padding
/// between pixels), per row of taps, whose k * cin floats lie back to back in the map.
static int direct_runs(const tp_conv *c, const tp_map *in, int64_t *taps, int64_t *run) {
    if (!c->direct) return 0;
    if (c->cin % 16 == 0) { *taps = (int64_t)c->kernel * c->kernel; *run = c->cin; return 1; }
    if (in->cs == c->cin) { *taps = c->kernel; *run = (int64_t)c->kernel * c->cin; return 1; }
    return 0;
}

/// Fills `d` for tile `t` of image `n`; 0 when the direct kernel cannot run it (a convolution it
/// does not run, or two rows of a map narrower than 7).
static int direct_for(const tp_conv *c, const tp_map *in, const tp_map *out, int64_t n, int64_t t, direct_tile *d) {
    if (!direct_runs(c, in, &d->taps, &d->run)) return 0;
    int64_t ys[TP_TILE], xs[TP_TILE];
    const int m = tile_pixels(out, t, ys, xs);
    int split = m;  // pixels of the first row
    while (split > 0 && ys[split - 1] != ys[0]) split--;
    if (split == m) d->fn = direct_rows[c->nv - 1][m - 1];
    else if (split == 7) d->fn = direct_pairs[c->nv - 1][m - 8];
    else return 0;
    const int64_t s = c->stride, k = c->kernel, wp = in->w + 2 * in->border;
    d->lda = s * in->cs;
    d->a0 = in->data + pixel_index(in, n, ys[0] * s - c->pad, xs[0] * s - c->pad);
    d->a1 = in->data + pixel_index(in, n, ys[m - 1] * s - c->pad, xs[split % m] * s - c->pad);
    for (int64_t tap = 0; tap < d->taps; tap++)
        d->tap_off[tap] = d->taps == k * k ? ((tap / k) * wp + tap % k) * in->cs : tap * wp * in->cs;
    d->base = pixel_index(out, n, ys[0], xs[0]);
    for (int i = 0; i < m; i++) d->off[i] = pixel_index(out, n, ys[i], xs[i]) - d->base;
    return 1;
}

/// Runs blocks [b0, b1) of a tile with the direct kernel (see `direct_for`).
static void run_direct(const tp_conv *c, const tp_map *out, const tp_map *residual, int relu, const direct_tile *d,
                       int64_t b0, int64_t b1, const char *pf, int64_t pf_bytes, const char *pf0, int64_t pf0_bytes) {
    const int64_t taps = d->taps, run = d->run, nb = block_width(c);
    const int64_t res_shift = residual ? residual->data - out->data : 0;
    // pf_bytes from pf (into L2) and pf0_bytes from pf0 (into L1) are spread over every reduction
    // chunk of the calls: a few lines per chunk.
    const int64_t chunks = taps * (run / 16) > 0 ? taps * (run / 16) : 1, calls = b1 - b0;
    if (pf == NULL) pf = (const char *)c->weight;
    if (pf0 == NULL) pf0 = (const char *)c->weight;
    const int64_t step = (pf_bytes / (calls * chunks) + 63) / 64 * 64, step0 = (pf0_bytes / (calls * chunks) + 63) / 64 * 64;
    for (int64_t b = b0; b < b1; b++) {
        const int valid = (int)(c->cout - b * nb < nb ? c->cout - b * nb : nb);
        d->fn(d->a0, d->a1, d->lda, d->tap_off, taps, run, c->weight + b * block_floats(c), c->bias + b * nb,
              out->data + d->base + b * nb, d->off, res_shift, residual != NULL, relu, valid, pf + (b - b0) * step * chunks,
              step, pf0 + (b - b0) * step0 * chunks, step0);
    }
}

/// Winograd: for blocks [b0, b1) of tile group `g`, the 16 GEMMs M = V U (one per point), then
/// the output transform Y = Aᵀ M A of each 2x2 tile, with bias, residual and ReLU.
static TP_AVX512 void winograd_run(const tp_conv *c, const tp_map *out, const tp_map *residual, int relu, int64_t n,
                                   int64_t g, const float *panel, int64_t b0, int64_t b1, const char *pf, int64_t pf_step) {
    static const float zeros[32] __attribute__((aligned(64))) = {0};
    int64_t ys[TP_TILE], xs[TP_TILE], off[TP_TILE];
    const int m = winograd_tiles(out, g, ys, xs);
    const int64_t nb = block_width(c), kp = reduction(c), chunks = kp / 16;
    float mbuf[16 * TP_TILE * 32] __attribute__((aligned(64)));  // M: [point][tile][channel of the block]
    for (int i = 0; i < TP_TILE; i++) off[i] = i * nb;
    const tile_fn fn = tiles[c->nv - 1][m - 1];
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

/// Runs blocks [b0, b1) of tile `t` of image `n` from its packed panel; while each block
/// computes, `pf_step` bytes per 16 reduction rows from `pf` on are prefetched (see `tile`).
static void run_tile(const tp_conv *c, const tp_map *out, const tp_map *residual, int relu, int64_t n, int64_t t,
                     const float *panel, int64_t b0, int64_t b1, const char *pf, int64_t pf_step) {
    if (c->winograd) {
        winograd_run(c, out, residual, relu, n, t, panel, b0, b1, pf, pf_step);
        return;
    }
    int64_t ys[TP_TILE], xs[TP_TILE], off[TP_TILE];
    const int m = tile_pixels(out, t, ys, xs);
    const int64_t base = pixel_index(out, n, ys[0], xs[0]);
    for (int i = 0; i < m; i++) off[i] = pixel_index(out, n, ys[i], xs[i]) - base;
    const int64_t nb = block_width(c), kp = reduction(c);
    const int64_t res_shift = residual ? residual->data - out->data : 0;
    const tile_fn fn = tiles[c->nv - 1][m - 1];
    for (int64_t b = b0; b < b1; b++) {
        const int valid = (int)(c->cout - b * nb < nb ? c->cout - b * nb : nb);
        fn(panel, kp, c->weight + b * block_floats(c), c->bias + b * nb, out->data + base + b * nb, off, res_shift,
           residual != NULL, relu, valid, pf, pf_step);
    }
}

/// Asks for the input rows of tile `t` of image `n` to be brought into cache (while the tile
/// before it is computed): activations often come from memory, and the hardware prefetchers
/// do not follow the tile's several rows on their own.
static void prefetch_tile(const tp_conv *c, const tp_map *in, const tp_map *out, int64_t n, int64_t t) {
    int64_t ys[TP_TILE], xs[TP_TILE];
    const int m = tile_pixels(out, t, ys, xs);
    const int64_t k = c->kernel, s = c->stride, wp = in->w + 2 * in->border;
    for (int i = 0; i < m; i++) {
        if (i > 0 && ys[i] == ys[i - 1]) continue;  // one run per output row of the tile
        int last = i;
        while (last + 1 < m && ys[last + 1] == ys[i]) last++;
        const int64_t floats = ((xs[last] - xs[i]) * s + k) * in->cs;
        for (int64_t ky = 0; ky < k; ky++) {
            const char *row = (const char *)(in->data + pixel_index(in, n, ys[i] * s - c->pad, xs[i] * s - c->pad)
                                              + ky * wp * in->cs);
            for (int64_t b = 0; b < floats * 4; b += 64) __builtin_prefetch(row + b, 0, 3);
        }
    }
}

/// Lines to bring into cache while a tile computes, spread over its reduction (see `run_direct`).
typedef struct { const char *in, *out; int64_t in_bytes, out_bytes; } next_lines;

/// The lines tile `t` of image `n` will touch: its input, when that is one run (a 1x1 stride-1
/// convolution on one row; otherwise its rows are prefetched here, at once), and its output
/// lines (the residual, or lines about to be written), when on one row.
static next_lines lines_of(const tp_conv *c, const tp_map *in, const tp_map *out, int64_t n, int64_t t) {
    next_lines l = {NULL, NULL, 0, 0};
    int64_t ys[TP_TILE], xs[TP_TILE];
    const int m = tile_pixels(out, t, ys, xs);
    if (c->kernel == 1 && c->stride == 1 && ys[m - 1] == ys[0]) {
        l.in = (const char *)(in->data + pixel_index(in, n, ys[0], xs[0]));
        l.in_bytes = m * in->cs * 4;
    } else {
        prefetch_tile(c, in, out, n, t);
    }
    if (ys[m - 1] == ys[0]) {
        l.out = (const char *)(out->data + pixel_index(out, n, ys[0], xs[0]));
        l.out_bytes = m * out->cs * 4;
    }
    return l;
}

int tp_conv_needs_panels(const tp_conv *c, const tp_map *in, const tp_map *out) {
    const int64_t tiles = tp_conv_tiles(c, out);
    for (int64_t t = 0; t < tiles; t++) {
        direct_tile d;
        if (!direct_for(c, in, out, 0, t, &d)) return 1;
    }
    return 0;
}

void tp_conv_run(const tp_conv *c, const tp_map *in, const tp_map *out, const tp_map *residual, int relu,
                 int64_t begin, int64_t end, float *panel) {
    if (!kernels_ready()) unavailable(__func__);
    const int64_t tiles_per_image = tp_conv_tiles(c, out);
    for (int64_t item = begin; item < end; item++) {
        const int64_t n = item / tiles_per_image, t = item % tiles_per_image;
        direct_tile d;
        if (direct_for(c, in, out, n, t, &d)) {
            // The next tile's lines come in while this one computes: prefetching them all at once
            // here would overflow the line-fill buffers, so the kernel spreads them out.
            next_lines l = {NULL, NULL, 0, 0};
            if (item + 1 < end) l = lines_of(c, in, out, (item + 1) / tiles_per_image, (item + 1) % tiles_per_image);
            run_direct(c, out, residual, relu, &d, 0, c->blocks, l.in, l.in_bytes, l.out, l.out_bytes);
            continue;
        }
        if (item + 1 < end && !c->winograd) prefetch_tile(c, in, out, (item + 1) / tiles_per_image, (item + 1) % tiles_per_image);
        if (c->groups == 1) {
            pack_tile(c, in, out, n, t, 0, panel);
            run_tile(c, out, residual, relu, n, t, panel, 0, c->blocks, (const char *)c->weight, 0);
        } else {
            for (int64_t b = 0; b < c->blocks; b++) {
                pack_tile(c, in, out, n, t, block_cin_start(c, b), panel);
                run_tile(c, out, residual, relu, n, t, panel, b, b + 1, (const char *)c->weight, 0);
            }
        }
    }
}

void tp_conv_pack_tiles(const tp_conv *c, const tp_map *in, const tp_map *out, int64_t n0, int64_t i0, int64_t i1,
                        float *panels) {
    if (!kernels_ready()) unavailable(__func__);
    const int64_t stride = tp_conv_panel_floats(c), tiles_per_image = tp_conv_tiles(c, out);
    for (int64_t i = i0; i < i1; i++) {
        const int64_t n = n0 + i / tiles_per_image, t = i % tiles_per_image;
        direct_tile d;
        if (!direct_for(c, in, out, n, t, &d)) pack_tile(c, in, out, n, t, 0, panels + i * stride);
    }
}

void tp_conv_run_blocks(const tp_conv *c, const tp_map *in, const tp_map *out, const tp_map *residual, int relu,
                        int64_t n0, int64_t n1, const float *panels, int64_t b0, int64_t b1) {
    if (!kernels_ready()) unavailable(__func__);
    const int64_t stride = tp_conv_panel_floats(c), tiles_per_image = tp_conv_tiles(c, out);
    const int64_t items = (n1 - n0) * tiles_per_image;
    // While block b computes, the next block's weights come into L2: a slice per tile.
    const int64_t block_bytes = block_floats(c) * 4, chunks = gemms(c) * reduction(c) / 16;
    const int64_t slice = (block_bytes / items + 63) / 64 * 64;
    const int64_t pf_step = (slice / chunks + 63) / 64 * 64;
    for (int64_t b = b0; b < b1; b++) {
        const char *next = (const char *)(c->weight + (b + 1) * block_floats(c));
        const int64_t step = b + 1 < b1 ? pf_step : 0;
        for (int64_t i = 0; i < items; i++) {
            const int64_t n = n0 + i / tiles_per_image, t = i % tiles_per_image;
            direct_tile d;
            if (direct_for(c, in, out, n, t, &d))
                run_direct(c, out, residual, relu, &d, b, b + 1, next + i * slice, step ? slice : 0, NULL, 0);
            else
                run_tile(c, out, residual, relu, n, t, panels + i * stride, b, b + 1, next + i * slice, step);
        }
    }
}
#else
// Without x86 (AVX-512) there are no micro-kernels: tp_kernels_available() is 0, so the packed
// engine never binds (Swift refuses `.packed` and picks the reference engine), and these stop.
int tp_conv_needs_panels(const tp_conv *c, const tp_map *in, const tp_map *out) {
    (void)c; (void)in; (void)out;
    unavailable(__func__);
    return 1;
}
void tp_conv_run(const tp_conv *c, const tp_map *in, const tp_map *out, const tp_map *residual, int relu,
                 int64_t begin, int64_t end, float *panel) {
    (void)c; (void)in; (void)out; (void)residual; (void)relu; (void)begin; (void)end; (void)panel;
    unavailable(__func__);
}
void tp_conv_pack_tiles(const tp_conv *c, const tp_map *in, const tp_map *out, int64_t n0, int64_t i0, int64_t i1,
                        float *panels) {
    (void)c; (void)in; (void)out; (void)n0; (void)i0; (void)i1; (void)panels;
    unavailable(__func__);
}
void tp_conv_run_blocks(const tp_conv *c, const tp_map *in, const tp_map *out, const tp_map *residual, int relu,
                        int64_t n0, int64_t n1, const float *panels, int64_t b0, int64_t b1) {
    (void)c; (void)in; (void)out; (void)residual; (void)relu; (void)n0; (void)n1; (void)panels; (void)b0; (void)b1;
    unavailable(__func__);
}
#endif

// MARK: - The machine's peak

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

// MARK: - Other layers (plain C, vectorised by the compiler for AVX-512: the packed engine, their
// only caller, runs where the CPU has it)

TP_AVX512 void tp_maxpool3s2(const tp_map *in, const tp_map *out, int64_t row_begin, int64_t row_end) {
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

TP_AVX512 void tp_from_nchw(const float *src, const tp_map *out, int64_t row_begin, int64_t row_end) {
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

TP_AVX512 void tp_to_nchw(const tp_map *in, float *dst) {
    const int64_t plane = (int64_t)in->h * in->w;
    for (int64_t n = 0; n < in->n; n++)
        for (int64_t y = 0; y < in->h; y++)
            for (int64_t x = 0; x < in->w; x++) {
                const float *s = in->data + pixel_index(in, n, y, x);
                float *d = dst + n * in->c * plane + y * in->w + x;
                for (int64_t ch = 0; ch < in->c; ch++) d[ch * plane] = s[ch];
            }
}

TP_AVX512 void tp_global_average(const tp_map *in, float *dst) {
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
