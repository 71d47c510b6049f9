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

// Both factorizations below take rows in blocks of LA_BLOCK: for each block, every earlier row is read once while it
// serves all the block's rows (not once per row: the factor of a 1280 x 1280 Hessian is 13 MB, past the caches).
// Every entry is the same expression, summed in the same order, as row by row.
#define LA_BLOCK 32

// Lower Cholesky factor of the symmetric positive definite n x n matrix a (row-major), into l (upper part zero):
// l[i][j] = (a[i][j] - dot(l[i], l[j], j)) / l[j][j], the diagonal the square root. Returns 0 when a is not positive
// definite.
CLONES
int sq_cholesky(const double *a, int n, double *l) {
    for (size_t i = 0; i < (size_t)n * n; i++) l[i] = 0;
    for (int i0 = 0; i0 < n; i0 += LA_BLOCK) {
        int i1 = i0 + LA_BLOCK < n ? i0 + LA_BLOCK : n;
        // Column j of the block's rows once row j is finished (inside the block: its diagonal, computed first).
        for (int j = 0; j < i1; j++) {
            const double *lj = l + (size_t)j * n;
            for (int i = j > i0 ? j : i0; i < i1; i++) {
                double *li = l + (size_t)i * n;
                double s = a[(size_t)i * n + j] - dot(li, lj, j);
                if (i == j) {
                    if (!(s > 0) || !isfinite(s)) return 0;
                    li[i] = sqrt(s);
                } else {
                    li[j] = s / lj[j];
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
        for (int p = 0; p < i1; p++) {
            double *mp = m + (size_t)p * n;
            if (p >= i0) {
                // Row p of the block has every earlier row's share: it is finished.
                double d = 1 / l[(size_t)p * n + p];
                for (int j = 0; j < p; j++) mp[j] = -mp[j] * d;
                mp[p] = d;
            }
            for (int i = p + 1 > i0 ? p + 1 : i0; i < i1; i++) {
                double lip = l[(size_t)i * n + p];
                if (lip == 0) continue;
                double *mi = m + (size_t)i * n;
                for (int j = 0; j <= p; j++) mi[j] += lip * mp[j];
            }
        }
    }
}
