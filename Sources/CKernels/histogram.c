// Activation statistics for calibration: in one pass over a tensor, the min and max of its finite values, how many
// values are infinite or NaN, and a histogram of |x|; and per-channel sums.
#include "CKernels.h"
#include "simd.h"
#include <float.h>
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>

typedef int vi16 __attribute__((ext_vector_type(16)));

enum { CHUNK = 4096 };

// Counts bin indices into four sub-histograms in turn (h: 4 x bins): runs of equal indices then make four independent
// increment chains instead of one.
static inline void count_indices(const int *idx, int m, int bins, uint32_t *h) {
    int j = 0;
    for (; j + 4 <= m; j += 4) {
        h[idx[j]]++;
        h[bins + idx[j + 1]]++;
        h[2 * bins + idx[j + 2]]++;
        h[3 * bins + idx[j + 3]]++;
    }
    for (; j < m; j++) h[idx[j]]++;
}

// One value of the scalar tails (and of the reference): its bin, the last for values past it, infinities and NaN.
static inline int bin_of(float v, float bins_per_unit, int bins) {
    float a = __builtin_fabsf(v) * bins_per_unit;
    return a < (float)bins ? (int)a : bins - 1;
}

// Whether every finite value of [lo, hi] (none when lo > hi) lies within a histogram's range.
static inline int fits(float lo, float hi, float range) {
    return lo > hi || (__builtin_fabsf(lo) <= range && __builtin_fabsf(hi) <= range);
}

// The four sub-histograms (and `zeros` more in bin 0) into counts when every finite value fits the range; returns
// whether they did.
static int finish(uint32_t *h, size_t zeros, int bins, double *counts, sq_value_range *r, float range, float bins_per_unit) {
    int ok = bins_per_unit > 0 && fits(r->min, r->max, range);
    if (ok) {
        counts[0] += (double)zeros;
        for (int b = 0; b < bins; b++) counts[b] += (double)h[b] + h[bins + b] + h[2 * bins + b] + h[3 * bins + b];
    }
    return ok;
}

// The vectors' minima, maxima and counts of values that are not finite into r.
static inline void reduce(const v16 *lo, const v16 *hi, const vi16 *bad, sq_value_range *r) {
    for (int j = 0; j < 16; j++) {
        r->min = (*lo)[j] < r->min ? (*lo)[j] : r->min;
        r->max = (*hi)[j] > r->max ? (*hi)[j] : r->max;
        r->nonfinite += (size_t)(*bad)[j];
    }
}

// One vector of values: its finite ones into the running lo / hi, the others counted in bad, and its bins as floats
// (min() sends infinities, NaN and values at the edge to the last bin). Shared by both forms below (a macro: v16
// arguments would change the ABI of a function compiled without AVX-512).
#define RANGE_AND_BINS(v, bins_f) do {                                  \
        v16 a_ = __builtin_elementwise_abs(v);                          \
        vi16 finite_ = a_ <= FLT_MAX;                                   \
        lo = __builtin_elementwise_min(lo, finite_ ? (v) : inf);        \
        hi = __builtin_elementwise_max(hi, finite_ ? (v) : -inf);       \
        bad += ~finite_ & 1;                                            \
        a_ = __builtin_elementwise_min(a_ * scale, top);                \
        bins_f = a_ == a_ ? a_ : top;                                   \
    } while (0)

// One value of the scalar tails: into the range (or counted as not finite); its bin.
static inline int tail_value(float v, sq_value_range *r, float bins_per_unit, int bins) {
    if (__builtin_fabsf(v) <= FLT_MAX) {
        r->min = v < r->min ? v : r->min;
        r->max = v > r->max ? v : r->max;
    } else r->nonfinite++;
    return bin_of(v, bins_per_unit, bins);
}

// One piece of x, plain vectors: every 16 values' bins into a buffer, then counted (without a histogram, bins_per_unit
// 0, the bins are all 0 and not counted).
CLONES
static int stats_plain(const float *x, size_t n, float range, float bins_per_unit, int bins, double *counts, sq_value_range *r, uint32_t *h) {
    int idx[CHUNK];
    const int histogram = bins_per_unit > 0;
    const v16 scale = bins_per_unit, top = (float)(bins - 1), inf = __builtin_inff();
    v16 lo = inf, hi = -inf;
    vi16 bad = 0;
    for (size_t s = 0; s < n; s += CHUNK) {
        int m = n - s < CHUNK ? (int)(n - s) : CHUNK, i = 0;
        for (; i + 16 <= m; i += 16) {
            v16 v, a;
            __builtin_memcpy(&v, x + s + i, sizeof v);
            RANGE_AND_BINS(v, a);
            if (!histogram) continue;
            vi16 b = __builtin_convertvector(a, vi16);
            __builtin_memcpy(idx + i, &b, sizeof b);
        }
        for (; i < m; i++) idx[i] = tail_value(x[s + i], r, bins_per_unit, bins);
        if (histogram) count_indices(idx, m, bins, h);
    }
    reduce(&lo, &hi, &bad, r);
    return finish(h, 0, bins, counts, r, range, bins_per_unit);
}

// The same with AVX-512: only the indices of bins other than 0 are packed into the buffer (vpcompressd into a register,
// then a whole store: the store form is slow on AMD Zen 4), bin 0's counted by popcount. After a ReLU about half the
// values are zeros: SqueezeNet's activations 0.72 -> 0.39 ns a value.
__attribute__((target("avx512f,popcnt")))
static int stats_avx512(const float *x, size_t n, float range, float bins_per_unit, int bins, double *counts, sq_value_range *r, uint32_t *h) {
    int idx[CHUNK + 16];
    const int histogram = bins_per_unit > 0;
    const v16 scale = bins_per_unit, top = (float)(bins - 1), inf = __builtin_inff();
    v16 lo = inf, hi = -inf;
    vi16 bad = 0;
    size_t zeros = 0;
    for (size_t s = 0; s < n; s += CHUNK) {
        int m = n - s < CHUNK ? (int)(n - s) : CHUNK, i = 0, k = 0;
        for (; i + 16 <= m; i += 16) {
            v16 v, a;
            __builtin_memcpy(&v, x + s + i, sizeof v);
            RANGE_AND_BINS(v, a);
            if (!histogram) continue;
            __m512i b = (__m512i)__builtin_convertvector(a, vi16);
            __mmask16 used = _mm512_test_epi32_mask(b, b);
            _mm512_storeu_si512(idx + k, _mm512_maskz_compress_epi32(used, b));
            int c = __builtin_popcount(used);
            k += c;
            zeros += (size_t)(16 - c);
        }
        for (; i < m; i++) {
            int b = tail_value(x[s + i], r, bins_per_unit, bins);
            if (b) idx[k++] = b; else zeros++;
        }
        if (histogram) count_indices(idx, k, bins, h);
    }
    reduce(&lo, &hi, &bad, r);
    return finish(h, zeros, bins, counts, r, range, bins_per_unit);
}

static int stats_piece(const float *x, size_t n, float range, float bins_per_unit, int bins, double *counts, sq_value_range *r) {
    r->min = __builtin_inff();
    r->max = -__builtin_inff();
    r->nonfinite = 0;
    uint32_t *h = bins_per_unit > 0 ? calloc((size_t)4 * bins, sizeof(uint32_t)) : NULL;
    if (bins_per_unit > 0 && !h) bins_per_unit = 0;   // out of memory: the range only, the histogram not added
    int ok = sq_cpu_level() == 3 ? stats_avx512(x, n, range, bins_per_unit, bins, counts, r, h)
                                 : stats_plain(x, n, range, bins_per_unit, bins, counts, r, h);
    free(h);
    return ok;
}

typedef struct {
    const float *x;
    size_t n;
    float range, bins_per_unit;
    int bins, parts;
    double *counts;        // parts x bins, zeroed
    sq_value_range *r;     // parts
    int *ok;               // parts
} stats_job;

static void stats_task(void *ctx, int part) {
    stats_job *j = ctx;
    size_t per = (j->n + j->parts - 1) / j->parts, s = (size_t)part * per;
    size_t e = s + per < j->n ? s + per : j->n;
    j->ok[part] = stats_piece(j->x + (s < e ? s : 0), s < e ? e - s : 0, j->range, j->bins_per_unit, j->bins,
                              j->counts + (size_t)part * j->bins, &j->r[part]);
}

int sq_abs_stats(const float *x, size_t n, float range, float bins_per_unit, int bins, double *counts, sq_value_range *r, int threads) {
    int parts = threads < 1 ? 1 : threads > 16 ? 16 : threads;
    if (n < 65536) parts = 1;
    double *c = parts > 1 ? calloc((size_t)parts * bins, sizeof(double)) : NULL;
    if (!c) return stats_piece(x, n, range, bins_per_unit, bins, counts, r);
    sq_value_range pr[16];
    int ok[16];
    stats_job j = {x, n, range, bins_per_unit, bins, parts, c, pr, ok};
    sq_parallel(parts, parts, stats_task, &j);
    *r = pr[0];
    int all = ok[0];
    for (int p = 1; p < parts; p++) {
        r->min = pr[p].min < r->min ? pr[p].min : r->min;
        r->max = pr[p].max > r->max ? pr[p].max : r->max;
        r->nonfinite += pr[p].nonfinite;
        all &= ok[p];
    }
    if (all)
        for (int p = 0; p < parts; p++)
            for (int b = 0; b < bins; b++) counts[b] += c[(size_t)p * bins + b];
    free(c);
    return all;
}

int sq_abs_stats_ref(const float *x, size_t n, float range, float bins_per_unit, int bins, double *counts, sq_value_range *r) {
    r->min = __builtin_inff();
    r->max = -__builtin_inff();
    r->nonfinite = 0;
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        if (v != v || v == __builtin_inff() || v == -__builtin_inff()) { r->nonfinite++; continue; }
        if (v < r->min) r->min = v;
        if (v > r->max) r->max = v;
    }
    if (!(bins_per_unit > 0) || !fits(r->min, r->max, range)) return 0;
    for (size_t i = 0; i < n; i++) counts[bin_of(x[i], bins_per_unit, bins)] += 1;
    return 1;
}

CLONES
void sq_channel_sums(const float *x, int outer, int channels, size_t inner, double *sums) {
    for (int o = 0; o < outer; o++)
        for (int c = 0; c < channels; c++) {
            const float *p = x + ((size_t)o * channels + c) * inner;
            v16 acc = 0;
            size_t i = 0;
            for (; i + 16 <= inner; i += 16) {
                v16 v;
                __builtin_memcpy(&v, p + i, sizeof v);
                acc += __builtin_elementwise_abs(v) <= FLT_MAX ? v : 0;
            }
            double s = 0;
            for (int j = 0; j < 16; j++) s += acc[j];
            for (; i < inner; i++) s += __builtin_fabsf(p[i]) <= FLT_MAX ? p[i] : 0;
            sums[c] += s;
        }
}
