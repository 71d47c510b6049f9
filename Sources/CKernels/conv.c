// Convolution helpers: im2col for the GEMM path and a direct depthwise kernel. The loops are written so the
// compiler vectorizes the innermost one; target_clones builds AVX-512, AVX2 and portable versions.
#include "CKernels.h"
#include "scratch.h"
#include "simd.h"
#include <stdlib.h>
#include <string.h>

// dst[i] = src[i * 2] for i < n, 16 at a time by loading 32 and keeping the even lanes. Reads no further
// than src[2 * (n - 1)].
static inline __attribute__((always_inline)) void copy_stride2(float *dst, const float *src, int n) {
    int i = 0;
    for (; i + 16 <= n && 2 * i + 32 <= 2 * (n - 1) + 1; i += 16) {
        v16 a, b;
        __builtin_memcpy(&a, src + 2 * i, sizeof a);
        __builtin_memcpy(&b, src + 2 * i + 16, sizeof b);
        v16 e = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        __builtin_memcpy(dst + i, &e, sizeof e);
    }
    for (; i < n; i++) dst[i] = src[2 * i];
}

CLONES
void sq_im2col(const float *x, int C, int H, int W, int KH, int KW, int SH, int SW, int DH, int DW,
               int PT, int PL, int OH, int OW, int oh0, int oh1, float *col) {
    for (int c = 0; c < C; c++) {
        const float *xc = x + (size_t)c * H * W;
        for (int kh = 0; kh < KH; kh++) {
            for (int kw = 0; kw < KW; kw++) {
                float *out = col + ((size_t)(c * KH + kh) * KW + kw) * OH * OW;
                int off = kw * DW - PL;
                // Output columns whose input column lies inside [0, W).
                int ow0 = off >= 0 ? 0 : (-off + SW - 1) / SW;
                int ow1 = W - off <= 0 ? 0 : (W - off + SW - 1) / SW;
                if (ow1 > OW) ow1 = OW;
                if (ow0 > ow1) ow0 = ow1;
                // At stride 1 on a map as wide as the output, the output rows inside the image are the input rows
                // shifted by one offset: one copy for all of them (the rows were a memcpy call each, 28 floats for a 5x5
                // depthwise on 28x28); the row loop then zeroes the columns that came from neighbouring rows. Some
                // column is inside the image (ow0 < ow1), so the copy starts and ends inside the plane.
                int whole = SW == 1 && SH == 1 && OW == W && ow0 < ow1;
                if (whole) {
                    int a = PT - kh * DH, b = H + PT - kh * DH;   // rows with ih in [0, H)
                    a = a < oh0 ? oh0 : a > oh1 ? oh1 : a;
                    b = b < a ? a : b > oh1 ? oh1 : b;
                    if (a < b) {
                        size_t first = (size_t)a * OW + ow0, last = (size_t)(b - 1) * OW + ow1;   // [first, last)
                        memcpy(out + first, xc + (ptrdiff_t)((a - PT + kh * DH) * W + off) + ow0, sizeof(float) * (last - first));
                    }
                }
                for (int oh = oh0; oh < oh1; oh++) {
                    int ih = oh * SH - PT + kh * DH;
                    float *o = out + (size_t)oh * OW;
                    if (ih < 0 || ih >= H) { memset(o, 0, sizeof(float) * OW); continue; }
                    const float *row = xc + (size_t)ih * W + off;
                    for (int ow = 0; ow < ow0; ow++) o[ow] = 0.0f;
                    if (!whole) {
                        if (SW == 1) memcpy(o + ow0, row + ow0, sizeof(float) * (ow1 - ow0));
                        else if (SW == 2) copy_stride2(o + ow0, row + 2 * ow0, ow1 - ow0);
                        else for (int ow = ow0; ow < ow1; ow++) o[ow] = row[ow * SW];
                    }
                    for (int ow = ow1; ow < OW; ow++) o[ow] = 0.0f;
                }
            }
        }
    }
}

// Four output rows (stride 1, dilation 1 vertically) of 16 columns: every loaded input vector serves all
// the output rows whose window covers it, so loads drop from 4*KH to KH+3 per column tap. KH is a constant
// at each call site, so the loops unroll completely.
static inline __attribute__((always_inline)) void dw_rows4(const float *base, int Wq, const int *col_off, int KW, const float *wc,
                                                           int KH, float b, float lo, float hi, float *o, int OW, int width) {
    v16 acc[4] = {b, b, b, b};
    for (int kw = 0; kw < KW; kw++) {
        const float *p = base + col_off[kw];
        for (int r = 0; r < KH + 3; r++) {
            v16 v;
            __builtin_memcpy(&v, p + (size_t)r * Wq, sizeof v);
            for (int u = 0; u < 4; u++) {
                int kh = r - u;
                if (kh >= 0 && kh < KH) acc[u] += wc[kh * KW + kw] * v;
            }
        }
    }
    for (int u = 0; u < 4; u++) {
        v16 a = __builtin_elementwise_min(__builtin_elementwise_max(acc[u], (v16)lo), (v16)hi);
        if (width == 16) __builtin_memcpy(o + (size_t)u * OW, &a, sizeof a);
        else { float t[16]; __builtin_memcpy(t, &a, sizeof a); for (int j = 0; j < width; j++) o[(size_t)u * OW + j] = t[j]; }
    }
}

// Depthwise convolution, one channel at a time: the channel is first copied into a zero-padded buffer whose
// columns are split by phase (column mod SW), so every tap of 16 neighbouring outputs is one unit-stride
// load: x_padded[r][ow*SW + t] = phase[t % SW][r][ow + t / SW]. Then 16 outputs at a time accumulate all
// KH x KW taps in one register (v16: one zmm with AVX-512, two ymm with AVX2) before bias, clamp and store.
CLONES
void sq_depthwise(const float *x, int H, int W, const float *w, int KH, int KW, int SH, int SW, int DH, int DW,
                  int PT, int PL, float *y, int OH, int OW, const float *bias, float lo, float hi, int c0, int c1) {
    if ((KH == 3 || KH == 5) && KW == KH && DH == 1 && DW == 1 && SH == SW && (SH == 1 || SH == 2) && sq_cpu_level() >= 2) {
        sq_dw(x, H, W, (size_t)H * W, w, KH, SH, PT, PL, y, OH, OW, bias, lo, hi, c0, c1, 0, OH);
        return;
    }
    int Hp = (OH - 1) * SH + (KH - 1) * DH + 1;           // padded rows the outputs read
    int Wp = (OW - 1) * SW + (KW - 1) * DW + 1;           // padded columns the outputs read
    int OWv = (OW + 15) / 16 * 16;
    int Wq = OWv + ((KW - 1) * DW) / SW + 1;              // phase row length, with room for the last vector
    size_t phase_size = (size_t)Hp * Wq;
    float *buf = sq_thread_scratch(SQ_SCRATCH_DEPTHWISE, sizeof(float) * (phase_size * SW + 16));
    int taps = KH * KW;
    int tap_off[64], col_off[64];
    int big = taps > 64 || KW > 64;
    if (!big)
        for (int kw = 0; kw < KW; kw++) {
            // Column kw*DW lies in phase (kw*DW) % SW, (kw*DW) / SW further along; row kh adds kh*DH rows.
            col_off[kw] = (int)((size_t)((kw * DW) % SW) * phase_size) + (kw * DW) / SW;
            for (int kh = 0; kh < KH; kh++) tap_off[kh * KW + kw] = col_off[kw] + kh * DH * Wq;
        }
    for (int c = c0; c < c1; c++) {
        const float *xc = x + (size_t)c * H * W;
        const float *wc = w + (size_t)c * taps;
        float *yc = y + (size_t)c * OH * OW;
        float b = bias ? bias[c] : 0.0f;
        // Fill the phase buffer: padded column j = input column j - PL.
        for (int p = 0; p < SW; p++) {
            float *ph = buf + (size_t)p * phase_size;
            for (int r = 0; r < Hp; r++) {
                int ih = r - PT;
                float *o = ph + (size_t)r * Wq;
                if (ih < 0 || ih >= H) { memset(o, 0, sizeof(float) * Wq); continue; }
                const float *row = xc + (size_t)ih * W;
                // q covers input columns iw = q*SW + p - PL; valid where 0 <= iw < W.
                int qlo = PL - p > 0 ? (PL - p + SW - 1) / SW : 0;
                int qhi = W + PL - p > 0 ? (W + PL - p + SW - 1) / SW : 0;
                if (qhi > Wq) qhi = Wq;
                if (qlo > qhi) qlo = qhi;
                for (int q = 0; q < qlo; q++) o[q] = 0.0f;
                const float *src = row + qlo * SW + p - PL;
                if (SW == 1) memcpy(o + qlo, src, sizeof(float) * (qhi - qlo));
                else if (SW == 2) copy_stride2(o + qlo, src, qhi - qlo);
                else for (int q = qlo; q < qhi; q++) o[q] = src[(size_t)SW * (q - qlo)];
                for (int q = qhi; q < Wq; q++) o[q] = 0.0f;
            }
        }
        if (big) {
            for (int oh = 0; oh < OH; oh++)
                for (int ow = 0; ow < OW; ow++) {
                    float s = b;
                    for (int kh = 0; kh < KH; kh++)
                        for (int kw = 0; kw < KW; kw++) {
                            int t = kw * DW;
                            s += wc[kh * KW + kw] * buf[(size_t)(t % SW) * phase_size + (size_t)(oh * SH + kh * DH) * Wq + ow + t / SW];
                        }
                    yc[(size_t)oh * OW + ow] = s < lo ? lo : (s > hi ? hi : s);
                }
            continue;
        }
        int first_job = 0;
        int nv = OWv / 16, jobs = OH * nv;
        if (SH == 1 && DH == 1 && (KH == 3 || KH == 5) && OH >= 4) {
            int oh = 0;
            for (; oh + 4 <= OH; oh += 4)
                for (int ow = 0; ow < OW; ow += 16) {
                    const float *base = buf + (size_t)oh * Wq + ow;
                    float *o = yc + (size_t)oh * OW + ow;
                    int width = OW - ow < 16 ? OW - ow : 16;
                    if (KH == 3) dw_rows4(base, Wq, col_off, KW, wc, 3, b, lo, hi, o, OW, width);
                    else dw_rows4(base, Wq, col_off, KW, wc, 5, b, lo, hi, o, OW, width);
                }
            first_job = oh * nv;
        }
        // Jobs are (output row, 16-column vector) pairs; four at a time keep four independent FMA chains.
        for (int j = first_job; j < jobs; j += 4) {
            int nj = jobs - j < 4 ? jobs - j : 4;
            const float *bp[4];
            float *op[4];
            int width[4];
            for (int u = 0; u < 4; u++) {
                int jj = j + (u < nj ? u : 0), oh = jj / nv, ow = jj % nv * 16;
                bp[u] = buf + (size_t)oh * SH * Wq + ow;
                op[u] = yc + (size_t)oh * OW + ow;
                width[u] = OW - ow < 16 ? OW - ow : 16;
            }
            v16 a0 = b, a1 = b, a2 = b, a3 = b;
            for (int t = 0; t < taps; t++) {
                v16 x0, x1, x2, x3;
                int off = tap_off[t];
                __builtin_memcpy(&x0, bp[0] + off, sizeof x0);
                __builtin_memcpy(&x1, bp[1] + off, sizeof x1);
                __builtin_memcpy(&x2, bp[2] + off, sizeof x2);
                __builtin_memcpy(&x3, bp[3] + off, sizeof x3);
                float wt = wc[t];
                a0 += wt * x0; a1 += wt * x1; a2 += wt * x2; a3 += wt * x3;
            }
            v16 vlo = lo, vhi = hi;
            a0 = __builtin_elementwise_min(__builtin_elementwise_max(a0, vlo), vhi);
            a1 = __builtin_elementwise_min(__builtin_elementwise_max(a1, vlo), vhi);
            a2 = __builtin_elementwise_min(__builtin_elementwise_max(a2, vlo), vhi);
            a3 = __builtin_elementwise_min(__builtin_elementwise_max(a3, vlo), vhi);
            float t[4][16];
            __builtin_memcpy(t[0], &a0, sizeof a0); __builtin_memcpy(t[1], &a1, sizeof a1);
            __builtin_memcpy(t[2], &a2, sizeof a2); __builtin_memcpy(t[3], &a3, sizeof a3);
            for (int u = 0; u < nj; u++) memcpy(op[u], t[u], sizeof(float) * width[u]);
        }
    }
}

// Four rows at a time, 16 lanes per row, so the reductions run as independent vector FMA chains.
CLONES
void sq_gemv(int K, const float *W, int ldw, const float *x, float *y, const float *bias, int r0, int r1) {
    int i = r0;
    for (; i + 4 <= r1; i += 4) {
        const float *w0 = W + (size_t)i * ldw, *w1 = w0 + ldw, *w2 = w1 + ldw, *w3 = w2 + ldw;
        v16 a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        int k = 0;
        for (; k + 16 <= K; k += 16) {
            v16 xv, v0, v1, v2, v3;
            __builtin_memcpy(&xv, x + k, sizeof xv);
            __builtin_memcpy(&v0, w0 + k, sizeof v0); __builtin_memcpy(&v1, w1 + k, sizeof v1);
            __builtin_memcpy(&v2, w2 + k, sizeof v2); __builtin_memcpy(&v3, w3 + k, sizeof v3);
            a0 += v0 * xv; a1 += v1 * xv; a2 += v2 * xv; a3 += v3 * xv;
        }
        float t[4][16], s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        __builtin_memcpy(t[0], &a0, sizeof a0); __builtin_memcpy(t[1], &a1, sizeof a1);
        __builtin_memcpy(t[2], &a2, sizeof a2); __builtin_memcpy(t[3], &a3, sizeof a3);
        for (int j = 0; j < 16; j++) { s0 += t[0][j]; s1 += t[1][j]; s2 += t[2][j]; s3 += t[3][j]; }
        for (; k < K; k++) { s0 += w0[k] * x[k]; s1 += w1[k] * x[k]; s2 += w2[k] * x[k]; s3 += w3[k] * x[k]; }
        y[i] = s0 + (bias ? bias[i] : 0.0f);
        y[i + 1] = s1 + (bias ? bias[i + 1] : 0.0f);
        y[i + 2] = s2 + (bias ? bias[i + 2] : 0.0f);
        y[i + 3] = s3 + (bias ? bias[i + 3] : 0.0f);
    }
    for (; i < r1; i++) {
        const float *w = W + (size_t)i * ldw;
        float s = 0.0f;
        for (int k = 0; k < K; k++) s += w[k] * x[k];
        y[i] = s + (bias ? bias[i] : 0.0f);
    }
}

// Gram matrix of k rows of length n (row stride n): h[a*k + c] = sum_r x[a][r] * x[c][r], the input second
// moments GPTQ needs, for small k (depthwise windows) where a GEMM call per channel costs more than it saves.
// Rows are read in blocks of 1024 that stay in cache. Each dot product keeps 16 partial sums (lane l sums the
// elements r = l mod 16), added lane after lane at the end of the block, then the block's tail. Pairs are taken
// four rows by four rows (8 vector loads for 16 products); sq_gram_ref is the same sums one pair at a time (equal
// bit for bit when the compiler fuses the same multiply-adds in both, as the release build does).
static inline void gram_pair_tail(const float *pa, const float *pc, int r, int r1, const float acc[16], float *h) {
    float s = 0;
    for (int l = 0; l < 16; l++) s += acc[l];
    for (; r < r1; r++) s += pa[r] * pc[r];
    *h += s;
}

// One pair's sum over the block [r0, r1).
static inline __attribute__((always_inline)) void gram_pair(const float *pa, const float *pc, int r0, int r1, float *h) {
    int full = r0 + (r1 - r0) / 16 * 16;
    float acc[16] = {0};
    for (int r = r0; r < full; r += 16)
        for (int l = 0; l < 16; l++) acc[l] += pa[r + l] * pc[r + l];
    gram_pair_tail(pa, pc, full, r1, acc, h);
}

// a[p][l] -> a[l][p] for 16 vectors of 16: at each level b = 8, 4, 2, 1 the off-diagonal b x b blocks of every 2b x 2b
// block swap (rows p and p + b exchange their halves).
#define SWAP_BLOCKS(x, y, ...) do { v16 lo_ = __builtin_shufflevector(x, y, __VA_ARGS__); \
        y = __builtin_shufflevector(x, y, TRANSPOSE_HI); x = lo_; } while (0)
static inline __attribute__((always_inline)) void transpose16(v16 *a) {
#define TRANSPOSE_HI 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31
    for (int p = 0; p < 8; p++) SWAP_BLOCKS(a[p], a[p + 8], 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
#undef TRANSPOSE_HI
#define TRANSPOSE_HI 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31
    for (int p = 0; p < 16; p++) if (!(p & 4)) SWAP_BLOCKS(a[p], a[p + 4], 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27);
#undef TRANSPOSE_HI
#define TRANSPOSE_HI 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31
    for (int p = 0; p < 16; p++) if (!(p & 2)) SWAP_BLOCKS(a[p], a[p + 2], 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29);
#undef TRANSPOSE_HI
#define TRANSPOSE_HI 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31
    for (int p = 0; p < 16; p += 2) SWAP_BLOCKS(a[p], a[p + 1], 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30);
#undef TRANSPOSE_HI
}
#undef SWAP_BLOCKS

CLONES
void sq_gram(const float *x, int k, int n, float *h) {
    for (int i = 0; i < k * k; i++) h[i] = 0;
    enum { BLOCK = 1024 };
    for (int r0 = 0; r0 < n; r0 += BLOCK) {
        int r1 = r0 + BLOCK < n ? r0 + BLOCK : n;
        int full = r0 + (r1 - r0) / 16 * 16;
        for (int a0 = 0; a0 < k; a0 += 4) {
            for (int c0 = a0; c0 < k; c0 += 4) {
                if (a0 + 4 <= k && c0 + 4 <= k) {
                    const float *pa0 = x + (size_t)a0 * n, *pa1 = pa0 + n, *pa2 = pa1 + n, *pa3 = pa2 + n;
                    const float *pc0 = x + (size_t)c0 * n, *pc1 = pc0 + n, *pc2 = pc1 + n, *pc3 = pc2 + n;
                    v16 acc[16];   // pair (i, j) at 4 i + j, lane l summing the rows r = l mod 16
                    for (int p = 0; p < 16; p++) acc[p] = 0;
                    for (int r = r0; r < full; r += 16) {
                        v16 u[4], v[4];
                        __builtin_memcpy(&u[0], pa0 + r, sizeof(v16)); __builtin_memcpy(&u[1], pa1 + r, sizeof(v16));
                        __builtin_memcpy(&u[2], pa2 + r, sizeof(v16)); __builtin_memcpy(&u[3], pa3 + r, sizeof(v16));
                        __builtin_memcpy(&v[0], pc0 + r, sizeof(v16)); __builtin_memcpy(&v[1], pc1 + r, sizeof(v16));
                        __builtin_memcpy(&v[2], pc2 + r, sizeof(v16)); __builtin_memcpy(&v[3], pc3 + r, sizeof(v16));
                        for (int i = 0; i < 4; i++)
                            for (int j = 0; j < 4; j++) acc[4 * i + j] += u[i] * v[j];
                    }
                    // gram_pair_tail for the 16 pairs side by side: transposed, so that one vector holds lane l of every
                    // pair, the lanes are added in order 16 pairs at a time (they were 256 scalar adds a tile).
                    transpose16(acc);
                    v16 t = 0;
                    for (int l = 0; l < 16; l++) t += acc[l];
                    for (int r = full; r < r1; r++) {
                        v16 u = {pa0[r], pa0[r], pa0[r], pa0[r], pa1[r], pa1[r], pa1[r], pa1[r],
                                 pa2[r], pa2[r], pa2[r], pa2[r], pa3[r], pa3[r], pa3[r], pa3[r]};
                        v16 v = {pc0[r], pc1[r], pc2[r], pc3[r], pc0[r], pc1[r], pc2[r], pc3[r],
                                 pc0[r], pc1[r], pc2[r], pc3[r], pc0[r], pc1[r], pc2[r], pc3[r]};
                        t += u * v;
                    }
                    for (int i = 0; i < 4; i++)
                        for (int j = 0; j < 4; j++)
                            if (c0 + j >= a0 + i) h[(a0 + i) * k + c0 + j] += t[4 * i + j];
                    continue;
                }
                // Edge tiles: pair by pair.
                for (int a = a0; a < a0 + 4 && a < k; a++)
                    for (int c = c0 > a ? c0 : a; c < c0 + 4 && c < k; c++) gram_pair(x + (size_t)a * n, x + (size_t)c * n, r0, r1, h + a * k + c);
            }
        }
    }
    for (int a = 0; a < k; a++)
        for (int c = 0; c < a; c++) h[a * k + c] = h[c * k + a];
}

// The reference twin of sq_gram: the same sums, one pair at a time.
CLONES
void sq_gram_ref(const float *x, int k, int n, float *h) {
    for (int i = 0; i < k * k; i++) h[i] = 0;
    enum { BLOCK = 1024 };
    for (int r0 = 0; r0 < n; r0 += BLOCK) {
        int r1 = r0 + BLOCK < n ? r0 + BLOCK : n;
        int full = r0 + (r1 - r0) / 16 * 16;
        for (int a = 0; a < k; a++)
            for (int c = a; c < k; c++) gram_pair(x + (size_t)a * n, x + (size_t)c * n, r0, r1, h + a * k + c);
    }
    for (int a = 0; a < k; a++)
        for (int c = 0; c < a; c++) h[a * k + c] = h[c * k + a];
}

// dst[a][c] += (double)h[a][c] for the lower triangle c <= a of k x k matrices (row stride k): a Hessian's float
// Gram matrix of one image added to its double sums.
CLONES
void sq_add_lower_f64(const float *h, int k, double *dst) {
    for (int a = 0; a < k; a++) {
        const float *s = h + (size_t)a * k;
        double *d = dst + (size_t)a * k;
        for (int c = 0; c <= a; c++) d[c] += (double)s[c];
    }
}

// t[r * k + a] = x[a * rows + r]: the rows x k transpose of a k x rows matrix, in 32 x 32 tiles.
CLONES
void sq_transpose(const float *x, int k, int rows, float *t) {
    for (int a0 = 0; a0 < k; a0 += 32)
        for (int r0 = 0; r0 < rows; r0 += 32) {
            int a1 = a0 + 32 < k ? a0 + 32 : k, r1 = r0 + 32 < rows ? r0 + 32 : rows;
            for (int a = a0; a < a1; a++)
                for (int r = r0; r < r1; r++) t[(size_t)r * k + a] = x[(size_t)a * rows + r];
        }
}
