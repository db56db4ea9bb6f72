// Torchport's own convolution kernels (AVX-512, or AVX2 + FMA), for the packed inference engine.
//
// Activations are NHWC, float32, with a zero border of `border` pixels on every side, so a
// convolution never tests for padding: element (n, y, x, c) lies at
//   ((n * (h + 2 * border) + y + border) * (w + 2 * border) + x + border) * cs + c,
// where the pixel stride `cs` >= c is padded so that the pixels of a tile do not all fall in the
// same L1 cache sets (a stride of a multiple of 4 KiB would, with 1024 channels and more).
// Convolution weights are packed once, at bind time, with the BatchNorm folded in: per block of
// `16 * nv` output channels, `[ky][kx][input channel of the block][16 * nv]`.
#pragma once
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// A batch of NHWC feature maps with a zero border.
typedef struct {
    float *data;
    int32_t n, h, w, c;
    int32_t border;
    /// Floats from one pixel to the next (>= c).
    int32_t cs;
} tp_map;

/// A packed convolution (square kernel, same stride and padding in both directions).
typedef struct {
    int32_t cin, cout, kernel, stride, pad, groups;
    /// Output channels per packed block: 16 * nv (nv = 1 or 2).
    int32_t nv;
    /// Input channels each block reads: all of them without groups; with groups, those of the
    /// groups its output channels belong to (a block holds whole groups, or lies within one).
    int32_t block_cin;
    /// Number of packed blocks: ceil(cout / (16 * nv)).
    int32_t blocks;
    /// Loop over blocks outside the pixels (weights larger than the input) or inside.
    int32_t blocks_outer;
    /// Winograd F(2x2, 3x3) (3x3, stride 1, padding 1, no groups, channels a multiple of 16):
    /// a tile is then 14 tiles of 2x2 outputs, and a block's weights are 16 GEMMs' worth.
    int32_t winograd;
    /// Direct (no groups, not Winograd, input channels a multiple of 16): the kernel reads the
    /// input map in place, tap by tap, instead of a packed copy of each tile.
    int32_t direct;
    /// The instruction set that runs it (TP_ISA_AVX512 or TP_ISA_AVX2); 0 before planning means
    /// tp_isa_selected(), which tp_conv_plan writes here. The packed layout is the same for both
    /// (a block of 16 channels is one zmm, or two ymm), so only the micro-kernels differ.
    int32_t isa;
    const float *weight;  // tp_conv_packed_count floats
    const float *bias;    // blocks * 16 * nv floats
} tp_conv;

// MARK: - Instruction sets (plan.c)

/// No packed kernels (the reference engine runs).
#define TP_ISA_NONE 0
/// AVX2 + FMA: 16 ymm registers, micro-kernels of up to 6 pixels x 16 channels.
#define TP_ISA_AVX2 1
/// AVX-512 (F, VL, DQ, BW): 32 zmm registers, micro-kernels of up to 14 pixels x 32 channels.
#define TP_ISA_AVX512 2

/// 1 when this CPU (and its OS, which must save the ymm or zmm registers) runs the kernels of
/// `isa` (TP_ISA_AVX2 needs AVX2 and FMA; TP_ISA_AVX512 needs AVX-512 F, VL, DQ and BW); 0 for
/// any other value and off x86-64.
int tp_isa_available(int32_t isa);

/// The instruction set the packed engine uses in this process, decided once: the best available,
/// unless the environment variable TORCHPORT_ISA forces one (`avx512`, `avx2`, or `reference` for
/// none); forcing one the CPU lacks gives TP_ISA_NONE (the packed engine is then unavailable).
int32_t tp_isa_selected(void);

/// "avx512", "avx2" or "reference" (TP_ISA_NONE and unknown values).
const char *tp_isa_name(int32_t isa);

// MARK: - Convolutions (plan.c: planning and packing; conv.c, winograd.c, microkernels_*.c: running)

/// 1 when the packed kernels run in this process: tp_isa_selected() is not TP_ISA_NONE.
int tp_kernels_available(void);

/// Chooses `nv`, the block geometry, the loop order for a convolution with `in_bytes` of input
/// per image (at the size it is planned for) and, when `winograd` asks and the shape allows,
/// Winograd F(2x2, 3x3); 0 when the kernels cannot run it (grouped
/// convolutions whose group widths do not tile the blocks, or `conv->isa` (0: tp_isa_selected())
/// not available on this CPU).
int tp_conv_plan(tp_conv *conv, int64_t in_bytes, int winograd);

/// Floats of packed weights for a planned convolution.
int64_t tp_conv_packed_count(const tp_conv *conv);

/// Packs torch's weights `[cout, cin / groups, k, k]` times `scale[o]` (the folded BatchNorm) into
/// `packed` (tp_conv_packed_count floats) and `shift` into `bias` (blocks * 16 * nv floats).
void tp_conv_pack(const tp_conv *conv, const float *weight, const float *scale, const float *shift,
                  float *packed, float *bias);

/// Tiles per image of a convolution producing `out`: 14 pixels along a row, or (maps 7 wide or
/// less) whole pairs of rows; at most 14 pixels each.
int64_t tp_conv_tiles(const tp_conv *conv, const tp_map *out);

/// Floats of one tile's packed input panel (the reduction, rounded up to 16, times 14 pixels).
int64_t tp_conv_panel_floats(const tp_conv *conv);

/// Whether some tile of a convolution from `in` to `out` is packed into a panel (the direct kernel
/// does not read it in place: grouped convolutions, channels off a multiple of 16 on a padded
/// pixel stride, pairs of rows of maps narrower than 7); only then do the runs below need panels.
int tp_conv_needs_panels(const tp_conv *conv, const tp_map *in, const tp_map *out);
/// Computes `out = relu?(conv(in) + bias + residual?)` for items [begin, end), an item being one
/// tile of one image (item = n * tiles + t), all blocks: the direct kernel reads each tile's input
/// in place; other tiles are packed into `panel` first (tp_conv_panel_floats floats, 64-byte
/// aligned, the caller's; unused, and may be NULL, when tp_conv_needs_panels is 0) and then
/// multiplied by every block's weights. `residual` (may be NULL) has out's geometry and may be `out` itself
/// (each element is read before it is written).
void tp_conv_run(const tp_conv *conv, const tp_map *in, const tp_map *out, const tp_map *residual,
                 int relu, int64_t begin, int64_t end, float *panel);

/// For convolutions whose weights outweigh their input (`blocks_outer`, groups = 1): packs items
/// [i0, i1) of the images from `n0` on (item i: image n0 + i / tiles, tile i % tiles) that the
/// direct kernel does not read in place into `panels` (item i at i * tp_conv_panel_floats)...
void tp_conv_pack_tiles(const tp_conv *conv, const tp_map *in, const tp_map *out, int64_t n0, int64_t i0,
                        int64_t i1, float *panels);

/// ... then computes blocks [b0, b1) of images [n0, n1) over all their tiles, each block's
/// weights fetched once (prefetched while the block before computes) and used for every tile.
void tp_conv_run_blocks(const tp_conv *conv, const tp_map *in, const tp_map *out, const tp_map *residual, int relu, int64_t n0,
                        int64_t n1, const float *panels, int64_t b0, int64_t b1);

// MARK: - Other layers (layout.c)

/// MaxPool2d(3, stride 2, padding 1) over output rows [row_begin, row_end) of the whole batch
/// (rows counted over n * out->h); NaN propagates as in torch.
void tp_maxpool3s2(const tp_map *in, const tp_map *out, int64_t row_begin, int64_t row_end);

/// NCHW (torch's layout, no border) into a bordered NHWC map (border left as it is), rows
/// [row_begin, row_end) of the whole batch (rows counted over n * out->h).
void tp_from_nchw(const float *src, const tp_map *out, int64_t row_begin, int64_t row_end);

/// A bordered NHWC map into NCHW.
void tp_to_nchw(const tp_map *in, float *dst);

/// AdaptiveAvgPool2d(1) + flatten: `[n, c]`.
void tp_global_average(const tp_map *in, float *dst);

// MARK: - Thread pools (pool.c)

/// A pool of persistent worker threads. Each pool has its own workers, generation counter,
/// condition variable and dispatch lock: runs on one pool from several threads take turns on that
/// pool only, and two pools never wait for each other (two models, each with its own pool, run
/// side by side).
typedef struct tp_pool tp_pool;

/// A task of a pool: `index` in [0, count).
typedef void (*tp_task_fn)(void *ctx, int64_t index);

/// A pool of `threads` threads: the caller of tp_pool_run and up to `threads - 1` workers, started
/// when a run first needs them. `threads` below 1 counts as 1 (every task then runs on the caller),
/// above 256 as 256. NULL when memory or a mutex cannot be had; tp_pool_run and tp_pool_destroy
/// accept NULL (a NULL pool runs every task on the caller).
tp_pool *tp_pool_create(int32_t threads);

/// Stops the pool's workers (spinning or asleep), joins them and frees the pool. Waits for a run in
/// progress; no run may start on the pool afterwards, and a task must not destroy its own pool.
void tp_pool_destroy(tp_pool *pool);

/// The pool's thread count, as clamped by tp_pool_create (1 for NULL).
int32_t tp_pool_threads(const tp_pool *pool);

/// Runs `fn(ctx, i)` for i in [0, count) on the calling thread (i = 0) and the pool's workers
/// (i = 1, 2, ...), and returns when all are done; indices beyond the pool's threads run on the
/// caller after its own. Workers spin briefly between tasks, then sleep on the pool's condition
/// variable. One run of a pool at a time: a run from another thread waits for the pool's dispatch
/// lock (a pool of one thread runs everything on the caller and takes no lock). A task must not
/// run its own pool.
void tp_pool_run(tp_pool *pool, int64_t count, tp_task_fn fn, void *ctx);

// MARK: - The roofline (profile.c)

/// The roofline's ceiling: `iterations` rounds of 12 independent FMA chains of the selected
/// instruction set (tp_isa_selected(): zmm with AVX-512, ymm with AVX2; no memory traffic);
/// returns the floating-point operations done (0 without packed kernels). `sink` keeps the result
/// alive.
double tp_fma_flops(int64_t iterations, double *sink);

// MARK: - The heap (heap.c)

/// Returns freed heap memory to the system (glibc: malloc_trim; Darwin: malloc_zone_pressure_relief;
/// nothing elsewhere; see heap.c): after
/// binding, the float32 copies of the weights that were packed are gone.
void tp_trim_heap(void);

#ifdef __cplusplus
}
#endif
