// int8 GEMM for the integer runtime: C[n][m] (int32, pixel-major) = sum_k A[m][k] * B[k][n] with A int8
// weights (packed once) and B uint8 activations. With AVX-512 VNNI, vpdpbusd multiplies four u8 x s8 pairs
// and adds them to an int32 lane exactly; otherwise a plain int32 loop (compiled for AVX2 and portable C).
// Both give the same integers: no saturation anywhere (|255 * 127 * 4| << 2^31 per step, sums in int32).
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
    if (v < 0) { __builtin_cpu_init(); v = __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512f"); }
    return v && sq_cpu_level() == 3;
}

// Activations for pixels [n0, n1) regrouped as [pixel][k / 4][4 bytes] (k padded with zeros).
static void pack_b(int K, const uint8_t *B, int ldb, int n0, int n1, uint8_t *out) {
    int K4 = round_up4(K);
    for (int n = n0; n < n1; n++) {
        uint8_t *o = out + (size_t)(n - n0) * K4;
        for (int k = 0; k < K; k++) o[k] = B[(size_t)k * ldb + n];
        for (int k = K; k < K4; k++) o[k] = 0;
    }
}

__attribute__((target("avx512f,avx512vnni")))
static void vnni_block(int K4, const int8_t *a, const uint8_t *b, int np, int32_t *C, int ldc, int m0, int mrows) {
    // 16 rows (one zmm of int32) x up to 8 pixels.
    __m512i acc[8];
    for (int p = 0; p < 8; p++) acc[p] = _mm512_setzero_si512();
    for (int g = 0; g < K4 / 4; g++) {
        __m512i w = _mm512_loadu_si512(a + (size_t)g * 64);
        for (int p = 0; p < 8; p++) {
            if (p >= np) break;
            int32_t x;
            memcpy(&x, b + (size_t)p * K4 + g * 4, 4);
            acc[p] = _mm512_dpbusd_epi32(acc[p], _mm512_set1_epi32(x), w);
        }
    }
    __mmask16 mask = mrows >= 16 ? 0xFFFF : (__mmask16)((1u << mrows) - 1);
    for (int p = 0; p < np; p++) _mm512_mask_storeu_epi32(C + (size_t)p * ldc + m0, mask, acc[p]);
}

CLONES
static void plain_block(int K, const int8_t *a, const uint8_t *b, int np, int32_t *C, int ldc, int m0, int mrows) {
    int K4 = round_up4(K);
    for (int p = 0; p < np; p++)
        for (int r = 0; r < mrows; r++) {
            int32_t s = 0;
            for (int g = 0; g < K4 / 4; g++)
                for (int j = 0; j < 4; j++) s += (int32_t)a[(size_t)g * 64 + r * 4 + j] * (int32_t)b[(size_t)p * K4 + g * 4 + j];
            C[(size_t)p * ldc + m0 + r] = s;
        }
}

void sq_qgemm_u8s8(int M, int N, int K, const int8_t *packedA, const uint8_t *B, int ldb, int32_t *C, int ldc, int n0, int n1) {
    int K4 = round_up4(K);
    enum { NB = 64 };
    uint8_t *bp = aligned_alloc(64, ((size_t)NB * K4 + 63) / 64 * 64 + 64);
    if (!bp) return;
    int vnni = sq_cpu_has_vnni();
    for (int nb = n0; nb < n1; nb += NB) {
        int ne = nb + NB < n1 ? nb + NB : n1;
        pack_b(K, B, ldb, nb, ne, bp);
        for (int m0 = 0; m0 < M; m0 += 16) {
            const int8_t *a = packedA + (size_t)(m0 / 16) * K4 * 16;
            int mrows = M - m0 < 16 ? M - m0 : 16;
            for (int p = nb; p < ne; p += 8) {
                int np = ne - p < 8 ? ne - p : 8;
                if (vnni) vnni_block(K4, a, bp + (size_t)(p - nb) * K4, np, C + (size_t)p * ldc, ldc, m0, mrows);
                else plain_block(K, a, bp + (size_t)(p - nb) * K4, np, C + (size_t)p * ldc, ldc, m0, mrows);
            }
        }
    }
    free(bp);
}

void sq_im2col_u8(const uint8_t *x, int C, int H, int W, int KH, int KW, int SH, int SW, int DH, int DW, int PT, int PL,
                  int OH, int OW, uint8_t pad, uint8_t *col) {
    for (int c = 0; c < C; c++)
        for (int kh = 0; kh < KH; kh++)
            for (int kw = 0; kw < KW; kw++) {
                uint8_t *o = col + ((size_t)(c * KH + kh) * KW + kw) * OH * OW;
                for (int oh = 0; oh < OH; oh++) {
                    int ih = oh * SH - PT + kh * DH;
                    for (int ow = 0; ow < OW; ow++) {
                        int iw = ow * SW - PL + kw * DW;
                        o[oh * OW + ow] = ih >= 0 && ih < H && iw >= 0 && iw < W ? x[((size_t)c * H + ih) * W + iw] : pad;
                    }
                }
            }
}

CLONES
void sq_depthwise_u8s8(const uint8_t *x, int H, int W, const int8_t *w, int KH, int KW, int SH, int SW, int PT, int PL, int zero,
                       int32_t *acc, int OH, int OW, const int32_t *bias, int c0, int c1) {
    for (int c = c0; c < c1; c++) {
        const uint8_t *xc = x + (size_t)c * H * W;
        const int8_t *wc = w + (size_t)c * KH * KW;
        int32_t *yc = acc + (size_t)c * OH * OW;
        int32_t b = bias ? bias[c] : 0;
        for (int i = 0; i < OH * OW; i++) yc[i] = b;
        for (int oh = 0; oh < OH; oh++) {
            int32_t *row = yc + (size_t)oh * OW;
            for (int kh = 0; kh < KH; kh++) {
                int ih = oh * SH - PT + kh;
                if (ih < 0 || ih >= H) continue;
                const uint8_t *xr = xc + (size_t)ih * W;
                for (int kw = 0; kw < KW; kw++) {
                    int off = kw - PL;
                    // Output columns whose input column ow*SW + off lies inside [0, W).
                    int ow0 = off >= 0 ? 0 : (-off + SW - 1) / SW;
                    int ow1 = W - off <= 0 ? 0 : (W - off + SW - 1) / SW;
                    if (ow1 > OW) ow1 = OW;
                    int32_t wt = wc[kh * KW + kw];
                    if (SW == 1) for (int ow = ow0; ow < ow1; ow++) row[ow] += ((int32_t)xr[ow + off] - zero) * wt;
                    else for (int ow = ow0; ow < ow1; ow++) row[ow] += ((int32_t)xr[ow * SW + off] - zero) * wt;
                }
            }
        }
    }
}
