// Dense symmetric linear algebra in double for GPTQ's inverse Hessian (k up to a few thousand): the dot products
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

// Lower Cholesky factor of the symmetric positive definite n x n matrix a (row-major), into l (upper part zero).
// Returns 0 when a is not positive definite.
CLONES
int sq_cholesky(const double *a, int n, double *l) {
    for (int i = 0; i < n * n; i++) l[i] = 0;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j <= i; j++) {
            double s = a[(size_t)i * n + j] - dot(l + (size_t)i * n, l + (size_t)j * n, j);
            if (i == j) {
                if (!(s > 0) || !isfinite(s)) return 0;
                l[(size_t)i * n + i] = sqrt(s);
            } else {
                l[(size_t)i * n + j] = s / l[(size_t)j * n + j];
            }
        }
    }
    return 1;
}

// inv = (L Lᵀ)⁻¹ for the lower Cholesky factor l: M = L⁻¹ row by row (contiguous rows), then Mᵀ M.
CLONES
void sq_cholesky_inverse(const double *l, int n, double *m, double *inv) {
    for (int i = 0; i < n * n; i++) { m[i] = 0; inv[i] = 0; }
    for (int i = 0; i < n; i++) {
        double *mi = m + (size_t)i * n;
        for (int p = 0; p < i; p++) {
            double lip = l[(size_t)i * n + p];
            if (lip == 0) continue;
            const double *mp = m + (size_t)p * n;
            for (int j = 0; j <= p; j++) mi[j] += lip * mp[j];
        }
        double d = 1 / l[(size_t)i * n + i];
        for (int j = 0; j < i; j++) mi[j] = -mi[j] * d;
        mi[i] = d;
    }
    for (int p = 0; p < n; p++) {
        const double *mp = m + (size_t)p * n;
        for (int i = 0; i <= p; i++) {
            double v = mp[i];
            if (v == 0) continue;
            double *row = inv + (size_t)i * n;
            for (int j = 0; j <= i; j++) row[j] += v * mp[j];
        }
    }
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++) inv[(size_t)j * n + i] = inv[(size_t)i * n + j];
}
