// Max and average pooling (dilation 1) and global pooling. Outputs whose window lies wholly inside the
// image take a branch-free loop the compiler vectorizes; the border ones clamp their window.
#include "CKernels.h"
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

CLONES
void sq_pool2d(const float *x, int H, int W, int KH, int KW, int SH, int SW, int PT, int PL, int PB, int PR,
               float *y, int OH, int OW, int is_max, int count_include_pad, int p0, int p1) {
    if (is_max && KH == 3 && KW == 3 && SH == SW && (SH == 1 || SH == 2) && sq_cpu_level() >= 2) {
        if (sq_cpu_level() == 3) sq_maxpool3x3_avx512(x, H, W, SH, PT, PL, y, OH, OW, p0, p1);
        else sq_maxpool3x3_avx2(x, H, W, SH, PT, PL, y, OH, OW, p0, p1);
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
