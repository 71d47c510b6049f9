#include "CImage.h"
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

static int too_large(int w, int h, uint64_t max_pixels) {
    return (uint64_t)w * (uint64_t)h > max_pixels;
}

static uint8_t *decode_jpeg(const uint8_t *data, size_t size, uint64_t max_pixels, int *w, int *h, char *err, size_t errlen) {
    tjhandle tj = tjInitDecompress();
    if (!tj) { snprintf(err, errlen, "cannot start the JPEG decoder"); return NULL; }
    int subsamp = 0, colorspace = 0;
    if (tjDecompressHeader3(tj, data, (unsigned long)size, w, h, &subsamp, &colorspace) != 0) {
        snprintf(err, errlen, "corrupt JPEG: %s", tjGetErrorStr2(tj));
        tjDestroy(tj);
        return NULL;
    }
    if (*w <= 0 || *h <= 0) {
        snprintf(err, errlen, "corrupt JPEG: its header gives a size of %dx%d", *w, *h);
        tjDestroy(tj);
        return NULL;
    }
    if (too_large(*w, *h, max_pixels)) {
        snprintf(err, errlen, "JPEG of %dx%d pixels is over the limit of %llu pixels", *w, *h, (unsigned long long)max_pixels);
        tjDestroy(tj);
        return NULL;
    }
    int cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
    uint8_t *rgb = malloc((size_t)*w * *h * 3);
    uint8_t *buf = cmyk ? malloc((size_t)*w * *h * 4) : rgb;
    if (!rgb || !buf) {
        free(rgb);
        snprintf(err, errlen, "out of memory for %dx%d pixels", *w, *h);
        tjDestroy(tj);
        return NULL;
    }
    // Accurate integer IDCT and fancy upsampling: the libjpeg defaults Pillow decodes with.
    int rc = tjDecompress2(tj, data, (unsigned long)size, buf, *w, 0, *h, cmyk ? TJPF_CMYK : TJPF_RGB, 0);
    // A warning is recoverable damage (Pillow decodes those too), except the end of the data before the
    // end of the image: Pillow refuses that file as truncated, so do we.
    if (rc != 0 && (tjGetErrorCode(tj) == TJERR_FATAL || strstr(tjGetErrorStr2(tj), "Premature end") != NULL)) {
        snprintf(err, errlen, tjGetErrorCode(tj) == TJERR_FATAL ? "corrupt JPEG: %s" : "truncated JPEG: %s", tjGetErrorStr2(tj));
        if (cmyk) free(buf);
        free(rgb);
        tjDestroy(tj);
        return NULL;
    }
    if (cmyk) {
        // Adobe CMYK JPEGs store inverted values; this is Pillow's CMYK -> RGB conversion of them.
        for (size_t i = 0, n = (size_t)*w * *h; i < n; i++) {
            int k = buf[4 * i + 3];
            for (int c = 0; c < 3; c++) rgb[3 * i + c] = (uint8_t)((buf[4 * i + c] * k + 127) / 255);
        }
        free(buf);
    }
    tjDestroy(tj);
    return rgb;
}

/// libpng reads from memory through this; errors long-jump back with the message kept.
typedef struct {
    const uint8_t *data;
    size_t size, pos;
    char *err;
    size_t errlen;
} png_source;

static void png_read_memory(png_structp png, png_bytep out, size_t n) {
    png_source *s = png_get_io_ptr(png);
    if (n > s->size - s->pos) png_error(png, "the file ends before the image does (truncated)");
    memcpy(out, s->data + s->pos, n);
    s->pos += n;
}

static void png_on_error(png_structp png, png_const_charp message) {
    png_source *s = png_get_error_ptr(png);
    snprintf(s->err, s->errlen, "corrupt PNG: %s", message);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp message) { (void)png; (void)message; }

/// One decoded row (after libpng's packing of 1/2/4-bit samples to a byte each and its de-interlacing, no
/// other transform) to RGB, by Pillow's rules.
static void png_row_to_rgb(const uint8_t *row, uint8_t *out, int width, int depth, int type,
                           const png_color *palette, int palette_size) {
    int scale = depth == 1 ? 255 : depth == 2 ? 85 : depth == 4 ? 17 : 1;
    for (int x = 0; x < width; x++, out += 3) {
        switch (type) {
        case PNG_COLOR_TYPE_GRAY: {
            int v = depth == 16 ? (row[2 * x] << 8 | row[2 * x + 1]) : row[x] * scale;
            out[0] = out[1] = out[2] = (uint8_t)(v > 255 ? 255 : v);
            break;
        }
        case PNG_COLOR_TYPE_GRAY_ALPHA:
            out[0] = out[1] = out[2] = depth == 16 ? row[4 * x] : row[2 * x];
            break;
        case PNG_COLOR_TYPE_RGB:
        case PNG_COLOR_TYPE_RGB_ALPHA: {
            int channels = type == PNG_COLOR_TYPE_RGB ? 3 : 4, bytes = depth == 16 ? 2 : 1;
            for (int c = 0; c < 3; c++) out[c] = row[(x * channels + c) * bytes];
            break;
        }
        case PNG_COLOR_TYPE_PALETTE: {
            int i = row[x];
            if (i < palette_size) { out[0] = palette[i].red; out[1] = palette[i].green; out[2] = palette[i].blue; }
            else out[0] = out[1] = out[2] = 0;
            break;
        }
        }
    }
}

static uint8_t *decode_png(const uint8_t *data, size_t size, uint64_t max_pixels, int *w, int *h, char *err, size_t errlen) {
    png_source src = {data, size, 0, err, errlen};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, png_on_error, png_on_warning);
    if (!png) { snprintf(err, errlen, "cannot start the PNG decoder"); return NULL; }
    png_infop info = png_create_info_struct(png);
    uint8_t *volatile rgb = NULL;
    uint8_t *volatile image = NULL;
    png_bytep *volatile rows = NULL;
    if (!info || setjmp(png_jmpbuf(png))) {
        free(rgb); free(image); free(rows);
        png_destroy_read_struct(&png, info ? &info : NULL, NULL);
        return NULL;
    }
    png_set_read_fn(png, &src, png_read_memory);
    // Pillow does not check the image data's checksums; a wrong one is no reason to refuse the file.
    png_set_crc_action(png, PNG_CRC_QUIET_USE, PNG_CRC_DEFAULT);
    // The pixel cap is ours; libpng's own (1,000,000 x 1,000,000) would let a bomb through.
    png_set_user_limits(png, 0x7fffffff, 0x7fffffff);
    png_read_info(png, info);
    png_uint_32 width = 0, height = 0;
    int depth = 0, type = 0, interlace = 0;
    png_get_IHDR(png, info, &width, &height, &depth, &type, &interlace, NULL, NULL);
    *w = (int)width;
    *h = (int)height;
    if (too_large(*w, *h, max_pixels)) {
        snprintf(err, errlen, "PNG of %ux%u pixels is over the limit of %llu pixels", width, height, (unsigned long long)max_pixels);
        png_destroy_read_struct(&png, &info, NULL);
        return NULL;
    }
    png_colorp palette = NULL;
    int palette_size = 0;
    if (type == PNG_COLOR_TYPE_PALETTE && !png_get_PLTE(png, info, &palette, &palette_size)) png_error(png, "palette image without a palette");
    if (depth < 8) png_set_packing(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);
    image = malloc(rowbytes * height);
    rows = malloc(sizeof(png_bytep) * height);
    rgb = malloc((size_t)width * height * 3);
    if (!image || !rows || !rgb) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < height; y++) rows[y] = image + y * rowbytes;
    png_read_image(png, rows);
    for (png_uint_32 y = 0; y < height; y++)
        png_row_to_rgb(rows[y], rgb + (size_t)y * width * 3, (int)width, depth, type, palette, palette_size);
    free(image);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    return rgb;
}

uint8_t *sq_decode_rgb(const uint8_t *data, size_t size, uint64_t max_pixels, int *width, int *height,
                       char *err, size_t errlen) {
    *width = *height = 0;
    if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF)
        return decode_jpeg(data, size, max_pixels, width, height, err, errlen);
    if (size >= 8 && memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0)
        return decode_png(data, size, max_pixels, width, height, err, errlen);
    snprintf(err, errlen, size == 0 ? "empty file" : "not a JPEG or PNG file");
    return NULL;
}
