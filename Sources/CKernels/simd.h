// Shared by the kernel files (not part of the public header): the instruction-set clones a hot loop is
// compiled for, and a 16-float vector (one zmm with AVX-512, two ymm with AVX2, four xmm otherwise).
#ifndef SWIFTQ_SIMD_H
#define SWIFTQ_SIMD_H

#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

typedef float v16 __attribute__((ext_vector_type(16)));

#endif
