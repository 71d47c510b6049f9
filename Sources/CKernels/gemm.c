// Single-precision GEMM in the Goto/BLIS style: A packed once into MR-row panels, B packed per call into
// NR-column panels in KC x NC blocks (AVX-512, and AVX2 for at most 24 rows, read B in place instead; otherwise at
// AVX2 the first row panel packs each tile as it reads it), an MR x NR register-blocked micro-kernel per
// instruction set (AVX2: 6 or 4 rows x 16, and columns_avx2 for the last 1-4 columns).
#include "CKernels.h"
#include "scratch.h"
#include "store_rows.h"
#include <immintrin.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

enum { KC = 256, NC = 512, HEADER = 16, MC_FLOATS = 32768, BLOCK_FLOATS = 32768 };

static int forced_level = -1;

static int detect_level(void) {
    __builtin_cpu_init();
    // SWIFTQ_CPU_LEVEL=avx2|portable caps the level (to measure or check the fallbacks on an AVX-512 machine).
    const char *cap = getenv("SWIFTQ_CPU_LEVEL");
    if (cap && strcmp(cap, "portable") == 0) return 0;
    if (cap && strcmp(cap, "avx2") == 0 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 2;
    if (__builtin_cpu_supports("avx512f")) return 3;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return 2;
    return 0;
}

int sq_cpu_level(void) {
    static int level = -1;
    if (level < 0) level = detect_level();
    return forced_level >= 0 && forced_level < level ? forced_level : level;
}

int sq_set_cpu_level(int level) {
    forced_level = level;
    return sq_cpu_level();
}

static void tile_shape(int level, int *mr, int *nr) {
    switch (level) {
    case 3: *mr = 12; *nr = 32; break;
    case 2: *mr = 6; *nr = 16; break;
    default: *mr = 4; *nr = 8; break;
    }
}

static int round_up(int x, int m) { return (x + m - 1) / m * m; }

size_t sq_packed_a_size(int M, int K) {
    // Sized for every panel height (12 and 8 at AVX-512, 6, 4) so a buffer fits whichever level packs into it.
    int rows = round_up(M, 12) > round_up(M, 8) ? round_up(M, 12) : round_up(M, 8);
    return HEADER + (size_t)rows * (size_t)K + 64;
}

// The panel height for M rows at `level`: AVX-512 takes 8-row panels instead of 12 when they pad fewer rows
// (M = 16: two panels of 8 instead of 24 rows of 12, a third of the multiply-adds wasted; 40, 64, 160 alike).
static int panel_rows(int level, int M) {
    int mr, nr;
    tile_shape(level, &mr, &nr);
    if (level == 3 && round_up(M, 8) < round_up(M, 12)) return 8;
    // AVX2 likewise takes 4-row panels when 6-row ones would pad more than 4% of the rows (16, 20, 32, 40 channels).
    // The 4x16 tiles keep up with 6x16 on Zen 3 with K small (kernel bench 16 x 3136 x 32: 40 -> 32 us, 32 x 784 x 144:
    // 93 -> 83) but not always with K large: 1000 x 169 x 512 (SqueezeNet's conv10) ran 4% slower on them.
    if (level == 2 && (round_up(M, 6) - round_up(M, 4)) * 25 > M) return 4;
    return mr;
}

// Layout after the header: for each KC block, for each MR-row panel, kc x MR values (rows past M are 0).
void sq_pack_a(int M, int K, const float *A, int lda, float *packed) {
    int level = sq_cpu_level(), mr = panel_rows(level, M);
    packed[0] = (float)level;
    packed[1] = (float)mr;
    float *p = packed + HEADER;
    for (int k0 = 0; k0 < K; k0 += KC) {
        int kc = K - k0 < KC ? K - k0 : KC;
        for (int i0 = 0; i0 < M; i0 += mr) {
            for (int k = 0; k < kc; k++)
                for (int i = 0; i < mr; i++) *p++ = i0 + i < M ? A[(size_t)(i0 + i) * lda + k0 + k] : 0.0f;
        }
    }
}

static void pack_b(int kc, int n0, int n1, const float *B, int ldb, int nr, float *out) {
    for (int j0 = n0; j0 < n1; j0 += nr) {
        int w = n1 - j0 < nr ? n1 - j0 : nr;
        if (w == 16 && nr == 16) {
            // A constant size, so the copy is two vector moves, not a call (the AVX2 panels: 9% of MobileNetV2's
            // time at 1 thread went to memmove here).
            for (int k = 0; k < kc; k++) { memcpy(out, B + (size_t)k * ldb + j0, sizeof(float) * 16); out += 16; }
        } else if (w == nr) {
            for (int k = 0; k < kc; k++) { memcpy(out, B + (size_t)k * ldb + j0, sizeof(float) * nr); out += nr; }
        } else {
            for (int k = 0; k < kc; k++) {
                const float *b = B + (size_t)k * ldb + j0;
                int j = 0;
                for (; j < w; j++) out[j] = b[j];
                for (; j < nr; j++) out[j] = 0.0f;
                out += nr;
            }
        }
    }
}

// Merges an MR x NR product tile into C: adds C when `load`, then bias and clamp when `last`.
static void merge_tile(const float *t, int ldt, float *C, int ldc, int mr, int nr, int load, int last,
                       const float *bias, float lo, float hi) {
    for (int i = 0; i < mr; i++) {
        float *c = C + (size_t)i * ldc;
        const float *r = t + (size_t)i * ldt;
        float b = last && bias ? bias[i] : 0.0f;
        for (int j = 0; j < nr; j++) {
            float v = r[j] + (load ? c[j] : 0.0f);
            if (last) { v += b; v = v < lo ? lo : (v > hi ? hi : v); }
            c[j] = v;
        }
    }
}

typedef void (*micro_kernel)(int kc, const float *a, const float *b, float *C, int ldc, int mr, int nr,
                             int load, int last, const float *bias, float lo, float hi);

// Writes rows [0, mr) of an accumulator tile (nv 16-column vectors per row, the last nr columns valid) with
// masked loads and stores where a vector is partial, so partial tiles need no scalar pass (full vectors plainly:
// masked 512-bit memory operations are slower on AMD Zen 4). The row loop runs to the constant MR, unrolled,
// skipping rows past mr: every accumulator then has a constant index and the tile stays in registers. (A loop to mr
// made the compiler keep the tile in a stack array, zeroed by a memset call per tile and stored there after the k
// loop: 2% of MobileNetV2's time was that memset.)
#define AVX512_STORE(ACC, NV)                                                                                     \
    do {                                                                                                          \
        __mmask16 m0 = nr >= 16 ? 0xFFFF : (__mmask16)((1u << nr) - 1);                                           \
        __mmask16 m1 = nr >= 32 ? 0xFFFF : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : 0;                      \
        __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);                                                \
        _Pragma("clang loop unroll(full)") for (int i = 0; i < MR; i++) {                                        \
            if (i >= mr) continue;                                                                                \
            float *c = C + (size_t)i * ldc;                                                                       \
            for (int v = 0; v < NV; v++) {                                                                        \
                __mmask16 m = v == 0 ? m0 : m1;                                                                   \
                __m512 x = ACC[i][v];                                                                             \
                if (load) x = _mm512_add_ps(x, m == 0xFFFF ? _mm512_loadu_ps(c + 16 * v)                          \
                                                           : _mm512_maskz_loadu_ps(m, c + 16 * v));               \
                if (last) {                                                                                       \
                    if (bias) x = _mm512_add_ps(x, _mm512_set1_ps(bias[i]));                                      \
                    x = _mm512_min_ps(_mm512_max_ps(x, vlo), vhi);                                                \
                    if (R) x = _mm512_add_ps(x, m == 0xFFFF ? _mm512_loadu_ps(R + (size_t)i * ldc + 16 * v)       \
                                                            : _mm512_maskz_loadu_ps(m, R + (size_t)i * ldc + 16 * v)); \
                }                                                                                                 \
                if (m == 0xFFFF) _mm512_storeu_ps(c + 16 * v, x);                                                 \
                else _mm512_mask_storeu_ps(c + 16 * v, m, x);                                                     \
            }                                                                                                     \
        }                                                                                                         \
    } while (0)

// A tile of NR <= 8 columns, fewer than the panel's MR rows (the last 4 of 196 = 6 x 32 + 4 on a 14x14 map), with the
// panel's rows in the lanes: per step of k one load of the panel's column (from L1: the full tiles before it read the
// same panel) and NR broadcasts of B feed NR multiply-adds, where a row-wise tile spends MR multiply-adds (and MR
// broadcasts) on a vector of which NR lanes count. Each sum takes the same products in the same order (a[i]·b[j] is
// b[j]·a[i]), and the tile is merged into C by AVX512_STORE's operations: the same bits. 1 thread, AMD Zen 4, 576
// rows x 96: 161 columns 181 -> 171 us, 164 172 -> 163, 168 174 -> 171; from 9 columns on no faster (169: even).
static inline __attribute__((always_inline, target("avx512f"))) void kernel_avx512_cols(const int MR, const int NR, int kc, const float *a,
                                                                                     const float *b, int bs, float *C, int ldc, int mr,
                                                                                     int load, int last, const float *bias, float lo,
                                                                                     float hi, const float *R) {
    const __mmask16 am = (__mmask16)((1u << MR) - 1u);
    __m512 acc[12];
    for (int j = 0; j < NR; j++) acc[j] = _mm512_setzero_ps();
    for (int k = 0; k < kc; k++) {
        __m512 av = _mm512_maskz_loadu_ps(am, a);
        for (int j = 0; j < NR; j++) acc[j] = _mm512_fmadd_ps(_mm512_set1_ps(b[j]), av, acc[j]);
        a += MR; b += bs;
    }
    __attribute__((aligned(64))) float t[12 * 16];
    for (int j = 0; j < NR; j++) _mm512_store_ps(t + 16 * j, acc[j]);
    const __mmask16 cm = (__mmask16)((1u << NR) - 1u);
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    for (int i = 0; i < mr; i++) {
        float r[16];
        for (int j = 0; j < NR; j++) r[j] = t[16 * j + i];
        float *c = C + (size_t)i * ldc;
        __m512 x = _mm512_maskz_loadu_ps(cm, r);
        if (load) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(cm, c));
        if (last) {
            if (bias) x = _mm512_add_ps(x, _mm512_set1_ps(bias[i]));
            x = _mm512_min_ps(_mm512_max_ps(x, vlo), vhi);
            if (R) x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(cm, R + (size_t)i * ldc));
        }
        _mm512_mask_storeu_ps(c, cm, x);
    }
}

static inline __attribute__((always_inline, target("avx512f"))) void kernel_avx512_cols_any(const int MR, int nr, int kc, const float *a,
                                                                                         const float *b, int bs, float *C, int ldc, int mr,
                                                                                         int load, int last, const float *bias, float lo,
                                                                                         float hi, const float *R) {
    switch (nr) {
    case 1: kernel_avx512_cols(MR, 1, kc, a, b, bs, C, ldc, mr, load, last, bias, lo, hi, R); break;
    case 2: kernel_avx512_cols(MR, 2, kc, a, b, bs, C, ldc, mr, load, last, bias, lo, hi, R); break;
    case 3: kernel_avx512_cols(MR, 3, kc, a, b, bs, C, ldc, mr, load, last, bias, lo, hi, R); break;
    case 4: kernel_avx512_cols(MR, 4, kc, a, b, bs, C, ldc, mr, load, last, bias, lo, hi, R); break;
    case 5: kernel_avx512_cols(MR, 5, kc, a, b, bs, C, ldc, mr, load, last, bias, lo, hi, R); break;
    case 6: kernel_avx512_cols(MR, 6, kc, a, b, bs, C, ldc, mr, load, last, bias, lo, hi, R); break;
    case 7: kernel_avx512_cols(MR, 7, kc, a, b, bs, C, ldc, mr, load, last, bias, lo, hi, R); break;
    default: kernel_avx512_cols(MR, 8, kc, a, b, bs, C, ldc, mr, load, last, bias, lo, hi, R); break;
    }
}

// The MR x 32 AVX-512 micro-kernel (MR = 12 or 8: a constant at each instantiation, so the loops unroll).
// B's rows are `bs` floats apart: 32 in a packed panel, ldb when B is read where it lies; then the columns past nr
// are not loaded (masks), since past the last row of B there may be no memory.
static inline __attribute__((always_inline, target("avx512f"))) void kernel_avx512_rows(int MR, int kc, const float *a, const float *b, int bs,
                                                                                     float *C, int ldc, int mr, int nr, int load,
                                                                                     int last, const float *bias, float lo, float hi,
                                                                                     const float *R) {
    if (nr < MR && nr <= 8) {
        kernel_avx512_cols_any(MR, nr, kc, a, b, bs, C, ldc, mr, load, last, bias, lo, hi, R);
        return;
    }
    __mmask16 lm0 = nr >= 16 ? 0xFFFF : (__mmask16)((1u << nr) - 1);
    __mmask16 lm1 = nr >= 32 ? 0xFFFF : nr > 16 ? (__mmask16)((1u << (nr - 16)) - 1) : 0;
    if (nr <= 16) {
        // A tail of at most 16 columns: one vector per row (the packed panel is still 32 wide).
        __m512 acc[12][1];
        for (int i = 0; i < MR; i++) acc[i][0] = _mm512_setzero_ps();
        for (int k = 0; k < kc; k++) {
            __m512 b0 = _mm512_maskz_loadu_ps(lm0, b);
            for (int i = 0; i < MR; i++) acc[i][0] = _mm512_fmadd_ps(_mm512_set1_ps(a[i]), b0, acc[i][0]);
            a += MR; b += bs;
        }
        AVX512_STORE(acc, 1);
        return;
    }
    __m512 acc[12][2];
    for (int i = 0; i < MR; i++) { acc[i][0] = _mm512_setzero_ps(); acc[i][1] = _mm512_setzero_ps(); }
    for (int k = 0; k < kc; k++) {
        // Full tiles load plainly: AMD Zen 4 runs a masked 512-bit load slower than a plain one.
        __m512 b0 = _mm512_loadu_ps(b), b1 = nr >= 32 ? _mm512_loadu_ps(b + 16) : _mm512_maskz_loadu_ps(lm1, b + 16);
        // The weight panel streams from memory once per run (each weight meets only the N columns of this call:
        // 49 on a 7x7 map); fetching 128 steps ahead kept EfficientNet-Lite0's 7x7 layers from waiting on it.
        _mm_prefetch((const char *)(a + MR * 128), _MM_HINT_T0);
        for (int i = 0; i < MR; i++) {
            __m512 ai = _mm512_set1_ps(a[i]);
            acc[i][0] = _mm512_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(ai, b1, acc[i][1]);
        }
        a += MR; b += bs;
    }
    AVX512_STORE(acc, 2);
}

__attribute__((target("avx512f")))
static void kernel_avx512(int kc, const float *a, const float *b, float *C, int ldc, int mr, int nr,
                          int load, int last, const float *bias, float lo, float hi) {
    kernel_avx512_rows(12, kc, a, b, 32, C, ldc, mr, nr, load, last, bias, lo, hi, NULL);
}

__attribute__((target("avx512f")))
static void kernel_avx512_8(int kc, const float *a, const float *b, float *C, int ldc, int mr, int nr,
                            int load, int last, const float *bias, float lo, float hi) {
    kernel_avx512_rows(8, kc, a, b, 32, C, ldc, mr, nr, load, last, bias, lo, hi, NULL);
}

// The same products with B read in place, its rows ldb floats apart (no packing pass). R: a residual laid out as C,
// added to the last block's result after the clamp (NULL: none).
__attribute__((target("avx512f")))
static void kernel_avx512_inplace(int MR, int kc, const float *a, const float *b, int ldb, float *C, int ldc, int mr, int nr,
                                  int load, int last, const float *bias, float lo, float hi, const float *R) {
    if (MR == 8) kernel_avx512_rows(8, kc, a, b, ldb, C, ldc, mr, nr, load, last, bias, lo, hi, R);
    else kernel_avx512_rows(12, kc, a, b, ldb, C, ldc, mr, nr, load, last, bias, lo, hi, R);
}

// A tile of at most 8 columns (the last of 49 = 3 x 16 + 1): only the first half of each packed row of B, in about
// half the time of a full tile.
// MR: the panel's rows (6, or 4 for panel_rows' 4-row panels); a constant at each call, so the loops unroll.
__attribute__((target("avx2,fma"), always_inline))
static inline void kernel_avx2_half(const int MR, int kc, const float *a, const float *b, float *C, int ldc, int mr, int nr,
                                    int load, int last, const float *bias, float lo, float hi) {
    __m256 acc[6];
    for (int i = 0; i < MR; i++) acc[i] = _mm256_setzero_ps();
    for (int k = 0; k < kc; k++) {
        __m256 b0 = _mm256_loadu_ps(b);
        for (int i = 0; i < MR; i++) acc[i] = _mm256_fmadd_ps(_mm256_broadcast_ss(a + i), b0, acc[i]);
        a += MR; b += 16;
    }
    float t[6 * 8];
    for (int i = 0; i < MR; i++) _mm256_storeu_ps(t + i * 8, acc[i]);
    merge_tile(t, 8, C, ldc, mr, nr, load, last, bias, lo, hi);
}

// The MR x 16 AVX2 micro-kernel (MR = 6, or 4). B's row k is at b + ldb·k (16 in a packed panel) or, when `rows`
// is given, at rows[k] + col (sq_conv_indirect_band).
__attribute__((target("avx2,fma"), always_inline))
static inline void kernel_avx2_body(const int MR, int kc, const float *a, const float *b, size_t ldb, const float *const *rows, size_t col,
                                    float *pack, float *C, int ldc, int mr, int nr, int load, int last, const float *bias, float lo, float hi) {
    __m256 acc[6][2];
    for (int i = 0; i < MR; i++) { acc[i][0] = _mm256_setzero_ps(); acc[i][1] = _mm256_setzero_ps(); }
    for (int k = 0; k < kc; k++) {
        const float *bk = rows ? rows[k] + col : b + ldb * k;
        __m256 b0 = _mm256_loadu_ps(bk), b1 = _mm256_loadu_ps(bk + 8);
        if (pack) { _mm256_storeu_ps(pack + 16 * k, b0); _mm256_storeu_ps(pack + 16 * k + 8, b1); }
        for (int i = 0; i < MR; i++) {
            __m256 ai = _mm256_broadcast_ss(a + i);
            acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
        }
        a += MR;
    }
    if (mr == MR && nr == 16) {
        __m256 vlo = _mm256_set1_ps(lo), vhi = _mm256_set1_ps(hi);
        for (int i = 0; i < MR; i++) {
            float *c = C + (size_t)i * ldc;
            __m256 x0 = acc[i][0], x1 = acc[i][1];
            if (load) { x0 = _mm256_add_ps(x0, _mm256_loadu_ps(c)); x1 = _mm256_add_ps(x1, _mm256_loadu_ps(c + 8)); }
            if (last) {
                if (bias) { __m256 bi = _mm256_set1_ps(bias[i]); x0 = _mm256_add_ps(x0, bi); x1 = _mm256_add_ps(x1, bi); }
                x0 = _mm256_min_ps(_mm256_max_ps(x0, vlo), vhi);
                x1 = _mm256_min_ps(_mm256_max_ps(x1, vlo), vhi);
            }
            _mm256_storeu_ps(c, x0);
            _mm256_storeu_ps(c + 8, x1);
        }
        return;
    }
    float t[6 * 16];
    for (int i = 0; i < MR; i++) { _mm256_storeu_ps(t + i * 16, acc[i][0]); _mm256_storeu_ps(t + i * 16 + 8, acc[i][1]); }
    merge_tile(t, 16, C, ldc, mr, nr, load, last, bias, lo, hi);
}

// The entry points for 6-row panels and (suffix 4) 4-row ones.
__attribute__((target("avx2,fma")))
static void kernel_avx2(int kc, const float *a, const float *b, float *C, int ldc, int mr, int nr,
                        int load, int last, const float *bias, float lo, float hi) {
    if (nr <= 8) kernel_avx2_half(6, kc, a, b, C, ldc, mr, nr, load, last, bias, lo, hi);
    else kernel_avx2_body(6, kc, a, b, 16, NULL, 0, NULL, C, ldc, mr, nr, load, last, bias, lo, hi);
}

__attribute__((target("avx2,fma")))
static void kernel_avx2_4(int kc, const float *a, const float *b, float *C, int ldc, int mr, int nr,
                          int load, int last, const float *bias, float lo, float hi) {
    if (nr <= 8) kernel_avx2_half(4, kc, a, b, C, ldc, mr, nr, load, last, bias, lo, hi);
    else kernel_avx2_body(4, kc, a, b, 16, NULL, 0, NULL, C, ldc, mr, nr, load, last, bias, lo, hi);
}

// 16 columns of B read where they lie, rows ldb floats apart; `panel`: the panel's rows (6 or 4). With `pack`, the
// columns are also written there as a packed panel (16 floats per row) for the panels after this one.
__attribute__((target("avx2,fma")))
static void kernel_avx2_inplace(int panel, int kc, const float *a, const float *b, size_t ldb, float *pack, float *C, int ldc, int mr,
                                int load, int last, const float *bias, float lo, float hi) {
    if (pack) {
        if (panel == 4) kernel_avx2_body(4, kc, a, b, ldb, NULL, 0, pack, C, ldc, mr, 16, load, last, bias, lo, hi);
        else kernel_avx2_body(6, kc, a, b, ldb, NULL, 0, pack, C, ldc, mr, 16, load, last, bias, lo, hi);
    } else {
        if (panel == 4) kernel_avx2_body(4, kc, a, b, ldb, NULL, 0, NULL, C, ldc, mr, 16, load, last, bias, lo, hi);
        else kernel_avx2_body(6, kc, a, b, ldb, NULL, 0, NULL, C, ldc, mr, 16, load, last, bias, lo, hi);
    }
}

__attribute__((target("avx2,fma")))
static void kernel_avx2_indirect(int panel, int kc, const float *a, const float *const *rows, size_t col, float *C, int ldc, int mr, int nr,
                                 int load, int last, const float *bias, float lo, float hi) {
    if (panel == 4) kernel_avx2_body(4, kc, a, NULL, 0, rows, col, NULL, C, ldc, mr, nr, load, last, bias, lo, hi);
    else kernel_avx2_body(6, kc, a, NULL, 0, rows, col, NULL, C, ldc, mr, nr, load, last, bias, lo, hi);
}

// The last 1-4 columns of a block of B (N = 49: one column past three tiles), across many panels at once. The
// tile kernels spend at least a half tile (MR multiply-adds per k) on them; here each panel's MR = 6 (or 4)
// weights at k are one vector (8 lanes, those past MR ignored) times the column's broadcast value: 1 multiply-add
// per k and column, G panels at a time so the chains hide the multiply-add latency. Each output is the same chain
// of multiply-adds over k as in a tile (the same operands in the same order, from 0), so the same bits. `a` is the
// first panel of the KC block's rows, panels kc·MR floats apart; b's row k is at b + 16·k (a packed panel). Reads
// 8 - MR floats past a panel (into the next one, or the packed buffer's padding).
enum { COLS_MAX = 4 };

__attribute__((target("avx2,fma"), always_inline))
static inline void columns_avx2_group(const int MR, const int R, const int G, int np, int kc, const float *a, const float *b, float *C,
                                      int ldc, int rows, int load, int last, const float *bias, float lo, float hi) {
    __m256 acc[8][COLS_MAX];
    const float *ap[8];
    size_t ps = (size_t)kc * MR;
    for (int g = 0; g < G; g++) {
        ap[g] = a + ps * (size_t)(g < np ? g : np - 1);   // past the last panel: repeat it, not stored
        for (int c = 0; c < R; c++) acc[g][c] = _mm256_setzero_ps();
    }
    for (int k = 0; k < kc; k++) {
        __m256 bv[COLS_MAX];
        for (int c = 0; c < R; c++) bv[c] = _mm256_broadcast_ss(b + 16 * k + c);
        for (int g = 0; g < G; g++) {
            __m256 av = _mm256_loadu_ps(ap[g] + MR * k);
            for (int c = 0; c < R; c++) acc[g][c] = _mm256_fmadd_ps(av, bv[c], acc[g][c]);
        }
    }
    for (int g = 0; g < np; g++) {
        float t[COLS_MAX][8];
        for (int c = 0; c < R; c++) _mm256_storeu_ps(t[c], acc[g][c]);
        int m = rows - MR * g < MR ? rows - MR * g : MR;
        for (int i = 0; i < m; i++) {
            float *cr = C + (size_t)(MR * g + i) * ldc;
            float bi = last && bias ? bias[MR * g + i] : 0.0f;
            for (int c = 0; c < R; c++) {
                float v = t[c][i] + (load ? cr[c] : 0.0f);
                if (last) { v += bi; v = v < lo ? lo : (v > hi ? hi : v); }
                cr[c] = v;
            }
        }
    }
}

// Rows [0, rows) (panels of `panel` = 6 or 4 rows from `a`) times the r <= COLS_MAX columns of the packed panel b,
// into C.
__attribute__((target("avx2,fma")))
static void columns_avx2(int panel, int r, int kc, const float *a, const float *b, float *C, int ldc, int rows, int load, int last,
                         const float *bias, float lo, float hi) {
    static const int groups[COLS_MAX + 1] = {0, 8, 6, 4, 3};   // G·r <= 12 accumulators
    int G = groups[r];
    for (int i0 = 0; i0 < rows; i0 += panel * G) {
        int n = rows - i0, np = (n + panel - 1) / panel < G ? (n + panel - 1) / panel : G;
        const float *ai = a + (size_t)i0 * kc, *bi = bias ? bias + i0 : NULL;
        float *ci = C + (size_t)i0 * ldc;
#define COLS_CASES(MR)                                                                                     \
        switch (r) {                                                                                       \
        case 1: columns_avx2_group(MR, 1, 8, np, kc, ai, b, ci, ldc, n, load, last, bi, lo, hi); break;    \
        case 2: columns_avx2_group(MR, 2, 6, np, kc, ai, b, ci, ldc, n, load, last, bi, lo, hi); break;    \
        case 3: columns_avx2_group(MR, 3, 4, np, kc, ai, b, ci, ldc, n, load, last, bi, lo, hi); break;    \
        default: columns_avx2_group(MR, 4, 3, np, kc, ai, b, ci, ldc, n, load, last, bi, lo, hi); break;   \
        }
        if (panel == 4) COLS_CASES(4) else COLS_CASES(6)
#undef COLS_CASES
    }
}

static void kernel_portable(int kc, const float *a, const float *b, float *C, int ldc, int mr, int nr,
                            int load, int last, const float *bias, float lo, float hi) {
    float t[4 * 8] = {0};
    for (int k = 0; k < kc; k++) {
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 8; j++) t[i * 8 + j] += a[i] * b[j];
        a += 4; b += 8;
    }
    merge_tile(t, 8, C, ldc, mr, nr, load, last, bias, lo, hi);
}

static _Thread_local struct { void *p; size_t capacity; } scratch[SQ_SCRATCH_SLOTS];

void sq_release_thread_buffers(void) {
    for (int i = 0; i < SQ_SCRATCH_SLOTS; i++) {
        free(scratch[i].p);
        scratch[i].p = NULL;
        scratch[i].capacity = 0;
    }
}

// The thread-local scratch buffers are also freed when their thread ends, whoever made it (a Dispatch worker running
// an interpreter retires with no call to sq_release_thread_buffers, and LeakSanitizer saw its buffer lost): each
// allocation marks the thread under a pthread key whose destructor releases them.
static pthread_key_t release_key;
static pthread_once_t release_once = PTHREAD_ONCE_INIT;
static void release_at_exit(void *unused) { (void)unused; sq_release_thread_buffers(); }
static void make_release_key(void) { pthread_key_create(&release_key, release_at_exit); }

static void release_at_thread_exit(void) {
    pthread_once(&release_once, make_release_key);
    if (!pthread_getspecific(release_key)) pthread_setspecific(release_key, (void *)1);
}

void *sq_thread_scratch(int slot, size_t bytes) {
    if (bytes > scratch[slot].capacity) {
        free(scratch[slot].p);
        size_t capacity = (bytes + 4095) / 4096 * 4096;
        scratch[slot].p = aligned_alloc(64, capacity);
        if (!scratch[slot].p) abort();
        scratch[slot].capacity = capacity;
        release_at_thread_exit();
    }
    return scratch[slot].p;
}

int sq_packed_mr(const float *packedA) { return (int)packedA[1]; }

static void gemm_packed(int M, int N, int K, const float *packedA, const float *B, int ldb, float *C, int ldc,
                        int m0, int m1, int n0, int n1, const float *bias, float lo, float hi, int accumulate, const float *R) {
    (void)N;
    int level = (int)packedA[0], mr = (int)packedA[1], nr, unused;
    tile_shape(level, &unused, &nr);
    micro_kernel kern = level == 3 ? (mr == 8 ? kernel_avx512_8 : kernel_avx512)
                      : level == 2 ? (mr == 4 ? kernel_avx2_4 : kernel_avx2) : kernel_portable;
    float *b_scratch = level == 3 ? NULL : sq_thread_scratch(SQ_SCRATCH_PACK_B, sizeof(float) * KC * (NC + 32));
    const float *A = packedA + HEADER;
    int Mp = round_up(M, mr);
    if (m1 > M) m1 = M;
    // AVX-512 reads B where it lies instead of packing it: the packing pass cost as much as the products when
    // few weight rows share it (16 output channels at 55x55: 86 -> 57 us), and no case measured slower.
    int inplace = level == 3;
    if (K == 0) {
        for (int i = m0; i < m1; i++)
            for (int j = n0; j < n1; j++) {
                float v = (accumulate ? C[(size_t)i * ldc + j] : 0.0f) + (bias && !accumulate ? bias[i] : 0.0f);
                C[(size_t)i * ldc + j] = v < lo ? lo : (v > hi ? hi : v);
            }
        return;
    }
    for (int j0 = n0; j0 < n1; j0 += NC) {
        int j1 = j0 + NC < n1 ? j0 + NC : n1;
        for (int k0 = 0; k0 < K; k0 += KC) {
            int kc = K - k0 < KC ? K - k0 : KC;
            int load = k0 > 0 || accumulate, last = k0 + kc == K;
            const float *ablock = A + (size_t)Mp * k0;
            if (inplace) {
                for (int i0 = m0; i0 < m1; i0 += mr) {
                    const float *ap = ablock + (size_t)i0 * kc;
                    int m = m1 - i0 < mr ? m1 - i0 : mr;
                    for (int j = j0; j < j1; j += nr) {
                        int w = j1 - j < nr ? j1 - j : nr;
                        kernel_avx512_inplace(mr, kc, ap, B + (size_t)k0 * ldb + j, ldb, C + (size_t)i0 * ldc + j, ldc, m, w, load, last,
                                              bias && !accumulate ? bias + i0 : NULL, lo, hi, R ? R + (size_t)i0 * ldc + j : NULL);
                    }
                }
                continue;
            }
            if (level == 2 && M <= 24) {
                // At most 4 row panels share the packed columns: reading B in place is cheaper than packing it
                // (kernel bench, 1 thread: 64 -> 16 channels at 55x55 98 -> 89 us, 96 -> 24 at 56x56 179 -> 158; with
                // 32 or more rows no gain). Whole panels in place, a last partial one packed.
                int jf = j0 + (j1 - j0) / 16 * 16;
                if (jf < j1) pack_b(kc, jf, j1, B + (size_t)k0 * ldb, ldb, nr, b_scratch);
                int tail = j1 - jf <= COLS_MAX;
                // With more of B than L2 holds well, columns outer: each 16 columns of B are read from memory by
                // the first panel and from L1 by the rest. Otherwise panels outer, each writing its rows of C in
                // order (with few rows of B, storing C is much of the work).
                int outer = (size_t)kc * (size_t)(j1 - j0) > BLOCK_FLOATS ? 16 : j1 - j0;
                for (int jb = j0; jb < j1; jb += outer) {
                    int je = jb + outer < j1 ? jb + outer : j1;
                    for (int i0 = m0; i0 < m1; i0 += mr) {
                        const float *ap = ablock + (size_t)i0 * kc, *bi = bias && !accumulate ? bias + i0 : NULL;
                        int m = m1 - i0 < mr ? m1 - i0 : mr;
                        for (int j = jb; j < je && j < jf; j += 16)
                            kernel_avx2_inplace(mr, kc, ap, B + (size_t)k0 * ldb + j, (size_t)ldb, NULL, C + (size_t)i0 * ldc + j, ldc, m, load, last, bi, lo, hi);
                        if (je > jf && !tail) kern(kc, ap, b_scratch, C + (size_t)i0 * ldc + jf, ldc, m, j1 - jf, load, last, bi, lo, hi);
                    }
                }
                if (jf < j1 && tail)
                    columns_avx2(mr, j1 - jf, kc, ablock + (size_t)m0 * kc, b_scratch, C + (size_t)m0 * ldc + jf, ldc, m1 - m0, load, last,
                                 bias && !accumulate ? bias + m0 : NULL, lo, hi);
                continue;
            }
            // At AVX2 the full tiles of B are packed by the first panel that reads them, in the same pass
            // (kernel_avx2_inplace with `pack`): a separate packing pass had cost 5.6% of MobileNetV2's time at 1
            // thread. Then the last 1-4 columns go through columns_avx2, all rows at once, after the full tiles.
            int jp = level == 2 ? j0 + (j1 - j0) / 16 * 16 : j0;   // columns [j0, jp) packed on the way
            pack_b(kc, jp, j1, B + (size_t)k0 * ldb, ldb, nr, b_scratch + (size_t)(jp - j0) * kc);
            int jt = level == 2 && (j1 - j0) % 16 != 0 && (j1 - j0) % 16 <= COLS_MAX ? jp : j1;
            // With more packed B than L2 holds well (BLOCK_FLOATS), columns outer and panels inner, in blocks of rows
            // whose weights stay in L2 (MC_FLOATS): each packed panel of B (kc x nr) stays in L1 while the block's
            // row panels pass over it, instead of every panel streaming all of B (40 channels at 28x28 from 240:
            // 512 columns x 240 rows, 480 KiB). Otherwise panels outer, as the columns-outer order writes C
            // scattered (with few rows of B, storing C is much of the work).
            int big = (size_t)kc * (size_t)(j1 - j0) > BLOCK_FLOATS, mc = big ? MC_FLOATS / kc / mr * mr : m1 - m0;
            if (mc < mr) mc = mr;
            for (int ic = m0; ic < m1; ic += mc) {
                int ie = ic + mc < m1 ? ic + mc : m1;
                // big: columns outer (the outer loop over tiles, the inner over panels); otherwise panels outer.
                int outer_end = big ? jt : ie, outer_step = big ? nr : mr, inner_end = big ? ie : jt, inner_step = big ? mr : nr;
                for (int u = big ? j0 : ic; u < outer_end; u += outer_step)
                    for (int v = big ? ic : j0; v < inner_end; v += inner_step) {
                        int i0 = big ? v : u, j = big ? u : v;
                        float *bp = b_scratch + (size_t)(j - j0) * kc, *cp = C + (size_t)i0 * ldc + j;
                        const float *ap = ablock + (size_t)i0 * kc, *bi = bias && !accumulate ? bias + i0 : NULL;
                        int m = ie - i0 < mr ? ie - i0 : mr;
                        if (i0 == m0 && j < jp)
                            kernel_avx2_inplace(mr, kc, ap, B + (size_t)k0 * ldb + j, (size_t)ldb, bp, cp, ldc, m, load, last, bi, lo, hi);
                        else
                            kern(kc, ap, bp, cp, ldc, m, j1 - j < nr ? j1 - j : nr, load, last, bi, lo, hi);
                    }
                if (jt < j1)
                    columns_avx2(mr, j1 - jt, kc, ablock + (size_t)ic * kc, b_scratch + (size_t)(jt - j0) * kc, C + (size_t)ic * ldc + jt, ldc,
                                 ie - ic, load, last, bias && !accumulate ? bias + ic : NULL, lo, hi);
            }
        }
    }
}

void sq_gemm_packed(int M, int N, int K, const float *packedA, const float *B, int ldb, float *C, int ldc,
                    int m0, int m1, int n0, int n1, const float *bias, float lo, float hi, int accumulate) {
    gemm_packed(M, N, K, packedA, B, ldb, C, ldc, m0, m1, n0, n1, bias, lo, hi, accumulate, NULL);
}

// On AVX-512 (B read in place) the residual goes into the tiles' last writes (a 1x1 Conv + Add in one pass); elsewhere
// it is added row by row afterwards. Either way each value is the clamped product plus the residual: the same bits.
void sq_gemm_packed_residual(int M, int N, int K, const float *packedA, const float *B, int ldb, float *C, int ldc,
                             int m0, int m1, int n0, int n1, const float *bias, float lo, float hi, const float *R) {
    if ((int)packedA[0] == 3 && K > 0) {
        gemm_packed(M, N, K, packedA, B, ldb, C, ldc, m0, m1, n0, n1, bias, lo, hi, 0, R);
        return;
    }
    gemm_packed(M, N, K, packedA, B, ldb, C, ldc, m0, m1, n0, n1, bias, lo, hi, 0, NULL);
    if (m1 > M) m1 = M;
    for (int i = m0; i < m1 && n0 < n1; i++) {
        float *c = C + (size_t)i * ldc + n0;
        sq_binary(0, c, 1, R + (size_t)i * ldc + n0, 1, c, n1 - n0);   // the Add op's own loop
    }
}

// ---- Stride-1 convolutions without im2col (AVX2) --------------------------------------------------------------------
// On a copy of the input rows a band of output rows reads, with their pads written out (rows Wp floats long; the
// copy is sq_shift_planes' with one kernel column, unshifted), output (oh, ow) and tap (c, kh, kw) read
// xpad[c][oh + kh·DH][ow + kw·DW]: with j = oh·Wp + ow, that is rows[k][j] for rows[k] = xpad + c·Hp·Wp + kh·DH·Wp +
// kw·DW. So B is K row pointers into the copy and 16 consecutive j are 16 consecutive floats: the micro-kernel reads
// them where they lie. The products are taken on the padded grid (Wp - OW wasted columns per row) into a scratch
// tile and copied out. Nothing is unfolded or packed: with SqueezeNet's 3x3 convolutions im2col and the packing of
// its columns had taken about a third of the time. Same sums as sq_gemm_packed, bit for bit (k in the same order
// and KC blocks).

void sq_conv_indirect_band(int M, const float *packedA, const float *xpad, int C, int Hp, int Wp, int KH, int KW, int DH, int DW,
                           int oh0, int rows, int OW, float *tile, float *y, int ohw, const float *bias, float lo, float hi) {
    int K = C * KH * KW, mr = (int)packedA[1], Mp = round_up(M, mr), n = (rows - 1) * Wp + OW, ldt = round_up(n, 16);
    const float *A = packedA + HEADER, *brow[KC];
    size_t j0 = (size_t)oh0 * Wp;
    for (int k0 = 0; k0 < K; k0 += KC) {
        int kc = K - k0 < KC ? K - k0 : KC, load = k0 > 0, last = k0 + kc == K;
        for (int k = k0; k < k0 + kc; k++) {
            int c = k / (KH * KW), kh = k / KW % KH, kw = k % KW;
            brow[k - k0] = xpad + (size_t)c * Hp * Wp + (size_t)kh * DH * Wp + (size_t)kw * DW;
        }
        const float *ablock = A + (size_t)Mp * k0;
        for (int i0 = 0; i0 < M; i0 += mr) {
            int m = M - i0 < mr ? M - i0 : mr;
            for (int j = 0; j < n; j += 16)
                kernel_avx2_indirect(mr, kc, ablock + (size_t)i0 * kc, brow, j0 + j, tile + (size_t)i0 * ldt + j, ldt, m, 16, load, last,
                                     bias ? bias + i0 : NULL, lo, hi);
        }
    }
    for (int m = 0; m < M; m++)
        for (int r = 0; r < rows; r++) memcpy(y + (size_t)m * ohw + (size_t)(oh0 + r) * OW, tile + (size_t)m * ldt + (size_t)r * Wp, sizeof(float) * OW);
}

// ---- Stride-1 convolutions on shifted copies (AVX2) ----------------------------------------------------------------
// The same products without the padded grid's wasted columns: per kernel column kw, a copy of the band's input rows
// shifted by kw·DW - PL with zeros where the shift leaves the image, rows OW floats long (xq[kw][c][r][ow] =
// x[c][r - PT][ow + kw·DW - PL]). Then output j = oh·OW + ow and tap (c, kh, kw) read xq[kw][c] + kh·DH·OW + j: B's
// row k is a pointer and 16 consecutive outputs are 16 consecutive floats, across row ends too, so the micro-kernel
// writes y where it lies (no tile, no copy-out) and no column is wasted (the padded grid wasted 2 of 15 on a 13x13 map).

void sq_shift_planes(const float *x, int C, int H, int W, int KW, int DW, int PT, int PL, int Hq, int OW, float *xq) {
    int ra = PT > 0 ? PT : 0, rb = H + PT < Hq ? H + PT : Hq;   // copy rows [ra, rb) hold image rows ra - PT ...
    if (rb < ra) rb = ra;
    for (int kw = 0; kw < KW; kw++) {
        int off = kw * DW - PL;                                  // xq column ow reads image column ow + off
        for (int c = 0; c < C; c++) {
            const float *xc = x + (size_t)c * H * W + (size_t)(ra - PT) * W;
            float *o = xq + ((size_t)kw * C + c) * Hq * OW;
            memset(o, 0, sizeof(float) * (size_t)ra * OW);
            memset(o + (size_t)rb * OW, 0, sizeof(float) * (size_t)(Hq - rb) * OW);
            float *d = o + (size_t)ra * OW;
            if (OW == W && off > -W && off < W) {
                // Rows as long as the image's: one copy of the block shifted by off, then the columns the shift
                // wrapped over from the neighbouring row set to zero.
                size_t count = (size_t)(rb - ra) * W;
                if (count == 0) continue;
                if (off <= 0) memcpy(d - off, xc, sizeof(float) * (count + off));
                else memcpy(d, xc + off, sizeof(float) * (count - off));
                int z0 = off < 0 ? 0 : W - off, z1 = off < 0 ? -off : W;
                for (int r = ra; r < rb; r++) memset(o + (size_t)r * OW + z0, 0, sizeof(float) * (z1 - z0));
                continue;
            }
            int ow0 = off < 0 ? -off : 0, ow1 = W - off < OW ? W - off : OW;
            if (ow0 > OW) ow0 = OW;
            if (ow1 < ow0) ow1 = ow0;
            for (int r = ra; r < rb; r++, d += OW, xc += W) {
                memset(d, 0, sizeof(float) * ow0);
                memcpy(d + ow0, xc + ow0 + off, sizeof(float) * (ow1 - ow0));
                memset(d + ow1, 0, sizeof(float) * (OW - ow1));
            }
        }
    }
}

void sq_conv_shifted_band(int M, const float *packedA, const float *xq, int C, int Hq, int KH, int KW, int DH, int rows, int OW,
                          float *y, int ldy, const float *bias, float lo, float hi, int m0, int m1) {
    int K = C * KH * KW, mr = (int)packedA[1], Mp = round_up(M, mr), n = rows * OW;
    if (m1 > M) m1 = M;
    const float *A = packedA + HEADER, *brow[KC];
    for (int k0 = 0; k0 < K; k0 += KC) {
        int kc = K - k0 < KC ? K - k0 : KC, load = k0 > 0, last = k0 + kc == K;
        for (int k = k0; k < k0 + kc; k++) {
            int c = k / (KH * KW), kh = k / KW % KH, kw = k % KW;
            brow[k - k0] = xq + ((size_t)kw * C + c) * Hq * OW + (size_t)kh * DH * OW;
        }
        const float *ablock = A + (size_t)Mp * k0;
        for (int i0 = m0; i0 < m1; i0 += mr) {
            int m = m1 - i0 < mr ? m1 - i0 : mr;
            for (int j = 0; j < n; j += 16)
                kernel_avx2_indirect(mr, kc, ablock + (size_t)i0 * kc, brow, j, y + (size_t)i0 * ldy + j, ldy, m, n - j < 16 ? n - j : 16,
                                     load, last, bias ? bias + i0 : NULL, lo, hi);
        }
    }
}

// ---- Products with few columns (1x1 convolutions on 7x7 and 14x14 maps) ------------------------------------------
// With N = 49 the 32-column tiles of sq_gemm_packed use 49 of 64 lanes. Here the vectors run along M instead: the
// weights are repacked as [M / 32 blocks][K][32] and each tile is 32 rows x MT_PIX columns (B's values broadcast),
// so only rows past M, not columns, are wasted. Each output is summed as sq_gemm_packed sums it (the same
// multiply-adds in the same order, KC rows of B at a time, each block's sum added to the total), so the values are
// the same bits.
// MT_AHEAD: how many rows of B ahead the weights are fetched (8 KiB); measured in MobileNetV2 at 1 thread, 960 -> 320
// channels at 7x7 took 0.19 ms fetching 16 rows ahead, 0.14 at 64, 0.15 at 128 and 0.16 at 256 (the tiled product 0.16).
enum { MT_PIX = 7, MT_AHEAD = 64 };

int sq_gemm_mt_columns(void) { return MT_PIX; }

size_t sq_pack_mt_size(int M, int K) { return (size_t)round_up(M, 32) * (size_t)K; }

void sq_pack_mt(int M, int K, const float *packedA, float *out) {
    int mr = (int)packedA[1], Mp = round_up(M, mr);
    const float *A = packedA + HEADER;
    for (int b = 0; b < round_up(M, 32) / 32; b++)
        for (int k = 0; k < K; k++) {
            int k0 = k / KC * KC, kc = K - k0 < KC ? K - k0 : KC;
            for (int j = 0; j < 32; j++) {
                int m = b * 32 + j;
                *out++ = m < M ? A[(size_t)Mp * k0 + (size_t)(m / mr * mr) * kc + (size_t)(k - k0) * mr + m % mr] : 0.0f;
            }
        }
}

// ---- Fetching a later layer's weights ahead ----------------------------------------------------------------------
// A range (sq_fetch_ahead) that the products with vectors along the rows fetch into L2, one cache line per step of k,
// while they compute: a classifier's last fully connected layer (MobileNetV2's 1280 x 1000, 5 MB) reads its weights
// once per run from memory, bandwidth-bound, while the 7x7 layers before it are compute-bound. Threads take chunks
// of it with one atomic add per tile. Fetching only moves data between memory and cache: nothing it does changes a
// value, and a stale or abandoned range costs bandwidth, not correctness.
static _Atomic uintptr_t ahead_next, ahead_end;

void sq_fetch_ahead(const void *p, size_t bytes) {
    atomic_store_explicit(&ahead_end, p ? (uintptr_t)p + bytes : 0, memory_order_relaxed);
    atomic_store_explicit(&ahead_next, (uintptr_t)p, memory_order_relaxed);
}

size_t sq_fetch_ahead_pending(void) {
    uintptr_t n = atomic_load_explicit(&ahead_next, memory_order_relaxed), e = atomic_load_explicit(&ahead_end, memory_order_relaxed);
    return n < e ? e - n : 0;
}

// The start of `bytes` of the range for the caller to fetch (it may run past the range's end: prefetches never
// fault), or NULL when nothing is left.
static inline const char *ahead_take(size_t bytes) {
    if (atomic_load_explicit(&ahead_next, memory_order_relaxed) >= atomic_load_explicit(&ahead_end, memory_order_relaxed)) return NULL;
    uintptr_t p = atomic_fetch_add_explicit(&ahead_next, bytes, memory_order_relaxed);
    return p < atomic_load_explicit(&ahead_end, memory_order_relaxed) ? (const char *)p : NULL;
}

static inline __attribute__((always_inline, target("avx512f"))) void mt_tile(int NP, int K, const float *w, const float *B, int ldb,
                                                                             float *C, int ldc, int nm, const float *bias, float lo,
                                                                             float hi) {
    __m512 tot[MT_PIX][2], acc[MT_PIX][2];
    const char *later = ahead_take((size_t)K * 64);
    for (int k0 = 0; k0 < K; k0 += KC) {
        int k1 = K - k0 < KC ? K : k0 + KC;
        for (int i = 0; i < NP; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
        for (int k = k0; k < k1; k++) {
            __m512 w0 = _mm512_loadu_ps(w + (size_t)k * 32), w1 = _mm512_loadu_ps(w + (size_t)k * 32 + 16);
            // The weights stream from memory once per run (in a network they are out of cache): fetch ahead.
            _mm_prefetch((const char *)(w + (size_t)(k + MT_AHEAD) * 32), _MM_HINT_T0);
            _mm_prefetch((const char *)(w + (size_t)(k + MT_AHEAD) * 32 + 16), _MM_HINT_T0);
            if (later) _mm_prefetch(later + (size_t)k * 64, _MM_HINT_T1);
            const float *b = B + (size_t)k * ldb;
            for (int i = 0; i < NP; i++) {
                __m512 x = _mm512_set1_ps(b[i]);
                acc[i][0] = _mm512_fmadd_ps(x, w0, acc[i][0]);
                acc[i][1] = _mm512_fmadd_ps(x, w1, acc[i][1]);
            }
        }
        for (int i = 0; i < NP; i++) {
            tot[i][0] = k0 == 0 ? acc[i][0] : _mm512_add_ps(acc[i][0], tot[i][0]);
            tot[i][1] = k0 == 0 ? acc[i][1] : _mm512_add_ps(acc[i][1], tot[i][1]);
        }
    }
    // Bias and clamp on the vectors (per lane: per row), then each half's 16 rows x NP columns transposed into rows.
    const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
    for (int h = 0; h < 2 && 16 * h < nm; h++) {
        int rows = nm - 16 * h < 16 ? nm - 16 * h : 16;
        __m512 bv = bias ? _mm512_maskz_loadu_ps((__mmask16)((1u << rows) - 1u), bias + 16 * h) : _mm512_setzero_ps();
        __m512 p[8];
        for (int i = 0; i < 8; i++) {
            p[i] = i < NP ? tot[i][h] : _mm512_setzero_ps();
            if (i < NP && bias) p[i] = _mm512_add_ps(p[i], bv);
            if (i < NP) p[i] = _mm512_min_ps(_mm512_max_ps(p[i], vlo), vhi);
        }
        sq_store_rows16(p, NP, rows, C + (size_t)16 * h * ldc, ldc);
    }
}

__attribute__((target("avx512f")))
void sq_gemm_mt(int M, int N, int K, const float *packed, const float *B, int ldb, float *C, int ldc, int m0, int m1,
                const float *bias, float lo, float hi) {
    if (m1 > M) m1 = M;
    for (int mb = m0; mb < m1; mb += 32) {
        int nm = m1 - mb < 32 ? m1 - mb : 32;
        const float *w = packed + (size_t)mb * K;
        const float *bb = bias ? bias + mb : NULL;
        float *c = C + (size_t)mb * ldc;
        int n = 0, tiles = (N + MT_PIX - 1) / MT_PIX;
        // The next block's weights, fetched into L2 in equal parts before this block's second and later tiles (a
        // block's first tile reads its weights from memory, the others find them in cache). In MobileNetV2 at 1 thread
        // (each node's best over three alternating profiles) 320 -> 1280 channels at 7x7 0.419 -> 0.387 ms, 160 -> 960
        // 0.195 -> 0.186; EfficientNet-Lite0's head 0.417 -> 0.392.
        const char *next = mb + 32 < m1 ? (const char *)(w + (size_t)32 * K) : NULL;
        size_t bytes = (size_t)K * 32 * sizeof(float), part = tiles > 1 ? (bytes / (tiles - 1) + 63) / 64 * 64 : 0;
        for (int t = 0; n + MT_PIX <= N; n += MT_PIX, t++) {
            if (next && t >= 1)
                for (size_t o = (size_t)(t - 1) * part; o < (size_t)t * part && o < bytes; o += 64) _mm_prefetch(next + o, _MM_HINT_T1);
            mt_tile(MT_PIX, K, w, B + n, ldb, c + n, ldc, nm, bb, lo, hi);
        }
        switch (N - n) {
        case 6: mt_tile(6, K, w, B + n, ldb, c + n, ldc, nm, bb, lo, hi); break;
        case 5: mt_tile(5, K, w, B + n, ldb, c + n, ldc, nm, bb, lo, hi); break;
        case 4: mt_tile(4, K, w, B + n, ldb, c + n, ldc, nm, bb, lo, hi); break;
        case 3: mt_tile(3, K, w, B + n, ldb, c + n, ldc, nm, bb, lo, hi); break;
        case 2: mt_tile(2, K, w, B + n, ldb, c + n, ldc, nm, bb, lo, hi); break;
        case 1: mt_tile(1, K, w, B + n, ldb, c + n, ldc, nm, bb, lo, hi); break;
        default: break;
        }
    }
}
