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

// A requantization's per-call constants as vectors (loaded once: byte stores may alias *rq, so the compiler
// would otherwise reload them for every 16 outputs).
typedef struct { __m512 lo, hi; __m512i zero; } rq_consts;

__attribute__((target("avx512f")))
static inline rq_consts requant_consts(const sq_qrequant *rq) {
    rq_consts k = { _mm512_set1_ps((float)(rq->lo - rq->zero)), _mm512_set1_ps((float)(rq->hi - rq->zero)), _mm512_set1_epi32(rq->zero) };
    return k;
}

// 16 int32 accumulators of channels [c, c + 16) requantized (bias and scale vectors given), as 16 clamped int32.
__attribute__((target("avx512f")))
static inline __m512i requant16(__m512i acc, __m512i bias, __m512 scale, rq_consts k) {
    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(acc, bias)), scale);
    f = _mm512_min_ps(_mm512_max_ps(f, k.lo), k.hi);
    return _mm512_add_epi32(_mm512_cvtps_epi32(f), k.zero);
}

// Stores 16 channels (masked) of one output pixel as floats (acc + bias) * scale[c] (rq->out_float).
__attribute__((target("avx512f,avx512bw,avx512vl")))
static inline void store16_float(__m512i acc, const sq_qrequant *rq, int c, __mmask16 mask, float *y) {
    __m512 f = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_add_epi32(acc, _mm512_maskz_loadu_epi32(mask, rq->bias + c))),
                             _mm512_maskz_loadu_ps(mask, rq->scale + c));
    _mm512_mask_storeu_ps(y, mask, f);
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
        if (rq->out_float) {                                                                                              \
            for (int v = 0; v < NV; v++) {                                                                                \
                int c = m + v * 16;                                                                                       \
                if (c >= M) break;                                                                                        \
                __mmask16 mask = M - c >= 16 ? 0xFFFF : (__mmask16)((1u << (M - c)) - 1);                                 \
                for (int p = 0; p < NP; p++)                                                                              \
                    if (p < np) store16_float(acc[p][v], rq, c, mask, (float *)y + (size_t)p * ldy + c);                  \
            }                                                                                                             \
            return;                                                                                                       \
        }                                                                                                                 \
        rq_consts k = requant_consts(rq);                                                                                 \
        const int32_t *bias = rq->bias;                                                                                   \
        const float *scale = rq->scale;                                                                                   \
        uint8_t *yb = (uint8_t *)y;                                                                                       \
        for (int v = 0; v < NV; v++) {                                                                                    \
            int c = m + v * 16;                                                                                           \
            if (c >= M) break;                                                                                            \
            __mmask16 mask = M - c >= 16 ? 0xFFFF : (__mmask16)((1u << (M - c)) - 1);                                     \
            __m512i bv = _mm512_loadu_si512(bias + c);                                                                    \
            __m512 sv = _mm512_loadu_ps(scale + c);                                                                       \
            for (int p = 0; p < NP; p++) {                                                                                \
                if (p >= np) break;                                                                                       \
                _mm_mask_storeu_epi8(yb + (size_t)p * ldy + c, mask, _mm512_cvtepi32_epi8(requant16(acc[p][v], bv, sv, k))); \
            }                                                                                                             \
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

// ---- depthwise: acc = sum over the window's taps of x * w, taps outside the image reading the zero point ----
// The VNNI path first builds a padded copy of the input in which each pixel holds, per channel, the 4 bytes of
// that pixel and the next 3 to its right (a block of 16 channels is 64 bytes). One 64-byte load then feeds
// vpdpbusd with 4 taps x 16 channels, so a 3x3 window takes 3 loads and 3 vpdpbusd per 16 outputs.

static int dw_groups(int KW) { return (KW + 3) / 4; }
static int dw_blocks(int C) { return (C + 15) / 16; }
// The copy keeps only the columns a window starts a group of 4 taps at: every SW-th when 4 is a multiple of SW.
static int dw_colstep(int SW) { return 4 % SW == 0 ? SW : 1; }
static int dw_cols(int KW, int SW, int OW) { return ((OW - 1) * SW + 4 * (dw_groups(KW) - 1)) / dw_colstep(SW) + 1; }

size_t sq_qdw_packed_size(int C, int KH, int KW) { return (size_t)dw_blocks(C) * KH * dw_groups(KW) * 64; }

void sq_qdw_pack(int C, int KH, int KW, const int8_t *w, int8_t *packed) {
    int G = dw_groups(KW);
    memset(packed, 0, sq_qdw_packed_size(C, KH, KW));
    for (int c = 0; c < C; c++)
        for (int kh = 0; kh < KH; kh++)
            for (int kw = 0; kw < KW; kw++)
                packed[(((size_t)(c / 16) * KH + kh) * G + kw / 4) * 64 + (c % 16) * 4 + kw % 4] = w[((size_t)c * KH + kh) * KW + kw];
}

static int dw_vnni(void) {
    static int v = -1;
    if (v < 0) { __builtin_cpu_init(); v = __builtin_cpu_supports("avx512vbmi"); }
    return v && sq_cpu_has_vnni();
}

size_t sq_qdw_scratch_size(int C, int KH, int KW, int SW, int OW) {
    if (!dw_vnni() || KH > 16) return 0;
    return (size_t)KH * dw_cols(KW, SW, OW) * dw_blocks(C) * 64;
}

// Per row and block of 16 channels, 8 consecutive pixels go into two registers (16 bytes each) and every stored
// column among them is one two-register byte permute (vpermt2b): byte 4c + j = channel c of the column's j-th pixel.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi")))
// `idx[b]` (dw_order): the byte order of the b-th stored column of a batch.
static int dw_batch(int cs) { return (8 - 4) / cs + 1; }   // stored columns per 8 pixels

__attribute__((target("avx512f")))
static void dw_order(int cs, __m512i idx[5]) {
    for (int b = 0; b < dw_batch(cs); b++) {
        uint8_t order[64];
        for (int c = 0; c < 16; c++)
            for (int j = 0; j < 4; j++) order[c * 4 + j] = (uint8_t)((b * cs + j) * 16 + c);
        idx[b] = _mm512_loadu_si512(order);
    }
}

__attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi")))
static void dw_prepare_row(const uint8_t *x, int H, int W, int C, int KW, int SW, int PT, int PL, int OW, uint8_t zero, const __m512i idx[5],
                           int r, uint8_t *drow) {
    int CB = dw_blocks(C), cols = dw_cols(KW, SW, OW), cs = dw_colstep(SW), batch = dw_batch(cs);
    __m128i zv = _mm_set1_epi8((char)zero);
    size_t colStride = (size_t)CB * 64;
    int ih = r - PT;
    const uint8_t *row = ih >= 0 && ih < H ? x + (size_t)ih * W * C : NULL;
    for (int s0 = 0; s0 < cols; s0 += batch) {
        int nb = cols - s0 < batch ? cols - s0 : batch;
        const uint8_t *src[8];
        for (int j = 0; j < 8; j++) {
            int iw = s0 * cs + j - PL;
            src[j] = row && iw >= 0 && iw < W ? row + (size_t)iw * C : NULL;
        }
        for (int cb = 0; cb < CB; cb++) {
            int c = cb * 16;
            __mmask16 mask = C - c >= 16 ? 0xFFFF : (__mmask16)((1u << (C - c)) - 1);
            __m128i v[8];
            for (int j = 0; j < 8; j++) v[j] = src[j] ? _mm_maskz_loadu_epi8(mask, src[j] + c) : zv;
            __m512i lo = _mm512_inserti32x4(_mm512_inserti32x4(_mm512_inserti32x4(_mm512_castsi128_si512(v[0]), v[1], 1), v[2], 2), v[3], 3);
            __m512i hi = _mm512_inserti32x4(_mm512_inserti32x4(_mm512_inserti32x4(_mm512_castsi128_si512(v[4]), v[5], 1), v[6], 2), v[7], 3);
            for (int b = 0; b < nb; b++)
                _mm512_storeu_si512(drow + (size_t)(s0 + b) * colStride + (size_t)cb * 64, _mm512_permutex2var_epi8(lo, idx[b], hi));
        }
    }
}

// Output rows [oh0, oh1): the copy's rows live in a ring of KH rows (slot r % KH), each made once as the
// windows reach it, so the copy stays in cache.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi")))
static void dw_run_vnni(const uint8_t *x, int H, int W, int C, int KH, int KW, int SH, int SW, int PT, int PL, int OW, uint8_t zero,
                        const int8_t *packed, const sq_qrequant *rq, uint8_t *y, uint8_t *ring, int oh0, int oh1) {
    int CB = dw_blocks(C), G = dw_groups(KW), cols = dw_cols(KW, SW, OW), cs = dw_colstep(SW);
    size_t colStride = (size_t)CB * 64, rowStride = (size_t)cols * colStride, groupStride = (size_t)(4 / cs) * colStride;
    int made = -1;   // the last padded row in the ring
    const uint8_t *rows[16];
    __m512i idx[5];
    dw_order(cs, idx);
    rq_consts k = requant_consts(rq);
    for (int oh = oh0; oh < oh1; oh++) {
        int top = oh * SH;
        for (int r = made + 1 > top ? made + 1 : top; r < top + KH; r++) dw_prepare_row(x, H, W, C, KW, SW, PT, PL, OW, zero, idx, r, ring + (size_t)(r % KH) * rowStride);
        made = top + KH - 1;
        for (int kh = 0; kh < KH; kh++) rows[kh] = ring + (size_t)((top + kh) % KH) * rowStride;
        for (int ow = 0; ow < OW; ow++) {
            size_t at = (size_t)(ow * SW / cs) * colStride;
            uint8_t *yp = y + ((size_t)oh * OW + ow) * C;
            for (int cb = 0; cb < CB; cb++) {
                __m512i acc = _mm512_setzero_si512();
                const int8_t *w = packed + (size_t)cb * KH * G * 64;
                for (int kh = 0; kh < KH; kh++)
                    for (int g = 0; g < G; g++, w += 64)
                        acc = _mm512_dpbusd_epi32(acc, _mm512_loadu_si512(rows[kh] + at + (size_t)g * groupStride + (size_t)cb * 64), _mm512_loadu_si512(w));
                int c = cb * 16;
                __m128i out = _mm512_cvtepi32_epi8(requant16(acc, _mm512_loadu_si512(rq->bias + c), _mm512_loadu_ps(rq->scale + c), k));
                if (C - c >= 16) _mm_storeu_si128((__m128i *)(yp + c), out);
                else _mm_mask_storeu_epi8(yp + c, (__mmask16)((1u << (C - c)) - 1), out);
            }
        }
    }
}

CLONES
static void dw_run_plain(const uint8_t *x, int H, int W, int C, int KH, int KW, int SH, int SW, int PT, int PL, int OW, uint8_t zero,
                         const int8_t *packed, const sq_qrequant *rq, uint8_t *y, int p0, int p1) {
    int G = dw_groups(KW);
    int32_t acc[256];
    for (int p = p0; p < p1; p++) {
        int oh = p / OW, ow = p % OW;
        for (int c0 = 0; c0 < C; c0 += 256) {
            int cn = C - c0 < 256 ? C - c0 : 256;
            for (int c = 0; c < cn; c++) acc[c] = 0;
            for (int kh = 0; kh < KH; kh++) {
                int ih = oh * SH - PT + kh;
                for (int kw = 0; kw < KW; kw++) {
                    int iw = ow * SW - PL + kw;
                    const uint8_t *xr = ih >= 0 && ih < H && iw >= 0 && iw < W ? x + ((size_t)ih * W + iw) * C + c0 : NULL;
                    for (int c = 0; c < cn; c++) {
                        int ch = c0 + c;
                        int32_t wv = packed[(((size_t)(ch / 16) * KH + kh) * G + kw / 4) * 64 + (ch % 16) * 4 + kw % 4];
                        acc[c] += (int32_t)(xr ? xr[c] : zero) * wv;
                    }
                }
            }
            for (int c = 0; c < cn; c++) y[(size_t)p * C + c0 + c] = requant1(acc[c], rq, c0 + c);
        }
    }
}

void sq_qdw_run(const uint8_t *x, uint8_t *scratch, int H, int W, int C, int KH, int KW, int SH, int SW, int PT, int PL,
                int OW, uint8_t zero, const int8_t *packed, const sq_qrequant *rq, uint8_t *y, int oh0, int oh1) {
    if (scratch && dw_vnni() && KH <= 16) dw_run_vnni(x, H, W, C, KH, KW, SH, SW, PT, PL, OW, zero, packed, rq, y, scratch, oh0, oh1);
    else dw_run_plain(x, H, W, C, KH, KW, SH, SW, PT, PL, OW, zero, packed, rq, y, oh0 * OW, oh1 * OW);
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
