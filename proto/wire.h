/* edgetrain wire framing.
 *
 * Every message is a frame:
 *
 *   offset size  field
 *   0      4     magic        "ETRN" (0x4554524e), big endian
 *   4      1     version      ET_WIRE_VERSION
 *   5      1     type         enum et_msg_type
 *   6      2     flags        0 (reserved; nonzero is rejected)
 *   8      4     meta_len     length of the packed protobuf message
 *   12     4     payload_len  length of the raw payload after it
 *   16     ...   meta, then payload
 *
 * The protobuf ("meta") describes the payload; a large tensor is the payload
 * itself, so the encoder can hand the tensor's memory to the socket buffer by
 * reference (no copy) and the decoder can move it from the socket buffer
 * straight into the receiver's tensor (one copy).
 *
 * Limits are checked on the header alone, before anything is allocated.
 */
#ifndef ET_WIRE_H
#define ET_WIRE_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgetrain.pb-c.h"

struct evbuffer;

#define ET_WIRE_MAGIC       0x4554524eu   /* "ETRN" */
#define ET_WIRE_VERSION     1
#define ET_WIRE_HEADER_SIZE 16
#define ET_WIRE_MAX_META    (1u << 20)    /* 1 MiB of protobuf */
#define ET_WIRE_MAX_PAYLOAD (64u << 20)   /* 64 MiB of tensor */

/* Message types. The meta of a frame of type T is the message named in the
 * comment; types without a payload must have payload_len 0. */
enum et_msg_type {
    ET_MSG_CHALLENGE = 1,    /* Challenge */
    ET_MSG_HELLO = 2,        /* Hello */
    ET_MSG_WELCOME = 3,      /* Welcome */
    ET_MSG_HEARTBEAT = 4,    /* Heartbeat */
    ET_MSG_ASSIGNMENT = 5,   /* Assignment */
    ET_MSG_METRICS = 6,      /* Metrics */
    ET_MSG_CHECKPOINT = 7,   /* Checkpoint, payload = checkpoint file */
    ET_MSG_ERROR = 8,        /* Error */
    ET_MSG_STREAM_HELLO = 9, /* StreamHello */
    ET_MSG_CHUNK = 10,       /* Chunk, payload = tensor */
    ET_MSG_CREDIT = 11,      /* Credit */
    ET_MSG_INFER_REQUEST = 12, /* InferRequest, payload = f32 images */
    ET_MSG_INFER_REPLY = 13, /* InferReply */
    ET_MSG_CHECKPOINT_REQUEST = 14, /* Checkpoint (fields select; no payload) */
    ET__MSG_MAX
};

/* Result of a decode step. 0 is success; ET_WIRE_AGAIN asks for more bytes;
 * everything else is a protocol error after which the connection should be
 * closed (the bytes cannot be resynchronised). */
enum et_wire_err {
    ET_WIRE_OK = 0,
    ET_WIRE_AGAIN,           /* incomplete frame: wait for more input */
    ET_WIRE_BAD_MAGIC,
    ET_WIRE_BAD_VERSION,
    ET_WIRE_BAD_TYPE,
    ET_WIRE_BAD_FLAGS,
    ET_WIRE_TOO_LARGE,       /* meta or payload over the limit */
    ET_WIRE_TRUNCATED,       /* input ended inside a frame */
    ET_WIRE_BAD_PROTO,       /* meta does not unpack as its type's message */
    ET_WIRE_BAD_PAYLOAD,     /* payload present where none is allowed */
    ET_WIRE_BAD_SHAPE,       /* tensor shape/dtype/labels disagree with payload */
    ET_WIRE_NOMEM,
    ET__WIRE_ERR_MAX
};

struct et_frame_header {
    uint8_t version;
    uint8_t type;            /* enum et_msg_type */
    uint16_t flags;
    uint32_t meta_len;
    uint32_t payload_len;
};

/* A decoded frame: the unpacked message and where its payload is. */
struct et_frame {
    struct et_frame_header hdr;
    ProtobufCMessage *msg;   /* owned; free with et_frame_clear() */
    const uint8_t *payload;  /* et_frame_decode_buf(): points into the input */
};

/* Returns a short constant description of 'err'. */
const char *et_wire_strerror(int err);

/* Returns the name of message type 'type' ("chunk"), or "unknown". */
const char *et_msg_type_name(int type);

/* Returns the protobuf-c descriptor of the meta of 'type', or NULL. */
const ProtobufCMessageDescriptor *et_msg_descriptor(int type);

/* Parses and validates a 16-byte header at 'p'. Checks magic, version,
 * type, flags and both limits; does not look past the header. */
int et_frame_header_parse(const uint8_t p[ET_WIRE_HEADER_SIZE],
                          struct et_frame_header *hdr);

/* Writes a header for ('type', 'meta_len', 'payload_len') into 'p'. */
void et_frame_header_write(uint8_t p[ET_WIRE_HEADER_SIZE], int type,
                           uint32_t meta_len, uint32_t payload_len);

/* Checks the semantic rules a message must satisfy beyond unpacking: for a
 * Chunk, that shape has 4 positive dims, dtype is known, labels match N and
 * payload_len equals the tensor size; for payload-free types, that
 * payload_len is 0. Returns 0 or an et_wire_err. */
int et_frame_validate(const struct et_frame_header *hdr,
                      const ProtobufCMessage *msg);

/* Decodes one frame from a contiguous buffer. On success fills 'f', stores
 * the frame's total size in '*consumed' and returns 0; f->payload points
 * into 'buf'. If 'buf' may grow (a stream), an incomplete frame returns
 * ET_WIRE_AGAIN; if 'at_eof' is true it returns ET_WIRE_TRUNCATED. */
int et_frame_decode_buf(const uint8_t *buf, size_t len, bool at_eof,
                        struct et_frame *f, size_t *consumed);

/* Incremental decode from a libevent evbuffer (a connection's input).
 *
 * et_frame_decode_evbuffer() waits until the header and the meta have
 * arrived, then unpacks and validates the meta and drains header and meta
 * from 'in'. The payload stays in 'in': the caller waits until
 * evbuffer_get_length(in) >= f->hdr.payload_len and moves it with
 * et_frame_take_payload() into its own buffer (the one copy) or drains it.
 * Returns 0, ET_WIRE_AGAIN (nothing consumed) or an error. */
int et_frame_decode_evbuffer(struct evbuffer *in, struct et_frame *f);

/* Moves 'len' payload bytes from 'in' to 'dst'. Returns 0 or
 * ET_WIRE_AGAIN if fewer than 'len' bytes are buffered. */
int et_frame_take_payload(struct evbuffer *in, void *dst, size_t len);

/* Frees the message held by 'f' and zeroes it. Accepts a zeroed frame. */
void et_frame_clear(struct et_frame *f);

/* Encodes 'msg' as a frame of 'type' with an optional payload onto 'out'.
 *
 * The header and meta are copied into 'out' (they are small). The payload
 * is added by reference when 'cleanup' is non-NULL: 'out' then points at
 * 'payload' until the bytes are written, and calls cleanup(payload, len,
 * cleanup_arg) when done with it, so the tensor is never copied in user
 * space. With 'cleanup' NULL the payload is copied into 'out' at once.
 * Returns 0 or ET_WIRE_TOO_LARGE/ET_WIRE_NOMEM. */
int et_frame_encode_evbuffer(struct evbuffer *out, int type,
                             const ProtobufCMessage *msg,
                             const void *payload, size_t payload_len,
                             void (*cleanup)(const void *, size_t, void *),
                             void *cleanup_arg);

/* Encodes into a caller buffer of 'cap' bytes (header + meta only; the
 * payload, if any, is for the caller to write after it). Returns the
 * number of bytes written, or 0 if 'cap' is too small or a limit is
 * exceeded. */
size_t et_frame_encode_buf(uint8_t *buf, size_t cap, int type,
                           const ProtobufCMessage *msg, uint32_t payload_len);

/* Returns the size in bytes of one element of 'dtype', or 0 if unknown. */
size_t et_dtype_size(int dtype);

#endif /* ET_WIRE_H */
