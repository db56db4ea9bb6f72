// Planning and packing, shared by every instruction set: which instruction set runs (TORCHPORT_ISA), each
// convolution's block geometry and loop order, its weights packed once at bind time (BatchNorm
// folded in), and the tiling of its output. See include/ckernels.h for the layouts and
// docs/performance.md for the design.
#include "internal.h"

#include <stdlib.h>
#include <string.h>

int tp_isa_available(int32_t isa) {
#if TP_HAVE_X86
    // __builtin_cpu_supports reports AVX, AVX2 and AVX-512 only where XGETBV says the OS saves the
    // ymm (and zmm) state.
    __builtin_cpu_init();
    switch (isa) {
    case TP_ISA_AVX2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case TP_ISA_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl")
            && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("fma");
    default: return 0;
    }
#else
    (void)isa;
    return 0;
#endif
}

static int32_t isa_from_environment(void) {
    const char *forced = getenv("TORCHPORT_ISA");
    if (forced != NULL && *forced != 0) {
        if (strcmp(forced, "avx512") == 0) return tp_isa_available(TP_ISA_AVX512) ? TP_ISA_AVX512 : TP_ISA_NONE;
        if (strcmp(forced, "avx2") == 0) return tp_isa_available(TP_ISA_AVX2) ? TP_ISA_AVX2 : TP_ISA_NONE;
        if (strcmp(forced, "reference") == 0) return TP_ISA_NONE;
        // Anything else: as if unset.
    }
    if (tp_isa_available(TP_ISA_AVX512)) return TP_ISA_AVX512;
    if (tp_isa_available(TP_ISA_AVX2)) return TP_ISA_AVX2;
    return TP_ISA_NONE;
}

int32_t tp_isa_selected(void) {
    static _Atomic int32_t cached = -1;
    int32_t v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v < 0) {
        v = isa_from_environment();
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return v;
}

const char *tp_isa_name(int32_t isa) {
    switch (isa) {
    case TP_ISA_AVX512: return "avx512";
    case TP_ISA_AVX2: return "avx2";
    default: return "reference";
    }
}

int tp_kernels_available(void) { return tp_isa_selected() != TP_ISA_NONE; }

/// Whether blocks of 16 * nv channels tile the groups (several whole groups per block, or a
/// block inside one group), with no partial last block.
static int groups_fit(const tp_conv *c, int nv) {
    int32_t nb = 16 * nv, cout_g = c->cout / c->groups;
    if (c->cout % nb != 0) return 0;
    return nb % cout_g == 0 || cout_g % nb == 0;
}

int tp_conv_plan(tp_conv *c, int64_t in_bytes, int winograd) {
    if (c->cin <= 0 || c->cout <= 0 || c->kernel <= 0 || c->stride <= 0 || c->groups <= 0) return 0;
    if (c->isa == 0) c->isa = tp_isa_selected();
    if (!tp_isa_available(c->isa)) return 0;
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

void tp_conv_pack(const tp_conv *c, const float *weight, const float *scale, const float *shift, float *packed, float *bias) {
    const int64_t nb = block_width(c), k = c->kernel, kk = k * k, kp = reduction(c);
    if (c->winograd) {
        tp_winograd_pack_weights(c, weight, scale, packed);
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

int64_t tp_conv_tiles(const tp_conv *c, const tp_map *out) { return conv_tiles(c, out); }

int64_t tp_conv_panel_floats(const tp_conv *c) { return panel_floats(c); }
