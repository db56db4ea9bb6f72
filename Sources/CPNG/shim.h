// libpng for the Images module, behind one error-safe C entry point.
//
// libpng reports errors by longjmp to the setjmp of `png_jmpbuf`, which Swift cannot call or be
// jumped over safely; its simplified API avoids the jump but applies gamma correction and scales
// 16-bit data, which PIL (and therefore torchvision) does not. So the decode, setjmp included, lives
// in the `static inline` function below: C compiled by Clang, the jump never crosses a Swift frame.
// It applies only lossless transforms (palette -> RGB, 1/2/4-bit gray -> 8-bit, deinterlacing) and
// hands back the samples as stored (16-bit big-endian), so the caller can follow PIL's rules.
#ifndef TORCHPORT_CPNG_SHIM_H
#define TORCHPORT_CPNG_SHIM_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <png.h>

enum {
    TP_PNG_OK = 0,
    TP_PNG_ERROR = 1,       /* corrupt or not a PNG: `message` says why */
    TP_PNG_TRUNCATED = 2,   /* the data ends before the image does */
    TP_PNG_TOO_LARGE = 3,   /* the declared size exceeds the caller's limit (nothing allocated) */
    TP_PNG_NO_MEMORY = 5
};

typedef struct tp_png_image {
    unsigned char *pixels;  /* height rows of width * channels samples, malloc'd: release with tp_png_free */
    unsigned int width;
    unsigned int height;
    int channels;           /* after the transforms: 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA */
    int bit_depth;          /* after the transforms: 8, or 16 (big-endian samples) */
    int color_type;         /* the file's IHDR colour type (PNG_COLOR_TYPE_*) */
    int source_bit_depth;   /* the file's IHDR bit depth */
    int interlaced;
    int has_trns;
    char message[200];
} tp_png_image;

struct tp_png_reader {
    const unsigned char *data;
    size_t size;
    size_t offset;
    int truncated;
};

static inline void tp_png_read(png_structp png, png_bytep out, size_t length) {
    struct tp_png_reader *r = (struct tp_png_reader *)png_get_io_ptr(png);
    if (length > r->size - r->offset) {
        r->truncated = 1;
        png_error(png, "unexpected end of data");
    }
    memcpy(out, r->data + r->offset, length);
    r->offset += length;
}

static inline void tp_png_error(png_structp png, png_const_charp message) {
    tp_png_image *out = (tp_png_image *)png_get_error_ptr(png);
    snprintf(out->message, sizeof out->message, "%s", message);
    png_longjmp(png, 1);
}

static inline void tp_png_warning(png_structp png, png_const_charp message) { (void)png; (void)message; }

static inline void tp_png_free(tp_png_image *image) {
    free(image->pixels);
    image->pixels = NULL;
}

/* Decodes a whole PNG held in memory. Fills `out` (zeroed first); on failure `out->message` says
   why and no memory is left allocated. Images with more than `max_pixels` pixels or a side longer
   than `max_dimension` are refused after reading the header, before any pixel memory is allocated. */
static inline int tp_png_decode(const unsigned char *data, size_t size,
                                unsigned long long max_pixels, unsigned int max_dimension,
                                tp_png_image *out) {
    memset(out, 0, sizeof *out);
    if (size < 8 || png_sig_cmp((png_const_bytep)data, 0, 8) != 0) {
        snprintf(out->message, sizeof out->message, "not a PNG signature");
        return TP_PNG_ERROR;
    }
    struct tp_png_reader reader = { data, size, 0, 0 };
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, out, tp_png_error, tp_png_warning);
    if (png == NULL) {
        snprintf(out->message, sizeof out->message, "out of memory");
        return TP_PNG_NO_MEMORY;
    }
    png_infop info = png_create_info_struct(png);
    if (info == NULL) {
        png_destroy_read_struct(&png, NULL, NULL);
        snprintf(out->message, sizeof out->message, "out of memory");
        return TP_PNG_NO_MEMORY;
    }
    /* Changed after setjmp, read after the jump: volatile. */
    png_bytep *volatile rows = NULL;
    volatile int image_read = 0;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(rows);
        if (image_read) return TP_PNG_OK;  /* damage after the last row (a lost IEND) is tolerated */
        tp_png_free(out);
        return reader.truncated ? TP_PNG_TRUNCATED : TP_PNG_ERROR;
    }
    png_set_read_fn(png, &reader, tp_png_read);
    /* Our own limit is checked below with a typed result; libpng's 1e6 default must not pre-empt it. */
    png_set_user_limits(png, 0x7fffffffU, 0x7fffffffU);
    png_read_info(png, info);
    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0, interlace = 0;
    png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, &interlace, NULL, NULL);
    out->width = width;
    out->height = height;
    out->color_type = color_type;
    out->source_bit_depth = bit_depth;
    out->interlaced = interlace != PNG_INTERLACE_NONE;
    out->has_trns = png_get_valid(png, info, PNG_INFO_tRNS) != 0;
    if (width > max_dimension || height > max_dimension || (unsigned long long)width * height > max_pixels) {
        snprintf(out->message, sizeof out->message, "%ux%u exceeds the limit", (unsigned)width, (unsigned)height);
        png_destroy_read_struct(&png, &info, NULL);
        return TP_PNG_TOO_LARGE;
    }
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    out->channels = png_get_channels(png, info);
    out->bit_depth = png_get_bit_depth(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    if (rowbytes != (size_t)width * (size_t)out->channels * (size_t)(out->bit_depth / 8)
        || (out->bit_depth != 8 && out->bit_depth != 16)) {
        png_error(png, "unexpected row layout after transforms");
    }
    out->pixels = (unsigned char *)malloc(rowbytes * height);
    rows = (png_bytep *)malloc(sizeof(png_bytep) * height);
    if (out->pixels == NULL || rows == NULL) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < height; y++) rows[y] = out->pixels + (size_t)y * rowbytes;
    png_read_image(png, rows);
    image_read = 1;
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);
    return TP_PNG_OK;
}

#endif
