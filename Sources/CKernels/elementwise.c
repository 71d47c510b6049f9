// Elementwise binary ops with numpy broadcasting reduced to two strides (see Binary.swift's coalesce).
#include "CKernels.h"
#include "simd.h"
#include <immintrin.h>

// Elementwise a (op) b over n values; each operand steps by 1 or stays put (stride 0: broadcast).
#define BINARY_LOOP(EXPR)                                                                                   \
    if (sa == 1 && sb == 1) for (int i = 0; i < n; i++) { float x = a[i], z = b[i]; y[i] = EXPR; }             \
    else if (sa == 1) { float z = b[0]; for (int i = 0; i < n; i++) { float x = a[i]; y[i] = EXPR; } }         \
    else if (sb == 1) { float x = a[0]; for (int i = 0; i < n; i++) { float z = b[i]; y[i] = EXPR; } }         \
    else for (int i = 0; i < n; i++) { float x = a[(size_t)i * sa], z = b[(size_t)i * sb]; y[i] = EXPR; }

CLONES
void sq_binary(int op, const float *a, int sa, const float *b, int sb, float *y, int n) {
    switch (op) {
    case 0: BINARY_LOOP(x + z) break;
    case 1: BINARY_LOOP(x - z) break;
    case 2: BINARY_LOOP(x * z) break;
    case 3: BINARY_LOOP(x / z) break;
    default: BINARY_LOOP(x < 0 ? x * z : x) break;
    }
}

// e^x for x in [-87, 88] (the caller clamps): x = n ln 2 + r with |r| <= ln 2 / 2 (ln 2 in two parts, so n ln 2 is
// exact), e^r by Cephes' degree-7 polynomial (about 1 ulp), 2^n put into the exponent bits. Plain arithmetic, so
// the loops that call it vectorize (libm's expf is one call per value: the PP-OCRv4 detector's last Sigmoid, 640x640,
// took 1.4 ms at 1 thread against ONNX Runtime's 0.14).
static inline float exp_bounded(float x) {
    float n = __builtin_rintf(x * 1.44269504088896341f);
    float r = x - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    int e = ((int)n + 127) << 23;
    float scale;
    __builtin_memcpy(&scale, &e, sizeof scale);
    return p * scale;
}

// Sigmoid (op 5) and SiLU (op 6) on AVX-512, written out: e^-x as exp_bounded computes it but with fused
// multiply-adds, the rounding by vrndscaleps and 2^n applied by vscalefps (one instruction for the exponent bits, the
// shift and the multiply), then 1 / (1 + e^-x) by a division. Within 3.1 ulp of the exact sigmoid (sweep of [-90, 90]),
// as the plain loop is; 0.27 instead of 0.35 ns a value on Zen 4 (the plain loop without fused multiply-adds is bound by
// its 30-odd vector operations, not by memory: SiLU is most of an EfficientNet-B0's time outside its convolutions).
// A NaN gives itself back (Sigmoid) or NaN (SiLU), as the loop does. The other levels keep the loop.
__attribute__((target("avx512f"))) static void sigmoid_avx512(int silu, const float *x, float *y, int n) {
    const __m512 lo = _mm512_set1_ps(-87.0f), hi = _mm512_set1_ps(88.0f), one = _mm512_set1_ps(1.0f);
    for (int i = 0; i < n; i += 16) {
        __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n - i)) - 1u);
        __m512 u = _mm512_maskz_loadu_ps(m, x + i);
        // -u clamped to [-87, 88] (a NaN lane becomes -87, as max returns its second operand; it is replaced below).
        __m512 c = _mm512_min_ps(_mm512_max_ps(_mm512_sub_ps(_mm512_setzero_ps(), u), lo), hi);
        __m512 k = _mm512_roundscale_ps(_mm512_mul_ps(c, _mm512_set1_ps(1.44269504088896341f)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        __m512 r = _mm512_fnmadd_ps(k, _mm512_set1_ps(0.693359375f), c);
        r = _mm512_fnmadd_ps(k, _mm512_set1_ps(-2.12194440e-4f), r);
        __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(1.9875691500e-4f), r, _mm512_set1_ps(1.3981999507e-3f));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
        p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
        p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, one));
        __m512 s = _mm512_div_ps(one, _mm512_add_ps(_mm512_scalef_ps(p, k), one));
        s = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(u, u, _CMP_UNORD_Q), s, u);
        _mm512_mask_storeu_ps(y + i, m, silu ? _mm512_mul_ps(u, s) : s);
    }
}

// 1 / (1 + e^-u) with e^-u from exp_bounded (-u clamped to [-87, 88]); a NaN gives itself back. Sigmoid's and
// SiLU's loops (the levels below AVX-512) share it, so SiLU is x times Sigmoid's value bit for bit.
static inline __attribute__((always_inline)) float sigmoid_bounded(float u) {
    float v = -u;
    float c = v < -87.0f ? -87.0f : v;
    c = c > 88.0f ? 88.0f : c;
    c = c == c ? c : 0.0f;
    float s = 1.0f / (1.0f + exp_bounded(c));
    return v == v ? s : u;
}

// Elementwise activations: 0 Relu, 1 Clip to [a, b], 2 HardSigmoid max(0, min(1, a x + b)), 3 HardSwish
// x max(0, min(1, x / 6 + 0.5)), 4 LeakyRelu (slope a below 0): the same expressions as the reference loops. 5 Sigmoid
// 1 / (1 + e^-x) with e^-x from exp_bounded (-x clamped to [-87, 88]: below, e^-x is 0 to a float's precision in
// 1 + e^-x; above, the result is under 2^-126 either way); within a few ulp of the reference's libm expf, NaN kept.
// 6 SiLU x · Sigmoid(x) (a Conv's fused activation). y may be x (in place), not otherwise overlap it.
// Builds that do not vectorize (the sanitizer's) would warn that the assume_safety hints below went unused.
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wpass-failed"
CLONES
void sq_unary(int op, const float *x, float *y, int n, float a, float b) {
#pragma clang fp contract(off)  // a x + b rounded twice, as the reference computes it (no fused multiply-add)
    if ((op == 5 || op == 6) && sq_cpu_level() == 3) {
        sigmoid_avx512(op == 6, x, y, n);
        return;
    }
    switch (op) {
    case 5: for (int i = 0; i < n; i++) y[i] = sigmoid_bounded(x[i]); break;
    case 6:
        // SiLU x · Sigmoid(x): case 5's value times x, the same bits as Sigmoid then Mul. A Conv applies it in place
        // (y == x): each value reads only its own input, which the vectorizer cannot prove for the aliased pointers;
        // without the pragma it ran the loop a value at a time (3.8 instead of 0.39 ms per million).
#pragma clang loop vectorize(assume_safety)
        for (int i = 0; i < n; i++) { float u = x[i]; y[i] = u * sigmoid_bounded(u); } break;
    case 0: for (int i = 0; i < n; i++) { float v = x[i]; y[i] = v < 0.0f ? 0.0f : v; } break;
    case 1: for (int i = 0; i < n; i++) { float v = x[i]; v = v < a ? a : v; y[i] = v > b ? b : v; } break;
    case 2: for (int i = 0; i < n; i++) { float v = a * x[i] + b; v = v < 1.0f ? v : 1.0f; y[i] = v > 0.0f ? v : 0.0f; } break;
    case 3:
#pragma clang loop vectorize(assume_safety)
        for (int i = 0; i < n; i++) { float v = x[i], t = v / 6.0f + 0.5f; t = t < 1.0f ? t : 1.0f; y[i] = v * (t > 0.0f ? t : 0.0f); } break;
    default: for (int i = 0; i < n; i++) { float v = x[i]; y[i] = v < 0.0f ? v * a : v; } break;
    }
}
#pragma clang diagnostic pop

// dst[i * stride] += src[i] for i < n: ConvTranspose's col2im, one row of columns into its output row. Stride 2 (the
// detectors' 2x2 upsamplings) adds eight sources into the even lanes of sixteen outputs at a time, the odd lanes
// kept as they are; other strides one by one.
CLONES
void sq_col2im_add(float *dst, const float *src, int n, int stride) {
    int i = 0;
    if (stride == 1) {
        for (; i < n; i++) dst[i] += src[i];
        return;
    }
    if (stride == 2) {
        // i + 8 < n: the sixteen outputs end before the last even one, so the odd lane written back (unchanged) is
        // never past the row (the next plane may be another thread's).
        typedef float v8 __attribute__((ext_vector_type(8)));
        for (; i + 8 < n; i += 8) {
            v16 d;
            v8 s;
            __builtin_memcpy(&d, dst + 2 * i, sizeof d);
            __builtin_memcpy(&s, src + i, sizeof s);
            v16 spread = __builtin_shufflevector(s, (v8)0, 0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15);
            v16 sum = d + spread;
            d = __builtin_shufflevector(sum, d, 0, 17, 2, 19, 4, 21, 6, 23, 8, 25, 10, 27, 12, 29, 14, 31);
            __builtin_memcpy(dst + 2 * i, &d, sizeof d);
        }
    }
    for (; i < n; i++) dst[(size_t)i * stride] += src[i];
}
