// The machine's float multiply-add throughput, measured: independent chains of 16-wide multiply-adds, enough
// of them to cover the latency of every FMA unit, in the instruction set the kernels' clones pick. The operands
// come from the caller so that nothing can be computed ahead of time.
#include "CKernels.h"
#include "simd.h"

CLONES float sq_fma_chains(long rounds, float seed, float m, float c) {
    v16 a[12];
    for (int i = 0; i < 12; i++) a[i] = (v16)(seed + 0.001f * (float)i);
    const v16 mv = (v16)m, cv = (v16)c;
    for (long r = 0; r < rounds; r++) {
#pragma clang loop unroll(full)
        for (int i = 0; i < 12; i++) a[i] = a[i] * mv + cv;   // contracted to an FMA where the clone has one
    }
    v16 s = a[0];
    for (int i = 1; i < 12; i++) s += a[i];
    float t = 0;
    for (int i = 0; i < 16; i++) t += s[i];
    return t;
}
