// Activation statistics for calibration: min/max and a histogram of |x|, one pass each.
#include "CKernels.h"
#include "simd.h"
#include <stdint.h>
#include <stdlib.h>

CLONES
void sq_minmax(const float *x, size_t n, float *mn, float *mx) {
    v16 lo = __builtin_inff(), hi = -__builtin_inff();
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        v16 v;
        __builtin_memcpy(&v, x + i, sizeof v);
        lo = __builtin_elementwise_min(lo, v);
        hi = __builtin_elementwise_max(hi, v);
    }
    float l = __builtin_inff(), h = -__builtin_inff();
    for (int j = 0; j < 16; j++) { l = lo[j] < l ? lo[j] : l; h = hi[j] > h ? hi[j] : h; }
    for (; i < n; i++) { l = x[i] < l ? x[i] : l; h = x[i] > h ? x[i] : h; }
    *mn = l;
    *mx = h;
}

CLONES
void sq_histogram_abs(const float *x, size_t n, float bins_per_unit, int bins, double *counts) {
    // Bin indices 16 at a time into a buffer, then counted into four sub-histograms in turn: runs of equal
    // values (the zeros after a ReLU) then make four independent increment chains instead of one.
    enum { CHUNK = 4096 };
    int idx[CHUNK];
    uint32_t *h = calloc((size_t)4 * bins, sizeof(uint32_t));
    if (!h) return;
    const v16 scale = bins_per_unit, top = (float)(bins - 1);
    for (size_t s = 0; s < n; s += CHUNK) {
        int m = n - s < CHUNK ? (int)(n - s) : CHUNK;
        int i = 0;
        for (; i + 16 <= m; i += 16) {
            v16 v;
            __builtin_memcpy(&v, x + s + i, sizeof v);
            v16 a = __builtin_elementwise_abs(v) * scale;
            // min() also sends NaN (and values at the edge) to the last bin.
            a = __builtin_elementwise_min(a, top);
            a = a == a ? a : top;
            typedef int vi16 __attribute__((ext_vector_type(16)));
            vi16 b = __builtin_convertvector(a, vi16);
            __builtin_memcpy(idx + i, &b, sizeof b);
        }
        for (; i < m; i++) {
            float a = __builtin_fabsf(x[s + i]) * bins_per_unit;
            idx[i] = a < (float)bins ? (int)a : bins - 1;
        }
        int j = 0;
        for (; j + 4 <= m; j += 4) {
            h[idx[j]]++;
            h[bins + idx[j + 1]]++;
            h[2 * bins + idx[j + 2]]++;
            h[3 * bins + idx[j + 3]]++;
        }
        for (; j < m; j++) h[idx[j]]++;
    }
    for (int b = 0; b < bins; b++) counts[b] += (double)h[b] + h[bins + b] + h[2 * bins + b] + h[3 * bins + b];
    free(h);
}

typedef struct {
    const float *x;
    size_t n;
    float bins_per_unit;
    int bins, parts;
    double *counts;   // parts x bins
    float *mn, *mx;   // parts
} stats_job;

static void stats_task(void *ctx, int part) {
    stats_job *j = ctx;
    size_t per = (j->n + j->parts - 1) / j->parts, s = (size_t)part * per;
    size_t e = s + per < j->n ? s + per : j->n;
    if (s >= e) { j->mn[part] = __builtin_inff(); j->mx[part] = -__builtin_inff(); return; }
    if (j->counts) sq_histogram_abs(j->x + s, e - s, j->bins_per_unit, j->bins, j->counts + (size_t)part * j->bins);
    else sq_minmax(j->x + s, e - s, &j->mn[part], &j->mx[part]);
}

void sq_minmax_parallel(const float *x, size_t n, float *mn, float *mx, int threads) {
    int parts = threads < 1 ? 1 : threads > 16 ? 16 : threads;
    if (n < 65536) parts = 1;
    float lo[16], hi[16];
    stats_job j = {x, n, 0, 0, parts, NULL, lo, hi};
    sq_parallel(parts, parts, stats_task, &j);
    *mn = lo[0]; *mx = hi[0];
    for (int p = 1; p < parts; p++) { *mn = lo[p] < *mn ? lo[p] : *mn; *mx = hi[p] > *mx ? hi[p] : *mx; }
}

void sq_histogram_abs_parallel(const float *x, size_t n, float bins_per_unit, int bins, double *counts, int threads) {
    int parts = threads < 1 ? 1 : threads > 16 ? 16 : threads;
    if (n < 65536) parts = 1;
    if (parts == 1) { sq_histogram_abs(x, n, bins_per_unit, bins, counts); return; }
    double *c = calloc((size_t)parts * bins, sizeof(double));
    if (!c) { sq_histogram_abs(x, n, bins_per_unit, bins, counts); return; }
    stats_job j = {x, n, bins_per_unit, bins, parts, c, NULL, NULL};
    sq_parallel(parts, parts, stats_task, &j);
    for (int p = 0; p < parts; p++)
        for (int b = 0; b < bins; b++) counts[b] += c[(size_t)p * bins + b];
    free(c);
}

CLONES
void sq_channel_sums(const float *x, int outer, int channels, size_t inner, double *sums) {
    for (int o = 0; o < outer; o++)
        for (int c = 0; c < channels; c++) {
            const float *p = x + ((size_t)o * channels + c) * inner;
            v16 acc = 0;
            size_t i = 0;
            for (; i + 16 <= inner; i += 16) { v16 v; __builtin_memcpy(&v, p + i, sizeof v); acc += v; }
            double s = 0;
            for (int j = 0; j < 16; j++) s += acc[j];
            for (; i < inner; i++) s += p[i];
            sums[c] += s;
        }
}
