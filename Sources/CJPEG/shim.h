// libjpeg(-turbo) for the Images module, behind one error-safe C entry point.
//
// libjpeg reports a fatal error by calling `err->error_exit`, which must not return: the standard
// one calls exit(), and the documented alternative is longjmp back to a setjmp in the caller. Swift
// can neither call setjmp nor be jumped over safely, so the whole decode, setjmp included, lives in
// the `static inline` function below. Clang compiles it (it is C, in this header), the jump never
// crosses a Swift frame, and Swift sees a plain function that returns a status code and a message.
#ifndef TORCHPORT_CJPEG_SHIM_H
#define TORCHPORT_CJPEG_SHIM_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <jpeglib.h>
#include <jerror.h>

enum {
    TP_JPEG_OK = 0,
    TP_JPEG_ERROR = 1,        /* corrupt or not a JPEG: `message` says why */
    TP_JPEG_TRUNCATED = 2,    /* the data ends before the image does */
    TP_JPEG_TOO_LARGE = 3,    /* the declared size exceeds the caller's limit (nothing allocated) */
    TP_JPEG_UNSUPPORTED = 4,  /* a colour space other than grayscale, YCbCr/RGB, CMYK/YCCK */
    TP_JPEG_NO_MEMORY = 5
};

typedef struct tp_jpeg_image {
    unsigned char *pixels;      /* width * height * components bytes, malloc'd: release with tp_jpeg_free */
    unsigned int width;
    unsigned int height;
    int components;             /* 1 grayscale, 3 RGB, 4 CMYK (as stored: Adobe files store it inverted) */
    int jpeg_color_space;       /* the file's J_COLOR_SPACE */
    int adobe_marker;           /* an Adobe APP14 marker was present */
    int progressive;
    int warnings;               /* non-fatal "corrupt data" warnings libjpeg recovered from */
    char message[JMSG_LENGTH_MAX];
} tp_jpeg_image;

struct tp_jpeg_error_mgr {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char *message;
    int truncated;
};

struct tp_jpeg_progress_mgr {
    struct jpeg_progress_mgr pub;
    int max_scans;
};

static inline void tp_jpeg_error_exit(j_common_ptr cinfo) {
    struct tp_jpeg_error_mgr *err = (struct tp_jpeg_error_mgr *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, err->message);
    longjmp(err->jump, 1);
}

/* Warnings are counted, never printed; premature end of data is remembered as truncation. */
static inline void tp_jpeg_emit_message(j_common_ptr cinfo, int msg_level) {
    struct tp_jpeg_error_mgr *err = (struct tp_jpeg_error_mgr *)cinfo->err;
    if (msg_level < 0) {
        cinfo->err->num_warnings++;
        if (cinfo->err->msg_code == JWRN_JPEG_EOF) err->truncated = 1;
    }
}

static inline void tp_jpeg_output_message(j_common_ptr cinfo) { (void)cinfo; }

/* A progressive file can declare an unbounded number of scans, each a full pass over the
   coefficients (CVE-2018-11813-style slow decodes): refuse more than max_scans. */
static inline void tp_jpeg_progress(j_common_ptr cinfo) {
    struct tp_jpeg_progress_mgr *p = (struct tp_jpeg_progress_mgr *)cinfo->progress;
    if (cinfo->is_decompressor) {
        j_decompress_ptr d = (j_decompress_ptr)cinfo;
        if (d->input_scan_number > p->max_scans) {
            struct tp_jpeg_error_mgr *err = (struct tp_jpeg_error_mgr *)cinfo->err;
            snprintf(err->message, JMSG_LENGTH_MAX, "more than %d progressive scans", p->max_scans);
            longjmp(err->jump, 1);
        }
    }
}

static inline void tp_jpeg_free(tp_jpeg_image *image) {
    free(image->pixels);
    image->pixels = NULL;
}

/* Decodes a whole JPEG held in memory. Fills `out` (zeroed first); on failure `out->message` says
   why and no memory is left allocated. Images with more than `max_pixels` pixels or a side longer
   than `max_dimension` are refused after reading the header, before any pixel memory is allocated. */
static inline int tp_jpeg_decode(const unsigned char *data, unsigned long size,
                                 unsigned long long max_pixels, unsigned int max_dimension,
                                 int max_scans, tp_jpeg_image *out) {
    struct jpeg_decompress_struct cinfo;
    struct tp_jpeg_error_mgr jerr;
    struct tp_jpeg_progress_mgr progress;
    memset(out, 0, sizeof *out);
    memset(&cinfo, 0, sizeof cinfo);
    cinfo.err = jpeg_std_error(&jerr.pub);
    jerr.pub.error_exit = tp_jpeg_error_exit;
    jerr.pub.emit_message = tp_jpeg_emit_message;
    jerr.pub.output_message = tp_jpeg_output_message;
    jerr.message = out->message;
    jerr.truncated = 0;
    if (setjmp(jerr.jump)) {
        /* Only memory (cinfo, jerr, *out) is read here: nothing held in registers is relied on. */
        out->warnings = jerr.pub.num_warnings;
        jpeg_destroy_decompress(&cinfo);
        tp_jpeg_free(out);
        if (jerr.truncated) {
            snprintf(out->message, JMSG_LENGTH_MAX, "premature end of JPEG data");
            return TP_JPEG_TRUNCATED;
        }
        return TP_JPEG_ERROR;
    }
    jpeg_create_decompress(&cinfo);
    progress.pub.progress_monitor = tp_jpeg_progress;
    progress.max_scans = max_scans;
    cinfo.progress = &progress.pub;
    jpeg_mem_src(&cinfo, data, size);
    jpeg_read_header(&cinfo, TRUE);
    if (jerr.truncated) {
        jpeg_destroy_decompress(&cinfo);
        snprintf(out->message, JMSG_LENGTH_MAX, "premature end of JPEG data (in the header)");
        return TP_JPEG_TRUNCATED;
    }
    out->width = cinfo.image_width;
    out->height = cinfo.image_height;
    out->jpeg_color_space = (int)cinfo.jpeg_color_space;
    out->adobe_marker = cinfo.saw_Adobe_marker ? 1 : 0;
    out->progressive = cinfo.progressive_mode ? 1 : 0;
    if (cinfo.image_width == 0 || cinfo.image_height == 0) {
        jpeg_destroy_decompress(&cinfo);
        snprintf(out->message, JMSG_LENGTH_MAX, "zero image size");
        return TP_JPEG_ERROR;
    }
    if (cinfo.image_width > max_dimension || cinfo.image_height > max_dimension
        || (unsigned long long)cinfo.image_width * cinfo.image_height > max_pixels) {
        jpeg_destroy_decompress(&cinfo);
        snprintf(out->message, JMSG_LENGTH_MAX, "%ux%u exceeds the limit", cinfo.image_width, cinfo.image_height);
        return TP_JPEG_TOO_LARGE;
    }
    switch (cinfo.jpeg_color_space) {
    case JCS_GRAYSCALE:
        cinfo.out_color_space = JCS_GRAYSCALE;
        break;
    case JCS_YCbCr:
    case JCS_RGB:
        cinfo.out_color_space = JCS_RGB;
        break;
    case JCS_CMYK:
    case JCS_YCCK:
        cinfo.out_color_space = JCS_CMYK;
        break;
    default:
        jpeg_destroy_decompress(&cinfo);
        snprintf(out->message, JMSG_LENGTH_MAX, "unsupported JPEG colour space %d with %d components",
                 (int)cinfo.jpeg_color_space, cinfo.num_components);
        return TP_JPEG_UNSUPPORTED;
    }
    jpeg_start_decompress(&cinfo);
    out->components = cinfo.output_components;
    size_t stride = (size_t)cinfo.output_width * (size_t)cinfo.output_components;
    out->pixels = (unsigned char *)malloc(stride * cinfo.output_height);
    if (out->pixels == NULL) {
        jpeg_destroy_decompress(&cinfo);
        snprintf(out->message, JMSG_LENGTH_MAX, "out of memory");
        return TP_JPEG_NO_MEMORY;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = out->pixels + (size_t)cinfo.output_scanline * stride;
        if (jpeg_read_scanlines(&cinfo, &row, 1) != 1) {
            jpeg_destroy_decompress(&cinfo);
            tp_jpeg_free(out);
            snprintf(out->message, JMSG_LENGTH_MAX, "the decoder stopped early");
            return TP_JPEG_ERROR;
        }
    }
    jpeg_finish_decompress(&cinfo);
    out->warnings = jerr.pub.num_warnings;
    jpeg_destroy_decompress(&cinfo);
    if (jerr.truncated) {
        tp_jpeg_free(out);
        snprintf(out->message, JMSG_LENGTH_MAX, "premature end of JPEG data");
        return TP_JPEG_TRUNCATED;
    }
    return TP_JPEG_OK;
}

#endif
