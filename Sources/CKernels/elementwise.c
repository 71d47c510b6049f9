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

// Elementwise activations: 0 Relu, 1 Clip to [a, b], 2 HardSigmoid max(0, min(1, a x + b)), 3 HardSwish
// x max(0, min(1, x / 6 + 0.5)), 4 LeakyRelu (slope a below 0). The same expressions as the reference loops.
CLONES
void sq_unary(int op, const float *x, float *y, int n, float a, float b) {
#pragma clang fp contract(off)  // a x + b rounded twice, as the reference computes it (no fused multiply-add)
    switch (op) {
    case 0: for (int i = 0; i < n; i++) { float v = x[i]; y[i] = v < 0.0f ? 0.0f : v; } break;
    case 1: for (int i = 0; i < n; i++) { float v = x[i]; v = v < a ? a : v; y[i] = v > b ? b : v; } break;
    case 2: for (int i = 0; i < n; i++) { float v = a * x[i] + b; v = v < 1.0f ? v : 1.0f; y[i] = v > 0.0f ? v : 0.0f; } break;
    case 3: for (int i = 0; i < n; i++) { float v = x[i], t = v / 6.0f + 0.5f; t = t < 1.0f ? t : 1.0f; y[i] = v * (t > 0.0f ? t : 0.0f); } break;
    default: for (int i = 0; i < n; i++) { float v = x[i]; y[i] = v < 0.0f ? v * a : v; } break;
    }
}
