// CKernels' private header (not in include/: nothing outside this folder sees it): the
// instruction-set macros and the small helpers that several files of the kernels share.
//
// The files, by concern:
//   plan.c                  the CPU check, planning (block geometry, loop order), weight packing
//   winograd.c              Winograd F(2x2, 3x3): the weight, input and output transforms
//   microkernels_avx512.c   the AVX-512 micro-kernels (panel `tile_*`, direct `direct*_*`) and their
//                           tables; `make check-kernels` holds their code to no spills
//   microkernels_avx2.c     the AVX2 + FMA micro-kernels (sub-tiles of up to 6 pixels x 16 channels,
//                           `tile2_*`, `direct2_*`, behind wrappers with the AVX-512 tables' shapes),
//                           held to no ymm spills the same way
//   conv.c                  the convolutions' driver: tiles, input panels, the direct kernel's
//                           setup, prefetch scheduling, the tp_conv_run* entry points (stubs off x86)
//   layout.c                the other layers: maxpool, NCHW <-> bordered NHWC, global average
//   pool.c                  the thread pools (tp_pool)
//   profile.c               the roofline's FMA probe (tp_fma_flops)
//   heap.c                  returning freed heap memory to the system
// Each instruction set has its own micro-kernel file and tables (chosen by tp_conv.isa); planning,
// packing and the pool stay shared.
#pragma once
#include "ckernels.h"
#include <stdatomic.h>

/// Output pixels per tile (the micro-kernel's rows).
#define TP_TILE 14

#if defined(__x86_64__)
#include <immintrin.h>
#define TP_HAVE_X86 1
#define TP_AVX512 __attribute__((target("avx512f,avx512vl,avx512dq,avx512bw,fma")))
#define TP_AVX2 __attribute__((target("avx2,fma")))
#else
#define TP_HAVE_X86 0
#define TP_AVX512
#define TP_AVX2
#endif

/// Functions and tables shared between the files of CKernels, and no further (not exported from a
/// shared library; named `tp_` so that they clash with nothing in a static link).
#define TP_INTERNAL __attribute__((visibility("hidden")))

#if TP_HAVE_X86
/// tp_isa_available(isa), asked of the CPU once per instruction set: the convolution entry points
/// check their convolution's on every call (a few hundred per forward pass). (Each file that calls
/// it keeps its own answers.)
static inline int kernels_ready(int32_t isa) {
    static _Atomic int cached[3] = {-1, -1, -1};
    if (isa != TP_ISA_AVX2 && isa != TP_ISA_AVX512) return 0;
    int v = atomic_load_explicit(&cached[isa], memory_order_relaxed);
    if (v < 0) {
        v = tp_isa_available(isa);
        atomic_store_explicit(&cached[isa], v, memory_order_relaxed);
    }
    return v;
}
#endif

// MARK: - Block geometry

static inline int32_t block_width(const tp_conv *c) { return 16 * c->nv; }

/// First input channel read by block `b`.
static inline int64_t block_cin_start(const tp_conv *c, int64_t b) {
    if (c->groups == 1) return 0;
    int64_t cout_g = c->cout / c->groups, cin_g = c->cin / c->groups;
    return (b * block_width(c) / cout_g) * cin_g;
}

/// The reduction length of one GEMM: taps times the block's input channels (Winograd: the input
/// channels), rounded up to 16.
static inline int64_t reduction(const tp_conv *c) {
    int64_t k = c->winograd ? c->block_cin : (int64_t)c->kernel * c->kernel * c->block_cin;
    return (k + 15) / 16 * 16;
}

/// GEMMs per tile: 16 with Winograd F(2x2, 3x3) (one per point of the 4x4 transformed tile), else 1.
static inline int64_t gemms(const tp_conv *c) { return c->winograd ? 16 : 1; }

/// Floats of one block's packed weights.
static inline int64_t block_floats(const tp_conv *c) { return gemms(c) * reduction(c) * 16 * c->nv; }

/// Where element (n, y, x, 0) of a bordered map lies, in floats from `m->data`.
static inline int64_t pixel_index(const tp_map *m, int64_t n, int64_t y, int64_t x) {
    int64_t hp = m->h + 2 * m->border, wp = m->w + 2 * m->border;
    return ((n * hp + y + m->border) * wp + x + m->border) * m->cs;
}

/// tp_conv_tiles, inlined where the driver calls it.
static inline int64_t conv_tiles(const tp_conv *c, const tp_map *out) {
    if (c->winograd) return ((int64_t)((out->h + 1) / 2) * ((out->w + 1) / 2) + TP_TILE - 1) / TP_TILE;
    if (out->w <= TP_TILE / 2) return (out->h + 1) / 2;
    return (int64_t)out->h * ((out->w + TP_TILE - 1) / TP_TILE);
}

/// tp_conv_panel_floats, inlined where the driver calls it.
static inline int64_t panel_floats(const tp_conv *c) { return gemms(c) * reduction(c) * TP_TILE; }

// MARK: - Between the files

/// Winograd F(2x2, 3x3) weights, packed (winograd.c; see tp_conv_pack).
TP_INTERNAL void tp_winograd_pack_weights(const tp_conv *c, const float *weight, const float *scale, float *packed);

#if TP_HAVE_X86
/// A panel micro-kernel (microkernels_avx512.c: `tile`): M pixels of a packed panel times 16 * NV
/// output channels, with bias, residual and ReLU.
typedef void (*tile_fn)(const float *, int64_t, const float *, const float *, float *, const int64_t *, int64_t, int,
                        int, int, const char *, int64_t);
/// A direct micro-kernel (microkernels_avx512.c: `tile_direct`): reads the input map in place.
typedef void (*direct_fn)(const float *, const float *, int64_t, const int64_t *, int64_t, int64_t, const float *,
                          const float *, float *, const int64_t *, int64_t, int, int, int, const char *, int64_t,
                          const char *, int64_t);

/// The panel kernels, [nv - 1][pixels - 1].
TP_INTERNAL extern const tile_fn tp_tile_kernels[2][TP_TILE];
/// The direct kernels for one row of pixels, [nv - 1][pixels - 1].
TP_INTERNAL extern const direct_fn tp_direct_rows[2][TP_TILE];
/// The direct kernels for two rows of 7 pixels, [nv - 1][pixels - 8].
TP_INTERNAL extern const direct_fn tp_direct_pairs[2][TP_TILE - 7];
/// The same three tables for AVX2 + FMA (microkernels_avx2.c).
TP_INTERNAL extern const tile_fn tp_tile_kernels_avx2[2][TP_TILE];
TP_INTERNAL extern const direct_fn tp_direct_rows_avx2[2][TP_TILE];
TP_INTERNAL extern const direct_fn tp_direct_pairs_avx2[2][TP_TILE - 7];

/// Winograd input transform of tile group `g` of image `n` into its 16 panels (winograd.c).
TP_INTERNAL TP_AVX512 void tp_winograd_input(const tp_conv *c, const tp_map *in, const tp_map *out, int64_t n, int64_t g,
                                             float *panel);
/// Winograd GEMMs and output transform of tile group `g` of image `n`, blocks [b0, b1) (winograd.c).
TP_INTERNAL TP_AVX512 void tp_winograd_run(const tp_conv *c, const tp_map *out, const tp_map *residual, int relu,
                                           int64_t n, int64_t g, const float *panel, int64_t b0, int64_t b1,
                                           const char *pf, int64_t pf_step);
/// The same two with AVX2 + FMA (winograd.c).
TP_INTERNAL TP_AVX2 void tp_winograd_input_avx2(const tp_conv *c, const tp_map *in, const tp_map *out, int64_t n,
                                                int64_t g, float *panel);
TP_INTERNAL TP_AVX2 void tp_winograd_run_avx2(const tp_conv *c, const tp_map *out, const tp_map *residual, int relu,
                                              int64_t n, int64_t g, const float *panel, int64_t b0, int64_t b1,
                                              const char *pf, int64_t pf_step);
#endif
