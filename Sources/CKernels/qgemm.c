// int8 kernels of the integer runtime. Activations are NHWC uint8 ("biased": an int8 tensor is stored as
// q + 128 with its zero point moved the same way), weights int8. Accumulation is exact int32 (vpdpbusd adds
// four u8 x s8 products to an int32 lane; nothing saturates). Every kernel ends in ONNX Runtime's
// requantization, bit for bit: round_half_even(float(acc) * scale) with a float32 product, clamped, plus the
// zero point (see sq_qrequant, and FixedPointMultiplier for the same function in integers). The AVX-512 paths
// and the portable ones (compiled for AVX2 and generic x86-64) give the same bytes.
#include "CKernels.h"
#include "scratch.h"
#include "simd.h"
#include <immintrin.h>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
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

int sq_cpu_has_int8_dot(void) {
#if defined(__x86_64__) || defined(__i386__)
    static int v = -1;
    if (v < 0) {
        unsigned a = 0, b, c, d;
        __builtin_cpu_init();
        // AVX-VNNI: CPUID leaf 7 subleaf 1, EAX bit 4 (not every compiler's __builtin_cpu_supports knows it).
        int avx_vnni = __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a >> 4 & 1);
        v = __builtin_cpu_supports("avx512vnni") || avx_vnni;
    }
    return v;
#else
    return 1;
#endif
}

// AVX-512 VBMI (byte permutes: the depthwise copy and the input interleave), whatever the level.
static int has_vbmi(void) {
    static int v = -1;
    if (v < 0) { __builtin_cpu_init(); v = __builtin_cpu_supports("avx512vbmi"); }
    return v;
}

// AVX-512 with the byte/word, vector-length and doubleword/quadword extensions (the depthwise and Add kernels).
static int has_avx512_bw(void) {
    static int v = -1;
    if (v < 0) { __builtin_cpu_init(); v = __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq"); }
    return v && sq_cpu_level() == 3;
}

// The first n (up to 16) lanes.
static inline __mmask16 lanes16(int n) { return n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1); }

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
typedef struct { __m512 hi; __m512i zero16, lo8; } rq_consts;

__attribute__((target("avx512f,avx512bw")))
static inline rq_consts requant_consts(const sq_qrequant *rq) {
    rq_consts k = { _mm512_set1_ps((float)(rq->hi - rq->zero)), _mm512_set1_epi16((short)rq->zero), _mm512_set1_epi8((char)rq->lo) };
    return k;
}

// 16 int32 accumulators of channels [c, c + 16), the bias included (scale vector given), as round_half_even(f) with
// f = float(acc) * scale clamped above at hi - zero; below, the result may be anything down to INT32_MIN
// (vcvtps2dq's answer for f < -2^31): pack4_u8 saturates it to lo. That equals requant_float's clamp-then-round,
// because the limits are integers and rounding is monotonic.
__attribute__((target("avx512f")))
static inline __m512i requant16(__m512i acc, __m512 scale, rq_consts k) {
    return _mm512_cvtps_epi32(_mm512_min_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(acc), scale), k.hi));
}

// Four requant16 results as 64 bytes (a's 16 channels, then b's, c's and d's): zero point added and the
// clamp to [lo, hi] completed in saturating 16- and 8-bit steps (exact: values stay in [-32768, 255 - zero]
// until the clamp). vpackssdw/vpackuswb interleave by 128-bit lane; one vpermd restores the order (each dword is 4 channels of one input).
__attribute__((target("avx512f,avx512bw")))
static inline __m512i pack4_u8(__m512i a, __m512i b, __m512i c, __m512i d, rq_consts k) {
    const __m512i order = _mm512_set_epi32(15, 11, 7, 3, 14, 10, 6, 2, 13, 9, 5, 1, 12, 8, 4, 0);
    __m512i ab = _mm512_adds_epi16(_mm512_packs_epi32(a, b), k.zero16), cd = _mm512_adds_epi16(_mm512_packs_epi32(c, d), k.zero16);
    return _mm512_permutexvar_epi32(order, _mm512_max_epu8(_mm512_packus_epi16(ab, cd), k.lo8));
}

// The j-th 16 bytes of q.
__attribute__((target("avx512f")))
static inline __m128i quarter(__m512i q, int j) {
    switch (j) {
    case 0: return _mm512_castsi512_si128(q);
    case 1: return _mm512_extracti32x4_epi32(q, 1);
    case 2: return _mm512_extracti32x4_epi32(q, 2);
    default: return _mm512_extracti32x4_epi32(q, 3);
    }
}

static inline void store1(int32_t acc, const sq_qrequant *rq, int c, void *y, size_t at) {
    if (rq->out_float) ((float *)y)[at] = (float)(int32_t)((uint32_t)acc + (uint32_t)rq->bias[c]) * rq->scale[c];
    else ((uint8_t *)y)[at] = requant1(acc, rq, c);
}

// ---- GEMM: Y[p][m] = requant(sum_k X[p][k] * W[m][k]) ----

// NP pixels x NV blocks of 16 channels in registers, the accumulators starting at the bias; rows past np repeat
// the last row (results dropped). The requantized bytes leave four vectors at a time (pack4_u8): with NV = 4 one
// 64-byte store per pixel.
#define DEFINE_TILE(NV, NP) \
    __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) static void tile_##NV##_##NP(                       \
        int K4, const uint8_t *x, int ldx, int np, const int8_t *w, const sq_qrequant *rq, void *y, int ldy, int m, int M) {\
        __m512i acc[NP][NV];                                                                                            \
        const uint8_t *row[NP];                                                                                         \
        for (int v = 0; v < NV; v++) {                                                                                  \
            __m512i bv = _mm512_loadu_si512(rq->bias + (m + v * 16 < M ? m + v * 16 : m));                              \
            for (int p = 0; p < NP; p++) acc[p][v] = bv;                                                                \
        }                                                                                                               \
        for (int p = 0; p < NP; p++) row[p] = x + (size_t)(p < np ? p : np - 1) * ldx;                                  \
        size_t ws = (size_t)K4 * 16;                                                                                    \
        for (int g = 0; g < K4 / 4; g++) {                                                                              \
            __m512i wv[NV];                                                                                             \
            for (int v = 0; v < NV; v++) wv[v] = _mm512_loadu_si512(w + v * ws + (size_t)g * 64);                       \
            for (int p = 0; p < NP; p++) {                                                                              \
                int32_t xx;                                                                                             \
                memcpy(&xx, row[p] + g * 4, 4);                                                                         \
                __m512i b = _mm512_set1_epi32(xx);                                                                      \
                for (int v = 0; v < NV; v++) acc[p][v] = _mm512_dpbusd_epi32(acc[p][v], b, wv[v]);                      \
            }                                                                                                           \
        }                                                                                                               \
        if (rq->out_float) {                                                                                            \
            for (int v = 0; v < NV; v++) {                                                                              \
                int c = m + v * 16;                                                                                     \
                if (c >= M) break;                                                                                      \
                __mmask16 mask = lanes16(M - c);                               \
                for (int p = 0; p < NP; p++)                                                                            \
                    if (p < np) _mm512_mask_storeu_ps((float *)y + (size_t)p * ldy + c, mask,                           \
                                                      _mm512_mul_ps(_mm512_cvtepi32_ps(acc[p][v]), _mm512_maskz_loadu_ps(mask, rq->scale + c)));\
            }                                                                                                           \
            return;                                                                                                     \
        }                                                                                                               \
        rq_consts k = requant_consts(rq);                                                                               \
        const float *scale = rq->scale;                                                                                 \
        uint8_t *yb = (uint8_t *)y + m;                                                                                 \
        int full = m + NV * 16 <= M;                                                                                    \
        for (int i = 0; i < NP * NV; i += 4) {                                                                          \
            __m512i r[4];                                                                                               \
            for (int j = 0; j < 4; j++) {                                                                               \
                int v = (i + j) % NV;                                                                                   \
                r[j] = requant16(acc[(i + j) / NV][v], _mm512_loadu_ps(scale + (m + v * 16 < M ? m + v * 16 : m)), k);  \
            }                                                                                                           \
            __m512i q = pack4_u8(r[0], r[1], r[2], r[3], k);                                                            \
            if (NV == 4 && full) {                                                                                      \
                if (i / 4 < np) _mm512_storeu_si512(yb + (size_t)(i / 4) * ldy, q);                                     \
                continue;                                                                                               \
            }                                                                                                           \
            for (int j = 0; j < 4; j++) {                                                                               \
                int p = (i + j) / NV, v = (i + j) % NV, c = m + v * 16;                                                 \
                if (p >= np || c >= M) continue;                                                                        \
                __mmask16 mask = lanes16(M - c);                               \
                _mm_mask_storeu_epi8(yb + (size_t)p * ldy + v * 16, mask, quarter(q, j));                               \
            }                                                                                                           \
        }                                                                                                               \
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

// ---- AVX2 GEMM (no VNNI): exact int32 sums by vpmaddwd ----
// A packed group holds, per channel, the dword (w0, w1, w2, w3) of 4 k. Its even bytes (w0, w2) and odd bytes
// (w1, w3) sign-extended to int16 pairs meet the pixel's (x0, x2) and (x1, x3) zero-extended: two vpmaddwd give
// x0 w0 + x2 w2 and x1 w1 + x3 w3 per channel, exact in int32 (vpmaddubsw's int16 sums could saturate).
// Both sides are widened to int16 before the products (widen16_avx2, widen_rows_avx2).

// requant16 for 8 channels.
__attribute__((target("avx2")))
static inline __m256i requant8(__m256i acc, __m256 scale, __m256 hi) {
    return _mm256_cvtps_epi32(_mm256_min_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(acc), scale), hi));
}

// Four vectors of 8 requantized channels each (requant8) to 32 bytes: a's 8, b's, c's, d's.
__attribute__((target("avx2")))
static inline __m256i pack4_u8_avx2(__m256i a, __m256i b, __m256i c, __m256i d, __m256i zero16, __m256i lo8) {
    __m256i ab = _mm256_adds_epi16(_mm256_packs_epi32(a, b), zero16), cd = _mm256_adds_epi16(_mm256_packs_epi32(c, d), zero16);
    return _mm256_permutevar8x32_epi32(_mm256_max_epu8(_mm256_packus_epi16(ab, cd), lo8), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// One packed block of 16 channels (G groups of 4 k) as int16: per group the even pairs of channels 0-7, their odd
// pairs, then the same for channels 8-15 (64 int16).
__attribute__((target("avx2")))
static void widen16_avx2(const int8_t *w, int G, int16_t *out) {
    for (int g = 0; g < G; g++) {
        __m256i v0 = _mm256_loadu_si256((const __m256i *)(w + (size_t)g * 64)), v1 = _mm256_loadu_si256((const __m256i *)(w + (size_t)g * 64 + 32));
        __m256i *o = (__m256i *)(out + (size_t)g * 64);
        _mm256_store_si256(o, _mm256_srai_epi16(_mm256_slli_epi16(v0, 8), 8));
        _mm256_store_si256(o + 1, _mm256_srai_epi16(v0, 8));
        _mm256_store_si256(o + 2, _mm256_srai_epi16(_mm256_slli_epi16(v1, 8), 8));
        _mm256_store_si256(o + 3, _mm256_srai_epi16(v1, 8));
    }
}

// Pixel rows [0, n) of X (K4 bytes each readable) as int16 pairs: per pixel, per group of 4 k, the dwords
// (x0, x2) and (x1, x3), as the weight pairs of widen16_avx2 expect. Writes up to 24 bytes past the last row.
__attribute__((target("avx2")))
static void widen_rows_avx2(const uint8_t *X, int ldx, int n, int K4, int32_t *out) {
    const __m128i order = _mm_setr_epi8(0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11, 12, 14, 13, 15);
    for (int p = 0; p < n; p++) {
        const uint8_t *x = X + (size_t)p * ldx;
        __m256i *o = (__m256i *)(out + (size_t)p * K4 / 2);
        int k = 0;
        for (; k + 16 <= K4; k += 16, o++) _mm256_storeu_si256(o, _mm256_cvtepu8_epi16(_mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(x + k)), order)));
        if (k < K4) {   // 4, 8 or 12 bytes left: as many dwords out of 8
            int32_t d;
            __m128i t = K4 - k >= 8 ? _mm_loadl_epi64((const __m128i *)(x + k)) : (memcpy(&d, x + k, 4), _mm_cvtsi32_si128(d));
            if (K4 - k == 12) t = (memcpy(&d, x + k + 8, 4), _mm_insert_epi32(t, d, 2));
            __m256i v = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(t, order));
            _mm256_storeu_si256(o, v);   // past the row: the next row's start (written after) or the buffer's 32 spare bytes
        }
    }
}

#define AVX2_NP 6

// Pixels are taken in chunks whose widened rows stay near L1 (each chunk meets every 16-channel block, widened per
// chunk); within a chunk, tiles of 16 channels x AVX2_NP pixels. Per pixel and 4 k: two broadcasts, four vpmaddwd.
__attribute__((target("avx2,fma")))
static void gemm_avx2(int M, int K, const uint8_t *X, int ldx, const int8_t *W, const sq_qrequant *rq, void *Y, int ldy,
                      int p0, int p1, int m0, int m1) {
    int K4 = round_up4(K), G = K4 / 4, mm = m1 < M ? m1 : M;
    int chunk = 49152 / (K4 * 2) / AVX2_NP * AVX2_NP;
    chunk = chunk < 3 * AVX2_NP ? 3 * AVX2_NP : chunk > 60 * AVX2_NP ? 60 * AVX2_NP : chunk;
    __m256 hi = _mm256_set1_ps((float)(rq->hi - rq->zero));
    __m256i zero16 = _mm256_set1_epi16((short)rq->zero), lo8 = _mm256_set1_epi8((char)rq->lo);
    size_t wide_bytes = (size_t)G * 128;   // a multiple of 64: the rows after it stay aligned
    int16_t *wide = sq_thread_scratch(SQ_SCRATCH_QGEMM, wide_bytes + (size_t)chunk * K4 * 2 + 32);
    int32_t *xw = (int32_t *)((char *)wide + wide_bytes);
    for (int pc = p0; pc < p1; pc += chunk) {
        int pn = p1 - pc < chunk ? p1 - pc : chunk;
        widen_rows_avx2(X + (size_t)pc * ldx, ldx, pn, K4, xw);
        for (int m = m0; m < mm; m += 16) {
            widen16_avx2(W + (size_t)(m / 16) * K4 * 16, G, wide);
            __m256i b0 = _mm256_loadu_si256((const __m256i *)(rq->bias + m)), b1 = _mm256_loadu_si256((const __m256i *)(rq->bias + m + 8));
            __m256 s0 = _mm256_loadu_ps(rq->scale + m), s1 = _mm256_loadu_ps(rq->scale + m + 8);
            int nc = mm - m < 16 ? mm - m : 16;
            for (int t = 0; t < pn; t += AVX2_NP) {
                int np = pn - t < AVX2_NP ? pn - t : AVX2_NP;
                const int32_t *row[AVX2_NP];
                for (int i = 0; i < AVX2_NP; i++) row[i] = xw + (size_t)(t + (i < np ? i : np - 1)) * (K4 / 2);
                __m256i acc[AVX2_NP][2];
                for (int i = 0; i < AVX2_NP; i++) { acc[i][0] = b0; acc[i][1] = b1; }
                const __m256i *wv = (const __m256i *)wide;
                for (int g = 0; g < G; g++, wv += 4) {
                    __m256i e0 = _mm256_load_si256(wv), o0 = _mm256_load_si256(wv + 1), e1 = _mm256_load_si256(wv + 2), o1 = _mm256_load_si256(wv + 3);
                    for (int i = 0; i < AVX2_NP; i++) {
                        __m256i xe = _mm256_set1_epi32(row[i][2 * g]), xo = _mm256_set1_epi32(row[i][2 * g + 1]);
                        acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_add_epi32(_mm256_madd_epi16(xe, e0), _mm256_madd_epi16(xo, o0)));
                        acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_add_epi32(_mm256_madd_epi16(xe, e1), _mm256_madd_epi16(xo, o1)));
                    }
                }
                for (int i = 0; i < np; i++) {
                    size_t at = (size_t)(pc + t + i) * ldy + m;
                    if (rq->out_float) {
                        float f[16];
                        _mm256_storeu_ps(f, _mm256_mul_ps(_mm256_cvtepi32_ps(acc[i][0]), s0));
                        _mm256_storeu_ps(f + 8, _mm256_mul_ps(_mm256_cvtepi32_ps(acc[i][1]), s1));
                        memcpy((float *)Y + at, f, (size_t)nc * 4);
                        continue;
                    }
                    __m256i r0 = requant8(acc[i][0], s0, hi), r1 = requant8(acc[i][1], s1, hi);
                    __m128i q = _mm256_castsi256_si128(pack4_u8_avx2(r0, r1, r0, r1, zero16, lo8));
                    if (nc == 16) _mm_storeu_si128((__m128i *)((uint8_t *)Y + at), q);
                    else {
                        uint8_t b[16];
                        _mm_storeu_si128((__m128i *)b, q);
                        memcpy((uint8_t *)Y + at, b, (size_t)nc);
                    }
                }
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
    else if (sq_cpu_level() >= 2) gemm_avx2(M, K, X, ldx, W, rq, Y, ldy, p0, p1, m0, m1);
    else gemm_plain(M, K, X, ldx, W, rq, Y, ldy, p0, p1, m0, m1);
}

void sq_im2col_nhwc(const uint8_t *x, int H, int W, int C, int c0, int cn, int KH, int KW, int SH, int SW, int DH, int DW,
                    int PT, int PL, int OW, uint8_t pad, uint8_t *col, int ldcol, int p0, int p1) {
    for (int p = p0; p < p1; p++) {
        int oh = p / OW, ow = p % OW;
        uint8_t *d = col + (size_t)(p - p0) * ldcol;
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

// The AVX2 kernel's taps go in horizontal pairs (kw = 2j, 2j + 1; an odd row's last tap pairs with a weight of 0).
static int dw2_pairs(int KW) { return (KW + 1) / 2; }
static size_t dw_vnni_size(int C, int KH, int KW) { return (size_t)dw_blocks(C) * KH * dw_groups(KW) * 64; }

// The packed weights: the VNNI kernel's bytes (dw_at), then the AVX2 kernel's int16 table (dw2_weights).
size_t sq_qdw_packed_size(int C, int KH, int KW) { return dw_vnni_size(C, KH, KW) + (size_t)dw_blocks(C) * KH * dw2_pairs(KW) * 64; }

// Where sq_qdw_pack puts the weight of channel c at tap (kh, kw) (G = dw_groups(KW)).
static inline size_t dw_at(int KH, int G, int c, int kh, int kw) { return (((size_t)(c / 16) * KH + kh) * G + kw / 4) * 64 + (c % 16) * 4 + kw % 4; }

void sq_qdw_pack(int C, int KH, int KW, const int8_t *w, int8_t *packed) {
    int G = dw_groups(KW);
    memset(packed, 0, sq_qdw_packed_size(C, KH, KW));
    for (int c = 0; c < C; c++)
        for (int kh = 0; kh < KH; kh++)
            for (int kw = 0; kw < KW; kw++)
                packed[dw_at(KH, G, c, kh, kw)] = w[((size_t)c * KH + kh) * KW + kw];
    // Per block of 16 channels, kernel row and pair of taps: 2 x 16 int16 in the order vpunpcklwd / vpunpckhwd leave a
    // pair of widened pixels: (channels 0-3 | 8-11), then (4-7 | 12-15), each channel as (w[2j], w[2j + 1]).
    int P = dw2_pairs(KW);
    int16_t *t = (int16_t *)(packed + dw_vnni_size(C, KH, KW));
    for (int cb = 0; cb < dw_blocks(C); cb++)
        for (int kh = 0; kh < KH; kh++)
            for (int j = 0; j < P; j++)
                for (int h = 0; h < 2; h++)
                    for (int i = 0; i < 16; i++) {
                        int c = cb * 16 + (i / 8) * 8 + h * 4 + (i % 8) / 2, kw = 2 * j + i % 2;
                        *t++ = c < C && kw < KW ? w[((size_t)c * KH + kh) * KW + kw] : 0;
                    }
}

static int dw_vnni(void) { return has_vbmi() && sq_cpu_has_vnni(); }

// The AVX2 ring stores every column a pair starts at: every second one when the stride is even.
static int dw2_colstep(int SW) { return SW % 2 == 0 ? 2 : 1; }
static int dw2_cols(int KW, int SW, int OW) { return ((OW - 1) * SW + 2 * (dw2_pairs(KW) - 1)) / dw2_colstep(SW) + 1; }

size_t sq_qdw_scratch_size(int C, int KH, int KW, int SW, int OW) {
    if (KH > 16 || KW > 16) return 0;
    if (dw_vnni()) return (size_t)KH * dw_cols(KW, SW, OW) * dw_blocks(C) * 64;
    if (sq_cpu_level() >= 2) return (size_t)KH * dw2_cols(KW, SW, OW) * dw_blocks(C) * 64;
    return 0;
}

static int dw_batch(int cs) { return (8 - 4) / cs + 1; }   // stored columns per 8 pixels

// `idx[b]`: the byte order of the b-th stored column of a batch of 8 pixels.
__attribute__((target("avx512f")))
static void dw_order(int cs, __m512i idx[5]) {
    for (int b = 0; b < dw_batch(cs); b++) {
        uint8_t order[64];
        for (int c = 0; c < 16; c++)
            for (int j = 0; j < 4; j++) order[c * 4 + j] = (uint8_t)((b * cs + j) * 16 + c);
        idx[b] = _mm512_loadu_si512(order);
    }
}

// Copy row r. Per block of 16 channels, 8 consecutive pixels go into two registers (16 bytes each) and every
// stored column among them is one two-register byte permute (vpermt2b): byte 4c + j = channel c of the column's
// j-th pixel.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vbmi")))
static void dw_prepare_row(const uint8_t *x, int H, int W, int C, int KW, int SW, int PT, int PL, int OW, uint8_t zero, const __m512i idx[5],
                           int r, uint8_t *drow) {
    int CB = dw_blocks(C), cols = dw_cols(KW, SW, OW), cs = dw_colstep(SW), batch = dw_batch(cs);
    size_t colStride = (size_t)CB * 64;
    int ih = r - PT;
    if (ih < 0 || ih >= H) {   // a padding row: every byte the zero point
        __m512i z = _mm512_set1_epi8((char)zero);
        for (size_t i = 0; i < (size_t)cols * CB; i++) _mm512_storeu_si512(drow + i * 64, z);
        return;
    }
    const uint8_t *row = x + (size_t)ih * W * C;
    __m128i zv = _mm_set1_epi8((char)zero);
    for (int s0 = 0; s0 < cols; s0 += batch) {
        int nb = cols - s0 < batch ? cols - s0 : batch, iw0 = s0 * cs - PL, inside = iw0 >= 0 && iw0 + 8 <= W;
        const uint8_t *src[8];
        for (int j = 0; j < 8; j++) src[j] = iw0 + j >= 0 && iw0 + j < W ? row + (size_t)(iw0 + j) * C : NULL;
        for (int cb = 0; cb < CB; cb++) {
            int c = cb * 16;
            __m512i lo, hi;
            if (inside && C - c >= 16) {   // 8 pixels in the image, a whole block: loads folded into the inserts
                const uint8_t *p = src[0] + c;
                lo = _mm512_inserti32x4(_mm512_inserti32x4(_mm512_inserti32x4(_mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)p)),
                         _mm_loadu_si128((const __m128i *)(p + C)), 1), _mm_loadu_si128((const __m128i *)(p + 2 * C)), 2), _mm_loadu_si128((const __m128i *)(p + 3 * C)), 3);
                p += 4 * (size_t)C;
                hi = _mm512_inserti32x4(_mm512_inserti32x4(_mm512_inserti32x4(_mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)p)),
                         _mm_loadu_si128((const __m128i *)(p + C)), 1), _mm_loadu_si128((const __m128i *)(p + 2 * C)), 2), _mm_loadu_si128((const __m128i *)(p + 3 * C)), 3);
            } else {
                __mmask16 mask = lanes16(C - c);
                __m128i v[8];
                for (int j = 0; j < 8; j++) v[j] = src[j] ? _mm_maskz_loadu_epi8(mask, src[j] + c) : zv;
                lo = _mm512_inserti32x4(_mm512_inserti32x4(_mm512_inserti32x4(_mm512_castsi128_si512(v[0]), v[1], 1), v[2], 2), v[3], 3);
                hi = _mm512_inserti32x4(_mm512_inserti32x4(_mm512_inserti32x4(_mm512_castsi128_si512(v[4]), v[5], 1), v[6], 2), v[7], 3);
            }
            for (int b = 0; b < nb; b++)
                _mm512_storeu_si512(drow + (size_t)(s0 + b) * colStride + (size_t)cb * 64, _mm512_permutex2var_epi8(lo, idx[b], hi));
        }
    }
}

// One row of output pixels for the channel block cb: the block's KH x G weight vectors, bias and scale stay in
// registers while 4 pixels at a time are accumulated (independent chains). KH and G are constants where inlined.
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx512vbmi"), always_inline))
static inline void dw_row_block(const uint8_t *const *rows, int KH, int G, int OW, int SW, int cs, size_t colStride, size_t groupStride,
                                int C, int cb, const int8_t *packed, const sq_qrequant *rq, rq_consts k, uint8_t *yrow) {
    __m512i wv[16 * 4];   // KH, KW <= 16 (sq_qdw_run)
    const int8_t *w = packed + (size_t)cb * KH * G * 64;
    for (int t = 0; t < KH * G; t++) wv[t] = _mm512_loadu_si512(w + (size_t)t * 64);
    int c = cb * 16;
    __m512i bv = _mm512_loadu_si512(rq->bias + c);
    __m512 sv = _mm512_loadu_ps(rq->scale + c);
    __mmask16 mask = lanes16(C - c);
    size_t cbo = (size_t)cb * 64, step = (size_t)(SW / cs) * colStride;
    int ow = 0;
    for (; ow + 4 <= OW; ow += 4) {
        size_t at = (size_t)(ow * SW / cs) * colStride + cbo;
        __m512i a0 = bv, a1 = bv, a2 = bv, a3 = bv;
        for (int kh = 0; kh < KH; kh++)
            for (int g = 0; g < G; g++) {
                const uint8_t *s = rows[kh] + at + (size_t)g * groupStride;
                __m512i wt = wv[kh * G + g];
                a0 = _mm512_dpbusd_epi32(a0, _mm512_loadu_si512(s), wt);
                a1 = _mm512_dpbusd_epi32(a1, _mm512_loadu_si512(s + step), wt);
                a2 = _mm512_dpbusd_epi32(a2, _mm512_loadu_si512(s + 2 * step), wt);
                a3 = _mm512_dpbusd_epi32(a3, _mm512_loadu_si512(s + 3 * step), wt);
            }
        uint8_t *yp = yrow + (size_t)ow * C + c;
        __m512i q = pack4_u8(requant16(a0, sv, k), requant16(a1, sv, k), requant16(a2, sv, k), requant16(a3, sv, k), k);
        for (int j = 0; j < 4; j++) _mm_mask_storeu_epi8(yp + (size_t)j * C, mask, quarter(q, j));
    }
    for (; ow < OW; ow++) {
        size_t at = (size_t)(ow * SW / cs) * colStride + cbo;
        __m512i a0 = bv;
        for (int kh = 0; kh < KH; kh++)
            for (int g = 0; g < G; g++) a0 = _mm512_dpbusd_epi32(a0, _mm512_loadu_si512(rows[kh] + at + (size_t)g * groupStride), wv[kh * G + g]);
        __m512i r = requant16(a0, sv, k);
        _mm_mask_storeu_epi8(yrow + (size_t)ow * C + c, mask, _mm512_castsi512_si128(pack4_u8(r, r, r, r, k)));
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
        uint8_t *yrow = y + (size_t)oh * OW * C;
        for (int cb = 0; cb < CB; cb++) {
            if (KH == 3 && G == 1) dw_row_block(rows, 3, 1, OW, SW, cs, colStride, groupStride, C, cb, packed, rq, k, yrow);
            else if (KH == 5 && G == 2) dw_row_block(rows, 5, 2, OW, SW, cs, colStride, groupStride, C, cb, packed, rq, k, yrow);
            else dw_row_block(rows, KH, G, OW, SW, cs, colStride, groupStride, C, cb, packed, rq, k, yrow);
        }
    }
}

// AVX2 (no VNNI): taps in horizontal pairs. A ring of KH padded input rows (slot r % KH, as the VNNI path's) holds,
// per stored column and block of 16 channels, the pixel there and the one to its right widened to int16 and
// interleaved by vpunpcklwd / vpunpckhwd (channels 0-3 | 8-11, then 4-7 | 12-15: 64 bytes); pads hold the zero
// point. Each row is made once, as the windows reach it, so an output pixel costs only loads and vpmaddwd against
// the packed pair table (a 3x3 window: 6 per half), exact in int32; one lane swap per 16 outputs at the end.

// 16 channels of pixel iw of `row` widened to int16; the zero point outside the row, 0 past the last channel.
__attribute__((target("avx2")))
static inline __m256i dw2_pixel(const uint8_t *row, int W, int C, int iw, int c, __m256i z16) {
    if (iw < 0 || iw >= W) return z16;
    const uint8_t *p = row + (size_t)iw * C + c;
    if (C - c >= 16) return _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)p));
    uint8_t t[16] = {0};
    memcpy(t, p, (size_t)(C - c));   // do not read past the tensor
    return _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)t));
}

__attribute__((target("avx2")))
static void dw2_prepare_row(const uint8_t *x, int H, int W, int C, int KW, int SW, int PL, int OW, uint8_t zero, int ih, uint8_t *drow) {
    int CB = dw_blocks(C), cols = dw2_cols(KW, SW, OW), cs = dw2_colstep(SW);
    size_t colStride = (size_t)CB * 64;
    __m256i z16 = _mm256_set1_epi16(zero);
    if (ih < 0 || ih >= H) {   // a padding row
        for (size_t i = 0; i < (size_t)cols * CB * 2; i++) _mm256_storeu_si256((__m256i *)drow + i, z16);
        return;
    }
    const uint8_t *row = x + (size_t)ih * W * C;
    for (int cb = 0; cb < CB; cb++) {
        __m256i u = dw2_pixel(row, W, C, -PL, cb * 16, z16);
        for (int s = 0; s < cols; s++) {
            int iw = s * cs - PL;
            if (cs != 1) u = dw2_pixel(row, W, C, iw, cb * 16, z16);
            __m256i v = dw2_pixel(row, W, C, iw + 1, cb * 16, z16);
            __m256i *o = (__m256i *)(drow + (size_t)s * colStride + (size_t)cb * 64);
            _mm256_storeu_si256(o, _mm256_unpacklo_epi16(u, v));
            _mm256_storeu_si256(o + 1, _mm256_unpackhi_epi16(u, v));
            u = v;
        }
    }
}

// One row of output pixels for the channel block cb, two pixels at a time. KH and P are constants where inlined.
__attribute__((target("avx2,fma"), always_inline))
static inline void dw2_row_block(const uint8_t *const *rows, int KH, int P, int OW, int SW, int cs, size_t colStride, int C, int cb,
                                 const int16_t *table, const sq_qrequant *rq, __m256 hi, __m256i zero16, __m256i lo8, uint8_t *yrow) {
    const __m256i *wt = (const __m256i *)(table + (size_t)cb * KH * P * 32);
    int c = cb * 16, cn = C - c < 16 ? C - c : 16;
    __m256i b0 = _mm256_loadu_si256((const __m256i *)(rq->bias + c)), b1 = _mm256_loadu_si256((const __m256i *)(rq->bias + c + 8));
    __m256 s0 = _mm256_loadu_ps(rq->scale + c), s1 = _mm256_loadu_ps(rq->scale + c + 8);
    size_t cbo = (size_t)cb * 64, pair = (size_t)(2 / cs) * colStride, step = (size_t)(SW / cs) * colStride;
    for (int ow = 0; ow < OW; ow += 2) {
        int two = ow + 1 < OW;
        size_t at = (size_t)(ow * SW / cs) * colStride + cbo, at1 = two ? at + step : at;
        __m256i a0 = _mm256_setzero_si256(), h0 = a0, a1 = a0, h1 = a0;
        for (int kh = 0; kh < KH; kh++)
            for (int j = 0; j < P; j++) {
                const uint8_t *s = rows[kh] + (size_t)j * pair;
                __m256i wl = _mm256_load_si256(wt + (kh * P + j) * 2), wh = _mm256_load_si256(wt + (kh * P + j) * 2 + 1);
                a0 = _mm256_add_epi32(a0, _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(s + at)), wl));
                h0 = _mm256_add_epi32(h0, _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(s + at + 32)), wh));
                a1 = _mm256_add_epi32(a1, _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(s + at1)), wl));
                h1 = _mm256_add_epi32(h1, _mm256_madd_epi16(_mm256_loadu_si256((const __m256i *)(s + at1 + 32)), wh));
            }
        __m256i r0 = requant8(_mm256_add_epi32(_mm256_permute2x128_si256(a0, h0, 0x20), b0), s0, hi);
        __m256i r1 = requant8(_mm256_add_epi32(_mm256_permute2x128_si256(a0, h0, 0x31), b1), s1, hi);
        __m256i r2 = requant8(_mm256_add_epi32(_mm256_permute2x128_si256(a1, h1, 0x20), b0), s0, hi);
        __m256i r3 = requant8(_mm256_add_epi32(_mm256_permute2x128_si256(a1, h1, 0x31), b1), s1, hi);
        __m256i out = pack4_u8_avx2(r0, r1, r2, r3, zero16, lo8);   // pixel ow's 16 bytes, then pixel ow + 1's
        uint8_t *yp = yrow + (size_t)ow * C + c;
        if (cn == 16) {
            _mm_storeu_si128((__m128i *)yp, _mm256_castsi256_si128(out));
            if (two) _mm_storeu_si128((__m128i *)(yp + C), _mm256_extracti128_si256(out, 1));
        } else {
            uint8_t o[32];
            _mm256_storeu_si256((__m256i *)o, out);
            memcpy(yp, o, (size_t)cn);
            if (two) memcpy(yp + C, o + 16, (size_t)cn);
        }
    }
}

// Output rows [oh0, oh1).
__attribute__((target("avx2,fma")))
static void dw_run_avx2(const uint8_t *x, int H, int W, int C, int KH, int KW, int SH, int SW, int PT, int PL, int OW, uint8_t zero,
                        const int8_t *packed, const sq_qrequant *rq, uint8_t *y, uint8_t *ring, int oh0, int oh1) {
    int CB = dw_blocks(C), P = dw2_pairs(KW), cs = dw2_colstep(SW);
    size_t colStride = (size_t)CB * 64, rowStride = (size_t)dw2_cols(KW, SW, OW) * colStride;
    const int16_t *table = (const int16_t *)(packed + dw_vnni_size(C, KH, KW));
    __m256 hi = _mm256_set1_ps((float)(rq->hi - rq->zero));
    __m256i zero16 = _mm256_set1_epi16((short)rq->zero), lo8 = _mm256_set1_epi8((char)rq->lo);
    int made = -1;   // the last padded row in the ring
    const uint8_t *rows[16];
    for (int oh = oh0; oh < oh1; oh++) {
        int top = oh * SH;
        for (int r = made + 1 > top ? made + 1 : top; r < top + KH; r++) dw2_prepare_row(x, H, W, C, KW, SW, PL, OW, zero, r - PT, ring + (size_t)(r % KH) * rowStride);
        made = top + KH - 1;
        for (int kh = 0; kh < KH; kh++) rows[kh] = ring + (size_t)((top + kh) % KH) * rowStride;
        uint8_t *yrow = y + (size_t)oh * OW * C;
        for (int cb = 0; cb < CB; cb++) {
            if (KH == 3 && P == 2) dw2_row_block(rows, 3, 2, OW, SW, cs, colStride, C, cb, table, rq, hi, zero16, lo8, yrow);
            else if (KH == 5 && P == 3) dw2_row_block(rows, 5, 3, OW, SW, cs, colStride, C, cb, table, rq, hi, zero16, lo8, yrow);
            else dw2_row_block(rows, KH, P, OW, SW, cs, colStride, C, cb, table, rq, hi, zero16, lo8, yrow);
        }
    }
}

// The portable loop (compiled per instruction level): per block of up to 64 channels, the weights unpacked once
// into a tap-major table so the channel loop is contiguous and vectorizes; taps outside the image read a row of
// zero points. Windows of more than 256 taps (no real network has them) read the packed weights directly.
CLONES
static void dw_run_plain(const uint8_t *x, int H, int W, int C, int KH, int KW, int SH, int SW, int PT, int PL, int OW, uint8_t zero,
                         const int8_t *packed, const sq_qrequant *rq, uint8_t *y, int p0, int p1) {
    enum { CN = 64, TAPS = 256 };
    int G = dw_groups(KW), T = KH * KW;
    int32_t acc[CN], wl[T <= TAPS ? T * CN : 1];
    uint8_t zrow[CN];
    memset(zrow, zero, sizeof zrow);
    for (int c0 = 0; c0 < C; c0 += CN) {
        int cn = C - c0 < CN ? C - c0 : CN;
        if (T <= TAPS)
            for (int t = 0; t < T; t++)
                for (int c = 0; c < cn; c++) wl[t * CN + c] = packed[dw_at(KH, G, c0 + c, t / KW, t % KW)];
        for (int p = p0; p < p1; p++) {
            int oh = p / OW, ow = p % OW;
            for (int c = 0; c < cn; c++) acc[c] = rq->bias[c0 + c];
            for (int kh = 0; kh < KH; kh++) {
                int ih = oh * SH - PT + kh;
                for (int kw = 0; kw < KW; kw++) {
                    int iw = ow * SW - PL + kw;
                    const uint8_t *xr = ih >= 0 && ih < H && iw >= 0 && iw < W ? x + ((size_t)ih * W + iw) * C + c0 : zrow;
                    if (T <= TAPS) {
                        const int32_t *wt = wl + (kh * KW + kw) * CN;
                        for (int c = 0; c < cn; c++) acc[c] += (int32_t)xr[c] * wt[c];
                    } else {
                        for (int c = 0; c < cn; c++) acc[c] += (int32_t)xr[c] * packed[dw_at(KH, G, c0 + c, kh, kw)];
                    }
                }
            }
            for (int c = 0; c < cn; c++) y[(size_t)p * C + c0 + c] = requant_float(acc[c], rq->scale[c0 + c], rq->zero, rq->lo, rq->hi);
        }
    }
}

void sq_qdw_run(const uint8_t *x, uint8_t *scratch, int H, int W, int C, int KH, int KW, int SH, int SW, int PT, int PL,
                int OW, uint8_t zero, const int8_t *packed, const sq_qrequant *rq, uint8_t *y, int oh0, int oh1) {
    if (scratch && dw_vnni() && KH <= 16 && KW <= 16) dw_run_vnni(x, H, W, C, KH, KW, SH, SW, PT, PL, OW, zero, packed, rq, y, scratch, oh0, oh1);
    else if (scratch && sq_cpu_level() >= 2 && KH <= 16 && KW <= 16) dw_run_avx2(x, H, W, C, KH, KW, SH, SW, PT, PL, OW, zero, packed, rq, y, scratch, oh0, oh1);
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

// 16 elements at a time: two halves of 8 lanes, packed to bytes (values already in [lo, hi], so the saturating packs
// are exact).
__attribute__((target("avx2,fma")))
static void add_avx2(const uint8_t *a, const uint8_t *b, const sq_qadd *q, uint8_t *y, size_t n0, size_t n1) {
    __m256i oa = _mm256_set1_epi32(q->off_a), ob = _mm256_set1_epi32(q->off_b), oy = _mm256_set1_epi32(q->off_y);
    __m256 ra = _mm256_set1_ps(q->ra), rb = _mm256_set1_ps(q->rb), fixed = _mm256_set1_ps(q->fixed);
    __m256 fl = _mm256_set1_ps((float)(q->lo - q->off_y)), fh = _mm256_set1_ps((float)(q->hi - q->off_y));
    size_t i = n0;
    for (; i + 16 <= n1; i += 16) {
        __m256i r[2];
        for (int h = 0; h < 2; h++) {
            __m256 av = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(a + i + 8 * h))), oa));
            __m256 bv = _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(b + i + 8 * h))), ob));
            __m256 f = _mm256_min_ps(_mm256_max_ps(_mm256_fmadd_ps(av, ra, _mm256_fmadd_ps(bv, rb, fixed)), fl), fh);
            r[h] = _mm256_add_epi32(_mm256_cvtps_epi32(f), oy);
        }
        __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(r[0], r[1]), 0xD8);
        _mm_storeu_si128((__m128i *)(y + i), _mm256_castsi256_si128(_mm256_permute4x64_epi64(_mm256_packus_epi16(w, w), 0x08)));
    }
    for (; i < n1; i++) y[i] = add1(a[i], b[i], q);
}

CLONES
static void add_plain(const uint8_t *a, const uint8_t *b, const sq_qadd *q, uint8_t *y, size_t n0, size_t n1) {
    for (size_t i = n0; i < n1; i++) y[i] = add1(a[i], b[i], q);
}

void sq_qadd_u8(const uint8_t *a, const uint8_t *b, const sq_qadd *q, uint8_t *y, size_t n0, size_t n1) {
    if (has_avx512_bw()) add_avx512(a, b, q, y, n0, n1);
    else if (sq_cpu_level() >= 2) add_avx2(a, b, q, y, n0, n1);
    else add_plain(a, b, q, y, n0, n1);
}

// ---- moves, pooling, conversions ----

CLONES
static void copy_plain(const uint8_t *x, int ldx, int P, int C, const uint8_t *table, uint8_t *y, int ldy) {
    for (int p = 0; p < P; p++) {
        const uint8_t *s = x + (size_t)p * ldx;
        uint8_t *d = y + (size_t)p * ldy;
        if (!table) { memcpy(d, s, C); continue; }
        for (int c = 0; c < C; c++) d[c] = table[s[c]];
    }
}

// The table held in four registers; per 64 bytes two vpermi2b look up the low 7 bits in the table's halves (entries
// 0-127 and 128-255) and the high bit picks between them: 64 bytes in a few instructions where the plain loop does
// one load per byte (a 256-entry table is how every elementwise activation, scalar Mul and requantized copy runs).
__attribute__((target("avx512f,avx512bw,avx512vbmi")))
static void copy_table_vbmi(const uint8_t *x, int ldx, int P, int C, const uint8_t *table, uint8_t *y, int ldy) {
    __m512i t0 = _mm512_loadu_si512(table), t1 = _mm512_loadu_si512(table + 64);
    __m512i t2 = _mm512_loadu_si512(table + 128), t3 = _mm512_loadu_si512(table + 192);
    for (int p = 0; p < P; p++) {
        const uint8_t *s = x + (size_t)p * ldx;
        uint8_t *d = y + (size_t)p * ldy;
        for (int c = 0; c < C; c += 64) {
            int full = C - c >= 64;   // whole vectors plainly (masked 512-bit memory operations are slower on Zen 4)
            __mmask64 m = full ? ~0ull : (1ull << (C - c)) - 1;
            __m512i v = full ? _mm512_loadu_si512(s + c) : _mm512_maskz_loadu_epi8(m, s + c);
            __m512i lo = _mm512_permutex2var_epi8(t0, v, t1), hi = _mm512_permutex2var_epi8(t2, v, t3);
            __m512i r = _mm512_mask_blend_epi8(_mm512_movepi8_mask(v), lo, hi);
            if (full) _mm512_storeu_si512(d + c, r); else _mm512_mask_storeu_epi8(d + c, m, r);
        }
    }
}

void sq_qcopy_channels(const uint8_t *x, int ldx, int P, int C, const uint8_t *table, uint8_t *y, int ldy) {
    if (table && has_avx512_bw() && has_vbmi()) copy_table_vbmi(x, ldx, P, C, table, y, ldy);
    else copy_plain(x, ldx, P, C, table, y, ldy);
}

// Per output pixel, 64 channels at a time held in a register across the window's in-image taps.
__attribute__((target("avx512f,avx512bw")))
static void maxpool_avx512(const uint8_t *x, int H, int W, int C, int KH, int KW, int SH, int SW, int DH, int DW, int PT, int PL,
                           uint8_t *y, int OW, int p0, int p1) {
    for (int p = p0; p < p1; p++) {
        int oh = p / OW, ow = p % OW;
        for (int c = 0; c < C; c += 64) {
            __mmask64 mask = C - c >= 64 ? ~0ull : (1ull << (C - c)) - 1;
            __m512i m = _mm512_setzero_si512();
            for (int kh = 0; kh < KH; kh++) {
                int ih = oh * SH - PT + kh * DH;
                if (ih < 0 || ih >= H) continue;
                for (int kw = 0; kw < KW; kw++) {
                    int iw = ow * SW - PL + kw * DW;
                    if (iw >= 0 && iw < W) m = _mm512_max_epu8(m, _mm512_maskz_loadu_epi8(mask, x + ((size_t)ih * W + iw) * C + c));
                }
            }
            _mm512_mask_storeu_epi8(y + (size_t)p * C + c, mask, m);
        }
    }
}

CLONES
static void maxpool_plain(const uint8_t *x, int H, int W, int C, int KH, int KW, int SH, int SW, int DH, int DW, int PT, int PL,
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

void sq_qmaxpool_nhwc(const uint8_t *x, int H, int W, int C, int KH, int KW, int SH, int SW, int DH, int DW, int PT, int PL,
                      uint8_t *y, int OW, int p0, int p1) {
    if (has_avx512_bw()) maxpool_avx512(x, H, W, C, KH, KW, SH, SW, DH, DW, PT, PL, y, OW, p0, p1);
    else maxpool_plain(x, H, W, C, KH, KW, SH, SW, DH, DW, PT, PL, y, OW, p0, p1);
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

// ---- QuantizeLinear of the float input: clamp(rint(x / scale) + zero, lo, hi), x / scale in float32 ----

static inline uint8_t quantize1(float x, float scale, int zero, int lo, int hi) {
    float v = __builtin_rintf(x / scale) + (float)zero;
    v = v < (float)lo ? (float)lo : v > (float)hi ? (float)hi : v;
    return (uint8_t)(int)v;
}

CLONES
static void quantize_run(const float *x, int n, float scale, int zero, int lo, int hi, uint8_t *y) {
    for (int i = 0; i < n; i++) y[i] = quantize1(x[i], scale, zero, lo, hi);
}

// 64 floats to 64 bytes: rint(x / scale) + zero, clamped, through requant16's and pack4_u8's steps.
__attribute__((target("avx512f,avx512bw")))
static inline __m512i quantize64(const float *x, __m512 scale, rq_consts k) {
    __m512i q[4];
    for (int j = 0; j < 4; j++) q[j] = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_div_ps(_mm512_loadu_ps(x + 16 * j), scale), k.hi));
    return pack4_u8(q[0], q[1], q[2], q[3], k);
}

// Three planes' 64 pixels interleaved as 192 NHWC bytes (channel c of pixel p at 3p + c): per output vector one
// two-source byte permute of planes 0 and 1 and a masked one-source permute of plane 2.
__attribute__((target("avx512f,avx512bw,avx512vbmi")))
static void quantize_nhwc3_avx512(const float *x, int HW, float scale, int zero, int lo, int hi, uint8_t *y, int p0, int p1) {
    sq_qrequant limits = { NULL, NULL, zero, lo, hi, 0 };
    rq_consts k = requant_consts(&limits);
    __m512 sv = _mm512_set1_ps(scale);
    __m512i i01[3], i2[3];
    __mmask64 m2[3];
    for (int o = 0; o < 3; o++) {   // output vector o: bytes [64 o, 64 o + 64) of the 192
        uint8_t a[64], b[64];
        uint64_t m = 0;
        for (int j = 0; j < 64; j++) {
            int g = 64 * o + j, p = g / 3, c = g % 3;
            a[j] = (uint8_t)(c == 1 ? 64 + p : p);
            b[j] = (uint8_t)p;
            if (c == 2) m |= 1ull << j;
        }
        i01[o] = _mm512_loadu_si512(a); i2[o] = _mm512_loadu_si512(b); m2[o] = m;
    }
    int p = p0;
    for (; p + 64 <= p1; p += 64) {
        __m512i r0 = quantize64(x + p, sv, k), r1 = quantize64(x + HW + p, sv, k), r2 = quantize64(x + 2 * (size_t)HW + p, sv, k);
        for (int o = 0; o < 3; o++)
            _mm512_storeu_si512(y + (size_t)p * 3 + 64 * o, _mm512_mask_permutexvar_epi8(_mm512_permutex2var_epi8(r0, i01[o], r1), m2[o], i2[o], r2));
    }
    for (; p < p1; p++)
        for (int c = 0; c < 3; c++) y[(size_t)p * 3 + c] = quantize1(x[(size_t)c * HW + p], scale, zero, lo, hi);
}

void sq_quantize_planes(const float *x, int C, int HW, float scale, int zero, int lo, int hi, uint8_t *y, int nhwc, int p0, int p1) {
    if (!nhwc || C == 1) {
        for (int c = 0; c < C; c++) quantize_run(x + (size_t)c * HW + p0, p1 - p0, scale, zero, lo, hi, y + (size_t)c * HW + p0);
        return;
    }
    if (C == 3 && has_vbmi() && has_avx512_bw()) { quantize_nhwc3_avx512(x, HW, scale, zero, lo, hi, y, p0, p1); return; }
    uint8_t run[1024];
    for (int c = 0; c < C; c++)
        for (int i = p0; i < p1; i += 1024) {
            int n = p1 - i < 1024 ? p1 - i : 1024;
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
