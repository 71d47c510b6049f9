// AVX2 + FMA kernels on NCHW planes: depthwise KxK convolution (K = 3 or 5, dilation 1, stride 1 or 2) and 3x3 max
// pooling. Outputs of at most 8x8 take dw_small (channels in the lanes, below). Otherwise the depthwise kernel works
// straight from NCHW input as the AVX-512 kernel in direct.c does: no padded copy of the channel. A tile is ROWS output rows x NV vectors of 8 columns. The
// taps of one input row are masked loads (vmaskmovps: lanes outside the row read nothing and give 0, the padding),
// one per vector and column tap with stride 1; with stride 2 two loads per tap whose even lanes are the tap. Each tap
// vector serves every output row of the tile whose window covers its input row. Tiles: 4 rows x 16 columns where the
// rows are wide, 8 rows x 8 columns on maps of at most 8 columns (7x7), so that either way 8 accumulators are in
// flight (FMA latency x 2 units) and few lanes are empty.
#include "CKernels.h"
#include "scratch.h"
#include <immintrin.h>
#include <string.h>

#define AVX2 __attribute__((target("avx2,fma")))

// Lanes j with 0 <= c + j < W.
static inline AVX2 __m256i lanes_inside(int c, int W) {
    __m256i j = _mm256_add_epi32(_mm256_set1_epi32(c), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    return _mm256_and_si256(_mm256_cmpgt_epi32(j, _mm256_set1_epi32(-1)), _mm256_cmpgt_epi32(_mm256_set1_epi32(W), j));
}

// The even lanes of the 16 floats a, b in the order a0 a2 b0 b2 a4 a6 b4 b6 (one in-lane shuffle): every stride-2
// tap and so every sum comes out in this order, and `in_order` puts a sum right once, before it is stored.
static inline AVX2 __m256 evens(__m256 a, __m256 b) { return _mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)); }

static inline AVX2 __m256 in_order(__m256 s) {
    return _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(s), _MM_SHUFFLE(3, 1, 2, 0)));
}

enum { DW2_MAX_K = 5, DW2_BLOCKS = 16 };

// Masks of one tile's loads: m[kw][v][h] for column tap kw, vector v, half h (stride 2 loads two vectors per tap).
typedef struct { __m256i m[DW2_MAX_K][2][2]; int c0, interior; } dw2_masks;

static inline AVX2 void tile_masks(dw2_masks *t, int ow, int stride, int K, int NV, int PL, int W) {
    t->c0 = ow * stride - PL;
    for (int kw = 0; kw < K; kw++)
        for (int v = 0; v < NV; v++)
            for (int h = 0; h < stride; h++) t->m[kw][v][h] = lanes_inside(t->c0 + 8 * v * stride + kw + 8 * h, W);
    // Every lane of every load inside the row: plain loads (masked ones cost a quarter of the time on Zen 3).
    t->interior = t->c0 >= 0 && t->c0 + 8 * (NV - 1) * stride + (K - 1) + 8 * stride <= W;
}

// The tap kw of vector v of one input row: row[c0 + (8v + j) * stride + kw] for j < 8, 0 outside the row.
static inline __attribute__((always_inline)) AVX2 __m256 row_tap(const float *row, const dw2_masks *t, int stride, int kw, int v, int MASKED) {
    const float *p = row + t->c0 + 8 * v * stride + kw;
    if (!MASKED) return stride == 1 ? _mm256_loadu_ps(p) : evens(_mm256_loadu_ps(p), _mm256_loadu_ps(p + 8));
    if (stride == 1) return _mm256_maskload_ps(p, t->m[kw][v][0]);
    return evens(_mm256_maskload_ps(p, t->m[kw][v][0]), _mm256_maskload_ps(p + 8, t->m[kw][v][1]));
}

static inline __attribute__((always_inline)) AVX2 void dw2_tile(const float *xc, int H, int W, const float *wc, int K, int stride,
                                                                int ROWS, int NV, int MASKED, int PT, const dw2_masks *t, int oh, int nrows,
                                                                float b, __m256 vlo, __m256 vhi, float *yo, int OW, int ow) {
    __m256 acc[8][2];
    for (int u = 0; u < ROWS; u++) acc[u][0] = acc[u][1] = _mm256_setzero_ps();
    int ih0 = oh * stride - PT;
    const int span = (ROWS - 1) * stride + K;
    for (int r = 0; r < span; r++) {
        int ih = ih0 + r;
        if (ih < 0 || ih >= H) continue;
        const float *row = xc + (size_t)ih * W;
        for (int kw = 0; kw < K; kw++) {
            __m256 tap[2];
            for (int v = 0; v < NV; v++) tap[v] = row_tap(row, t, stride, kw, v, MASKED);
            for (int u = 0; u < ROWS; u++) {
                int kh = r - u * stride;
                if (kh < 0 || kh >= K) continue;
                __m256 wv = _mm256_broadcast_ss(wc + kh * K + kw);
                for (int v = 0; v < NV; v++) acc[u][v] = _mm256_fmadd_ps(wv, tap[v], acc[u][v]);
            }
        }
    }
    __m256 bv = _mm256_set1_ps(b);
    for (int u = 0; u < ROWS && u < nrows; u++)
        for (int v = 0; v < NV; v++) {
            __m256 y = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(bv, stride == 2 ? in_order(acc[u][v]) : acc[u][v]), vlo), vhi);
            float *o = yo + (size_t)u * OW + 8 * v;
            if (ow + 8 * v + 8 <= OW) _mm256_storeu_ps(o, y);
            else _mm256_maskstore_ps(o, lanes_inside(ow + 8 * v, OW), y);   // lanes past the last column stay unwritten
        }
}

static inline __attribute__((always_inline)) AVX2 void dw2_plane(const float *x, int H, int W, size_t xplane, const float *w, int K,
                                                                 int stride, int ROWS, int NV, int PT, int PL, float *y, int OH,
                                                                 int OW, const float *bias, float lo, float hi, int c0, int c1,
                                                                 int oh0, int oh1) {
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    // The masks depend on the column block only: made once per call for up to DW2_BLOCKS blocks (a plane is then
    // walked row by row, its rows staying in cache); wider rows take their blocks in runs of DW2_BLOCKS.
    dw2_masks t[DW2_BLOCKS];
    int blocks = (OW + 8 * NV - 1) / (8 * NV);
    for (int b0 = 0; b0 < blocks; b0 += DW2_BLOCKS) {
        int nb = blocks - b0 < DW2_BLOCKS ? blocks - b0 : DW2_BLOCKS;
        for (int q = 0; q < nb; q++) tile_masks(&t[q], (b0 + q) * 8 * NV, stride, K, NV, PL, W);
        for (int c = c0; c < c1; c++) {
            const float *xc = x + (size_t)c * xplane;
            const float *wc = w + (size_t)c * K * K;
            float *yc = y + (size_t)c * OH * OW;
            float b = bias ? bias[c] : 0.0f;
            for (int oh = oh0; oh < oh1; oh += ROWS)
                for (int q = 0; q < nb; q++) {
                    int ow = (b0 + q) * 8 * NV;
                    float *yo = yc + (size_t)oh * OW + ow;
                    if (t[q].interior) dw2_tile(xc, H, W, wc, K, stride, ROWS, NV, 0, PT, &t[q], oh, oh1 - oh, b, vlo, vhi, yo, OW, ow);
                    else dw2_tile(xc, H, W, wc, K, stride, ROWS, NV, 1, PT, &t[q], oh, oh1 - oh, b, vlo, vhi, yo, OW, ow);
                }
        }
    }
}

// The 8 x 8 floats r[0..8) transposed in place (r[i][j] <- r[j][i]).
static inline __attribute__((always_inline)) AVX2 void transpose8(__m256 r[8]) {
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(1, 0, 1, 0)), u1 = _mm256_shuffle_ps(t0, t2, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 u2 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(1, 0, 1, 0)), u3 = _mm256_shuffle_ps(t1, t3, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 u4 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(1, 0, 1, 0)), u5 = _mm256_shuffle_ps(t4, t6, _MM_SHUFFLE(3, 2, 3, 2));
    __m256 u6 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(1, 0, 1, 0)), u7 = _mm256_shuffle_ps(t5, t7, _MM_SHUFFLE(3, 2, 3, 2));
    r[0] = _mm256_permute2f128_ps(u0, u4, 0x20); r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
    r[2] = _mm256_permute2f128_ps(u2, u6, 0x20); r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
    r[4] = _mm256_permute2f128_ps(u0, u4, 0x31); r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
    r[6] = _mm256_permute2f128_ps(u2, u6, 0x31); r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// Outputs at most 8 x 8. Measured at 1 thread: 1152 channels 5x5 at 7x7 169 -> 83 us, 960 3x3 at 7x7 71 -> 49; at 14x14
// it lost (672 channels 5x5 209 -> 284 us, 576 3x3 107 -> 134), where the rows fill 14 of 16 lanes anyway.
enum { DWS_OUT = 8, DWS_IN = 16, DWS_SPAN = (DWS_OUT - 1) * 2 + 5 };

// Depthwise KxK at stride 1 or 2 with a small output (7x7 maps, where a row of 8-wide vectors leaves lanes empty and
// every block is an edge): channels in the lanes instead. 8 channels at a time are transposed (8 x 8 blocks) into a
// zero-bordered buffer of the Hp x Wp padded pixels the windows read, 8 channels each, so every tap of every output is
// one plain load and each weight tap one vector; 8 outputs of a row are summed at once (8 accumulators), then
// transposed back. Check dw_small_fits first.
static inline int dw_small_fits(int H, int W, int K, int S, int PT, int PL, int OH, int OW) {
    int Hp = (OH - 1) * S + K, Wp = (OW - 1) * S + K;
    return (S == 1 || S == 2) && OH <= DWS_OUT && OW <= DWS_OUT && H <= DWS_IN && W <= DWS_IN && PT >= 0 && PL >= 0
        && H + PT <= Hp && W + PL <= Wp;
}

static inline __attribute__((always_inline)) AVX2 void dw_small(const float *x, int H, int W, size_t xplane, const float *w, int K, int S,
                                                                int PT, int PL, float *y, int OH, int OW, const float *bias, float lo,
                                                                float hi, int c0, int c1) {
    const int Hp = (OH - 1) * S + K, Wp = (OW - 1) * S + K, n = H * W, on = OH * OW;
    __attribute__((aligned(32))) float buf[DWS_SPAN * DWS_SPAN * 8];
    __attribute__((aligned(32))) float out[DWS_OUT * DWS_OUT * 8];
    __attribute__((aligned(32))) float wt[25 * 8];
    // The border (padding) is written once; each group overwrites only the image inside it.
    memset(buf, 0, sizeof(float) * (size_t)Hp * Wp * 8);
    const __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
    for (int c = c0; c < c1; c += 8) {
        int nc = c1 - c < 8 ? c1 - c : 8;
        // In: pixels p .. p + 7 of the 8 channels, transposed to 8 pixel vectors (channels past c1 read channel c).
        int p = 0;
        for (; p + 8 <= n; p += 8) {
            __m256 r[8];
            for (int j = 0; j < 8; j++) r[j] = _mm256_loadu_ps(x + (size_t)(c + (j < nc ? j : 0)) * xplane + p);
            transpose8(r);
            for (int i = 0; i < 8; i++) {
                int q = p + i, h = q / W, col = q - h * W;
                _mm256_store_ps(buf + ((size_t)(h + PT) * Wp + col + PL) * 8, r[i]);
            }
        }
        for (; p < n; p++) {
            int h = p / W, col = p - h * W;
            for (int j = 0; j < 8; j++) buf[((size_t)(h + PT) * Wp + col + PL) * 8 + j] = x[(size_t)(c + (j < nc ? j : 0)) * xplane + p];
        }
        for (int t = 0; t < K * K; t++)
            for (int j = 0; j < 8; j++) wt[t * 8 + j] = w[(size_t)(c + (j < nc ? j : 0)) * K * K + t];
        __m256 bv = _mm256_setzero_ps();
        if (bias) {
            float b[8];
            for (int j = 0; j < 8; j++) b[j] = bias[c + (j < nc ? j : 0)];
            bv = _mm256_loadu_ps(b);
        }
        for (int oh = 0; oh < OH; oh++) {
            __m256 acc[8];
            for (int u = 0; u < 8; u++) acc[u] = bv;
            for (int kh = 0; kh < K; kh++)
                for (int kw = 0; kw < K; kw++) {
                    __m256 wv = _mm256_load_ps(wt + (kh * K + kw) * 8);
                    const float *src = buf + ((size_t)(oh * S + kh) * Wp + kw) * 8;
                    for (int u = 0; u < 8; u++)
                        if (u < OW) acc[u] = _mm256_fmadd_ps(wv, _mm256_load_ps(src + u * S * 8), acc[u]);
                }
            for (int u = 0; u < OW; u++) _mm256_store_ps(out + ((size_t)oh * OW + u) * 8, _mm256_min_ps(_mm256_max_ps(acc[u], vlo), vhi));
        }
        // Out: 8 pixels x 8 channels back to the channels' planes.
        for (p = 0; p + 8 <= on; p += 8) {
            __m256 r[8];
            for (int i = 0; i < 8; i++) r[i] = _mm256_load_ps(out + (size_t)(p + i) * 8);
            transpose8(r);
            for (int j = 0; j < nc; j++) _mm256_storeu_ps(y + (size_t)(c + j) * on + p, r[j]);
        }
        for (; p < on; p++)
            for (int j = 0; j < nc; j++) y[(size_t)(c + j) * on + p] = out[(size_t)p * 8 + j];
    }
}

AVX2
void sq_dw_avx2(const float *x, int H, int W, size_t xplane, const float *w, int K, int stride, int PT, int PL, float *y, int OH,
                int OW, const float *bias, float lo, float hi, int c0, int c1, int oh0, int oh1) {
    if (oh0 == 0 && oh1 == OH && dw_small_fits(H, W, K, stride, PT, PL, OH, OW)) {
        if (K == 3 && stride == 1) dw_small(x, H, W, xplane, w, 3, 1, PT, PL, y, OH, OW, bias, lo, hi, c0, c1);
        else if (K == 3) dw_small(x, H, W, xplane, w, 3, 2, PT, PL, y, OH, OW, bias, lo, hi, c0, c1);
        else if (stride == 1) dw_small(x, H, W, xplane, w, 5, 1, PT, PL, y, OH, OW, bias, lo, hi, c0, c1);
        else dw_small(x, H, W, xplane, w, 5, 2, PT, PL, y, OH, OW, bias, lo, hi, c0, c1);
        return;
    }
#define DW2(KK, SS)                                                                                                   \
    do {                                                                                                              \
        if (OW <= 8) dw2_plane(x, H, W, xplane, w, KK, SS, 8, 1, PT, PL, y, OH, OW, bias, lo, hi, c0, c1, oh0, oh1);  \
        else dw2_plane(x, H, W, xplane, w, KK, SS, 4, 2, PT, PL, y, OH, OW, bias, lo, hi, c0, c1, oh0, oh1);          \
    } while (0)
    if (K == 3 && stride == 1) DW2(3, 1);
    else if (K == 3) DW2(3, 2);
    else if (stride == 1) DW2(5, 1);
    else DW2(5, 2);
#undef DW2
}

void sq_dw(const float *x, int H, int W, size_t xplane, const float *w, int K, int stride, int PT, int PL, float *y, int OH, int OW,
           const float *bias, float lo, float hi, int c0, int c1, int oh0, int oh1) {
    if (sq_cpu_level() == 3) sq_dw_avx512(x, H, W, xplane, w, K, stride, PT, PL, y, OH, OW, bias, lo, hi, c0, c1, oh0, oh1);
    else sq_dw_avx2(x, H, W, xplane, w, K, stride, PT, PL, y, OH, OW, bias, lo, hi, c0, c1, oh0, oh1);
}

// 3x3 max pooling (stride 1 or 2) of planes [p0, p1), in chunks of output rows. First the max of each output row's
// (up to three) input rows goes into a buffer row with -inf on both sides; then each output is the max of three
// neighbours in its buffer row (stride 2: the even and odd lanes of two loads, and the even lanes of two loads two
// columns on). Plain loads only, and no scalar tails: a row's last vector overlaps the one before. The earlier form
// built the nine taps of every output with masked loads and shuffles (256 planes of 27x27: 81 us).
enum { POOL_CHUNK = 8 };

AVX2
void sq_maxpool3x3_avx2(const float *x, int H, int W, int stride, int PT, int PL, float *y, int OH, int OW, int p0, int p1) {
    const float ninf = -__builtin_inff();
    // A buffer row: PL pads, W columns, then -inf up to the last column an output vector reads (8·stride + 1 past its
    // first output's window, which starts at most at (max(OW, 8) - 8)·stride).
    int ov = OW > 8 ? OW : 8;
    size_t len = (size_t)ov * stride + 2;
    if (len < (size_t)PL + W) len = (size_t)PL + W;
    len = (len + 7) / 8 * 8;
    float *buf = sq_thread_scratch(SQ_SCRATCH_POOL, sizeof(float) * len * POOL_CHUNK);
    for (int i = 0; i < POOL_CHUNK; i++) {
        float *b = buf + (size_t)i * len;
        for (int j = 0; j < PL; j++) b[j] = ninf;
        for (size_t j = (size_t)PL + W; j < len; j++) b[j] = ninf;
    }
    for (int p = p0; p < p1; p++) {
        const float *xp = x + (size_t)p * H * W;
        float *yp = y + (size_t)p * OH * OW;
        for (int oh0 = 0; oh0 < OH; oh0 += POOL_CHUNK) {
            int rows = OH - oh0 < POOL_CHUNK ? OH - oh0 : POOL_CHUNK;
            for (int i = 0; i < rows; i++) {
                float *row = buf + (size_t)i * len + PL;
                int ih = (oh0 + i) * stride - PT, r0 = ih < 0 ? 0 : ih, r1 = ih + 3 < H ? ih + 3 : H;
                if (r0 >= r1) {
                    for (int c = 0; c < W; c++) row[c] = ninf;
                    continue;
                }
                // Rows past the window's last repeat it.
                const float *a = xp + (size_t)r0 * W, *b = a + (r1 - r0 > 1 ? W : 0), *d = a + (r1 - r0 > 2 ? 2 * W : 0);
                if (W >= 8) {
                    for (int c = 0; c < W; c += 8) {
                        int cc = c + 8 <= W ? c : W - 8;
                        _mm256_storeu_ps(row + cc, _mm256_max_ps(_mm256_max_ps(_mm256_loadu_ps(a + cc), _mm256_loadu_ps(b + cc)),
                                                                 _mm256_loadu_ps(d + cc)));
                    }
                } else {
                    for (int c = 0; c < W; c++) {
                        float v = a[c] > b[c] ? a[c] : b[c];
                        row[c] = v > d[c] ? v : d[c];
                    }
                }
            }
            for (int i = 0; i < rows; i++) {
                const float *b = buf + (size_t)i * len;
                float *o = yp + (size_t)(oh0 + i) * OW;
                for (int ow = 0; ow < OW; ow += 8) {
                    int w0 = ow + 8 <= OW || OW < 8 ? ow : OW - 8;
                    __m256 m;
                    if (stride == 1) {
                        m = _mm256_max_ps(_mm256_max_ps(_mm256_loadu_ps(b + w0), _mm256_loadu_ps(b + w0 + 1)), _mm256_loadu_ps(b + w0 + 2));
                    } else {
                        const float *q = b + 2 * w0;
                        __m256 u = _mm256_loadu_ps(q), v = _mm256_loadu_ps(q + 8), s = _mm256_loadu_ps(q + 2), t = _mm256_loadu_ps(q + 10);
                        m = in_order(_mm256_max_ps(_mm256_max_ps(evens(u, v), _mm256_shuffle_ps(u, v, _MM_SHUFFLE(3, 1, 3, 1))), evens(s, t)));
                    }
                    if (OW >= 8) _mm256_storeu_ps(o + w0, m);
                    else {
                        float t[8];
                        _mm256_storeu_ps(t, m);
                        memcpy(o, t, sizeof(float) * OW);
                    }
                }
            }
        }
    }
}
