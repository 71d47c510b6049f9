// The machine's float multiply-add throughput, measured: independent chains of multiply-adds in the vector width
// the kernels use at sq_cpu_level(), twelve of them (enough to cover the latency of every FMA unit, few enough to
// stay in registers: 12 zmm with AVX-512, 12 ymm with AVX2; 24 ymm would spill and measure the stack instead).
// The operands come from the caller so that nothing can be computed ahead of time. Every level does 12 x 16
// multiply-adds a round.
#include "CKernels.h"
#include "simd.h"

typedef float v8 __attribute__((ext_vector_type(8)));

#define CHAINS(V, N, PASSES)                                                                                           \
    V a[12];                                                                                                          \
    for (int i = 0; i < 12; i++) a[i] = (V)(seed + 0.001f * (float)i);                                                \
    const V mv = (V)m, cv = (V)c;                                                                                     \
    for (long r = 0; r < rounds; r++) {                                                                               \
        _Pragma("clang loop unroll(full)") for (int p = 0; p < PASSES; p++)                                           \
            _Pragma("clang loop unroll(full)") for (int i = 0; i < 12; i++) a[i] = a[i] * mv + cv; /* an FMA */       \
    }                                                                                                                 \
    V s = a[0];                                                                                                       \
    for (int i = 1; i < 12; i++) s += a[i];                                                                           \
    float t = 0;                                                                                                      \
    for (int i = 0; i < N; i++) t += s[i];                                                                            \
    return t;

__attribute__((target("avx512f"))) static float chains_avx512(long rounds, float seed, float m, float c) { CHAINS(v16, 16, 1) }
__attribute__((target("avx2,fma"))) static float chains_avx2(long rounds, float seed, float m, float c) { CHAINS(v8, 8, 2) }
static float chains_portable(long rounds, float seed, float m, float c) { CHAINS(v16, 16, 1) }

float sq_fma_chains(long rounds, float seed, float m, float c) {
    switch (sq_cpu_level()) {
    case 3: return chains_avx512(rounds, seed, m, c);
    case 2: return chains_avx2(rounds, seed, m, c);
    default: return chains_portable(rounds, seed, m, c);
    }
}
