// Dense triangular linear algebra in double for GPTQ's inverse Hessian (k up to a few thousand): the dot products
// keep 8 partial sums so they vectorize without reassociating a single sum.
#include "CKernels.h"
#include "simd.h"
#include <math.h>

static double dot(const double *a, const double *b, int n) {
    double acc[8] = {0};
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int l = 0; l < 8; l++) acc[l] += a[i + l] * b[i + l];
    double s = 0;
    for (int l = 0; l < 8; l++) s += acc[l];
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

// Both factorizations below take rows in blocks of LA_BLOCK: a row finished earlier is read once per block, not once
// per row (the factor of a 1280 x 1280 Hessian is 13 MB, past the caches). Every entry is the same expression, summed
// in the same order, as row by row.
#define LA_BLOCK 32

// Lower Cholesky factor of the symmetric positive definite n x n matrix a (row-major), into l (upper part zero):
// l[i][j] = (a[i][j] - dot(l[i], l[j], j)) / l[j][j]. Returns 0 when a is not positive definite.
CLONES
int sq_cholesky(const double *a, int n, double *l) {
    for (size_t i = 0; i < (size_t)n * n; i++) l[i] = 0;
    for (int i0 = 0; i0 < n; i0 += LA_BLOCK) {
        int i1 = i0 + LA_BLOCK < n ? i0 + LA_BLOCK : n;
        // Columns left of the block: rows before it are finished.
        for (int j = 0; j < i0; j++) {
            const double *lj = l + (size_t)j * n;
            for (int i = i0; i < i1; i++) {
                double *li = l + (size_t)i * n;
                li[j] = (a[(size_t)i * n + j] - dot(li, lj, j)) / lj[j];
            }
        }
        for (int i = i0; i < i1; i++) {
            double *li = l + (size_t)i * n;
            for (int j = i0; j <= i; j++) {
                double s = a[(size_t)i * n + j] - dot(li, l + (size_t)j * n, j);
                if (i == j) {
                    if (!(s > 0) || !isfinite(s)) return 0;
                    li[i] = sqrt(s);
                } else {
                    li[j] = s / l[(size_t)j * n + j];
                }
            }
        }
    }
    return 1;
}

// m = L^-1 for the lower triangular l with a positive diagonal: row i is -(sum over p < i of l[i][p] m[p]) / l[i][i],
// and 1 / l[i][i] on the diagonal (the sum taken in order of p).
CLONES
void sq_lower_inverse(const double *l, int n, double *m) {
    for (size_t i = 0; i < (size_t)n * n; i++) m[i] = 0;
    for (int i0 = 0; i0 < n; i0 += LA_BLOCK) {
        int i1 = i0 + LA_BLOCK < n ? i0 + LA_BLOCK : n;
        for (int p = 0; p < i0; p++) {
            const double *mp = m + (size_t)p * n;
            for (int i = i0; i < i1; i++) {
                double lip = l[(size_t)i * n + p];
                if (lip == 0) continue;
                double *mi = m + (size_t)i * n;
                for (int j = 0; j <= p; j++) mi[j] += lip * mp[j];
            }
        }
        for (int i = i0; i < i1; i++) {
            double *mi = m + (size_t)i * n;
            for (int p = i0; p < i; p++) {
                double lip = l[(size_t)i * n + p];
                if (lip == 0) continue;
                const double *mp = m + (size_t)p * n;
                for (int j = 0; j <= p; j++) mi[j] += lip * mp[j];
            }
            double d = 1 / l[(size_t)i * n + i];
            for (int j = 0; j < i; j++) mi[j] = -mi[j] * d;
            mi[i] = d;
        }
    }
}
