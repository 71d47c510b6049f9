// CImage: JPEG (libjpeg-turbo's TurboJPEG API) and PNG (libpng) decoding to 8-bit RGB. No Swift API of its own.
#ifndef SWIFTQ_CIMAGE_H
#define SWIFTQ_CIMAGE_H
#include <stddef.h>
#include <stdint.h>

/// Decodes a JPEG or PNG held in memory to packed RGB (3 bytes per pixel, rows of width*3 bytes).
/// On success returns a malloc'd buffer (caller frees) and sets *width, *height. On failure returns NULL and
/// writes a message of at most `errlen` bytes to `err`.
uint8_t *sq_decode_rgb(const uint8_t *data, size_t size, int *width, int *height, char *err, size_t errlen);

#endif
