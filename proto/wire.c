/* edgetrain wire framing: see wire.h for the frame layout. */
#include "wire.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

static const char *const err_names[ET__WIRE_ERR_MAX] = {
    [ET_WIRE_OK] = "ok",
    [ET_WIRE_AGAIN] = "incomplete frame",
    [ET_WIRE_BAD_MAGIC] = "bad magic (not an edgetrain frame)",
    [ET_WIRE_BAD_VERSION] = "unsupported protocol version",
    [ET_WIRE_BAD_TYPE] = "unknown message type",
    [ET_WIRE_BAD_FLAGS] = "reserved flags set",
    [ET_WIRE_TOO_LARGE] = "frame over the size limit",
    [ET_WIRE_TRUNCATED] = "input ended inside a frame",
    [ET_WIRE_BAD_PROTO] = "message does not unpack",
    [ET_WIRE_BAD_PAYLOAD] = "unexpected payload",
    [ET_WIRE_BAD_SHAPE] = "tensor shape does not match payload",
    [ET_WIRE_NOMEM] = "out of memory",
};

const char *
et_wire_strerror(int err)
{
    return err >= 0 && err < ET__WIRE_ERR_MAX && err_names[err]
           ? err_names[err] : "unknown wire error";
}

/* Per type: name, meta descriptor, and whether a payload is allowed. */
struct msg_info {
    const char *name;
    const ProtobufCMessageDescriptor *desc;
    bool payload;
};

static const struct msg_info msg_infos[ET__MSG_MAX] = {
    [ET_MSG_CHALLENGE] = {"challenge", &edgetrain__challenge__descriptor, false},
    [ET_MSG_HELLO] = {"hello", &edgetrain__hello__descriptor, false},
    [ET_MSG_WELCOME] = {"welcome", &edgetrain__welcome__descriptor, false},
    [ET_MSG_HEARTBEAT] = {"heartbeat", &edgetrain__heartbeat__descriptor, false},
    [ET_MSG_ASSIGNMENT] = {"assignment", &edgetrain__assignment__descriptor, false},
    [ET_MSG_METRICS] = {"metrics", &edgetrain__metrics__descriptor, false},
    [ET_MSG_CHECKPOINT] = {"checkpoint", &edgetrain__checkpoint__descriptor, true},
    [ET_MSG_ERROR] = {"error", &edgetrain__error__descriptor, false},
    [ET_MSG_STREAM_HELLO] = {"stream-hello", &edgetrain__stream_hello__descriptor, false},
    [ET_MSG_CHUNK] = {"chunk", &edgetrain__chunk__descriptor, true},
    [ET_MSG_CREDIT] = {"credit", &edgetrain__credit__descriptor, false},
    [ET_MSG_INFER_REQUEST] = {"infer-request", &edgetrain__infer_request__descriptor, true},
    [ET_MSG_INFER_REPLY] = {"infer-reply", &edgetrain__infer_reply__descriptor, false},
    [ET_MSG_CHECKPOINT_REQUEST] = {"checkpoint-request", &edgetrain__checkpoint__descriptor, false},
};

static const struct msg_info *
msg_info(int type)
{
    return type > 0 && type < ET__MSG_MAX && msg_infos[type].desc
           ? &msg_infos[type] : NULL;
}

const char *
et_msg_type_name(int type)
{
    const struct msg_info *mi = msg_info(type);
    return mi ? mi->name : "unknown";
}

const ProtobufCMessageDescriptor *
et_msg_descriptor(int type)
{
    const struct msg_info *mi = msg_info(type);
    return mi ? mi->desc : NULL;
}

size_t
et_dtype_size(int dtype)
{
    switch (dtype) {
    case EDGETRAIN__DTYPE__DTYPE_F32: return 4;
    case EDGETRAIN__DTYPE__DTYPE_F16: return 2;
    case EDGETRAIN__DTYPE__DTYPE_INT8: return 1;
    default: return 0;
    }
}

static uint32_t
get_be32(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return ntohl(v);
}

static void
put_be32(uint8_t *p, uint32_t v)
{
    v = htonl(v);
    memcpy(p, &v, 4);
}

int
et_frame_header_parse(const uint8_t p[ET_WIRE_HEADER_SIZE],
                      struct et_frame_header *hdr)
{
    if (get_be32(p) != ET_WIRE_MAGIC) {
        return ET_WIRE_BAD_MAGIC;
    }
    hdr->version = p[4];
    hdr->type = p[5];
    hdr->flags = (uint16_t) (p[6] << 8 | p[7]);
    hdr->meta_len = get_be32(p + 8);
    hdr->payload_len = get_be32(p + 12);
    if (hdr->version != ET_WIRE_VERSION) {
        return ET_WIRE_BAD_VERSION;
    }
    const struct msg_info *mi = msg_info(hdr->type);
    if (!mi) {
        return ET_WIRE_BAD_TYPE;
    }
    if (hdr->flags) {
        return ET_WIRE_BAD_FLAGS;
    }
    if (hdr->meta_len > ET_WIRE_MAX_META
        || hdr->payload_len > ET_WIRE_MAX_PAYLOAD) {
        return ET_WIRE_TOO_LARGE;
    }
    if (hdr->payload_len && !mi->payload) {
        return ET_WIRE_BAD_PAYLOAD;
    }
    return 0;
}

void
et_frame_header_write(uint8_t p[ET_WIRE_HEADER_SIZE], int type,
                      uint32_t meta_len, uint32_t payload_len)
{
    put_be32(p, ET_WIRE_MAGIC);
    p[4] = ET_WIRE_VERSION;
    p[5] = (uint8_t) type;
    p[6] = p[7] = 0;
    put_be32(p + 8, meta_len);
    put_be32(p + 12, payload_len);
}

/* Checks a tensor description (shape, dtype) against 'payload_len'. */
static int
check_tensor(size_t n_shape, const uint32_t *shape, int dtype,
             uint32_t payload_len)
{
    size_t esize = et_dtype_size(dtype);
    if (n_shape != 4 || !esize) {
        return ET_WIRE_BAD_SHAPE;
    }
    uint64_t bytes = esize;
    for (size_t i = 0; i < 4; i++) {
        if (shape[i] == 0 || shape[i] > ET_WIRE_MAX_PAYLOAD) {
            return ET_WIRE_BAD_SHAPE;
        }
        bytes *= shape[i];
        if (bytes > ET_WIRE_MAX_PAYLOAD) {
            return ET_WIRE_BAD_SHAPE;
        }
    }
    return bytes == payload_len ? 0 : ET_WIRE_BAD_SHAPE;
}

int
et_frame_validate(const struct et_frame_header *hdr,
                  const ProtobufCMessage *msg)
{
    const struct msg_info *mi = msg_info(hdr->type);
    if (!mi || msg->descriptor != mi->desc) {
        return ET_WIRE_BAD_TYPE;
    }
    if (hdr->payload_len && !mi->payload) {
        return ET_WIRE_BAD_PAYLOAD;
    }
    switch (hdr->type) {
    case ET_MSG_CHUNK: {
        const Edgetrain__Chunk *c = (const Edgetrain__Chunk *) msg;
        int err = check_tensor(c->n_shape, c->shape, c->dtype,
                               hdr->payload_len);
        if (err) {
            return err;
        }
        if (c->n_labels != c->shape[0]
            || (c->dtype == EDGETRAIN__DTYPE__DTYPE_INT8
                && !(c->scale > 0.0f && c->scale < 1e30f))
            || c->micro_count == 0 || c->micro >= c->micro_count) {
            return ET_WIRE_BAD_SHAPE;
        }
        return 0;
    }
    case ET_MSG_INFER_REQUEST: {
        const Edgetrain__InferRequest *r
            = (const Edgetrain__InferRequest *) msg;
        return check_tensor(r->n_shape, r->shape, EDGETRAIN__DTYPE__DTYPE_F32,
                            hdr->payload_len);
    }
    default:
        return 0;
    }
}

/* Unpacks 'meta_len' bytes at 'meta' as the message of hdr->type and
 * validates it. On success stores it in 'f'. */
static int
unpack_meta(const struct et_frame_header *hdr, const uint8_t *meta,
            struct et_frame *f)
{
    const ProtobufCMessageDescriptor *desc = et_msg_descriptor(hdr->type);
    ProtobufCMessage *msg = protobuf_c_message_unpack(desc, NULL,
                                                      hdr->meta_len, meta);
    if (!msg) {
        return ET_WIRE_BAD_PROTO;
    }
    int err = et_frame_validate(hdr, msg);
    if (err) {
        protobuf_c_message_free_unpacked(msg, NULL);
        return err;
    }
    f->hdr = *hdr;
    f->msg = msg;
    f->payload = NULL;
    return 0;
}

int
et_frame_decode_buf(const uint8_t *buf, size_t len, bool at_eof,
                    struct et_frame *f, size_t *consumed)
{
    struct et_frame_header hdr;
    memset(f, 0, sizeof *f);
    *consumed = 0;
    if (len < ET_WIRE_HEADER_SIZE) {
        /* A bad magic is reported as soon as it can be seen. */
        if (len >= 4 && get_be32(buf) != ET_WIRE_MAGIC) {
            return ET_WIRE_BAD_MAGIC;
        }
        return at_eof && len ? ET_WIRE_TRUNCATED
               : at_eof ? ET_WIRE_OK : ET_WIRE_AGAIN;
    }
    int err = et_frame_header_parse(buf, &hdr);
    if (err) {
        return err;
    }
    size_t total = ET_WIRE_HEADER_SIZE + (size_t) hdr.meta_len
                   + hdr.payload_len;
    if (len < total) {
        return at_eof ? ET_WIRE_TRUNCATED : ET_WIRE_AGAIN;
    }
    err = unpack_meta(&hdr, buf + ET_WIRE_HEADER_SIZE, f);
    if (err) {
        return err;
    }
    f->payload = buf + ET_WIRE_HEADER_SIZE + hdr.meta_len;
    *consumed = total;
    return 0;
}

int
et_frame_decode_evbuffer(struct evbuffer *in, struct et_frame *f)
{
    uint8_t h[ET_WIRE_HEADER_SIZE];
    struct et_frame_header hdr;

    memset(f, 0, sizeof *f);
    size_t have = evbuffer_get_length(in);
    if (have < ET_WIRE_HEADER_SIZE) {
        if (have >= 4 && evbuffer_copyout(in, h, 4) == 4
            && get_be32(h) != ET_WIRE_MAGIC) {
            return ET_WIRE_BAD_MAGIC;
        }
        return ET_WIRE_AGAIN;
    }
    evbuffer_copyout(in, h, sizeof h);
    int err = et_frame_header_parse(h, &hdr);
    if (err) {
        return err;
    }
    if (have < ET_WIRE_HEADER_SIZE + (size_t) hdr.meta_len) {
        return ET_WIRE_AGAIN;
    }
    /* The meta is small (<= 1 MiB); make it contiguous in place. */
    const uint8_t *p = evbuffer_pullup(in, ET_WIRE_HEADER_SIZE
                                           + (ssize_t) hdr.meta_len);
    if (!p) {
        return ET_WIRE_NOMEM;
    }
    err = unpack_meta(&hdr, p + ET_WIRE_HEADER_SIZE, f);
    if (err) {
        return err;
    }
    evbuffer_drain(in, ET_WIRE_HEADER_SIZE + (size_t) hdr.meta_len);
    return 0;
}

int
et_frame_take_payload(struct evbuffer *in, void *dst, size_t len)
{
    if (evbuffer_get_length(in) < len) {
        return ET_WIRE_AGAIN;
    }
    if (len && evbuffer_remove(in, dst, len) != (int) len) {
        return ET_WIRE_TRUNCATED;
    }
    return 0;
}

void
et_frame_clear(struct et_frame *f)
{
    if (f && f->msg) {
        protobuf_c_message_free_unpacked(f->msg, NULL);
    }
    if (f) {
        memset(f, 0, sizeof *f);
    }
}

int
et_frame_encode_evbuffer(struct evbuffer *out, int type,
                         const ProtobufCMessage *msg,
                         const void *payload, size_t payload_len,
                         void (*cleanup)(const void *, size_t, void *),
                         void *cleanup_arg)
{
    size_t meta_len = protobuf_c_message_get_packed_size(msg);
    if (meta_len > ET_WIRE_MAX_META || payload_len > ET_WIRE_MAX_PAYLOAD) {
        return ET_WIRE_TOO_LARGE;
    }
    if (!msg_info(type) || msg->descriptor != msg_info(type)->desc) {
        return ET_WIRE_BAD_TYPE;
    }

    /* Header and meta go into one reserved region, packed in place. */
    struct evbuffer_iovec v;
    size_t need = ET_WIRE_HEADER_SIZE + meta_len;
    if (evbuffer_reserve_space(out, (ssize_t) need, &v, 1) < 1) {
        return ET_WIRE_NOMEM;
    }
    uint8_t *p = v.iov_base;
    et_frame_header_write(p, type, (uint32_t) meta_len, (uint32_t) payload_len);
    protobuf_c_message_pack(msg, p + ET_WIRE_HEADER_SIZE);
    v.iov_len = need;
    if (evbuffer_commit_space(out, &v, 1)) {
        return ET_WIRE_NOMEM;
    }
    if (payload_len) {
        int rc = cleanup
                 ? evbuffer_add_reference(out, payload, payload_len,
                                          cleanup, cleanup_arg)
                 : evbuffer_add(out, payload, payload_len);
        if (rc) {
            return ET_WIRE_NOMEM;
        }
    }
    return 0;
}

size_t
et_frame_encode_buf(uint8_t *buf, size_t cap, int type,
                    const ProtobufCMessage *msg, uint32_t payload_len)
{
    size_t meta_len = protobuf_c_message_get_packed_size(msg);
    if (!msg_info(type) || meta_len > ET_WIRE_MAX_META
        || payload_len > ET_WIRE_MAX_PAYLOAD
        || cap < ET_WIRE_HEADER_SIZE + meta_len) {
        return 0;
    }
    et_frame_header_write(buf, type, (uint32_t) meta_len, payload_len);
    protobuf_c_message_pack(msg, buf + ET_WIRE_HEADER_SIZE);
    return ET_WIRE_HEADER_SIZE + meta_len;
}
