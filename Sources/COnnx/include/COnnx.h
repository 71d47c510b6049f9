// COnnx: the protoc-c reader/writer for onnx.proto and one packing helper. No Swift API of its own.
#ifndef SWIFTQ_CONNX_H
#define SWIFTQ_CONNX_H
#include <stddef.h>
#include <stdint.h>
#include "onnx.pb-c.h"

/// Serializes `message` to the open file descriptor `fd` through a 1 MiB buffer.
/// Returns 0 on success, or the errno of the failed write.
int swiftq_pack_to_fd(const ProtobufCMessage *message, int fd);

/// Packs `message` into a newly malloc'd buffer of `*length` bytes (caller frees). NULL on allocation failure.
uint8_t *swiftq_pack_to_malloc(const ProtobufCMessage *message, size_t *length);

/// Upcasts, because Swift does not see the generated structs as ProtobufCMessage.
static inline const ProtobufCMessage *swiftq_message(const void *m) { return (const ProtobufCMessage *)m; }

#endif
