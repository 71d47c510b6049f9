// Max and average pooling (dilation 1) and global pooling. Outputs whose window lies wholly inside the
// image take a branch-free loop the compiler vectorizes; the border ones clamp their window.
#include "CKernels.h"
#include "scratch.h"
#include "simd.h"


static inline float window(const float *x, int H, int W, int h0, int h1, int w0, int w1, int is_max) {
    float acc = is_max ? -__builtin_inff() : 0.0f;
    for (int ih = h0 < 0 ? 0 : h0; ih < (h1 > H ? H : h1); ih++)
        for (int iw = w0 < 0 ? 0 : w0; iw < (w1 > W ? W : w1); iw++) {
            float v = x[(size_t)ih * W + iw];
            acc = is_max ? (v > acc || v != v ? v : acc) : acc + v;
        }
    return acc;
}

// Stride-1 max pooling as two passes over a padded copy of the plane, a window's maximum being its rows' maxima's:
// the copy has -inf for the pads (L = PL + W + PR columns, PT + H + PB rows); each position i of it gets the maximum of
// the KW values from i on, then each output row the maximum of KH such rows, both passes one loop over the whole
// plane as a flat array (a row's last KW - 1 positions get values no output reads). KH + KW comparisons per output
// instead of KH x KW, and no border path: YOLOv8's SPPF pooling (5x5, pads of 2, 128 x 20 x 20, rows shorter than
// two vectors) went from 371 to 49 us (kernel alone, 1 thread). The maximum is exact, so the same bits whatever the
// order (only which of +0 and -0 wins a tie can differ, as between the other paths); NaN is passed over, as by the
// reference.
static inline __attribute__((always_inline)) void maxpool_s1(const float *x, int H, int W, int KH, int KW, int PT, int PL, int PB, int PR, float *y, int OH, int OW,
                       int p0, int p1) {
    size_t L = (size_t)PL + W + PR, R = (size_t)PT + H + PB, n = R * L;
    size_t across = n - (KW - 1), down = (size_t)OH * L;   // positions the two passes fill
    size_t n16 = (n + 15) / 16 * 16;
    float *pad = sq_thread_scratch(SQ_SCRATCH_POOL, sizeof(float) * (2 * n16 + down + 16));
    float *red = pad + n16, *col = red + n16;
    const float ninf = -__builtin_inff();
    for (size_t i = 0; i < n; i++) pad[i] = ninf;       // the pads stay; each plane overwrites the rest
    // The across pass fills red up to `across`; the down pass reads up to n for the last row's columns past OW (never
    // stored): those stay -inf rather than whatever the scratch held.
    for (size_t i = across; i < n; i++) red[i] = ninf;
    for (int p = p0; p < p1; p++) {
        const float *xp = x + (size_t)p * H * W;
        float *yp = y + (size_t)p * OH * OW;
        for (int h = 0; h < H; h++) {
            float *d = pad + (size_t)(PT + h) * L + PL;
            const float *s = xp + (size_t)h * W;
            for (int w = 0; w < W; w++) d[w] = s[w];
        }
        for (size_t i = 0; i < across; i++) red[i] = ninf;
        for (int kw = 0; kw < KW; kw++) {
            const float *r = pad + kw;
            for (size_t i = 0; i < across; i++) { float v = r[i]; red[i] = v > red[i] ? v : red[i]; }
        }
        for (size_t i = 0; i < down; i++) col[i] = ninf;
        for (int kh = 0; kh < KH; kh++) {
            const float *r = red + (size_t)kh * L;
            for (size_t i = 0; i < down; i++) { float v = r[i]; col[i] = v > col[i] ? v : col[i]; }
        }
        for (int oh = 0; oh < OH; oh++) {
            float *d = yp + (size_t)oh * OW;
            const float *s = col + (size_t)oh * L;
            for (int w = 0; w < OW; w++) d[w] = s[w];
        }
    }
}

CLONES
void sq_pool2d(const float *x, int H, int W, int KH, int KW, int SH, int SW, int PT, int PL, int PB, int PR,
               float *y, int OH, int OW, int is_max, int count_include_pad, int p0, int p1) {
    if (is_max && KH == 3 && KW == 3 && SH == SW && (SH == 1 || SH == 2) && sq_cpu_level() >= 2) {
        if (sq_cpu_level() == 3) sq_maxpool3x3_avx512(x, H, W, SH, PT, PL, y, OH, OW, p0, p1);
        else sq_maxpool3x3_avx2(x, H, W, SH, PT, PL, y, OH, OW, p0, p1);
        return;
    }
    if (is_max && SH == 1 && SW == 1 && (size_t)(OH - 1 + KH) <= (size_t)PT + H + PB && OW - 1 + KW <= PL + W + PR) {
        maxpool_s1(x, H, W, KH, KW, PT, PL, PB, PR, y, OH, OW, p0, p1);
        return;
    }
    // Interior columns: ow*SW - PL >= 0 and ow*SW - PL + KW <= W.
    int owa = PL > 0 ? (PL + SW - 1) / SW : 0;
    int owb = W + PL - KW >= 0 ? (W + PL - KW) / SW + 1 : 0;
    if (owb > OW) owb = OW;
    if (owa > owb) owa = owb;
    float acc[OW > 0 ? OW : 1];
    for (int p = p0; p < p1; p++) {
        const float *xp = x + (size_t)p * H * W;
        float *yp = y + (size_t)p * OH * OW;
        for (int oh = 0; oh < OH; oh++) {
            int h0 = oh * SH - PT, h1 = h0 + KH;
            int ih0 = h0 < 0 ? 0 : h0, ih1 = h1 > H ? H : h1;
            int ph = (h1 < H + PB ? h1 : H + PB) - (h0 > -PT ? h0 : -PT);
            float *o = yp + (size_t)oh * OW;
            for (int ow = 0; ow < OW; ow++) {
                if (ow == owa && owb > owa) { ow = owb - 1; continue; }
                int w0 = ow * SW - PL, w1 = w0 + KW;
                float v = window(xp, H, W, h0, h1, w0, w1, is_max);
                if (!is_max) {
                    int inside = (ih1 > ih0 ? ih1 - ih0 : 0) * ((w1 > W ? W : w1) - (w0 < 0 ? 0 : w0));
                    int pw = (w1 < W + PR ? w1 : W + PR) - (w0 > -PL ? w0 : -PL);
                    int n = count_include_pad ? (ph > 0 ? ph : 0) * (pw > 0 ? pw : 0) : inside;
                    v /= (float)(n > 0 ? n : 1);
                }
                o[ow] = v;
            }
            if (owb <= owa) continue;
            for (int ow = owa; ow < owb; ow++) acc[ow] = is_max ? -__builtin_inff() : 0.0f;
            for (int ih = ih0; ih < ih1; ih++) {
                const float *row = xp + (size_t)ih * W - PL;
                for (int kw = 0; kw < KW; kw++) {
                    const float *r = row + kw;
                    if (is_max) {
                        if (SW == 1) for (int ow = owa; ow < owb; ow++) { float v = r[ow]; acc[ow] = v > acc[ow] ? v : acc[ow]; }
                        else if (SW == 2) for (int ow = owa; ow < owb; ow++) { float v = r[2 * ow]; acc[ow] = v > acc[ow] ? v : acc[ow]; }
                        else for (int ow = owa; ow < owb; ow++) { float v = r[(size_t)SW * ow]; acc[ow] = v > acc[ow] ? v : acc[ow]; }
                    } else {
                        if (SW == 1) for (int ow = owa; ow < owb; ow++) acc[ow] += r[ow];
                        else if (SW == 2) for (int ow = owa; ow < owb; ow++) acc[ow] += r[2 * ow];
                        else for (int ow = owa; ow < owb; ow++) acc[ow] += r[(size_t)SW * ow];
                    }
                }
            }
            if (is_max) {
                for (int ow = owa; ow < owb; ow++) o[ow] = acc[ow];
            } else {
                int n = count_include_pad ? (ph > 0 ? ph : 0) * KW : (ih1 > ih0 ? ih1 - ih0 : 0) * KW;
                float d = (float)(n > 0 ? n : 1);
                for (int ow = owa; ow < owb; ow++) o[ow] = acc[ow] / d;
            }
        }
    }
}

CLONES
void sq_global_pool(const float *x, int size, int is_max, float *y, int p0, int p1) {
    for (int p = p0; p < p1; p++) {
        const float *s = x + (size_t)p * size;
        int i = 0;
        float r;
        if (is_max) {
            v16 m = -__builtin_inff();
            for (; i + 16 <= size; i += 16) { v16 v; __builtin_memcpy(&v, s + i, sizeof v); m = __builtin_elementwise_max(m, v); }
            float t[16];
            __builtin_memcpy(t, &m, sizeof m);
            r = t[0];
            for (int j = 1; j < 16; j++) r = t[j] > r ? t[j] : r;
            for (; i < size; i++) r = s[i] > r ? s[i] : r;
        } else {
            v16 a = 0;
            for (; i + 16 <= size; i += 16) { v16 v; __builtin_memcpy(&v, s + i, sizeof v); a += v; }
            float t[16];
            __builtin_memcpy(t, &a, sizeof a);
            r = 0.0f;
            for (int j = 0; j < 16; j++) r += t[j];
            for (; i < size; i++) r += s[i];
            r /= (float)size;
        }
        y[p] = r;
    }
}
