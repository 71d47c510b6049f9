// Pillow's separable 8-bit resampling passes (ImagingResampleHorizontal_8bpc / ImagingResampleVertical_8bpc):
// each output sample is (half + sum of input * coefficient) >> bits, clamped to 0..255, in 32-bit integers.
// Integer sums do not depend on their order, so the vertical pass sums 32 bytes of a row over all its taps at a time
// in registers (AVX2; the portable twin a whole row per tap) and the result stays Pillow's byte for byte.
#include "CImage.h"
#include <immintrin.h>

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

// The vertical pass 32 bytes of a row at a time with the sums in registers over all taps (AVX2), instead of a
// pass over the whole accumulator row per tap.
__attribute__((target("avx2"))) static void resample_v_avx2(const uint8_t *src, int stride, int out_h, const long *bounds,
                                                           const int32_t *kk, int ksize, int bits, uint8_t *out) {
    const __m256i half = _mm256_set1_epi32(1 << (bits - 1)), zero = _mm256_setzero_si256();
    const __m128i shift = _mm_cvtsi32_si128(bits);
    for (int y = 0; y < out_h; y++) {
        const uint8_t *first = src + (size_t)bounds[2 * y] * stride;
        const int32_t *k = kk + (size_t)y * ksize;
        int n = (int)bounds[2 * y + 1];
        uint8_t *o = out + (size_t)y * stride;
        int x = 0;
        for (; x + 32 <= stride; x += 32) {
            __m256i a0 = half, a1 = half, a2 = half, a3 = half;
            for (int i = 0; i < n; i++) {
                __m256i ki = _mm256_set1_epi32(k[i]);
                __m256i v = _mm256_loadu_si256((const __m256i *)(first + (size_t)i * stride + x));
                __m256i lo = _mm256_unpacklo_epi8(v, zero), hi = _mm256_unpackhi_epi8(v, zero);   // 16-bit, lanes interleaved
                a0 = _mm256_add_epi32(a0, _mm256_mullo_epi32(_mm256_unpacklo_epi16(lo, zero), ki));
                a1 = _mm256_add_epi32(a1, _mm256_mullo_epi32(_mm256_unpackhi_epi16(lo, zero), ki));
                a2 = _mm256_add_epi32(a2, _mm256_mullo_epi32(_mm256_unpacklo_epi16(hi, zero), ki));
                a3 = _mm256_add_epi32(a3, _mm256_mullo_epi32(_mm256_unpackhi_epi16(hi, zero), ki));
            }
            // >> bits, then signed saturation to 16 and unsigned to 8 bits: clip8. The unpacks and packs undo each
            // other's lane order.
            a0 = _mm256_sra_epi32(a0, shift); a1 = _mm256_sra_epi32(a1, shift);
            a2 = _mm256_sra_epi32(a2, shift); a3 = _mm256_sra_epi32(a3, shift);
            __m256i w0 = _mm256_packs_epi32(a0, a1), w1 = _mm256_packs_epi32(a2, a3);
            _mm256_storeu_si256((__m256i *)(o + x), _mm256_packus_epi16(w0, w1));
        }
        for (; x < stride; x++) {
            int32_t s = 1 << (bits - 1);
            for (int i = 0; i < n; i++) s += first[(size_t)i * stride + x] * k[i];
            o[x] = clip8(s, bits);
        }
    }
}

void sq_resample_v(const uint8_t *src, int stride, int out_h, const long *bounds, const int32_t *kk, int ksize, int bits,
                   int32_t *acc, uint8_t *out) {
    if (__builtin_cpu_supports("avx2")) resample_v_avx2(src, stride, out_h, bounds, kk, ksize, bits, out);
    else sq_resample_v_portable(src, stride, out_h, bounds, kk, ksize, bits, acc, out);
}

void sq_resample_v_portable(const uint8_t *src, int stride, int out_h, const long *bounds, const int32_t *kk, int ksize, int bits,
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
