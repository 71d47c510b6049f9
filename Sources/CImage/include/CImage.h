// CImage: JPEG (libjpeg-turbo's TurboJPEG API) and PNG (libpng) decoding to 8-bit RGB. No Swift API of its own.
#ifndef SWIFTQ_CIMAGE_H
#define SWIFTQ_CIMAGE_H
#include <stddef.h>
#include <stdint.h>

/// Decodes a JPEG or PNG held in memory to packed RGB (3 bytes per pixel, rows of width*3 bytes), with the
/// bytes Pillow's `Image.open(p).convert('RGB')` gives: alpha dropped (not composited), 16-bit samples by
/// their high byte (16-bit grey clamped to 255, as Pillow's I;16 -> RGB), gamma and colour chunks ignored,
/// CMYK JPEGs converted as Pillow does, a truncated file refused.
/// The header is read first: an image of more than `max_pixels` pixels is refused before any pixel
/// memory is allocated. On success returns a malloc'd buffer (caller frees) and sets *width, *height.
/// On failure returns NULL and writes a message of at most `errlen` bytes to `err`.
uint8_t *sq_decode_rgb(const uint8_t *data, size_t size, uint64_t max_pixels, int *width, int *height,
                       char *err, size_t errlen);

/// Pillow's horizontal 8-bit resampling pass over packed RGB: `bounds` holds (first input column, taps) per output
/// column, `kk` `ksize` fixed-point coefficients (`bits` fractional bits) per output column.
void sq_resample_h_rgb(const uint8_t *src, int width, int height, int out_w, const long *bounds, const int32_t *kk,
                       int ksize, int bits, uint8_t *out);
/// Pillow's vertical pass over rows of `stride` bytes: (first input row, taps) per output row in `bounds`;
/// `acc` holds `stride` accumulators. With AVX2, 32 bytes at a time; else sq_resample_v_portable.
void sq_resample_v(const uint8_t *src, int stride, int out_h, const long *bounds, const int32_t *kk, int ksize, int bits,
                   int32_t *acc, uint8_t *out);
/// The same pass in portable C, a row of accumulators per tap (the reference twin of sq_resample_v).
void sq_resample_v_portable(const uint8_t *src, int stride, int out_h, const long *bounds, const int32_t *kk, int ksize, int bits,
                            int32_t *acc, uint8_t *out);

/// Packed RGB bytes (`n` pixels) to a network input: each value looked up in `table` (256 floats per channel, the
/// normalized byte values), channel c read from byte 2 - c when `bgr`, written as planes (channels first) or
/// interleaved (`nhwc`).
void sq_rgb_to_input(const uint8_t *src, size_t n, const float *table, int bgr, int nhwc, float *out);

#endif
