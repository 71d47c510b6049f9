// Shared by the AVX-512 kernel files (not part of the public header): storing a tile held with 16 rows in the lanes
// (the products with vectors along the rows, the 3x3 convolution with output channels in the lanes) as rows.
#ifndef SWIFTQ_STORE_ROWS_H
#define SWIFTQ_STORE_ROWS_H

#include <immintrin.h>
#include <stddef.h>

// p[i] holds column i (i < 8) of 16 rows, a row per lane: rows r < `rows` get their np columns at C + r·ldc, each
// by a masked store of its 8 columns (the columns after np belong to the next tile, maybe another thread's). A
// transpose in registers: unpack and shuffle gather each row's columns 0-3 and 4-7 in two vectors, one permute
// joins them. Replaced a scalar loop over every value that took about 10% of a 7x7 layer's tile.
static inline __attribute__((always_inline, target("avx512f"))) void sq_store_rows16(const __m512 p[8], int np, int rows, float *C,
                                                                                     size_t ldc) {
    __m512 a0 = _mm512_unpacklo_ps(p[0], p[1]), a1 = _mm512_unpackhi_ps(p[0], p[1]);
    __m512 a2 = _mm512_unpacklo_ps(p[2], p[3]), a3 = _mm512_unpackhi_ps(p[2], p[3]);
    __m512 a4 = _mm512_unpacklo_ps(p[4], p[5]), a5 = _mm512_unpackhi_ps(p[4], p[5]);
    __m512 a6 = _mm512_unpacklo_ps(p[6], p[7]), a7 = _mm512_unpackhi_ps(p[6], p[7]);
    // u[q] (q < 4), 128-bit lane l: columns 0-3 of row 4l + q; u[4 + q]: columns 4-7 of the same row.
    __m512 u[8] = {
        _mm512_shuffle_ps(a0, a2, 0x44), _mm512_shuffle_ps(a0, a2, 0xEE), _mm512_shuffle_ps(a1, a3, 0x44), _mm512_shuffle_ps(a1, a3, 0xEE),
        _mm512_shuffle_ps(a4, a6, 0x44), _mm512_shuffle_ps(a4, a6, 0xEE), _mm512_shuffle_ps(a5, a7, 0x44), _mm512_shuffle_ps(a5, a7, 0xEE),
    };
    __mmask16 m = (__mmask16)((1u << np) - 1u);
    for (int l = 0; l < 4; l++) {
        // Row 4l + q: lane l of u[q] then lane l of u[4 + q].
        const __m512i join = _mm512_setr_epi32(4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3, 16 + 4 * l, 17 + 4 * l, 18 + 4 * l, 19 + 4 * l,
                                               0, 0, 0, 0, 0, 0, 0, 0);
        for (int q = 0; q < 4; q++)
            if (4 * l + q < rows) _mm512_mask_storeu_ps(C + (size_t)(4 * l + q) * ldc, m, _mm512_permutex2var_ps(u[q], join, u[4 + q]));
    }
}

#endif
