// Pillow's separable 8-bit resampling passes (ImagingResampleHorizontal_8bpc / ImagingResampleVertical_8bpc):
// each output sample is (half + sum of input * coefficient) >> bits, clamped to 0..255, in 32-bit integers.
// Integer sums do not depend on their order, so the vertical pass accumulates a whole row at a time (a loop the
// compiler vectorizes) and the result stays Pillow's byte for byte.
#include "CImage.h"

static inline uint8_t clip8(int32_t v, int bits) {
    v >>= bits;
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

void sq_resample_h_rgb(const uint8_t *src, int width, int height, int out_w, const long *bounds, const int32_t *kk,
                       int ksize, int bits, uint8_t *out) {
    const int32_t half = 1 << (bits - 1);
    for (int y = 0; y < height; y++) {
        const uint8_t *row = src + (size_t)y * width * 3;
        uint8_t *o = out + (size_t)y * out_w * 3;
        for (int x = 0; x < out_w; x++) {
            const uint8_t *p = row + (size_t)bounds[2 * x] * 3;
            const int32_t *k = kk + (size_t)x * ksize;
            int n = (int)bounds[2 * x + 1];
            int32_t s0 = half, s1 = half, s2 = half;
            for (int i = 0; i < n; i++) { s0 += p[3 * i] * k[i]; s1 += p[3 * i + 1] * k[i]; s2 += p[3 * i + 2] * k[i]; }
            o[3 * x] = clip8(s0, bits); o[3 * x + 1] = clip8(s1, bits); o[3 * x + 2] = clip8(s2, bits);
        }
    }
}

void sq_resample_v(const uint8_t *src, int stride, int out_h, const long *bounds, const int32_t *kk, int ksize, int bits,
                   int32_t *acc, uint8_t *out) {
    const int32_t half = 1 << (bits - 1);
    for (int y = 0; y < out_h; y++) {
        for (int x = 0; x < stride; x++) acc[x] = half;
        int n = (int)bounds[2 * y + 1];
        for (int i = 0; i < n; i++) {
            const uint8_t *r = src + (size_t)(bounds[2 * y] + i) * stride;
            int32_t k = kk[(size_t)y * ksize + i];
            for (int x = 0; x < stride; x++) acc[x] += r[x] * k;
        }
        uint8_t *o = out + (size_t)y * stride;
        for (int x = 0; x < stride; x++) o[x] = clip8(acc[x], bits);
    }
}

void sq_rgb_to_input(const uint8_t *src, size_t n, const float *table, int bgr, int nhwc, float *out) {
    const float *t0 = table, *t1 = table + 256, *t2 = table + 512;
    const int r = bgr ? 2 : 0, b = bgr ? 0 : 2;
    if (nhwc) {
        for (size_t i = 0; i < n; i++) {
            const uint8_t *p = src + 3 * i;
            out[3 * i] = t0[p[r]]; out[3 * i + 1] = t1[p[1]]; out[3 * i + 2] = t2[p[b]];
        }
        return;
    }
    float *o0 = out, *o1 = out + n, *o2 = out + 2 * n;
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = src + 3 * i;
        o0[i] = t0[p[r]]; o1[i] = t1[p[1]]; o2[i] = t2[p[b]];
    }
}
