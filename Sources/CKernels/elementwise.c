// Elementwise binary ops with numpy broadcasting reduced to two strides (see Binary.swift's coalesce).
#include "CKernels.h"
#include "simd.h"

// Elementwise a (op) b over n values; each operand steps by 1 or stays put (stride 0: broadcast).
#define BINARY_LOOP(EXPR)                                                                                   \
    if (sa == 1 && sb == 1) for (int i = 0; i < n; i++) { float x = a[i], z = b[i]; y[i] = EXPR; }             \
    else if (sa == 1) { float z = b[0]; for (int i = 0; i < n; i++) { float x = a[i]; y[i] = EXPR; } }         \
    else if (sb == 1) { float x = a[0]; for (int i = 0; i < n; i++) { float z = b[i]; y[i] = EXPR; } }         \
    else for (int i = 0; i < n; i++) { float x = a[(size_t)i * sa], z = b[(size_t)i * sb]; y[i] = EXPR; }

CLONES
void sq_binary(int op, const float *a, int sa, const float *b, int sb, float *y, int n) {
    switch (op) {
    case 0: BINARY_LOOP(x + z) break;
    case 1: BINARY_LOOP(x - z) break;
    case 2: BINARY_LOOP(x * z) break;
    case 3: BINARY_LOOP(x / z) break;
    default: BINARY_LOOP(x < 0 ? x * z : x) break;
    }
}
