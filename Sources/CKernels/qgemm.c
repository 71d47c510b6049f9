// int8 kernels of the integer runtime. Activations are NHWC uint8 ("biased": an int8 tensor is stored as
// q + 128 with its zero point moved the same way), weights int8. Accumulation is exact int32 (vpdpbusd adds
// four u8 x s8 products to an int32 lane; nothing saturates). Every kernel ends in ONNX Runtime's
// requantization, bit for bit: round_half_even(float(acc) * scale) with a float32 product, clamped, plus the
// zero point (see sq_qrequant, and FixedPointMultiplier for the same function in integers). The AVX-512 paths
// and the portable ones (compiled for AVX2 and generic x86-64) give the same bytes.
#include "CKernels.h"
#include "simd.h"
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

static int round_up4(int k) { return (k + 3) / 4 * 4; }

size_t sq_qgemm_packed_size(int M, int K) { return (size_t)(M + 15) / 16 * 16 * round_up4(K); }

// Layout: for each block of 16 rows, for each group of 4 k: 16 rows x 4 bytes (zero-padded past M and K).
void sq_qgemm_pack_a(int M, int K, const int8_t *A, int8_t *packed) {
    int K4 = round_up4(K);
    memset(packed, 0, sq_qgemm_packed_size(M, K));
    for (int m = 0; m < M; m++)
        for (int k = 0; k < K; k++)
            packed[((size_t)(m / 16) * K4 / 4 + k / 4) * 64 + (m % 16) * 4 + k % 4] = A[(size_t)m * K + k];
}

int sq_cpu_has_vnni(void) {
    static int v = -1;
    if (v < 0) { __builtin_cpu_init(); v = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"); }
    return v && sq_cpu_level() == 3;
}

// AVX-512 with the byte/word, vector-length and doubleword/quadword extensions (the depthwise and Add kernels).
static int has_avx512_bw(void) {
    static int v = -1;
    if (v < 0) { __builtin_cpu_init(); v = __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"); }
    return v && sq_cpu_level() == 3;
}

// ---- requantization ----

// round_half_even(v * scale) + zero clamped to [lo, hi]; the clamp in float first, as ONNX Runtime does.
static inline int32_t requant_float(int32_t v, float scale, int32_t zero, int32_t lo, int32_t hi) {
    float f = (float)v * scale;
    float fl = (float)(lo - zero), fh = (float)(hi - zero);
    f = f < fl ? fl : f > fh ? fh : f;
    return (int32_t)__builtin_rintf(f) + zero;
}

static inline uint8_t requant1(int32_t acc, const sq_qrequant *rq, int c) {
    return (uint8_t)requant_float((int32_t)((uint32_t)acc + (uint32_t)rq->bias[c]), rq->scale[c], rq->zero, rq->lo, rq->hi);
}

// 16 int32 accumulators (+ bias) requantized per lane, as 16 clamped int32.
__attribute__((target("avx512f")))
static inline __m512i requant16(__m512i acc, const sq_qrequant *rq, int c) {
    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(acc, _mm512_loadu_si512(rq->bias + c))), _mm512_loadu_ps(rq->scale + c));
    f = _mm512_min_ps(_mm512_max_ps(f, _mm512_set1_ps((float)(rq->lo - rq->zero))), _mm512_set1_ps((float)(rq->hi - rq->zero)));
    return _mm512_add_epi32(_mm512_cvtps_epi32(f), _mm512_set1_epi32(rq->zero));
}

// Stores 16 channels (masked) of one output pixel: bytes, or floats (acc + bias) * scale[c] when rq->out_float.
__attribute__((target("avx512f,avx512bw,avx512vl")))
static inline void store16(__m512i acc, const sq_qrequant *rq, int c, __mmask16 mask, void *y, size_t at) {
    if (rq->out_float) {
        __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(acc, _mm512_maskz_loadu_epi32(mask, rq->bias + c))),
                                 _mm512_maskz_loadu_ps(mask, rq->scale + c));
        _mm512_mask_storeu_ps((float *)y + at, mask, f);
    } else {
        _mm_mask_storeu_epi8((uint8_t *)y + at, mask, _mm512_cvtepi32_epi8(requant16(acc, rq, c)));
    }
}

static inline void store1(int32_t acc, const sq_qrequant *rq, int c, void *y, size_t at) {
    if (rq->out_float) ((float *)y)[at] = (float)(int32_t)((uint32_t)acc + (uint32_t)rq->bias[c]) * rq->scale[c];
    else ((uint8_t *)y)[at] = requant1(acc, rq, c);
}

// ---- GEMM: Y[p][m] = requant(sum_k X[p][k] * W[m][k]) ----

// NP pixels x NV blocks of 16 channels in registers; rows past np repeat the last row (results dropped).
#define DEFINE_TILE(NV, NP)                                                                                              \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) static void tile_##NV##_##NP(                                  \
        int K4, const uint8_t *x, int ldx, int np, const int8_t *w, const sq_qrequant *rq, void *y, int ldy, int m, int M) { \
        __m512i acc[NP][NV];                                                                                              \
        const uint8_t *row[NP];                                                                                           \
        for (int p = 0; p < NP; p++) {                                                                                    \
            row[p] = x + (size_t)(p < np ? p : np - 1) * ldx;                                                             \
            for (int v = 0; v < NV; v++) acc[p][v] = _mm512_setzero_si512();                                              \
        }                                                                                                                 \
        size_t ws = (size_t)K4 * 16;                                                                                      \
        for (int g = 0; g < K4 / 4; g++) {                                                                                \
            __m512i wv[NV];                                                                                               \
            for (int v = 0; v < NV; v++) wv[v] = _mm512_loadu_si512(w + v * ws + (size_t)g * 64);                         \
            for (int p = 0; p < NP; p++) {                                                                                \
                int32_t xx;                                                                                               \
                memcpy(&xx, row[p] + g * 4, 4);                                                                           \
                __m512i b = _mm512_set1_epi32(xx);                                                                        \
                for (int v = 0; v < NV; v++) acc[p][v] = _mm512_dpbusd_epi32(acc[p][v], b, wv[v]);                        \
            }                                                                                                             \
        }                                                                                                                 \
        for (int v = 0; v < NV; v++) {                                                                                    \
            int c = m + v * 16;                                                                                           \
            if (c >= M) break;                                                                                            \
            __mmask16 mask = M - c >= 16 ? 0xFFFF : (__mmask16)((1u << (M - c)) - 1);                                     \
            for (int p = 0; p < NP; p++)                                                                                  \
                if (p < np) store16(acc[p][v], rq, c, mask, y, (size_t)p * ldy + c);                                      \
        }                                                                                                                 \
    }
DEFINE_TILE(4, 6)
DEFINE_TILE(3, 8)
DEFINE_TILE(2, 12)
DEFINE_TILE(1, 24)

static void gemm_vnni(int M, int K, const uint8_t *X, int ldx, const int8_t *W, const sq_qrequant *rq, void *Y, int ldy,
                      int p0, int p1, int m0, int m1) {
    int K4 = round_up4(K);
    for (int m = m0; m < m1; m += 64) {
        int nv = (m1 - m + 15) / 16;
        if (nv > 4) nv = 4;
        const int8_t *w = W + (size_t)(m / 16) * K4 * 16;
        int NP = nv == 4 ? 6 : nv == 3 ? 8 : nv == 2 ? 12 : 24;
        for (int p = p0; p < p1; p += NP) {
            int np = p1 - p < NP ? p1 - p : NP;
            const uint8_t *x = X + (size_t)p * ldx;
            size_t off = (size_t)p * ldy;
            void *y = rq->out_float ? (void *)((float *)Y + off) : (void *)((uint8_t *)Y + off);
            int mm = m1 < M ? m1 : M;
            switch (nv) {
            case 4: tile_4_6(K4, x, ldx, np, w, rq, y, ldy, m, mm); break;
            case 3: tile_3_8(K4, x, ldx, np, w, rq, y, ldy, m, mm); break;
            case 2: tile_2_12(K4, x, ldx, np, w, rq, y, ldy, m, mm); break;
            default: tile_1_24(K4, x, ldx, np, w, rq, y, ldy, m, mm); break;
            }
        }
    }
}

CLONES
static void gemm_plain(int M, int K, const uint8_t *X, int ldx, const int8_t *W, const sq_qrequant *rq, void *Y, int ldy,
                       int p0, int p1, int m0, int m1) {
    int K4 = round_up4(K);
    for (int p = p0; p < p1; p++) {
        const uint8_t *x = X + (size_t)p * ldx;
        for (int m = m0; m < m1 && m < M; m++) {
            const int8_t *w = W + (size_t)(m / 16) * K4 * 16 + (m % 16) * 4;
            int32_t s = 0;
            for (int k = 0; k < K; k++) s += (int32_t)x[k] * (int32_t)w[(size_t)(k / 4) * 64 + k % 4];
            store1(s, rq, m, Y, (size_t)p * ldy + m);
        }
    }
}

void sq_qgemm_nhwc(int M, int K, const uint8_t *X, int ldx, const int8_t *W, const sq_qrequant *rq, void *Y, int ldy,
                   int p0, int p1, int m0, int m1) {
    if (sq_cpu_has_vnni()) gemm_vnni(M, K, X, ldx, W, rq, Y, ldy, p0, p1, m0, m1);
    else gemm_plain(M, K, X, ldx, W, rq, Y, ldy, p0, p1, m0, m1);
}

void sq_im2col_nhwc(const uint8_t *x, int H, int W, int C, int c0, int cn, int KH, int KW, int SH, int SW, int DH, int DW,
                    int PT, int PL, int OW, uint8_t pad, uint8_t *col, int ldcol, int p0, int p1) {
    for (int p = p0; p < p1; p++) {
        int oh = p / OW, ow = p % OW;
        uint8_t *d = col + (size_t)p * ldcol;
        int iw0 = ow * SW - PL, whole = cn == C && DW == 1 && iw0 >= 0 && iw0 + KW <= W;
        for (int kh = 0; kh < KH; kh++) {
            int ih = oh * SH - PT + kh * DH;
            if (whole && ih >= 0 && ih < H) {   // the window row is one run of KW * C bytes
                memcpy(d, x + ((size_t)ih * W + iw0) * C, (size_t)KW * C);
                d += (size_t)KW * C;
                continue;
            }
            for (int kw = 0; kw < KW; kw++, d += cn) {
                int iw = iw0 + kw * DW;
                if (ih >= 0 && ih < H && iw >= 0 && iw < W) memcpy(d, x + ((size_t)ih * W + iw) * C + c0, cn);
                else memset(d, pad, cn);
            }
        }
        memset(d, 0, ldcol - (size_t)KH * KW * cn);
    }
}

// ---- depthwise: acc = bias + sum (x - zero) * w over the window's taps inside the image ----

__attribute__((target("avx512f,avx512bw,avx512vl")))
static void depthwise_avx512(const uint8_t *x, int H, int W, int C, const int32_t *w, int KH, int KW, int SH, int SW, int PT, int PL,
                             int zero, const sq_qrequant *rq, uint8_t *y, int OW, int p0, int p1) {
    __m512i z = _mm512_set1_epi32(zero);
    for (int p = p0; p < p1; p++) {
        int oh = p / OW, ow = p % OW;
        int ih0 = oh * SH - PT, iw0 = ow * SW - PL;
        int kh0 = ih0 < 0 ? -ih0 : 0, kh1 = H - ih0 < KH ? H - ih0 : KH;
        int kw0 = iw0 < 0 ? -iw0 : 0, kw1 = W - iw0 < KW ? W - iw0 : KW;
        for (int c = 0; c < C; c += 16) {
            __mmask16 mask = C - c >= 16 ? 0xFFFF : (__mmask16)((1u << (C - c)) - 1);
            __m512i acc = _mm512_setzero_si512();
            for (int kh = kh0; kh < kh1; kh++) {
                const uint8_t *xr = x + ((size_t)(ih0 + kh) * W + iw0) * C + c;
                const int32_t *wr = w + (size_t)kh * KW * C + c;
                for (int kw = kw0; kw < kw1; kw++) {
                    __m512i xv = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(mask, xr + (size_t)kw * C));
                    acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(_mm512_sub_epi32(xv, z), _mm512_maskz_loadu_epi32(mask, wr + (size_t)kw * C)));
                }
            }
            if (C - c >= 16) _mm_storeu_si128((__m128i *)(y + (size_t)p * C + c), _mm512_cvtepi32_epi8(requant16(acc, rq, c)));
            else {
                int32_t a[16];
                _mm512_storeu_si512(a, acc);
                for (int j = 0; j < C - c; j++) y[(size_t)p * C + c + j] = requant1(a[j], rq, c + j);
            }
        }
    }
}

CLONES
static void depthwise_plain(const uint8_t *x, int H, int W, int C, const int32_t *w, int KH, int KW, int SH, int SW, int PT, int PL,
                            int zero, const sq_qrequant *rq, uint8_t *y, int OW, int p0, int p1) {
    int32_t acc[256];
    for (int p = p0; p < p1; p++) {
        int oh = p / OW, ow = p % OW;
        int ih0 = oh * SH - PT, iw0 = ow * SW - PL;
        for (int c0 = 0; c0 < C; c0 += 256) {
            int cn = C - c0 < 256 ? C - c0 : 256;
            for (int c = 0; c < cn; c++) acc[c] = 0;
            for (int kh = 0; kh < KH; kh++) {
                int ih = ih0 + kh;
                if (ih < 0 || ih >= H) continue;
                for (int kw = 0; kw < KW; kw++) {
                    int iw = iw0 + kw;
                    if (iw < 0 || iw >= W) continue;
                    const uint8_t *xr = x + ((size_t)ih * W + iw) * C + c0;
                    const int32_t *wr = w + (size_t)(kh * KW + kw) * C + c0;
                    for (int c = 0; c < cn; c++) acc[c] += ((int32_t)xr[c] - zero) * wr[c];
                }
            }
            for (int c = 0; c < cn; c++) y[(size_t)p * C + c0 + c] = requant1(acc[c], rq, c0 + c);
        }
    }
}

void sq_qdepthwise_nhwc(const uint8_t *x, int H, int W, int C, const int32_t *w, int KH, int KW, int SH, int SW, int PT, int PL,
                        int zero, const sq_qrequant *rq, uint8_t *y, int OW, int p0, int p1) {
    if (has_avx512_bw()) depthwise_avx512(x, H, W, C, w, KH, KW, SH, SW, PT, PL, zero, rq, y, OW, p0, p1);
    else depthwise_plain(x, H, W, C, w, KH, KW, SH, SW, PT, PL, zero, rq, y, OW, p0, p1);
}

// ---- Add: ONNX Runtime's QLinearAdd, y = round_half_even(fma(a, ra, fma(b, rb, fixed))) (see sq_qadd) ----

static inline uint8_t add1(uint8_t a, uint8_t b, const sq_qadd *q) {
    float f = __builtin_fmaf((float)((int32_t)a - q->off_a), q->ra, __builtin_fmaf((float)((int32_t)b - q->off_b), q->rb, q->fixed));
    float fl = (float)(q->lo - q->off_y), fh = (float)(q->hi - q->off_y);
    f = f < fl ? fl : f > fh ? fh : f;
    return (uint8_t)((int32_t)__builtin_rintf(f) + q->off_y);
}

__attribute__((target("avx512f,avx512bw,avx512vl")))
static void add_avx512(const uint8_t *a, const uint8_t *b, const sq_qadd *q, uint8_t *y, size_t n0, size_t n1) {
    __m512i oa = _mm512_set1_epi32(q->off_a), ob = _mm512_set1_epi32(q->off_b), oy = _mm512_set1_epi32(q->off_y);
    __m512 ra = _mm512_set1_ps(q->ra), rb = _mm512_set1_ps(q->rb), fixed = _mm512_set1_ps(q->fixed);
    __m512 fl = _mm512_set1_ps((float)(q->lo - q->off_y)), fh = _mm512_set1_ps((float)(q->hi - q->off_y));
    size_t i = n0;
    for (; i + 16 <= n1; i += 16) {
        __m512 av = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(a + i))), oa));
        __m512 bv = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)(b + i))), ob));
        __m512 f = _mm512_fmadd_ps(av, ra, _mm512_fmadd_ps(bv, rb, fixed));
        f = _mm512_min_ps(_mm512_max_ps(f, fl), fh);
        _mm_storeu_si128((__m128i *)(y + i), _mm512_cvtepi32_epi8(_mm512_add_epi32(_mm512_cvtps_epi32(f), oy)));
    }
    for (; i < n1; i++) y[i] = add1(a[i], b[i], q);
}

CLONES
static void add_plain(const uint8_t *a, const uint8_t *b, const sq_qadd *q, uint8_t *y, size_t n0, size_t n1) {
    for (size_t i = n0; i < n1; i++) y[i] = add1(a[i], b[i], q);
}

void sq_qadd_u8(const uint8_t *a, const uint8_t *b, const sq_qadd *q, uint8_t *y, size_t n0, size_t n1) {
    if (has_avx512_bw()) add_avx512(a, b, q, y, n0, n1);
    else add_plain(a, b, q, y, n0, n1);
}

// ---- moves, pooling, conversions ----

CLONES
void sq_qcopy_channels(const uint8_t *x, int ldx, int P, int C, const uint8_t *table, uint8_t *y, int ldy) {
    for (int p = 0; p < P; p++) {
        const uint8_t *s = x + (size_t)p * ldx;
        uint8_t *d = y + (size_t)p * ldy;
        if (!table) { memcpy(d, s, C); continue; }
        for (int c = 0; c < C; c++) d[c] = table[s[c]];
    }
}

CLONES
void sq_qmaxpool_nhwc(const uint8_t *x, int H, int W, int C, int KH, int KW, int SH, int SW, int DH, int DW, int PT, int PL,
                      uint8_t *y, int OW, int p0, int p1) {
    for (int p = p0; p < p1; p++) {
        int oh = p / OW, ow = p % OW;
        uint8_t *d = y + (size_t)p * C;
        memset(d, 0, C);
        for (int kh = 0; kh < KH; kh++) {
            int ih = oh * SH - PT + kh * DH;
            if (ih < 0 || ih >= H) continue;
            for (int kw = 0; kw < KW; kw++) {
                int iw = ow * SW - PL + kw * DW;
                if (iw < 0 || iw >= W) continue;
                const uint8_t *s = x + ((size_t)ih * W + iw) * C;
                for (int c = 0; c < C; c++) d[c] = s[c] > d[c] ? s[c] : d[c];
            }
        }
    }
}

CLONES
void sq_qavgpool_nhwc(const uint8_t *x, int H, int W, int C, int KH, int KW, int SH, int SW, int PT, int PL, int zero,
                      int include_pad, const float *scale, int zy, int lo, int hi, uint8_t *y, int OW, int p0, int p1) {
    int32_t acc[256];
    for (int p = p0; p < p1; p++) {
        int oh = p / OW, ow = p % OW;
        for (int c0 = 0; c0 < C; c0 += 256) {
            int cn = C - c0 < 256 ? C - c0 : 256, count = 0;
            for (int c = 0; c < cn; c++) acc[c] = 0;
            for (int kh = 0; kh < KH; kh++) {
                int ih = oh * SH - PT + kh;
                for (int kw = 0; kw < KW; kw++) {
                    int iw = ow * SW - PL + kw;
                    if (ih < 0 || ih >= H || iw < 0 || iw >= W) { count += include_pad; continue; }
                    count++;
                    const uint8_t *s = x + ((size_t)ih * W + iw) * C + c0;
                    for (int c = 0; c < cn; c++) acc[c] += (int32_t)s[c] - zero;
                }
            }
            if (count == 0) count = 1;
            for (int c = 0; c < cn; c++) y[(size_t)p * C + c0 + c] = (uint8_t)requant_float(acc[c], scale[count - 1], zy, lo, hi);
        }
    }
}

CLONES
void sq_qsum_pixels(const uint8_t *x, int P, int C, int32_t *sums) {
    for (int c = 0; c < C; c++) sums[c] = 0;
    for (int p = 0; p < P; p++) {
        const uint8_t *s = x + (size_t)p * C;
        for (int c = 0; c < C; c++) sums[c] += s[c];
    }
}

CLONES
static void quantize_run(const float *x, int n, float scale, int zero, int lo, int hi, uint8_t *y) {
    for (int i = 0; i < n; i++) {
        float v = __builtin_rintf(x[i] / scale) + (float)zero;
        v = v < (float)lo ? (float)lo : v > (float)hi ? (float)hi : v;
        y[i] = (uint8_t)(int)v;
    }
}

void sq_quantize_planes(const float *x, int C, int HW, float scale, int zero, int lo, int hi, uint8_t *y, int nhwc) {
    uint8_t run[1024];
    for (int c = 0; c < C; c++)
        for (int i = 0; i < HW; i += 1024) {
            int n = HW - i < 1024 ? HW - i : 1024;
            if (!nhwc) { quantize_run(x + (size_t)c * HW + i, n, scale, zero, lo, hi, y + (size_t)c * HW + i); continue; }
            quantize_run(x + (size_t)c * HW + i, n, scale, zero, lo, hi, run);
            for (int j = 0; j < n; j++) y[(size_t)(i + j) * C + c] = run[j];
        }
}

CLONES
void sq_dequantize_planes(const uint8_t *x, int C, int HW, float scale, int zero, float *y, int nhwc) {
    for (int c = 0; c < C; c++)
        for (int i = 0; i < HW; i++) y[(size_t)c * HW + i] = (float)((int)x[nhwc ? (size_t)i * C + c : (size_t)c * HW + i] - zero) * scale;
}

CLONES
void sq_transpose_u8(const uint8_t *x, int rows, int cols, uint8_t *y) {
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) y[(size_t)c * rows + r] = x[(size_t)r * cols + c];
}
