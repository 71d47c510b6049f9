// Convolution helpers: im2col for the GEMM path and a direct depthwise kernel. The loops are written so the
// compiler vectorizes the innermost one; target_clones builds AVX-512, AVX2 and portable versions.
#include "CKernels.h"
#include <string.h>

#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

CLONES
void sq_im2col(const float *x, int C, int H, int W, int KH, int KW, int SH, int SW, int DH, int DW,
               int PT, int PL, int OH, int OW, float *col) {
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
                for (int oh = 0; oh < OH; oh++) {
                    int ih = oh * SH - PT + kh * DH;
                    float *o = out + (size_t)oh * OW;
                    if (ih < 0 || ih >= H) { memset(o, 0, sizeof(float) * OW); continue; }
                    const float *row = xc + (size_t)ih * W + off;
                    for (int ow = 0; ow < ow0; ow++) o[ow] = 0.0f;
                    if (SW == 1) memcpy(o + ow0, row + ow0, sizeof(float) * (ow1 - ow0));
                    else for (int ow = ow0; ow < ow1; ow++) o[ow] = row[ow * SW];
                    for (int ow = ow1; ow < OW; ow++) o[ow] = 0.0f;
                }
            }
        }
    }
}

CLONES
void sq_depthwise(const float *x, int H, int W, const float *w, int KH, int KW, int SH, int SW, int DH, int DW,
                  int PT, int PL, float *y, int OH, int OW, const float *bias, float lo, float hi, int c0, int c1) {
    for (int c = c0; c < c1; c++) {
        const float *xc = x + (size_t)c * H * W;
        const float *wc = w + (size_t)c * KH * KW;
        float *yc = y + (size_t)c * OH * OW;
        float b = bias ? bias[c] : 0.0f;
        for (int oh = 0; oh < OH; oh++) {
            float *o = yc + (size_t)oh * OW;
            for (int ow = 0; ow < OW; ow++) o[ow] = b;
            for (int kh = 0; kh < KH; kh++) {
                int ih = oh * SH - PT + kh * DH;
                if (ih < 0 || ih >= H) continue;
                const float *row = xc + (size_t)ih * W;
                for (int kw = 0; kw < KW; kw++) {
                    float wv = wc[kh * KW + kw];
                    int off = kw * DW - PL;
                    int ow0 = off >= 0 ? 0 : (-off + SW - 1) / SW;
                    int ow1 = W - off <= 0 ? 0 : (W - off + SW - 1) / SW;
                    if (ow1 > OW) ow1 = OW;
                    const float *r = row + off;
                    if (SW == 1) for (int ow = ow0; ow < ow1; ow++) o[ow] += wv * r[ow];
                    else if (SW == 2) for (int ow = ow0; ow < ow1; ow++) o[ow] += wv * r[2 * ow];
                    else for (int ow = ow0; ow < ow1; ow++) o[ow] += wv * r[ow * SW];
                }
            }
            for (int ow = 0; ow < OW; ow++) { float v = o[ow]; o[ow] = v < lo ? lo : (v > hi ? hi : v); }
        }
    }
}

CLONES
void sq_gemv(int K, const float *W, int ldw, const float *x, float *y, const float *bias, int r0, int r1) {
    for (int i = r0; i < r1; i++) {
        const float *w = W + (size_t)i * ldw;
        float s = 0.0f;
        for (int k = 0; k < K; k++) s += w[k] * x[k];
        y[i] = s + (bias ? bias[i] : 0.0f);
    }
}
