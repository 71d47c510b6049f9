// Direct 3x3 (and 5x5 depthwise) kernels (dilation 1, stride 1 or 2) for AVX-512, straight from NCHW input: no im2col matrix and
// no padded copy. For 16 neighbouring outputs of one row, the three column taps of one input row are built in
// registers: with stride 1 they are three masked unaligned loads; with stride 2 two loads are split into
// even and odd lanes (vpermt2ps) and the third tap is the even lanes moved along by one (valignd). Lanes
// outside the image come from the masks as the padding value (0 for convolution, -inf for max pooling),
// so borders need no separate code. Callers check sq_cpu_level() == 3 first.
#include "CKernels.h"
#include "scratch.h"
#include "store_rows.h"
#include <immintrin.h>
#include <stdlib.h>
#include <string.h>

#define AVX512 __attribute__((target("avx512f")))

// Lanes j of a 16-wide load at column c0 + j that lie inside [0, W).
static inline AVX512 __mmask16 inside(int c0, int W) {
    int lo = c0 < 0 ? -c0 : 0, hi = W - c0;
    if (hi > 16) hi = 16;
    if (hi <= lo) return 0;
    return (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}

// The masks of one 16-output column block for a K-tap row (K = 3 or 5) starting at column c0: with stride 1
// one per tap (columns c0 + kw + j); with stride 2 m[0] and m[1] for columns c0 + j and c0 + 16 + j, m[2]
// for the K - 2 columns from c0 + 32 that the last outputs reach.
// full (stride 1 only): every tap's mask is all ones (the block lies inside the row), so plain loads read the
// same values; AMD Zen 4 runs a masked 512-bit load slower than a plain one. (At stride 2 the same change measured
// 7-13% slower.)
typedef struct { __mmask16 m[5]; int c0, full; } taps_mask;

static inline AVX512 taps_mask block_masks(int ow, int stride, int K, int PL, int W) {
    taps_mask t;
    t.c0 = ow * stride - PL;
    t.full = stride == 1;
    if (stride == 1) {
        for (int kw = 0; kw < K; kw++) {
            t.m[kw] = inside(t.c0 + kw, W);
            t.full &= t.m[kw] == 0xFFFF;
        }
    } else {
        t.m[0] = inside(t.c0, W); t.m[1] = inside(t.c0 + 16, W); t.m[2] = inside(t.c0 + 32, W) & ((1u << (K - 2)) - 1u);
    }
    return t;
}

// t[kw] = row[(ow + j) * stride - PL + kw] for j < 16 and kw < K (pad where outside the row). K is a
// constant at every call site, so the loops unroll.
static inline __attribute__((always_inline)) AVX512 void row_taps(const float *row, int stride, int K, taps_mask m, __m512 pad,
                                                                 __m512 t[5]) {
    if (stride == 1) {
        if (m.full)
            for (int kw = 0; kw < K; kw++) t[kw] = _mm512_loadu_ps(row + m.c0 + kw);
        else
            for (int kw = 0; kw < K; kw++) t[kw] = _mm512_mask_loadu_ps(pad, m.m[kw], row + m.c0 + kw);
        return;
    }
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    __m512 a = _mm512_mask_loadu_ps(pad, m.m[0], row + m.c0);
    __m512 b = _mm512_mask_loadu_ps(pad, m.m[1], row + m.c0 + 16);
    __m512 c = _mm512_mask_loadu_ps(pad, m.m[2], row + m.c0 + 32);
    t[0] = _mm512_permutex2var_ps(a, even, b);                      // columns c0 + 2j
    t[1] = _mm512_permutex2var_ps(a, odd, b);                       // c0 + 1 + 2j
    __m512i e0 = _mm512_castps_si512(t[0]), ce = _mm512_castps_si512(c);
    if (K == 3) {
        t[2] = _mm512_castsi512_ps(_mm512_alignr_epi32(ce, e0, 1));  // c0 + 2 + 2j: the evens moved along one, c0 + 32 last
    } else {
        __m512i ec = _mm512_permutexvar_epi32(even, ce), oc = _mm512_permutexvar_epi32(odd, ce);
        t[2] = _mm512_castsi512_ps(_mm512_alignr_epi32(ec, e0, 1));
        t[3] = _mm512_castsi512_ps(_mm512_alignr_epi32(oc, _mm512_castps_si512(t[1]), 1));
        t[4] = _mm512_castsi512_ps(_mm512_alignr_epi32(ec, e0, 2));
    }
}

static inline AVX512 __mmask16 store_mask(int ow, int OW) { return OW - ow >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (OW - ow)) - 1u); }

// Depthwise KxK (K = 3 or 5), DW_ROWS output rows of 16 columns at a time: each input row's taps are built once
// and serve every output row whose window covers it (with stride 1, K + 3 rows feed 4 outputs instead of 4K; with
// stride 2, 2K + ... ), and the walk goes row by row through the plane so the rows it reads stay in L1. Several
// accumulators per output row (by column tap) keep the FMA chains short. Rows of the last group past OH are
// computed but not stored; input rows outside the image are skipped (they are zero padding).
// A 3x3 kernel's nine weights are broadcast once per channel (wv) and stay in registers (12 accumulators + 9 + 3
// taps); left to the compiler, each multiply-add took its weight as a broadcast from memory, one more load per FMA,
// and on AMD Zen 4 the loads were the bottleneck: 144 channels at 56x56 147 -> 115 us, 32 at 112x112 114 -> 90, at
// stride 2 9-13% (1 thread). A 5x5 kernel's 25 weights do not fit beside its accumulators (spilled, 30-37% slower).
enum { DW_ROWS = 4 };

static inline __attribute__((always_inline)) AVX512 void dw_rows(const float *xc, int H, int W, const float *wc, const __m512 *wv, int K, int stride,
                                                                int PT, taps_mask m, int oh, int nrows, float b, __m512 vlo,
                                                                __m512 vhi, float *yo, int OW, __mmask16 sm) {
    enum { NA = 3 };
    const int na = K == 3 ? 3 : 2;
    const __m512 zero = _mm512_setzero_ps();
    __m512 acc[DW_ROWS][NA];
    for (int u = 0; u < DW_ROWS; u++)
        for (int a = 0; a < NA; a++) acc[u][a] = zero;
    int ih0 = oh * stride - PT;
    const int span = (DW_ROWS - 1) * stride + K;
    for (int r = 0; r < span; r++) {
        int ih = ih0 + r;
        if (ih < 0 || ih >= H) continue;
        __m512 t[5];
        row_taps(xc + (size_t)ih * W, stride, K, m, zero, t);
        for (int u = 0; u < DW_ROWS; u++) {
            int kh = r - u * stride;
            if (kh < 0 || kh >= K) continue;
            for (int kw = 0; kw < K; kw++)
                acc[u][kw % na] = _mm512_fmadd_ps(K == 3 ? wv[kh * K + kw] : _mm512_set1_ps(wc[kh * K + kw]), t[kw], acc[u][kw % na]);
        }
    }
    for (int u = 0; u < DW_ROWS; u++) {
        if (u >= nrows) break;
        __m512 v = _mm512_add_ps(_mm512_set1_ps(b), acc[u][0]);
        for (int a = 1; a < na; a++) v = _mm512_add_ps(v, acc[u][a]);
        _mm512_mask_storeu_ps(yo + (size_t)u * OW, sm, _mm512_min_ps(_mm512_max_ps(v, vlo), vhi));
    }
}

static inline __attribute__((always_inline)) AVX512 void dw_kxk(const float *x, int H, int W, size_t xplane, const float *w, int K,
                                                               int stride, int PT, int PL, float *y, int OH, int OW,
                                                               const float *bias, float lo, float hi, int c0, int c1, int oh0,
                                                               int oh1) {
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    for (int c = c0; c < c1; c++) {
        const float *xc = x + (size_t)c * xplane;
        const float *wc = w + (size_t)c * K * K;
        float *yc = y + (size_t)c * OH * OW;
        float b = bias ? bias[c] : 0.0f;
        __m512 wv[9];
        for (int t = 0; t < 9 && K == 3; t++) wv[t] = _mm512_set1_ps(wc[t]);
        for (int oh = oh0; oh < oh1; oh += DW_ROWS) {
            int nrows = oh1 - oh < DW_ROWS ? oh1 - oh : DW_ROWS;
            for (int ow = 0; ow < OW; ow += 16) {
                taps_mask m = block_masks(ow, stride, K, PL, W);
                dw_rows(xc, H, W, wc, wv, K, stride, PT, m, oh, nrows, b, vlo, vhi, yc + (size_t)oh * OW + ow, OW, store_mask(ow, OW));
            }
        }
    }
}

// Depthwise KxK at stride 1 on planes under 16 columns wide whose output keeps the size (7x7 and 14x14 maps): a row
// of dw_rows's vectors would hold one row of the plane (7 of 16 lanes on a 7x7 map, and 4 rows for the last 3).
// Here the plane is one flat run of H * W outputs, 16 at a time: tap (kh, kw) of a block is the run shifted by
// kh - PT rows and kw - PL columns, lanes whose tap leaves the image zero (flat_masks for the full 3x3 kernel does
// the same). Blocks go NB at a time (up to DWF_NB, as even as the plane allows) so that enough
// FMA chains are in flight. Each output gets dw_rows's multiply-adds in its order into the same accumulators (a
// zero product adds nothing to them: they start at +0 and a sum is never -0), so the same bits.
enum { DWF_NB = 4, DWF_MAX_BLOCKS = 16 };

static inline AVX512 void dw_flat_masks(int q0, int n, int H, int W, int K, int PT, int PL, __mmask16 *m) {
    unsigned rows[5] = {0}, cols[5] = {0};
    int r = q0 / W, col = q0 - r * W;
    for (int j = 0; j < 16 && q0 + j < n; j++) {
        for (int k = 0; k < K; k++) {
            if (r + k - PT >= 0 && r + k - PT < H) rows[k] |= 1u << j;
            if (col + k - PL >= 0 && col + k - PL < W) cols[k] |= 1u << j;
        }
        if (++col == W) { col = 0; r++; }
    }
    for (int kh = 0; kh < K; kh++)
        for (int kw = 0; kw < K; kw++) m[kh * K + kw] = (__mmask16)(rows[kh] & cols[kw]);
}

// The taps of one kernel row: lanes j of the 32 floats lo, hi moved along by kw, zero where m is clear.
static inline __attribute__((always_inline)) AVX512 __m512 dw_shifted(__mmask16 m, __m512 hi, __m512 lo, int kw) {
    __m512i h = _mm512_castps_si512(hi), l = _mm512_castps_si512(lo);
    switch (kw) {
    case 0: return _mm512_maskz_mov_ps(m, lo);
    case 1: return _mm512_castsi512_ps(_mm512_maskz_alignr_epi32(m, h, l, 1));
    case 2: return _mm512_castsi512_ps(_mm512_maskz_alignr_epi32(m, h, l, 2));
    case 3: return _mm512_castsi512_ps(_mm512_maskz_alignr_epi32(m, h, l, 3));
    default: return _mm512_castsi512_ps(_mm512_maskz_alignr_epi32(m, h, l, 4));
    }
}

// NB blocks from the run's block 0 (m, in: their masks). Per kernel row the NB + 1 vectors under the blocks' first
// taps are loaded once (masked to the plane, `in`) and each tap is two of them moved along by kw (valignd).
static inline __attribute__((always_inline)) AVX512 void dw_flat_group(const float *xc, const float *wc, int K, int NB, int W, int PT,
                                                                      int PL, const __mmask16 (*m)[25], const __mmask16 (*in)[5],
                                                                      const __mmask16 *sm, float b, __m512 vlo, __m512 vhi, float *yc) {
    const int na = K == 3 ? 3 : 2;
    __m512 acc[DWF_NB][3];
    for (int u = 0; u < NB; u++) acc[u][0] = acc[u][1] = acc[u][2] = _mm512_setzero_ps();
    for (int kh = 0; kh < K; kh++) {
        const float *src = xc + (ptrdiff_t)(kh - PT) * W - PL;
        __m512 v[DWF_NB + 1];
        for (int u = 0; u <= NB; u++) v[u] = _mm512_maskz_loadu_ps(in[u][kh], src + 16 * u);
        for (int kw = 0; kw < K; kw++) {
            __m512 wv = _mm512_set1_ps(wc[kh * K + kw]);
            for (int u = 0; u < NB; u++)
                acc[u][kw % na] = _mm512_fmadd_ps(wv, dw_shifted(m[u][kh * K + kw], v[u + 1], v[u], kw), acc[u][kw % na]);
        }
    }
    for (int u = 0; u < NB; u++) {
        __m512 v = _mm512_add_ps(_mm512_set1_ps(b), acc[u][0]);
        for (int a = 1; a < na; a++) v = _mm512_add_ps(v, acc[u][a]);
        _mm512_mask_storeu_ps(yc + 16 * u, sm[u], _mm512_min_ps(_mm512_max_ps(v, vlo), vhi));
    }
}

static inline __attribute__((always_inline)) AVX512 void dw_flat(const float *x, int H, int W, size_t xplane, const float *w, int K,
                                                                int PT, int PL, float *y, const float *bias, float lo, float hi,
                                                                int c0, int c1) {
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    int n = H * W, blocks = (n + 15) / 16, groups = (blocks + DWF_NB - 1) / DWF_NB;
    __mmask16 m[DWF_MAX_BLOCKS][25], sm[DWF_MAX_BLOCKS], in[DWF_MAX_BLOCKS + 1][5];
    for (int q = 0; q < blocks; q++) {
        dw_flat_masks(16 * q, n, H, W, K, PT, PL, m[q]);
        sm[q] = store_mask(16 * q, n);
    }
    // Lanes of the vector loaded for kernel row kh of block q that lie in the plane (the rest are never used).
    for (int q = 0; q <= blocks; q++)
        for (int kh = 0; kh < K; kh++) {
            int s0 = 16 * q + (kh - PT) * W - PL;
            unsigned bits = 0;
            for (int j = 0; j < 16; j++) bits |= (unsigned)(s0 + j >= 0 && s0 + j < n) << j;
            in[q][kh] = (__mmask16)bits;
        }
    for (int c = c0; c < c1; c++) {
        const float *xc = x + (size_t)c * xplane;
        const float *wc = w + (size_t)c * K * K;
        float *yc = y + (size_t)c * n;
        float b = bias ? bias[c] : 0.0f;
        for (int g = 0, q = 0; g < groups; g++) {
            // Groups as even as the blocks allow (13 blocks: 4 + 3 + 3 + 3).
            int nb = (blocks - q) / (groups - g) + ((blocks - q) % (groups - g) != 0);
            const float *xq = xc + 16 * q;
            float *yq = yc + 16 * q;
            switch (nb) {
            case 4: dw_flat_group(xq, wc, K, 4, W, PT, PL, m + q, in + q, sm + q, b, vlo, vhi, yq); break;
            case 3: dw_flat_group(xq, wc, K, 3, W, PT, PL, m + q, in + q, sm + q, b, vlo, vhi, yq); break;
            case 2: dw_flat_group(xq, wc, K, 2, W, PT, PL, m + q, in + q, sm + q, b, vlo, vhi, yq); break;
            default: dw_flat_group(xq, wc, K, 1, W, PT, PL, m + q, in + q, sm + q, b, vlo, vhi, yq); break;
            }
            q += nb;
        }
    }
}

// The 16 x 16 floats r[0..16) transposed in place (r[i][j] <- r[j][i]).
static inline __attribute__((always_inline)) AVX512 void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 8; i++) {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; i++) {
        __m512d a = _mm512_castps_pd(t[4 * i]), b = _mm512_castps_pd(t[4 * i + 2]);
        __m512d c = _mm512_castps_pd(t[4 * i + 1]), d = _mm512_castps_pd(t[4 * i + 3]);
        r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
        r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(c, d));
        r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(c, d));
    }
    // Each 128-bit lane of r[4i + k] now holds element k of rows 4i .. 4i + 3 (one group of four columns per lane).
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 4; k++) {
            t[8 * i + k] = _mm512_shuffle_f32x4(r[8 * i + k], r[8 * i + 4 + k], 0x88);
            t[8 * i + 4 + k] = _mm512_shuffle_f32x4(r[8 * i + k], r[8 * i + 4 + k], 0xDD);
        }
    for (int k = 0; k < 8; k++) {
        r[k] = _mm512_shuffle_f32x4(t[k], t[8 + k], 0x88);
        r[8 + k] = _mm512_shuffle_f32x4(t[k], t[8 + k], 0xDD);
    }
}

// n vectors of 16 channels, one pixel each (16 floats apart from `in`, 64-byte aligned), back to the first nc
// channels' planes: y[j * plane + i] = in[16 i + j] for i < n, j < nc, 16 pixels at a time through transpose16.
static inline AVX512 void lanes_to_planes(const float *in, int n, int nc, float *y, size_t plane) {
    for (int p = 0; p < n; p += 16) {
        int m = n - p < 16 ? n - p : 16;
        __mmask16 pm = (__mmask16)((1u << m) - 1u);
        __m512 r[16];
        for (int i = 0; i < 16; i++) r[i] = i < m ? _mm512_load_ps(in + (size_t)(p + i) * 16) : _mm512_setzero_ps();
        transpose16(r);
        for (int j = 0; j < nc; j++) {
            if (m == 16) _mm512_storeu_ps(y + (size_t)j * plane + p, r[j]);
            else _mm512_mask_storeu_ps(y + (size_t)j * plane + p, pm, r[j]);
        }
    }
}

// Depthwise 5x5 at stride 1 on maps 7 to 10 wide (EfficientNet's 7x7 stage): channels in the lanes, as dw_small does on
// AVX2. 16 channels at a time are transposed (16 x 16 blocks) into a zero-bordered buffer of the padded pixels, 16
// channels each, so every tap of an output is one plain load and each weight tap one vector; the outputs of a row, up
// to 7 at a time, take their taps from the input vectors of a kernel row loaded once; then they are transposed back.
// Each output sums its taps in dw_rows's order into dw_rows's accumulators (by column tap), a pad tap adding a zero
// product, so the same bits. The rows and flat kernels build each tap with a shift (and mask) per vector, which the
// 25 taps of a 5x5 kernel make dear: 1152 channels at 7x7 80 -> 56 us, 672 47 -> 33, 480 at 10x10 46 -> 40 (1 thread,
// AMD Zen 4); at 11x11 and wider, with 3x3 kernels and on maps under 7 it lost (the transposes then cost more).
enum { DWL_SEG = 7, DWL_IN = 16 };

static inline int dw_lanes_fits(int H, int W, int K, int S, int PT, int PL, int OH, int OW) {
    return K == 5 && S == 1 && W >= 7 && W <= 10 && H <= DWL_IN && OH <= DWL_IN && OW <= W && PT >= 0 && PL >= 0
        && H + PT <= OH + 4 && W + PL <= OW + 4;
}

// Outputs ow0 .. ow0 + N - 1 (N constant) of output row oh, from the padded buffer `in` (Wp pixels a row).
static inline __attribute__((always_inline)) AVX512 void dw_lanes_run(const float *in, int Wp, const __m512 *wt, int oh, int ow0,
                                                                     int N, __m512 vb, __m512 vlo, __m512 vhi, float *out) {
    enum { K = 5, NA = 2 };
    __m512 acc[DWL_SEG][NA];
    for (int u = 0; u < N; u++) acc[u][0] = acc[u][1] = _mm512_setzero_ps();
    for (int kh = 0; kh < K; kh++) {
        const float *row = in + ((size_t)(oh + kh) * Wp + ow0) * 16;
        __m512 v[DWL_SEG + K - 1];
        for (int i = 0; i < N + K - 1; i++) v[i] = _mm512_load_ps(row + (size_t)i * 16);
        for (int kw = 0; kw < K; kw++)
            for (int u = 0; u < N; u++) acc[u][kw % NA] = _mm512_fmadd_ps(wt[kh * K + kw], v[u + kw], acc[u][kw % NA]);
    }
    for (int u = 0; u < N; u++) {
        __m512 v = _mm512_add_ps(_mm512_add_ps(vb, acc[u][0]), acc[u][1]);
        _mm512_store_ps(out + (size_t)u * 16, _mm512_min_ps(_mm512_max_ps(v, vlo), vhi));
    }
}

static AVX512 void dw_lanes(const float *x, int H, int W, size_t xplane, const float *w, int PT, int PL, float *y, int OH, int OW,
                            const float *bias, float lo, float hi, int c0, int c1) {
    enum { K = 5, HP = DWL_IN + K - 1 };
    const int Hp = OH + K - 1, Wp = OW + K - 1, n = H * W, on = OH * OW;
    __attribute__((aligned(64))) float in[HP * HP * 16];
    __attribute__((aligned(64))) float out[DWL_IN * DWL_IN * 16];
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi), zero = _mm512_setzero_ps();
    // The border (padding) is written once; each group overwrites only the image inside it.
    memset(in, 0, sizeof(float) * (size_t)Hp * Wp * 16);
    for (int c = c0; c < c1; c += 16) {
        int nc = c1 - c < 16 ? c1 - c : 16;
        __mmask16 cm = (__mmask16)((1u << nc) - 1u);
        // In: pixels p .. p + 15 of the 16 channels, transposed to 16 pixel vectors (channels past c1 give zeros).
        for (int p = 0; p < n; p += 16) {
            int m = n - p < 16 ? n - p : 16;
            __mmask16 pm = (__mmask16)((1u << m) - 1u);
            __m512 r[16];
            for (int j = 0; j < 16; j++)
                r[j] = j >= nc ? zero : m == 16 ? _mm512_loadu_ps(x + (size_t)(c + j) * xplane + p)
                                              : _mm512_maskz_loadu_ps(pm, x + (size_t)(c + j) * xplane + p);
            transpose16(r);
            int h = p / W, col = p - h * W;
            for (int i = 0; i < m; i++) {
                _mm512_store_ps(in + ((size_t)(h + PT) * Wp + col + PL) * 16, r[i]);
                if (++col == W) { col = 0; h++; }
            }
        }
        __m512 wt[K * K];
        for (int t = 0; t < K * K; t++) {
            float v[16] = {0};
            for (int j = 0; j < nc; j++) v[j] = w[(size_t)(c + j) * K * K + t];
            wt[t] = _mm512_loadu_ps(v);
        }
        __m512 vb = bias ? _mm512_maskz_loadu_ps(cm, bias + c) : zero;
        for (int oh = 0; oh < OH; oh++) {
            float *o = out + (size_t)oh * OW * 16;
            int ow = 0;
            for (; ow + DWL_SEG <= OW; ow += DWL_SEG) dw_lanes_run(in, Wp, wt, oh, ow, DWL_SEG, vb, vlo, vhi, o + (size_t)ow * 16);
            switch (OW - ow) {
            case 6: dw_lanes_run(in, Wp, wt, oh, ow, 6, vb, vlo, vhi, o + (size_t)ow * 16); break;
            case 5: dw_lanes_run(in, Wp, wt, oh, ow, 5, vb, vlo, vhi, o + (size_t)ow * 16); break;
            case 4: dw_lanes_run(in, Wp, wt, oh, ow, 4, vb, vlo, vhi, o + (size_t)ow * 16); break;
            case 3: dw_lanes_run(in, Wp, wt, oh, ow, 3, vb, vlo, vhi, o + (size_t)ow * 16); break;
            case 2: dw_lanes_run(in, Wp, wt, oh, ow, 2, vb, vlo, vhi, o + (size_t)ow * 16); break;
            case 1: dw_lanes_run(in, Wp, wt, oh, ow, 1, vb, vlo, vhi, o + (size_t)ow * 16); break;
            default: break;
            }
        }
        // Out: the pixels of the 16 channels back to the channels' planes.
        lanes_to_planes(out, on, nc, y + (size_t)c * on, on);
    }
}

AVX512
void sq_dw_avx512(const float *x, int H, int W, size_t xplane, const float *w, int K, int stride, int PT, int PL, float *y, int OH,
                  int OW, const float *bias, float lo, float hi, int c0, int c1, int oh0, int oh1) {
    // 5x5 only where a row fills at most half a vector. At 1 thread, 1152 channels at 7x7 ran 59 us by rows, 44 flat;
    // 672 channels at 14x14 (rows using 77% of the lanes) 72 by rows, 83 flat. 3x3: 960 channels at 7x7 35 -> 18 us,
    // 576 at 14x14 41 -> 33; since the rows keep their weights in registers (AMD Zen 4, 1 thread), 3x3 on maps 12 to
    // 15 wide is faster by rows: 576 at 14x14 54 -> 40 us, 256 at 12x12 17 -> 14; at 10x10 even, 9x9 and 7x7 flat
    // (12 vs 13 and 27 vs 33 us).
    if (oh0 == 0 && oh1 == OH && dw_lanes_fits(H, W, K, stride, PT, PL, OH, OW)) {
        dw_lanes(x, H, W, xplane, w, PT, PL, y, OH, OW, bias, lo, hi, c0, c1);
        return;
    }
    if (stride == 1 && (K == 3 ? W <= 10 : W <= 8) && OH == H && OW == W && oh0 == 0 && oh1 == OH && H * W <= 16 * DWF_MAX_BLOCKS) {
        if (K == 3) dw_flat(x, H, W, xplane, w, 3, PT, PL, y, bias, lo, hi, c0, c1);
        else dw_flat(x, H, W, xplane, w, 5, PT, PL, y, bias, lo, hi, c0, c1);
        return;
    }
    if (K == 3 && stride == 1) dw_kxk(x, H, W, xplane, w, 3, 1, PT, PL, y, OH, OW, bias, lo, hi, c0, c1, oh0, oh1);
    else if (K == 3) dw_kxk(x, H, W, xplane, w, 3, 2, PT, PL, y, OH, OW, bias, lo, hi, c0, c1, oh0, oh1);
    else if (stride == 1) dw_kxk(x, H, W, xplane, w, 5, 1, PT, PL, y, OH, OW, bias, lo, hi, c0, c1, oh0, oh1);
    else dw_kxk(x, H, W, xplane, w, 5, 2, PT, PL, y, OH, OW, bias, lo, hi, c0, c1, oh0, oh1);
}

AVX512
void sq_maxpool3x3_avx512(const float *x, int H, int W, int stride, int PT, int PL, float *y, int OH, int OW, int p0, int p1) {
    const __m512 ninf = _mm512_set1_ps(-__builtin_inff());
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for (int p = p0; p < p1; p++) {
        const float *xp = x + (size_t)p * H * W;
        float *yp = y + (size_t)p * OH * OW;
        for (int ow = 0; ow < OW; ow += 16) {
            taps_mask m = block_masks(ow, stride, 3, PL, W);
            __mmask16 sm = store_mask(ow, OW);
            // A block whose stride-2 taps stay inside the row loads them plainly (masked 512-bit loads are slow on AMD Zen 4).
            int full2 = stride == 2 && m.c0 >= 0 && m.c0 + 34 <= W;
            // h(r): the max over the three column taps of input row r (-inf outside the image). Output row oh is the max
            // of h over its window's rows, the last of which the next output row reads again at stride 2 (kept, not
            // rebuilt). 128 planes of 55x55 at stride 2: 37.9 -> 35.9 us, 64 of 111x111 106.7 -> 100.3 (1 thread, Zen 4).
            int last = -1;
            __m512 hl = ninf;
            for (int oh = 0; oh < OH; oh++) {
                __m512 acc = ninf;
                int ih = oh * stride - PT;
                for (int r = ih < 0 ? 0 : ih; r < ih + 3 && r < H; r++) {
                    __m512 h;
                    if (r == last) h = hl;
                    else if (full2) {
                        const float *q = xp + (size_t)r * W + m.c0;
                        __m512 a = _mm512_loadu_ps(q), b = _mm512_loadu_ps(q + 16), c = _mm512_loadu_ps(q + 2), d = _mm512_loadu_ps(q + 18);
                        h = _mm512_max_ps(_mm512_max_ps(_mm512_permutex2var_ps(a, even, b), _mm512_permutex2var_ps(a, odd, b)),
                                          _mm512_permutex2var_ps(c, even, d));
                    } else {
                        __m512 t[5];
                        row_taps(xp + (size_t)r * W, stride, 3, m, ninf, t);
                        h = _mm512_max_ps(_mm512_max_ps(t[0], t[1]), t[2]);
                    }
                    acc = _mm512_max_ps(acc, h);
                    last = r;
                    hl = h;
                }
                _mm512_mask_storeu_ps(yp + (size_t)oh * OW + ow, sm, acc);
            }
        }
    }
}

// Full 3x3 convolution: a tile is two output rows x 16 columns x C3_OCB output channels. For each input
// channel and kernel row the column taps of the two input rows are built once (six vectors), and each weight,
// broadcast once, feeds both output rows: about 0.6 loads per FMA instead of one per FMA with one output row
// (the load ports, not the FMA units, bounded the one-row form at two thirds of peak).
enum { C3_OCB = SQ_CONV3X3_BLOCK };

size_t sq_conv3x3_packed_size(int M, int C) { return (size_t)(M + C3_OCB - 1) / C3_OCB * C3_OCB * C * 9; }

void sq_conv3x3_pack(int M, int C, const float *w, float *packed) {
    int blocks = (M + C3_OCB - 1) / C3_OCB;
    memset(packed, 0, sizeof(float) * sq_conv3x3_packed_size(M, C));
    for (int b = 0; b < blocks; b++)
        for (int j = 0; j < C3_OCB && b * C3_OCB + j < M; j++)
            for (int c = 0; c < C; c++)
                for (int t = 0; t < 9; t++)
                    packed[(((size_t)b * C + c) * 9 + t) * C3_OCB + j] = w[((size_t)(b * C3_OCB + j) * C + c) * 9 + t];
}

// A 2-row x C3_OCB-channel tile's parts shared by the row walk (conv3x3_tile) and the stride-2 walk on split rows
// (conv3x3_s2_tile): the bias into the accumulators, one kernel row's multiply-adds (taps ta for the first output
// row, tb for the second), and the clamped stores.
static inline __attribute__((always_inline)) AVX512 void tile_init(__m512 acc[2][C3_OCB], const float *bias, int nm) {
    for (int j = 0; j < C3_OCB; j++) acc[0][j] = acc[1][j] = _mm512_set1_ps(bias && j < nm ? bias[j] : 0.0f);
}

static inline __attribute__((always_inline)) AVX512 void tile_row(const float *wk, const __m512 *ta, const __m512 *tb, __m512 acc[2][C3_OCB]) {
    for (int kw = 0; kw < 3; kw++)
        for (int j = 0; j < C3_OCB; j++) {
            __m512 b = _mm512_set1_ps(wk[kw * C3_OCB + j]);
            acc[0][j] = _mm512_fmadd_ps(b, ta[kw], acc[0][j]);
            acc[1][j] = _mm512_fmadd_ps(b, tb[kw], acc[1][j]);
        }
}

static inline __attribute__((always_inline)) AVX512 void tile_store(__m512 acc[2][C3_OCB], int nm, int two, __m512 vlo, __m512 vhi, float *o,
                                                                   size_t oplane, int OW, __mmask16 sm) {
    for (int j = 0; j < nm; j++) {
        _mm512_mask_storeu_ps(o + j * oplane, sm, _mm512_min_ps(_mm512_max_ps(acc[0][j], vlo), vhi));
        if (two) _mm512_mask_storeu_ps(o + j * oplane + OW, sm, _mm512_min_ps(_mm512_max_ps(acc[1][j], vlo), vhi));
    }
}

static inline __attribute__((always_inline)) AVX512 void conv3x3_tile(const float *x, int C, int H, int W, const float *wb, int stride,
                                                                     int ihA, int two, taps_mask m, const float *bias, int nm,
                                                                     __m512 vlo, __m512 vhi, float *o, size_t oplane, int OW,
                                                                     __mmask16 sm) {
    const __m512 zero = _mm512_setzero_ps();
    size_t plane = (size_t)H * W;
    __m512 acc[2][C3_OCB];
    tile_init(acc, bias, nm);
    for (int c = 0; c < C; c++) {
        const float *xc = x + c * plane;
        for (int kh = 0; kh < 3; kh++) {
            int ra = ihA + kh, rb = ra + stride;
            __m512 ta[5], tb[5];
            if (ra >= 0 && ra < H) row_taps(xc + (size_t)ra * W, stride, 3, m, zero, ta);
            else ta[0] = ta[1] = ta[2] = zero;
            if (two && rb >= 0 && rb < H) row_taps(xc + (size_t)rb * W, stride, 3, m, zero, tb);
            else tb[0] = tb[1] = tb[2] = zero;
            tile_row(wb + ((size_t)c * 9 + kh * 3) * C3_OCB, ta, tb, acc);
        }
    }
    tile_store(acc, nm, two, vlo, vhi, o, oplane, OW, sm);
}

// The same convolution when it keeps the image's size (stride 1, one pad on every side): the output plane is
// walked as one flat run of OH * OW values, 16 at a time, so the vectors waste no lanes at the end of each row
// (a 13-wide row used 13 of 16). Tap (kh, kw) of output q is input q + (kh - 1) * W + kw - 1, one masked load;
// the masks drop the lanes whose tap falls off the image (or past the last output), where the row-wise kernel
// read its padding. Two vectors x C3_OCB channels per tile, the sums in the same order: the same bits. Used when
// the rows do not fill whole vectors.
// Masks of the 16 outputs from q0 (q < qend): t[kh * 3 + kw] keeps the lanes whose tap (kh, kw) is inside the image.
// Returns whether any tap leaves the image through its top or bottom (else t[kh * 3 + kw] == t[3 + kw]).
static inline AVX512 int flat_masks(int q0, int qend, int W, int H, __mmask16 t[9]) {
    unsigned left = 0, right = 0, up = 0, down = 0, valid = 0;
    int r = q0 / W, col = q0 - r * W;
    for (int j = 0; j < 16; j++) {
        unsigned bit = 1u << j;
        if (q0 + j < qend) valid |= bit;
        if (col > 0) left |= bit;
        if (col < W - 1) right |= bit;
        if (r > 0) up |= bit;
        if (r < H - 1) down |= bit;
        if (++col == W) { col = 0; r++; }
    }
    unsigned rows[3] = {valid & up, valid, valid & down}, cols[3] = {left, ~0u, right};
    for (int kh = 0; kh < 3; kh++)
        for (int kw = 0; kw < 3; kw++) t[kh * 3 + kw] = (__mmask16)(rows[kh] & cols[kw]);
    return rows[0] != valid || rows[2] != valid;
}

// Vectors of outputs per flat tile (2 x C3_OCB accumulators; 3 measured no faster on Zen 4).
enum { FLAT_NV = 2 };

// Channels c0..c1 of a flat tile: NV (1 or 2) vectors of 16 outputs from q0; m[v] are vector v's tap masks and
// edge == 0 says no tap leaves through the top or bottom (each kw then has one mask for all three kh). With
// plain == 0 a tap's lanes outside the image are loaded as zeros (masked loads); with plain == 1 the taps are
// plain loads and the multiply-adds skip those lanes instead (merge-masked FMAs: the sum keeps its value where
// the other form adds w * 0). On AVX-512 CPUs that split 512-bit loads (AMD Zen 4), masked loads cost about 5%
// of the tile's time; a merge mask costs nothing. Plain loads read past the plane's edges, so the caller passes
// only channels whose reads stay inside the tensor. Tap (1, 1) needs no mask: its lanes are all inside (a lane
// past the band's last output is not stored).
static inline __attribute__((always_inline)) AVX512 void flat_channels(const float *x, size_t plane, int W, const float *wb, int q0,
                                                                      int c0, int c1, const int NV, const int edge, const int plain,
                                                                      __mmask16 m[][9], __m512 acc[][C3_OCB]) {
    for (int c = c0; c < c1; c++) {
        const float *xq = x + c * plane + q0;
        for (int kh = 0; kh < 3; kh++) {
            const float *wk = wb + ((size_t)c * 9 + kh * 3) * C3_OCB;
            for (int kw = 0; kw < 3; kw++) {
                int t = edge ? kh * 3 + kw : 3 + kw, centre = kh == 1 && kw == 1;
                const float *src = xq + (ptrdiff_t)(kh - 1) * W + kw - 1;
                __m512 tv[FLAT_NV];
                for (int v = 0; v < NV; v++) tv[v] = plain ? _mm512_loadu_ps(src + 16 * v) : _mm512_maskz_loadu_ps(m[v][t], src + 16 * v);
                for (int j = 0; j < C3_OCB; j++) {
                    __m512 b = _mm512_set1_ps(wk[kw * C3_OCB + j]);
                    for (int v = 0; v < NV; v++)
                        acc[v][j] = plain && !centre ? _mm512_mask3_fmadd_ps(b, tv[v], acc[v][j], m[v][t]) : _mm512_fmadd_ps(b, tv[v], acc[v][j]);
                }
            }
        }
    }
}

// One flat tile over all C channels. Its plain loads reach from q0 - W - 1 to q0 + 16 * NV + W + 1 of a plane:
// channels [c0, c1) keep them inside the tensor (x .. x + C * plane), the rest take masked loads.
static inline __attribute__((always_inline)) AVX512 void conv3x3_flat_tile(const float *x, int C, int H, int W, const float *wb,
                                                                          int q0, const int NV, const int edge, __mmask16 m[][9],
                                                                          const __mmask16 *s, const float *bias, int nm,
                                                                          __m512 vlo, __m512 vhi, float *o, size_t oplane) {
    ptrdiff_t plane = (ptrdiff_t)H * W, before = W + 1 - q0, after = q0 + 16 * NV + W + 1 - plane;
    int c0 = before <= 0 ? 0 : (int)((before + plane - 1) / plane), c1 = after <= 0 ? C : C - (int)((after + plane - 1) / plane);
    if (c1 < c0) c1 = c0;
    if (c0 > C) c0 = c1 = C;
    __m512 acc[FLAT_NV][C3_OCB];
    for (int j = 0; j < C3_OCB; j++)
        for (int v = 0; v < NV; v++) acc[v][j] = _mm512_set1_ps(bias && j < nm ? bias[j] : 0.0f);
    flat_channels(x, plane, W, wb, q0, 0, c0, NV, edge, 0, m, acc);
    flat_channels(x, plane, W, wb, q0, c0, c1, NV, edge, 1, m, acc);
    flat_channels(x, plane, W, wb, q0, c1, C, NV, edge, 0, m, acc);
    for (int j = 0; j < nm; j++)
        for (int v = 0; v < NV; v++)
            _mm512_mask_storeu_ps(o + j * oplane + 16 * v, s[v], _mm512_min_ps(_mm512_max_ps(acc[v][j], vlo), vhi));
}

// ---- 3x3 on small maps with the output channels in the lanes ------------------------------------------------------
// On maps under 16 wide that keep their size (SqueezeNet's 13x13, 14x14) the flat walk puts 169 outputs in 176 lanes
// and ran at 93% of peak. Here a tile is 32 output channels (two vectors, weights from sq_conv3x3_lanes_pack) x up to
// 7 outputs of a row, each input value broadcast from a zero-bordered copy of the input (sq_conv3x3_pad): no lane is
// empty, and per input channel and kernel row the 6 weight vectors are loaded once and each of the 9 input values
// feeds 2 x 3 multiply-adds (0.36 loads per multiply-add against the flat walk's 0.63). Each output starts at its bias
// and adds its taps in the flat walk's order (channel, kernel row, kernel column), a pad tap adding a zero product:
// the same bits. 1 thread, AMD Zen 4: 64 -> 256 channels at 13x13 457 -> 433 us, 48 -> 192 258 -> 245, 64 -> 64 at
// 14x14 134 -> 128; at 27x27 no faster (the flat walk wastes nothing there), so only maps under 16 wide take it.
enum { C3L_PIX = 7 };

size_t sq_conv3x3_lanes_size(int M, int C) { return (size_t)(M + 31) / 32 * 32 * C * 9; }

void sq_conv3x3_lanes_pack(int M, int C, const float *blocks, float *packed) {
    int groups = (M + 31) / 32;
    for (int g = 0; g < groups; g++)
        for (int c = 0; c < C; c++)
            for (int t = 0; t < 9; t++)
                for (int j = 0; j < 32; j++) {
                    int m = g * 32 + j, b = m / C3_OCB;
                    packed[(((size_t)g * C + c) * 9 + t) * 32 + j] = m < M ? blocks[(((size_t)b * C + c) * 9 + t) * C3_OCB + m % C3_OCB] : 0.0f;
                }
}

void sq_conv3x3_pad(const float *x, int C, int H, int W, float *xp) {
    int Hp = H + 2, Wp = W + 2;
    memset(xp, 0, sizeof(float) * (size_t)C * Hp * Wp);
    for (int c = 0; c < C; c++)
        for (int h = 0; h < H; h++) memcpy(xp + ((size_t)c * Hp + h + 1) * Wp + 1, x + ((size_t)c * H + h) * W, sizeof(float) * W);
}

// Outputs ow0 .. ow0 + P - 1 (P constant) of output row oh for the 32 channels of weight group wg (nm of them real).
static inline __attribute__((always_inline)) AVX512 void lanes_tile(const float *xp, int C, int Hp, int Wp, const float *wg, int oh, int ow0,
                                                                   const int P, const float *bias, int nm, __m512 vlo, __m512 vhi,
                                                                   float *y, size_t plane) {
    __m512 acc[2][C3L_PIX];
    __m512 b0 = bias ? _mm512_maskz_loadu_ps(nm >= 16 ? 0xFFFF : (__mmask16)((1u << nm) - 1u), bias) : _mm512_setzero_ps();
    __m512 b1 = bias && nm > 16 ? _mm512_maskz_loadu_ps(nm >= 32 ? 0xFFFF : (__mmask16)((1u << (nm - 16)) - 1u), bias + 16) : _mm512_setzero_ps();
    for (int p = 0; p < P; p++) { acc[0][p] = b0; acc[1][p] = b1; }
    for (int c = 0; c < C; c++) {
        const float *xc = xp + ((size_t)c * Hp + oh) * Wp + ow0;
        const float *wc = wg + (size_t)c * 9 * 32;
        for (int kh = 0; kh < 3; kh++) {
            const float *xr = xc + kh * Wp, *wk = wc + kh * 3 * 32;
            __m512 w[3][2];
            for (int kw = 0; kw < 3; kw++) { w[kw][0] = _mm512_loadu_ps(wk + kw * 32); w[kw][1] = _mm512_loadu_ps(wk + kw * 32 + 16); }
            // Input value i is tap kw of output i - kw: each output meets its taps in kw order.
            for (int i = 0; i < P + 2; i++) {
                __m512 v = _mm512_set1_ps(xr[i]);
                for (int kw = 0; kw < 3; kw++) {
                    int p = i - kw;
                    if (p < 0 || p >= P) continue;
                    acc[0][p] = _mm512_fmadd_ps(w[kw][0], v, acc[0][p]);
                    acc[1][p] = _mm512_fmadd_ps(w[kw][1], v, acc[1][p]);
                }
            }
        }
    }
    for (int h = 0; h < 2 && 16 * h < nm; h++) {
        __m512 q[8];
        for (int p = 0; p < 8; p++) q[p] = p < P ? _mm512_min_ps(_mm512_max_ps(acc[h][p], vlo), vhi) : _mm512_setzero_ps();
        sq_store_rows16(q, P, nm - 16 * h < 16 ? nm - 16 * h : 16, y + (size_t)16 * h * plane, plane);
    }
}

AVX512
void sq_conv3x3_lanes_avx512(const float *xp, int C, int H, int W, const float *packed, int M, float *y, const float *bias, float lo,
                             float hi, int g0, int g1) {
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    int Hp = H + 2, Wp = W + 2;
    size_t plane = (size_t)H * W;
    for (int g = g0; g < g1; g++) {
        const float *wg = packed + (size_t)g * C * 9 * 32;
        const float *bg = bias ? bias + g * 32 : NULL;
        int nm = M - g * 32 < 32 ? M - g * 32 : 32;
        float *yg = y + (size_t)g * 32 * plane;
        for (int oh = 0; oh < H; oh++) {
            int ow = 0;
            float *yr = yg + (size_t)oh * W;
            for (; ow + C3L_PIX <= W; ow += C3L_PIX) lanes_tile(xp, C, Hp, Wp, wg, oh, ow, C3L_PIX, bg, nm, vlo, vhi, yr + ow, plane);
            switch (W - ow) {
            case 6: lanes_tile(xp, C, Hp, Wp, wg, oh, ow, 6, bg, nm, vlo, vhi, yr + ow, plane); break;
            case 5: lanes_tile(xp, C, Hp, Wp, wg, oh, ow, 5, bg, nm, vlo, vhi, yr + ow, plane); break;
            case 4: lanes_tile(xp, C, Hp, Wp, wg, oh, ow, 4, bg, nm, vlo, vhi, yr + ow, plane); break;
            case 3: lanes_tile(xp, C, Hp, Wp, wg, oh, ow, 3, bg, nm, vlo, vhi, yr + ow, plane); break;
            case 2: lanes_tile(xp, C, Hp, Wp, wg, oh, ow, 2, bg, nm, vlo, vhi, yr + ow, plane); break;
            case 1: lanes_tile(xp, C, Hp, Wp, wg, oh, ow, 1, bg, nm, vlo, vhi, yr + ow, plane); break;
            default: break;
            }
        }
    }
}

// ---- Stride-2 3x3 stems with the output channels in the lanes -------------------------------------------------------
// SqueezeNet's first convolution (3 -> 64 channels, stride 2 at 227x227) and the 3x3 stride-2 max pooling after it. The
// row walk builds every tap with even/odd shuffles and broadcasts a weight per two multiply-adds. Here a tile is up
// to 64 output channels (four vectors, two weight groups of sq_conv3x3_lanes_pack) x STEM_PIX outputs of a row, each
// input value broadcast once for the four vectors: 0.42 loads per multiply-add and no shuffles. A row is computed
// into a buffer as [M / 16 vectors][OW][16]; the 3x3 stride-2 max pooling that follows SqueezeNet's stem then takes
// each output channel vector with plain loads (no shuffles either), and only the pooled rows are transposed back to
// planes. Each output starts at its bias and adds its 27 taps in the row walk's order (channel, kernel row, kernel
// column), a tap outside the image adding a zero product as there: the same bits; the pooling takes its maxima in
// sq_maxpool3x3_avx512's order (each row's three taps, then the rows in order): the same bits. 1 thread, AMD Zen 4,
// SqueezeNet's stem and pooling as two whole-tensor kernels 661 us, here 501. Without a pooling to follow (MobileNetV2's
// stem, 32 channels: two vectors a tile, 0.67 loads per multiply-add) the transposes made it slower (239 -> 253 us).
enum { STEM_PIX = 6 };

// Outputs ow0 .. ow0 + P - 1 of convolution row r for the NV vectors (2 or 4) of weight groups wg and wg + gs.
// checked: some taps of the tile fall outside the image (read as zeros); else every read is inside.
static inline __attribute__((always_inline)) AVX512 void stem_tile(const float *x, int C, int H, int W, const float *wg, size_t gs,
                                                                  const int NV, const int P, int ir0, int ic0, const int checked,
                                                                  const __m512 *bv, __m512 vlo, __m512 vhi, float *out, size_t vs) {
    __m512 acc[STEM_PIX][4];
    for (int p = 0; p < P; p++)
        for (int v = 0; v < NV; v++) acc[p][v] = bv[v];
    for (int c = 0; c < C; c++)
        for (int kh = 0; kh < 3; kh++) {
            int ir = ir0 + kh, rowok = ir >= 0 && ir < H;
            const float *xr = x + ((size_t)c * H + (rowok ? ir : 0)) * W;
            for (int kw = 0; kw < 3; kw++) {
                const float *wt = wg + ((size_t)c * 9 + kh * 3 + kw) * 32;
                __m512 w[4];
                for (int v = 0; v < NV; v++) w[v] = _mm512_loadu_ps(wt + (v >= 2 ? gs : 0) + 16 * (v & 1));
                for (int p = 0; p < P; p++) {
                    int col = ic0 + 2 * p + kw;
                    __m512 b = _mm512_set1_ps(!checked ? xr[col] : rowok && col >= 0 && col < W ? xr[col] : 0.0f);
                    for (int v = 0; v < NV; v++) acc[p][v] = _mm512_fmadd_ps(b, w[v], acc[p][v]);
                }
            }
        }
    for (int v = 0; v < NV; v++)
        for (int p = 0; p < P; p++) _mm512_store_ps(out + v * vs + (size_t)p * 16, _mm512_min_ps(_mm512_max_ps(acc[p][v], vlo), vhi));
}

static inline __attribute__((always_inline)) AVX512 void stem_run(const float *x, int C, int H, int W, const float *wg, size_t gs, const int NV,
                                                                 int ir0, int OW, int PL, const __m512 *bv, __m512 vlo, __m512 vhi,
                                                                 float *out, size_t vs) {
    for (int ow = 0; ow < OW; ow += STEM_PIX) {
        int p = OW - ow < STEM_PIX ? OW - ow : STEM_PIX, ic0 = 2 * ow - PL;
        int inside = ir0 >= 0 && ir0 + 3 <= H && ic0 >= 0 && ic0 + 2 * p + 1 <= W;
        float *o = out + (size_t)ow * 16;
        if (inside && p == STEM_PIX) stem_tile(x, C, H, W, wg, gs, NV, STEM_PIX, ir0, ic0, 0, bv, vlo, vhi, o, vs);
        else if (p == STEM_PIX) stem_tile(x, C, H, W, wg, gs, NV, STEM_PIX, ir0, ic0, 1, bv, vlo, vhi, o, vs);
        else
            switch (p) {
            case 5: stem_tile(x, C, H, W, wg, gs, NV, 5, ir0, ic0, 1, bv, vlo, vhi, o, vs); break;
            case 4: stem_tile(x, C, H, W, wg, gs, NV, 4, ir0, ic0, 1, bv, vlo, vhi, o, vs); break;
            case 3: stem_tile(x, C, H, W, wg, gs, NV, 3, ir0, ic0, 1, bv, vlo, vhi, o, vs); break;
            case 2: stem_tile(x, C, H, W, wg, gs, NV, 2, ir0, ic0, 1, bv, vlo, vhi, o, vs); break;
            default: stem_tile(x, C, H, W, wg, gs, NV, 1, ir0, ic0, 1, bv, vlo, vhi, o, vs); break;
            }
    }
}

// Convolution row r into out: [2 * ceil(M / 32) vectors][OW][16] (lanes past M hold the clamp of 0).
static AVX512 void stem_row(const float *x, int C, int H, int W, const float *packed, int M, int PT, int PL, int r, int OW,
                            const float *bias, __m512 vlo, __m512 vhi, float *out) {
    int groups = (M + 31) / 32, ir0 = 2 * r - PT;
    size_t gs = (size_t)C * 9 * 32, vs = (size_t)OW * 16;
    for (int g = 0; g < groups; g += 2) {
        int nv = groups - g >= 2 ? 4 : 2;
        __m512 bv[4];
        for (int v = 0; v < nv; v++) {
            int m0 = g * 32 + 16 * v, n = M - m0 < 0 ? 0 : M - m0 > 16 ? 16 : M - m0;
            bv[v] = bias ? _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1u), bias + m0) : _mm512_setzero_ps();
        }
        const float *wg = packed + (size_t)g * gs;
        float *o = out + (size_t)g * 2 * vs;
        if (nv == 4) stem_run(x, C, H, W, wg, gs, 4, ir0, OW, PL, bv, vlo, vhi, o, vs);
        else stem_run(x, C, H, W, wg, gs, 2, ir0, OW, PL, bv, vlo, vhi, o, vs);
    }
}

size_t sq_stem_lanes_scratch(int M, int OW, int POW) {
    size_t vecs = (size_t)(M + 31) / 32 * 2;
    return vecs * 16 * (3 * (size_t)OW + (size_t)POW) + 16;
}

AVX512
void sq_stem_pool_lanes_avx512(const float *x, int C, int H, int W, const float *packed, int M, int PT, int PL, int OH, int OW,
                               const float *bias, float lo, float hi, int QT, int QL, int POH, int POW, float *y, int q0, int q1,
                               float *scratch) {
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi), ninf = _mm512_set1_ps(-__builtin_inff());
    int nvec = (M + 31) / 32 * 2, mvec = (M + 15) / 16;
    size_t vs = (size_t)OW * 16, rowf = (size_t)nvec * vs;
    float *rows = (float *)(((uintptr_t)scratch + 63) & ~(uintptr_t)63), *pooled = rows + 3 * rowf;
    int have[3] = {-1, -1, -1};   // the convolution row held in each slot (row r lives in slot r % 3)
    for (int q = q0; q < q1; q++) {
        int ra = 2 * q - QT;
        for (int r = ra < 0 ? 0 : ra; r < ra + 3 && r < OH; r++)
            if (have[r % 3] != r) {
                stem_row(x, C, H, W, packed, M, PT, PL, r, OW, bias, vlo, vhi, rows + (size_t)(r % 3) * rowf);
                have[r % 3] = r;
            }
        for (int v = 0; v < mvec; v++)
            for (int pw = 0; pw < POW; pw++) {
                int ca = 2 * pw - QL;
                __m512 acc = ninf;
                for (int r = ra < 0 ? 0 : ra; r < ra + 3 && r < OH; r++) {
                    const float *in = rows + (size_t)(r % 3) * rowf + v * vs;
                    __m512 t[3];
                    for (int j = 0; j < 3; j++) t[j] = ca + j >= 0 && ca + j < OW ? _mm512_load_ps(in + (size_t)(ca + j) * 16) : ninf;
                    acc = _mm512_max_ps(acc, _mm512_max_ps(_mm512_max_ps(t[0], t[1]), t[2]));
                }
                _mm512_store_ps(pooled + v * (size_t)POW * 16 + (size_t)pw * 16, acc);
            }
        for (int v = 0; v < mvec; v++)
            lanes_to_planes(pooled + (size_t)v * POW * 16, POW, M - 16 * v < 16 ? M - 16 * v : 16,
                            y + (size_t)16 * v * POH * POW + (size_t)q * POW, (size_t)POH * POW);
    }
}

// Loads every line of rows [r0, r1) of the C planes once, in order. A network's stem reads its image (600 KB at
// 224x224) from memory, and the kernel's walk, a few rows of each plane at a time, keeps the hardware prefetchers
// from running ahead: with the image out of cache, MobileNetV2's stem took 365 us alone, 273 after this pass
// (warm: 237). On an image in cache the pass costs a few microseconds.
static inline AVX512 void warm_rows(const float *x, int C, int H, int W, int r0, int r1) {
    if (r0 < 0) r0 = 0;
    if (r1 > H) r1 = H;
    __m512i s = _mm512_setzero_si512();
    for (int c = 0; c < C && r0 < r1; c++) {
        const float *p = x + ((size_t)c * H + r0) * W, *e = x + ((size_t)c * H + r1) * W;
        for (; p + 16 <= e; p += 16) s = _mm512_or_si512(s, _mm512_castps_si512(_mm512_loadu_ps(p)));
    }
    __asm__ volatile("" : : "v"(s));
}

// Stride 2 on rows split once into their even and odd columns. Output column ow reads padded input columns 2ow, 2ow + 1,
// 2ow + 2: E[ow], O[ow], E[ow + 1] of the split row (E[k] = xpad[2k], O[k] = xpad[2k + 1], zeros outside the row), so
// a tile's taps are three plain loads. conv3x3_tile split each row again for every block of 8 output channels (two
// permutes and three masked loads per row and block): 64 -> 128 channels at 80x80 ran at 74% of peak, 16 -> 32 at
// 320x320 at 67%. Chunks of S2_ROWS output rows: their 2 S2_ROWS + 1 input rows of every channel are split into scratch
// (a few hundred KB), then every block of output channels runs over them. The sums are conv3x3_tile's, in its order:
// the same bits.
enum { S2_ROWS = 4 };

static inline __attribute__((always_inline)) AVX512 void conv3x3_s2_tile(const float *split, size_t rowf, size_t half, int C,
                                                                        int ra, const float *wb, int two, int ow, const float *bias,
                                                                        int nm, __m512 vlo, __m512 vhi, float *o, size_t oplane,
                                                                        int OW, __mmask16 sm) {
    __m512 acc[2][C3_OCB];
    tile_init(acc, bias, nm);
    size_t chan = (size_t)(2 * S2_ROWS + 1) * rowf;
    for (int c = 0; c < C; c++) {
        const float *sc = split + c * chan;
        for (int kh = 0; kh < 3; kh++) {
            const float *a = sc + (size_t)(ra + kh) * rowf + ow, *b = a + 2 * rowf;
            __m512 ta[3], tb[3];
            ta[0] = _mm512_loadu_ps(a); ta[1] = _mm512_loadu_ps(a + half); ta[2] = _mm512_loadu_ps(a + 1);
            if (two) { tb[0] = _mm512_loadu_ps(b); tb[1] = _mm512_loadu_ps(b + half); tb[2] = _mm512_loadu_ps(b + 1); }
            else tb[0] = tb[1] = tb[2] = _mm512_setzero_ps();
            tile_row(wb + ((size_t)c * 9 + kh * 3) * C3_OCB, ta, tb, acc);
        }
    }
    tile_store(acc, nm, two, vlo, vhi, o, oplane, OW, sm);
}

static AVX512 void conv3x3_s2_split(const float *x, int C, int H, int W, const float *packed, int M, int PT, int PL, float *y,
                                    int OH, int OW, const float *bias, __m512 vlo, __m512 vhi, int oh0, int oh1, int row0) {
    int blocks = (M + C3_OCB - 1) / C3_OCB, owr = (OW + 15) / 16 * 16;
    size_t oplane = (size_t)OH * OW, plane = (size_t)H * W;
    // A split row: E (owr + 16 values: the last block reads E[ow + 1 .. ow + 17)), then O, each padded to whole vectors.
    size_t half = (size_t)owr + 16, rowf = 2 * half, chan = (size_t)(2 * S2_ROWS + 1) * rowf;
    float *split = sq_thread_scratch(SQ_SCRATCH_CONV, sizeof(float) * ((size_t)C * chan + 16));
    const __m512 zero = _mm512_setzero_ps();
    for (int c0 = oh0; c0 < oh1; c0 += S2_ROWS) {
        int c1 = c0 + S2_ROWS < oh1 ? c0 + S2_ROWS : oh1, ih0 = 2 * c0 - PT, rows = 2 * (c1 - c0) + 1;
        for (int c = 0; c < C; c++)
            for (int r = 0; r < rows; r++) {
                float *e = split + c * chan + (size_t)r * rowf;
                int ih = ih0 + r;
                if (ih < 0 || ih >= H) {
                    for (size_t i = 0; i < rowf; i += 16) _mm512_storeu_ps(e + i, zero);
                    continue;
                }
                const float *row = x + c * plane + (size_t)ih * W;
                for (int ow = 0; ow < (int)half; ow += 16) {
                    taps_mask m = block_masks(ow, 2, 3, PL, W);
                    __m512 t[5];
                    row_taps(row, 2, 3, m, zero, t);
                    _mm512_storeu_ps(e + ow, t[0]);
                    _mm512_storeu_ps(e + half + ow, t[1]);
                }
            }
        for (int blk = 0; blk < blocks; blk++) {
            const float *wb = packed + (size_t)blk * C * 9 * C3_OCB;
            int nm = M - blk * C3_OCB < C3_OCB ? M - blk * C3_OCB : C3_OCB;
            const float *bb = bias ? bias + blk * C3_OCB : NULL;
            for (int oh = c0; oh < c1; oh += 2)
                for (int ow = 0; ow < OW; ow += 16) {
                    float *o = y + (size_t)blk * C3_OCB * oplane + (size_t)(oh - row0) * OW + ow;
                    conv3x3_s2_tile(split, rowf, half, C, 2 * (oh - c0), wb, oh + 1 < c1, ow, bb, nm, vlo, vhi, o, oplane, OW, store_mask(ow, OW));
                }
        }
    }
}

AVX512
void sq_conv3x3_avx512(const float *x, int C, int H, int W, const float *packed, int M, int stride, int PT, int PL,
                       float *y, int OH, int OW, const float *bias, float lo, float hi, int oh0, int oh1, int row0) {
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    int blocks = (M + C3_OCB - 1) / C3_OCB;
    size_t oplane = (size_t)OH * OW;
    // Rows that fill whole vectors run faster row by row (measured 255 against 240 GFLOP/s at 24 channels, 160x160).
    if (stride == 1 && PT == 1 && PL == 1 && OH == H && OW == W && W % 16 != 0) {
        int qend = oh1 * W;
        for (int q = oh0 * W; q < qend; q += 16 * FLAT_NV) {
            int nv = (qend - q + 15) / 16 < FLAT_NV ? (qend - q + 15) / 16 : FLAT_NV, edge = 0;
            __mmask16 m[FLAT_NV][9], s[FLAT_NV];
            for (int v = 0; v < nv; v++) {
                edge |= flat_masks(q + 16 * v, qend, W, H, m[v]);
                s[v] = store_mask(q + 16 * v, qend);
            }
            for (int blk = 0; blk < blocks; blk++) {
                const float *wb = packed + (size_t)blk * C * 9 * C3_OCB;
                int nm = M - blk * C3_OCB < C3_OCB ? M - blk * C3_OCB : C3_OCB;
                float *o = y + (size_t)blk * C3_OCB * oplane + (size_t)(q - row0 * W);
                const float *bb = bias ? bias + blk * C3_OCB : NULL;
                if (nv == FLAT_NV && !edge) conv3x3_flat_tile(x, C, H, W, wb, q, FLAT_NV, 0, m, s, bb, nm, vlo, vhi, o, oplane);
                else if (nv == FLAT_NV) conv3x3_flat_tile(x, C, H, W, wb, q, FLAT_NV, 1, m, s, bb, nm, vlo, vhi, o, oplane);
                else conv3x3_flat_tile(x, C, H, W, wb, q, 1, 1, m, s, bb, nm, vlo, vhi, o, oplane);
            }
        }
        return;
    }
    // With few input channels (a network's stem: 3), blocks of output channels go outermost: a block's 8 planes are
    // then written row after row instead of all M planes at once (M * 2 rows of stores in flight, each line fetched
    // before it is written, from memory at the start of a run). The small input is read again per block, from cache.
    // Measured in the networks at 1 thread: EfficientNet-Lite0's stem 0.27 -> 0.18 ms, MobileNetV2's 0.22 -> 0.17.
    if (stride == 2 && C > 4) {
        conv3x3_s2_split(x, C, H, W, packed, M, PT, PL, y, OH, OW, bias, vlo, vhi, oh0, oh1, row0);
        return;
    }
    int outer = C <= 4;
    if (outer) warm_rows(x, C, H, W, oh0 * stride - PT, (oh1 - 1) * stride - PT + 3);
    for (int b0 = 0; b0 < (outer ? blocks : 1); b0++)
    for (int oh = oh0; oh < oh1; oh += 2) {
        int two = oh + 1 < oh1;
        for (int blk = outer ? b0 : 0; blk < (outer ? b0 + 1 : blocks); blk++) {
            const float *wb = packed + (size_t)blk * C * 9 * C3_OCB;
            int nm = M - blk * C3_OCB < C3_OCB ? M - blk * C3_OCB : C3_OCB;
            for (int ow = 0; ow < OW; ow += 16) {
                taps_mask m = block_masks(ow, stride, 3, PL, W);
                float *o = y + (size_t)blk * C3_OCB * oplane + (size_t)(oh - row0) * OW + ow;
                const float *bb = bias ? bias + blk * C3_OCB : NULL;
                if (stride == 1) conv3x3_tile(x, C, H, W, wb, 1, oh - PT, two, m, bb, nm, vlo, vhi, o, oplane, OW, store_mask(ow, OW));
                else conv3x3_tile(x, C, H, W, wb, 2, oh * 2 - PT, two, m, bb, nm, vlo, vhi, o, oplane, OW, store_mask(ow, OW));
            }
        }
    }
}
