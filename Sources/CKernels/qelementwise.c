// Integer kernels for the elementwise and data-movement forms of the quantized detectors and squeeze-excitation
// nets: QLinearMul, per-channel lookup tables, nearest Resize on NHWC bytes, and ConvTranspose's col2im with
// requantization. Each has its reference in Swift (MulRescale.apply, the float operators on byte values,
// ConvTranspose's reference kernel) and a sweep test.
#include "CKernels.h"
#include "simd.h"
#include <string.h>

// y = clamp(rint(float((a − za)(b − zb)) · m) + zy, lo, hi): ONNX Runtime's QLinearMul on biased bytes.
CLONES
void sq_qmul(const uint8_t *a, const uint8_t *b, int n, float m, int za, int zb, float zy, float lo, float hi, uint8_t *y) {
    for (int i = 0; i < n; i++) {
        float v = __builtin_rintf((float)(((int)a[i] - za) * ((int)b[i] - zb)) * m) + zy;
        v = v < lo ? lo : (v > hi ? hi : v);
        y[i] = (uint8_t)(int)v;
    }
}

// NHWC bytes through one 256-entry table per channel: y[p][c] = tables[c][x[p][c]].
CLONES
void sq_qtable_channels(const uint8_t *x, int P, int C, const uint8_t *tables, uint8_t *y) {
    for (int p = 0; p < P; p++) {
        const uint8_t *s = x + (size_t)p * C;
        uint8_t *d = y + (size_t)p * C;
        for (int c = 0; c < C; c++) d[c] = tables[(size_t)c * 256 + s[c]];
    }
}

// Nearest Resize of one NHWC image over output rows [r0, r1): pixel (oh, ow) is input pixel (rows[oh], cols[ow]).
void sq_qresize_nearest_nhwc(const uint8_t *x, int W, int C, const int *rows, const int *cols, int OW, uint8_t *y, int r0, int r1) {
    for (int oh = r0; oh < r1; oh++) {
        const uint8_t *src = x + (size_t)rows[oh] * W * C;
        uint8_t *dst = y + (size_t)oh * OW * C;
        if (C == 1) { for (int ow = 0; ow < OW; ow++) dst[ow] = src[cols[ow]]; continue; }
        for (int ow = 0; ow < OW; ow++) memcpy(dst + (size_t)ow * C, src + (size_t)cols[ow] * C, C);
    }
}

// ConvTranspose output rows [r0, r1) of one image, gathered from the GEMM columns (one row of KH·KW·M exact integer
// sums per input pixel, as floats: tap (a, e) of output channel m at (a·KW + e)·M + m, so a tap's channels are
// contiguous), plus the int32 bias, requantized per channel: rint(acc · scales[m]) + zy. acc is M int32 of scratch.
// One output: rint(acc · scale) + zy, clamped to [lo, hi].
static inline uint8_t requant_sum(int32_t acc, float scale, float zy, float lo, float hi) {
    float v = __builtin_rintf((float)acc * scale) + zy;
    v = v < lo ? lo : (v > hi ? hi : v);
    return (uint8_t)(int)v;
}

CLONES
void sq_qconvtranspose_rows(const float *cols, int H, int W, int M, int KH, int KW, int SH, int SW, int DH, int DW, int PT, int PL,
                            const int32_t *bias, const float *scales, float zy, float lo, float hi, uint8_t *y, int OW,
                            int r0, int r1, int32_t *acc) {
    const int rows = M * KH * KW;
    if (SH == KH && SW == KW && DH == 1 && DW == 1) {
        // Stride = kernel (the usual 2x up-sampling): every output pixel takes exactly one tap of one input pixel;
        // its M channels are one contiguous run of the columns (the loop over them vectorizes).
        for (int r = r0; r < r1; r++) {
            int ih = (r + PT) / SH, a = (r + PT) % SH;
            uint8_t *out = y + (size_t)r * OW * M;
            for (int q = 0; q < OW; q++, out += M) {
                int iw = (q + PL) / SW, e = (q + PL) % SW;
                if (ih < H && iw < W) {
                    const float *col = cols + ((size_t)ih * W + iw) * rows + (size_t)(a * KW + e) * M;
                    for (int m = 0; m < M; m++) out[m] = requant_sum(bias[m] + (int32_t)col[m], scales[m], zy, lo, hi);
                } else {
                    for (int m = 0; m < M; m++) out[m] = requant_sum(bias[m], scales[m], zy, lo, hi);
                }
            }
        }
        return;
    }
    for (int r = r0; r < r1; r++) {
        for (int q = 0; q < OW; q++) {
            for (int m = 0; m < M; m++) acc[m] = bias[m];
            for (int a = 0; a < KH; a++) {
                int t = r + PT - a * DH;
                if (t < 0 || t % SH) continue;
                int ih = t / SH;
                if (ih >= H) continue;
                for (int e = 0; e < KW; e++) {
                    int u = q + PL - e * DW;
                    if (u < 0 || u % SW) continue;
                    int iw = u / SW;
                    if (iw >= W) continue;
                    const float *col = cols + ((size_t)ih * W + iw) * rows + (size_t)(a * KW + e) * M;
                    for (int m = 0; m < M; m++) acc[m] += (int32_t)col[m];
                }
            }
            uint8_t *out = y + ((size_t)r * OW + q) * M;
            for (int m = 0; m < M; m++) out[m] = requant_sum(acc[m], scales[m], zy, lo, hi);
        }
    }
}
