// 3x3 stride-1 convolution by Winograd's minimal filtering F(4x4, 3x3) (Lavin & Gray 2016): each 4x4 block of
// outputs (a tile) comes from a 6x6 patch of input, and in the transformed domain the convolution is 36 independent
// products of M x C weights by C x tiles inputs: 36 multiply-adds per channel pair and tile of 16 outputs, where the
// direct form spends 144 (4x fewer). The transforms, with the points 0, ±1, ±2 and infinity:
//   input   V = Bᵀ d B,  Bᵀ = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
//   weights U = G g Gᵀ,  G  = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
//   output  Y = Aᵀ m A,  Aᵀ = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
// U is computed in double and rounded once, when the weights are packed. The products are sq_gemm_packed's, one per
// transformed position ξ (the 36 cells of the 6x6 patch). The input and output transforms are written with no fused
// multiply-add (contraction off in this file), so every instruction level computes them alike, and sq_winograd_ref
// spells the same arithmetic out one tile at a time.
//
// Rounding: each output is a sum of the same products as the direct convolution's, but through the transforms, so it
// rounds at the scale of the layer's largest values: on random data within about 1e-5 of the largest output (the
// test sweep; the direct form's own rounding is a few 1e-7 of it).
#include "CKernels.h"
#include "scratch.h"
#include "simd.h"
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#pragma clang fp contract(off)

// The output rows a block of the products keeps at once (a multiple of both panel heights, 12 and 8).
enum { WG_ROWS = 48, WG_X = 36 };

// u = G g Gᵀ for one 3x3 kernel g (row-major), in double.
static void weight_tile(const float *g, float u[WG_X]) {
    static const double G[6][3] = {{0.25, 0, 0},
                                   {-1.0 / 6, -1.0 / 6, -1.0 / 6},
                                   {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                   {1.0 / 24, 1.0 / 12, 1.0 / 6},
                                   {1.0 / 24, -1.0 / 12, 1.0 / 6},
                                   {0, 0, 1}};
    double t[6][3];
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 3; j++) t[i][j] = G[i][0] * g[j] + G[i][1] * g[3 + j] + G[i][2] * g[6 + j];
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 6; j++) u[6 * i + j] = (float)(t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2]);
}

size_t sq_winograd_packed_size(int M, int C) { return WG_X * sq_packed_a_size(M, C); }

void sq_winograd_pack(int M, int C, const float *w, float *packed) {
    size_t n = (size_t)M * (size_t)C, slot = sq_packed_a_size(M, C);
    float *u = malloc(sizeof(float) * WG_X * (n ? n : 1));
    if (!u) abort();
    for (size_t i = 0; i < n; i++) {
        float t[WG_X];
        weight_tile(w + 9 * i, t);
        for (int x = 0; x < WG_X; x++) u[(size_t)x * n + i] = t[x];
    }
    for (int x = 0; x < WG_X; x++) sq_pack_a(M, C, u + (size_t)x * n, C, packed + (size_t)x * slot);
    free(u);
}

// Bᵀ d for six values (scalars or vectors alike): r0 = 4d0 - 5d2 + d4, r1,2 = (d4 - 4d2) ∓ (4d1 - d3),
// r3,4 = (d4 - d2) ± 2(d3 - d1), r5 = 4d1 - 5d3 + d5.
#define BT6(T, d0, d1, d2, d3, d4, d5, r)                                                                                \
    do {                                                                                                                 \
        T p_ = (d4) - 4.0f * (d2), q_ = 4.0f * (d1) - (d3), s_ = (d4) - (d2), e_ = 2.0f * ((d3) - (d1));                 \
        r[0] = (4.0f * (d0) - 5.0f * (d2)) + (d4);                                                                       \
        r[1] = p_ - q_;                                                                                                  \
        r[2] = p_ + q_;                                                                                                  \
        r[3] = s_ + e_;                                                                                                  \
        r[4] = s_ - e_;                                                                                                  \
        r[5] = (4.0f * (d1) - 5.0f * (d3)) + (d5);                                                                       \
    } while (0)

// Aᵀ m for six values: o0 = m0 + a + c, o1 = b + 2d, o2 = a + 4c, o3 = (b + 8d) + m5 with a, b = m1 ± m2 and
// c, d = m3 ± m4.
#define AT6(T, m0, m1, m2, m3, m4, m5, o)                                                                                \
    do {                                                                                                                 \
        T a_ = (m1) + (m2), b_ = (m1) - (m2), c_ = (m3) + (m4), d_ = (m3) - (m4);                                        \
        o[0] = ((m0) + a_) + c_;                                                                                         \
        o[1] = b_ + 2.0f * d_;                                                                                           \
        o[2] = a_ + 4.0f * c_;                                                                                           \
        o[3] = (b_ + 8.0f * d_) + (m5);                                                                                  \
    } while (0)

static inline float clampf(float v, float lo, float hi) { return __builtin_fminf(__builtin_fmaxf(v, lo), hi); }

// Unaligned 16-float loads and stores (macros: a function taking or returning a v16 would need one ABI for all clones).
#define LOAD16(p) ({ v16 v_; memcpy(&v_, (p), sizeof v_); v_; })
#define STORE16(p, v) do { v16 s_ = (v); memcpy((p), &s_, sizeof s_); } while (0)

// Lanes 0-7 of every fourth value of a (from `o`), then of b.
#define QUARTER(a, b, o) __builtin_shufflevector(a, b, o, o + 4, o + 8, o + 12, o + 16, o + 20, o + 24, o + 28, \
                                                 o + 1, o + 5, o + 9, o + 13, o + 17, o + 21, o + 25, o + 29)
#define LOW_HALVES 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23
#define HIGH_HALVES 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31
#define ZIP_LO 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23
#define ZIP_HI 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31

// The input transform of channel plane `p` (H x W) for tiles [t0, t1) into v[ξ * xs + (t - t0)]: tile t = (ty, tx)
// reads rows 4ty - PT .. + 5 and columns 4tx - PL .. + 5 (0 outside the image). 16 tiles of a tile row at a time,
// from the row's six input rows copied with their zeros into `stage` (6 x sw floats); a vector running past the last
// tile of a row writes on into the next row's slots (written after it) or the padding past t1 - t0.
CLONES
static void transform_input(const float *p, int H, int W, int PT, int PL, int TW, int t0, int t1, float *v, size_t xs,
                            float *stage, int sw) {
    for (int ty = t0 / TW; ty * TW < t1; ty++) {
        int a = t0 > ty * TW ? t0 - ty * TW : 0, b = t1 < (ty + 1) * TW ? t1 - ty * TW : TW;
        // Columns [4a, 4a + k1) of the six rows, column k of the stage being 4a + k - PL.
        int k1 = 4 * ((b - a + 15) / 16 * 16) + 4;
        for (int i = 0; i < 6; i++) {
            int r = 4 * ty - PT + i;
            float *s = stage + (size_t)i * sw;
            if (r < 0 || r >= H) {
                memset(s, 0, sizeof(float) * (size_t)k1);
                continue;
            }
            // Stage columns [kb, ke) lie in the image; zeros around them.
            int c0 = 4 * a - PL, kb = c0 < 0 ? -c0 : 0, ke = W - c0 < k1 ? W - c0 : k1;
            if (ke < kb) ke = kb;
            memset(s, 0, sizeof(float) * (size_t)kb);
            memcpy(s + kb, p + (size_t)r * W + c0 + kb, sizeof(float) * (size_t)(ke - kb));
            memset(s + ke, 0, sizeof(float) * (size_t)(k1 - ke));
        }
        float *out = v + (ty * TW - t0);
        for (int tx = a; tx < b; tx += 16) {
            v16 w[6][6];
            for (int i = 0; i < 6; i++) {
                const float *s = stage + (size_t)i * sw + 4 * (tx - a);
                v16 l0 = LOAD16(s), l1 = LOAD16(s + 16), l2 = LOAD16(s + 32), l3 = LOAD16(s + 48);
                v16 h0 = LOAD16(s + 4), h1 = LOAD16(s + 20), h2 = LOAD16(s + 36), h3 = LOAD16(s + 52);
                v16 e01a = QUARTER(l0, l1, 0), e01b = QUARTER(l2, l3, 0), e23a = QUARTER(l0, l1, 2), e23b = QUARTER(l2, l3, 2);
                v16 e45a = QUARTER(h0, h1, 0), e45b = QUARTER(h2, h3, 0);
                v16 d0 = __builtin_shufflevector(e01a, e01b, LOW_HALVES), d1 = __builtin_shufflevector(e01a, e01b, HIGH_HALVES);
                v16 d2 = __builtin_shufflevector(e23a, e23b, LOW_HALVES), d3 = __builtin_shufflevector(e23a, e23b, HIGH_HALVES);
                v16 d4 = __builtin_shufflevector(e45a, e45b, LOW_HALVES), d5 = __builtin_shufflevector(e45a, e45b, HIGH_HALVES);
                BT6(v16, d0, d1, d2, d3, d4, d5, w[i]);
            }
            float *o = out + tx;
            for (int j = 0; j < 6; j++) {
                v16 r[6];
                BT6(v16, w[0][j], w[1][j], w[2][j], w[3][j], w[4][j], w[5][j], r);
                for (int i = 0; i < 6; i++) STORE16(o + (size_t)(6 * i + j) * xs, r[i]);
            }
        }
    }
}

// The output transform of rows [0, rows) of mb (row m at mb[ξ * xs + m * ld + (t - t0)], readable 15 floats past
// t1 - t0) for tiles [t0, t1) into the planes of y from plane m0 on: + bias, clamped to [lo, hi]. 16 tiles at a time;
// where their 64 columns would pass the segment's end or the row's, they go out through a staging row.
CLONES
static void transform_output(const float *mb, size_t xs, int ld, int rows, int m0, int OH, int OW, int TW, int t0, int t1,
                             float *y, const float *bias, float lo, float hi) {
    const v16 vlo = lo, vhi = hi;
    for (int m = 0; m < rows; m++) {
        const float *src = mb + (size_t)m * ld;
        float *plane = y + (size_t)(m0 + m) * OH * OW;
        const v16 bv = bias ? bias[m0 + m] : 0.0f;
        for (int ty = t0 / TW; ty * TW < t1; ty++) {
            int a = t0 > ty * TW ? t0 - ty * TW : 0, b = t1 < (ty + 1) * TW ? t1 - ty * TW : TW;
            const float *in = src + (ty * TW - t0);
            int nrows = OH - 4 * ty < 4 ? OH - 4 * ty : 4, end = 4 * b < OW ? 4 * b : OW;   // output columns [4a, end)
            for (int tx = a; tx < b; tx += 16) {
                v16 s[6][4];
                for (int r = 0; r < 6; r++) {
                    const float *q = in + (size_t)(6 * r) * xs + tx;
                    AT6(v16, LOAD16(q), LOAD16(q + xs), LOAD16(q + 2 * xs), LOAD16(q + 3 * xs), LOAD16(q + 4 * xs), LOAD16(q + 5 * xs), s[r]);
                }
                int c0 = 4 * tx;
                for (int c = 0; c < 4; c++) {
                    v16 o[4];
                    AT6(v16, s[0][c], s[1][c], s[2][c], s[3][c], s[4][c], s[5][c], o);
                    for (int u = 0; u < 4; u++) o[u] = __builtin_elementwise_min(__builtin_elementwise_max(o[u] + bv, vlo), vhi);
                    s[0][c] = o[0], s[1][c] = o[1], s[2][c] = o[2], s[3][c] = o[3];   // s[r][c]: output row r, column c
                }
                for (int r = 0; r < nrows; r++) {
                    // Columns 4tx + c of 16 tiles: zip (c0, c2) and (c1, c3), then those.
                    v16 z02l = __builtin_shufflevector(s[r][0], s[r][2], ZIP_LO), z02h = __builtin_shufflevector(s[r][0], s[r][2], ZIP_HI);
                    v16 z13l = __builtin_shufflevector(s[r][1], s[r][3], ZIP_LO), z13h = __builtin_shufflevector(s[r][1], s[r][3], ZIP_HI);
                    v16 q[4] = {__builtin_shufflevector(z02l, z13l, ZIP_LO), __builtin_shufflevector(z02l, z13l, ZIP_HI),
                                __builtin_shufflevector(z02h, z13h, ZIP_LO), __builtin_shufflevector(z02h, z13h, ZIP_HI)};
                    float *yr = plane + (size_t)(4 * ty + r) * OW;
                    if (c0 + 64 <= end) {
                        for (int k = 0; k < 4; k++) STORE16(yr + c0 + 16 * k, q[k]);
                    } else {
                        float t[64];
                        for (int k = 0; k < 4; k++) STORE16(t + 16 * k, q[k]);
                        memcpy(yr + c0, t, sizeof(float) * (size_t)(end - c0));
                    }
                }
            }
        }
    }
}

// The output transform of 16 consecutive tiles on AVX-512 from q (the products of the first, ξ rows xs floats apart),
// + bias, clamped: o[r][c] holds output row r, column c of each tile. AT6 on __m512 (the compiler's vector
// operators, contraction off): the same arithmetic in the same order as transform_output, the same bits.
static inline __attribute__((always_inline, target("avx512f"))) void output_tiles(const float *q, size_t xs, __m512 bv, __m512 vlo,
                                                                                __m512 vhi, __m512 o[4][4]) {
    __m512 s[6][4];
    // The 36 rows by one pointer stepped xs at a time: the barrier keeps the compiler from keeping 36 row addresses
    // (spilled to the stack and reloaded for every load) in place of one addition each.
#define NEXT_ROW(v)                                                                                                  \
    do {                                                                                                             \
        v = _mm512_loadu_ps(p);                                                                                      \
        p += xs;                                                                                                     \
        __asm__("" : "+r"(p));                                                                                       \
    } while (0)
    const float *p = q;
    for (int r = 0; r < 6; r++) {
        __m512 q0, q1, q2, q3, q4, q5;
        NEXT_ROW(q0);
        NEXT_ROW(q1);
        NEXT_ROW(q2);
        NEXT_ROW(q3);
        NEXT_ROW(q4);
        NEXT_ROW(q5);
        AT6(__m512, q0, q1, q2, q3, q4, q5, s[r]);
    }
#undef NEXT_ROW
    for (int c = 0; c < 4; c++) {
        __m512 col[4];
        AT6(__m512, s[0][c], s[1][c], s[2][c], s[3][c], s[4][c], s[5][c], col);
        // vmaxps gives its second operand when the first is NaN: a NaN sum becomes lo, as with
        // __builtin_elementwise_max (maxnum) in the plain transform.
        for (int r = 0; r < 4; r++) o[r][c] = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(col[r], bv), vlo), vhi);
    }
}

// One output row of 16 tiles in column order: z[k] holds columns 16k .. 16k + 15 (4 per tile), zipping (c0, c2) and
// (c1, c3), then those.
static inline __attribute__((always_inline, target("avx512f"))) void zip_row(const __m512 o[4], __m512i zl, __m512i zh, __m512 z[4]) {
    __m512 a02 = _mm512_permutex2var_ps(o[0], zl, o[2]), b02 = _mm512_permutex2var_ps(o[0], zh, o[2]);
    __m512 a13 = _mm512_permutex2var_ps(o[1], zl, o[3]), b13 = _mm512_permutex2var_ps(o[1], zh, o[3]);
    z[0] = _mm512_permutex2var_ps(a02, zl, a13);
    z[1] = _mm512_permutex2var_ps(a02, zh, a13);
    z[2] = _mm512_permutex2var_ps(b02, zl, b13);
    z[3] = _mm512_permutex2var_ps(b02, zh, b13);
}

// Stores the first `count` floats of z[0..3] at dst: whole vectors plainly (a masked store is dearer on AMD Zen 4).
static inline __attribute__((always_inline, target("avx512f"))) void store_prefix(float *dst, const __m512 z[4], int count) {
    _Pragma("clang loop unroll(full)") for (int k = 0; k < 4; k++) {   // unrolled: z stays in registers
        int left = count - 16 * k;
        if (left >= 16) _mm512_storeu_ps(dst + 16 * k, z[k]);
        else if (left > 0) _mm512_mask_storeu_ps(dst + 16 * k, (__mmask16)((1u << left) - 1u), z[k]);
    }
}

// transform_output on AVX-512 (the same bits). Rows of at least 12 tiles go by tile rows, 16 tiles at a time from
// each row's first, stored straight from the registers. Narrower rows (13x13 maps: 4 tiles) go 16 consecutive tiles
// at a time whatever rows they lie in (by rows, 12 of 16 lanes would idle), each row's part copied out from a
// staging buffer.
__attribute__((target("avx512f"))) static void transform_output_avx512(const float *mb, size_t xs, int ld, int rows, int m0, int OH,
                                                                      int OW, int TW, int t0, int t1, float *y, const float *bias,
                                                                      float lo, float hi) {
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    static const int zip_lo[16] = {ZIP_LO}, zip_hi[16] = {ZIP_HI};
    const __m512i zl = _mm512_loadu_si512(zip_lo), zh = _mm512_loadu_si512(zip_hi);
    for (int m = 0; m < rows; m++) {
        const float *src = mb + (size_t)m * ld;
        float *plane = y + (size_t)(m0 + m) * OH * OW;
        const __m512 bv = _mm512_set1_ps(bias ? bias[m0 + m] : 0.0f);
        if (TW >= 12) {
            for (int ty = t0 / TW; ty * TW < t1; ty++) {
                int a = t0 > ty * TW ? t0 - ty * TW : 0, b = t1 < (ty + 1) * TW ? t1 - ty * TW : TW;
                int nrows = OH - 4 * ty < 4 ? OH - 4 * ty : 4;
                for (int tx = a; tx < b; tx += 16) {
                    __m512 o[4][4], z[4];
                    output_tiles(src + (ty * TW - t0 + tx), xs, bv, vlo, vhi, o);
                    int len = b - tx < 16 ? b - tx : 16, count = OW - 4 * tx < 4 * len ? OW - 4 * tx : 4 * len;
                    _Pragma("clang loop unroll(full)") for (int r = 0; r < 4; r++) {
                        if (r >= nrows) break;
                        zip_row(o[r], zl, zh, z);
                        store_prefix(plane + (size_t)(4 * ty + r) * OW + 4 * tx, z, count);
                    }
                }
            }
            continue;
        }
        for (int t = t0; t < t1; t += 16) {
            __m512 o[4][4], z[4];
            output_tiles(src + (t - t0), xs, bv, vlo, vhi, o);
            int last = t1 - t < 16 ? t1 - t : 16;
            _Pragma("clang loop unroll(full)") for (int r = 0; r < 4; r++) {
                __attribute__((aligned(64))) float q[64];
                zip_row(o[r], zl, zh, z);
                for (int k = 0; k < 4; k++) _mm512_store_ps(q + 16 * k, z[k]);
                // Lanes [l, l + len) are tiles tx0.. of tile row ty: 4·len columns from q + 4l, cut at the row's end.
                for (int l = 0; l < last;) {
                    int ty = (t + l) / TW, tx0 = t + l - ty * TW, len = TW - tx0 < last - l ? TW - tx0 : last - l;
                    if (4 * ty + r < OH) {
                        float *dst = plane + (size_t)(4 * ty + r) * OW + 4 * tx0;
                        int count = OW - 4 * tx0 < 4 * len ? OW - 4 * tx0 : 4 * len;
                        for (int k = 0; k < count; k += 16) {
                            __mmask16 mk = count - k >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (count - k)) - 1u);
                            _mm512_mask_storeu_ps(dst + k, mk, _mm512_maskz_loadu_ps(mk, q + 4 * l + k));
                        }
                    }
                    l += len;
                }
            }
        }
    }
}

int sq_winograd_tiles(int OH, int OW) { return ((OH + 3) / 4) * ((OW + 3) / 4); }

// Row length of V and of the products for n tiles: room for a vector started at the last tile.
static int tile_ld(int n) { return (n + 15) / 16 * 16 + 16; }

// The distance between two transformed positions' planes of `rows` rows of ld floats: an odd number of cache lines,
// so the 36 rows the transforms read or write at once for a vector of tiles fall in 36 different sets of the L1
// cache. At 48 rows of 128 floats (98 tiles) the planes lay 24 KiB apart, all in one 8-way set: 16 -> 64 channels at
// 55x55 took 486 instead of 281 us.
static size_t plane_stride(int rows, int ld) {
    size_t lines = (size_t)rows * (size_t)ld / 16;
    return 16 * (lines % 2 ? lines : lines + 1);
}

void sq_winograd_conv3x3(const float *x, int C, int H, int W, int PT, int PL, const float *packed, int M, float *y, int OH, int OW,
                         const float *bias, float lo, float hi, int t0, int t1, int m0, int m1) {
    int avx512 = sq_cpu_level() == 3, TW = (OW + 3) / 4, n = t1 - t0, ld = tile_ld(n);
    if (n <= 0 || m0 >= m1) return;
    size_t vs = plane_stride(C, ld), ms = plane_stride(WG_ROWS, ld), slot = sq_packed_a_size(M, C);
    // V (36 x C x ld), the products of a block of rows (36 x WG_ROWS x ld), six staged input rows.
    int sw = 4 * ((TW + 15) / 16 * 16) + 4;
    float *v = sq_thread_scratch(SQ_SCRATCH_WINOGRAD, sizeof(float) * (WG_X * (vs + ms) + 6 * (size_t)sw));
    float *mb = v + WG_X * vs, *stage = mb + WG_X * ms;
    // The products' columns past n are read (and dropped) by the output transform's last vectors: zeros, not whatever
    // the scratch held (a denormal there would slow the additions); in the rows the blocks below use.
    int rows = m1 - m0 < WG_ROWS ? m1 - m0 : WG_ROWS;
    for (int xi = 0; xi < WG_X; xi++)
        for (int r = 0; r < rows; r++) memset(mb + xi * ms + (size_t)r * ld + n, 0, sizeof(float) * (size_t)(ld - n));
    for (int c = 0; c < C; c++)
        transform_input(x + (size_t)c * H * W, H, W, PT, PL, TW, t0, t1, v + (size_t)c * ld, vs, stage, sw);
    for (int r0 = m0; r0 < m1; r0 += WG_ROWS) {
        int r1 = r0 + WG_ROWS < m1 ? r0 + WG_ROWS : m1;
        for (int xi = 0; xi < WG_X; xi++)
            sq_gemm_packed(M, n, C, packed + (size_t)xi * slot, v + (size_t)xi * vs, ld, mb + (size_t)xi * ms - (size_t)r0 * ld, ld, r0,
                           r1, 0, n, NULL, -__builtin_inff(), __builtin_inff(), 0);
        if (avx512) transform_output_avx512(mb, ms, ld, r1 - r0, r0, OH, OW, TW, t0, t1, y, bias, lo, hi);
        else transform_output(mb, ms, ld, r1 - r0, r0, OH, OW, TW, t0, t1, y, bias, lo, hi);
    }
}

// The same convolution one tile and one output at a time, every sum over the channels in order as the products take
// it: sq_winograd_conv3x3 at level 0 (no fused multiply-adds) gives these values bit for bit.
void sq_winograd_ref(const float *x, int C, int H, int W, int PT, int PL, const float *w, int M, float *y, int OH, int OW,
                     const float *bias, float lo, float hi) {
    int TH = (OH + 3) / 4, TW = (OW + 3) / 4;
    float *u = malloc(sizeof(float) * WG_X * ((size_t)M * C + 1)), *d = malloc(sizeof(float) * WG_X * ((size_t)C + 1));
    if (!u || !d) abort();
    for (size_t i = 0; i < (size_t)M * C; i++) weight_tile(w + 9 * i, u + WG_X * i);
    for (int ty = 0; ty < TH; ty++)
        for (int tx = 0; tx < TW; tx++) {
            for (int c = 0; c < C; c++) {
                const float *p = x + (size_t)c * H * W;
                float e[6][6], r[6][6];
                for (int i = 0; i < 6; i++)
                    for (int j = 0; j < 6; j++) {
                        int yy = 4 * ty - PT + i, xx = 4 * tx - PL + j;
                        e[i][j] = yy >= 0 && yy < H && xx >= 0 && xx < W ? p[(size_t)yy * W + xx] : 0.0f;
                    }
                for (int i = 0; i < 6; i++) BT6(float, e[i][0], e[i][1], e[i][2], e[i][3], e[i][4], e[i][5], r[i]);
                for (int j = 0; j < 6; j++) {
                    float col[6];
                    BT6(float, r[0][j], r[1][j], r[2][j], r[3][j], r[4][j], r[5][j], col);
                    for (int i = 0; i < 6; i++) d[WG_X * c + 6 * i + j] = col[i];
                }
            }
            for (int m = 0; m < M; m++) {
                float mm[WG_X], s[6][4], o[4][4], bv = bias ? bias[m] : 0.0f;
                for (int xi = 0; xi < WG_X; xi++) {
                    float acc = 0.0f;
                    for (int c = 0; c < C; c++) acc += u[WG_X * ((size_t)m * C + c) + xi] * d[WG_X * c + xi];
                    mm[xi] = acc;
                }
                for (int a = 0; a < 6; a++) AT6(float, mm[6 * a], mm[6 * a + 1], mm[6 * a + 2], mm[6 * a + 3], mm[6 * a + 4], mm[6 * a + 5], s[a]);
                for (int c = 0; c < 4; c++) {
                    float col[4];
                    AT6(float, s[0][c], s[1][c], s[2][c], s[3][c], s[4][c], s[5][c], col);
                    for (int r = 0; r < 4; r++) o[r][c] = col[r];
                }
                float *plane = y + (size_t)m * OH * OW;
                for (int r = 0; r < 4; r++)
                    for (int c = 0; c < 4; c++)
                        if (4 * ty + r < OH && 4 * tx + c < OW) plane[(size_t)(4 * ty + r) * OW + 4 * tx + c] = clampf(o[r][c] + bv, lo, hi);
            }
        }
    free(u);
    free(d);
}
