#include "CImage.h"
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

static uint8_t *decode_jpeg(const uint8_t *data, size_t size, int *w, int *h, char *err, size_t errlen) {
    tjhandle tj = tjInitDecompress();
    if (!tj) { snprintf(err, errlen, "cannot start the JPEG decoder"); return NULL; }
    int subsamp = 0, colorspace = 0;
    if (tjDecompressHeader3(tj, data, (unsigned long)size, w, h, &subsamp, &colorspace) != 0) {
        snprintf(err, errlen, "corrupt JPEG: %s", tjGetErrorStr2(tj));
        tjDestroy(tj);
        return NULL;
    }
    if (*w <= 0 || *h <= 0 || (size_t)*w * (size_t)*h > ((size_t)1 << 28)) {
        snprintf(err, errlen, "JPEG size %dx%d is not usable", *w, *h);
        tjDestroy(tj);
        return NULL;
    }
    uint8_t *rgb = malloc((size_t)*w * *h * 3);
    int cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
    uint8_t *buf = cmyk ? malloc((size_t)*w * *h * 4) : rgb;
    if (!rgb || !buf) { free(rgb); snprintf(err, errlen, "out of memory"); tjDestroy(tj); return NULL; }
    // Accurate integer IDCT and fancy upsampling: the libjpeg defaults Pillow decodes with.
    int rc = tjDecompress2(tj, data, (unsigned long)size, buf, *w, 0, *h, cmyk ? TJPF_CMYK : TJPF_RGB, 0);
    if (rc != 0 && tjGetErrorCode(tj) == TJERR_FATAL) {
        snprintf(err, errlen, "corrupt JPEG: %s", tjGetErrorStr2(tj));
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

static uint8_t *decode_png(const uint8_t *data, size_t size, int *w, int *h, char *err, size_t errlen) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&img, data, size)) {
        snprintf(err, errlen, "corrupt PNG: %s", img.message);
        return NULL;
    }
    img.format = PNG_FORMAT_RGB;
    *w = (int)img.width;
    *h = (int)img.height;
    uint8_t *rgb = malloc(PNG_IMAGE_SIZE(img));
    if (!rgb) { png_image_free(&img); snprintf(err, errlen, "out of memory"); return NULL; }
    if (!png_image_finish_read(&img, NULL, rgb, 0, NULL)) {
        snprintf(err, errlen, "corrupt PNG: %s", img.message);
        free(rgb);
        png_image_free(&img);
        return NULL;
    }
    return rgb;
}

uint8_t *sq_decode_rgb(const uint8_t *data, size_t size, int *width, int *height, char *err, size_t errlen) {
    if (size >= 3 && data[0] == 0xFF && data[1] == 0xD8 && data[2] == 0xFF) return decode_jpeg(data, size, width, height, err, errlen);
    if (size >= 8 && memcmp(data, "\x89PNG\r\n\x1a\n", 8) == 0) return decode_png(data, size, width, height, err, errlen);
    snprintf(err, errlen, size == 0 ? "empty file" : "not a JPEG or PNG file");
    return NULL;
}
