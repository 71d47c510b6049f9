#include "COnnx.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    ProtobufCBuffer base;
    int fd;
    int error;
    size_t used;
    uint8_t data[1 << 20];
} FileBuffer;

static void flush_buffer(FileBuffer *b) {
    size_t off = 0;
    while (b->error == 0 && off < b->used) {
        ssize_t n = write(b->fd, b->data + off, b->used - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            b->error = errno ? errno : EIO;
        } else {
            off += (size_t)n;
        }
    }
    b->used = 0;
}

static void append(ProtobufCBuffer *base, size_t len, const uint8_t *data) {
    FileBuffer *b = (FileBuffer *)base;
    if (b->error) return;
    if (len > sizeof(b->data) - b->used) {
        flush_buffer(b);
        if (len > sizeof(b->data)) {
            size_t off = 0;
            while (b->error == 0 && off < len) {
                ssize_t n = write(b->fd, data + off, len - off);
                if (n < 0) {
                    if (errno == EINTR) continue;
                    b->error = errno ? errno : EIO;
                } else {
                    off += (size_t)n;
                }
            }
            return;
        }
    }
    if (len == 0) return;  // protobuf-c appends empty byte fields with a NULL pointer: memcpy must not see it
    memcpy(b->data + b->used, data, len);
    b->used += len;
}

int swiftq_pack_to_fd(const ProtobufCMessage *message, int fd) {
    FileBuffer *b = malloc(sizeof(FileBuffer));
    if (!b) return ENOMEM;
    b->base.append = append;
    b->fd = fd;
    b->error = 0;
    b->used = 0;
    protobuf_c_message_pack_to_buffer(message, &b->base);
    flush_buffer(b);
    int err = b->error;
    free(b);
    return err;
}

uint8_t *swiftq_pack_to_malloc(const ProtobufCMessage *message, size_t *length) {
    size_t n = protobuf_c_message_get_packed_size(message);
    uint8_t *out = malloc(n ? n : 1);
    if (!out) return NULL;
    *length = protobuf_c_message_pack(message, out);
    return out;
}
