// Shared by the kernel files (not part of the public header): grow-only scratch kept per thread, so that big layers
// do not map and fault in fresh pages on every call. sq_release_thread_buffers frees every slot, and so does the end
// of the thread (a pthread key's destructor).
#ifndef SWIFTQ_SCRATCH_H
#define SWIFTQ_SCRATCH_H

#include <stddef.h>

enum { SQ_SCRATCH_PACK_B, SQ_SCRATCH_DEPTHWISE, SQ_SCRATCH_QGEMM, SQ_SCRATCH_POOL, SQ_SCRATCH_CONV, SQ_SCRATCH_WINOGRAD, SQ_SCRATCH_SLOTS };

/// At least `bytes` bytes, 64-byte aligned, owned by the calling thread; the contents are not kept when it grows.
/// Aborts when the memory cannot be had (the sizes come from shapes the graph already checked).
void *sq_thread_scratch(int slot, size_t bytes);

#endif
