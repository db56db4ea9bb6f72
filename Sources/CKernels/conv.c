// The convolutions' driver (AVX-512 or AVX2, by tp_conv.isa): which tiles an entry point runs, and how. A tile is read in
// place by a direct micro-kernel where it can be (direct_for), else packed into a panel
// (pack_tile; Winograd's input transform) for a panel micro-kernel; the lines the next tile or
// the next block's weights will need are prefetched while one computes. Off x86 the entry points
// stop with a message (the packed engine never binds there). The micro-kernels themselves are in
// microkernels_avx512.c and microkernels_avx2.c.
#include "internal.h"
#include <stdio.h>
#include <stdlib.h>

/// Where the packed kernels cannot run (tp_isa_available(conv->isa) is 0: an unplanned descriptor,
/// or a CPU without the instruction set), the packed engine never binds; reaching a convolution
/// entry point anyway is a bug in the caller: say so and stop,
/// rather than fault on an illegal instruction or return outputs never written.
static void unavailable(const char *function) {
    fprintf(stderr, "CKernels: %s called, but the packed-engine kernels cannot run on this CPU or build "
                    "(tp_isa_available(conv->isa) is 0)\n", function);
    abort();
}

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

/// copy_run without AVX-512 (the AVX2 path): plain C, vectorised by the compiler.
static inline TP_AVX2 void copy_run_avx2(float *panel, int i, int64_t r, const float *src, int64_t len) {
    while (len > 0) {
        const int64_t off = r & 15, n = 16 - off < len ? 16 - off : len;
        float *dst = panel + ((r >> 4) * TP_TILE + i) * 16 + off;
        for (int64_t q = 0; q < n; q++) dst[q] = src[q];
        src += n; r += n; len -= n;
    }
}

/// Packs the input of tile `t` of image `n` for the channels from `cin0`: the panel holds, per
/// 16 rows of the reduction (tap-major, then channel), the tile's pixels one after the other,
/// 16 floats each: element (r, i) at ((r / 16) * TP_TILE + i) * 16 + r % 16. Rows past the
/// reduction are zero. (The body of pack_tile_avx512 and pack_tile_avx2, `copy` their copy_run.)
static inline __attribute__((always_inline)) void
pack_tile_body(const tp_conv *c, const tp_map *in, const tp_map *out, int64_t n, int64_t t, int64_t cin0, float *panel,
               void (*copy)(float *, int, int64_t, const float *, int64_t)) {
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
                copy(panel, i, ky * k * cb, p + ky * wp * in->cs, k * cb);
            } else {
                for (int64_t kx = 0; kx < k; kx++) copy(panel, i, (ky * k + kx) * cb, p + (ky * wp + kx) * in->cs, cb);
            }
        }
        for (int64_t r = k * k * cb; r < kp; r++) panel[((r >> 4) * TP_TILE + i) * 16 + (r & 15)] = 0;
    }
}

static TP_AVX512 void pack_tile_avx512(const tp_conv *c, const tp_map *in, const tp_map *out, int64_t n, int64_t t,
                                       int64_t cin0, float *panel) {
    pack_tile_body(c, in, out, n, t, cin0, panel, copy_run);
}

static TP_AVX2 void pack_tile_avx2(const tp_conv *c, const tp_map *in, const tp_map *out, int64_t n, int64_t t,
                                   int64_t cin0, float *panel) {
    pack_tile_body(c, in, out, n, t, cin0, panel, copy_run_avx2);
}

/// Packs the input of tile `t` of image `n` (see pack_tile_body), or Winograd-transforms it, with
/// the convolution's instruction set.
static void pack_tile(const tp_conv *c, const tp_map *in, const tp_map *out, int64_t n, int64_t t, int64_t cin0,
                      float *panel) {
    const int avx512 = c->isa == TP_ISA_AVX512;
    if (c->winograd) {
        if (avx512) tp_winograd_input(c, in, out, n, t, panel);
        else tp_winograd_input_avx2(c, in, out, n, t, panel);
    } else {
        if (avx512) pack_tile_avx512(c, in, out, n, t, cin0, panel);
        else pack_tile_avx2(c, in, out, n, t, cin0, panel);
    }
}

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
    const int avx512 = c->isa == TP_ISA_AVX512;
    if (split == m) d->fn = (avx512 ? tp_direct_rows : tp_direct_rows_avx2)[c->nv - 1][m - 1];
    else if (split == 7) d->fn = (avx512 ? tp_direct_pairs : tp_direct_pairs_avx2)[c->nv - 1][m - 8];
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

/// Runs blocks [b0, b1) of tile `t` of image `n` from its packed panel; while each block
/// computes, `pf_step` bytes per 16 reduction rows from `pf` on are prefetched (see `tile`).
static void run_tile(const tp_conv *c, const tp_map *out, const tp_map *residual, int relu, int64_t n, int64_t t,
                     const float *panel, int64_t b0, int64_t b1, const char *pf, int64_t pf_step) {
    if (c->winograd) {
        if (c->isa == TP_ISA_AVX512) tp_winograd_run(c, out, residual, relu, n, t, panel, b0, b1, pf, pf_step);
        else tp_winograd_run_avx2(c, out, residual, relu, n, t, panel, b0, b1, pf, pf_step);
        return;
    }
    int64_t ys[TP_TILE], xs[TP_TILE], off[TP_TILE];
    const int m = tile_pixels(out, t, ys, xs);
    const int64_t base = pixel_index(out, n, ys[0], xs[0]);
    for (int i = 0; i < m; i++) off[i] = pixel_index(out, n, ys[i], xs[i]) - base;
    const int64_t nb = block_width(c), kp = reduction(c);
    const int64_t res_shift = residual ? residual->data - out->data : 0;
    const tile_fn fn = (c->isa == TP_ISA_AVX512 ? tp_tile_kernels : tp_tile_kernels_avx2)[c->nv - 1][m - 1];
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
    const int64_t tiles = conv_tiles(c, out);
    for (int64_t t = 0; t < tiles; t++) {
        direct_tile d;
        if (!direct_for(c, in, out, 0, t, &d)) return 1;
    }
    return 0;
}

void tp_conv_run(const tp_conv *c, const tp_map *in, const tp_map *out, const tp_map *residual, int relu,
                 int64_t begin, int64_t end, float *panel) {
    if (!kernels_ready(c->isa)) unavailable(__func__);
    const int64_t tiles_per_image = conv_tiles(c, out);
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
    if (!kernels_ready(c->isa)) unavailable(__func__);
    const int64_t stride = panel_floats(c), tiles_per_image = conv_tiles(c, out);
    for (int64_t i = i0; i < i1; i++) {
        const int64_t n = n0 + i / tiles_per_image, t = i % tiles_per_image;
        direct_tile d;
        if (!direct_for(c, in, out, n, t, &d)) pack_tile(c, in, out, n, t, 0, panels + i * stride);
    }
}

void tp_conv_run_blocks(const tp_conv *c, const tp_map *in, const tp_map *out, const tp_map *residual, int relu,
                        int64_t n0, int64_t n1, const float *panels, int64_t b0, int64_t b1) {
    if (!kernels_ready(c->isa)) unavailable(__func__);
    const int64_t stride = panel_floats(c), tiles_per_image = conv_tiles(c, out);
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
