/* Wire framing: round trips of every message and every bad-input case. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

/* Packs 'msg' as a full frame (header + meta + payload) into a new buffer. */
static uint8_t *
make_frame(int type, const ProtobufCMessage *msg, const void *payload,
           uint32_t payload_len, size_t *len)
{
    size_t cap = ET_WIRE_HEADER_SIZE + protobuf_c_message_get_packed_size(msg)
                 + payload_len;
    uint8_t *buf = malloc(cap);
    size_t n = et_frame_encode_buf(buf, cap, type, msg, payload_len);
    assert_true(n > 0);
    if (payload_len) {
        memcpy(buf + n, payload, payload_len);
    }
    *len = n + payload_len;
    return buf;
}

static Edgetrain__Chunk
small_chunk(uint32_t *shape, uint32_t *labels)
{
    Edgetrain__Chunk c = EDGETRAIN__CHUNK__INIT;
    shape[0] = 2, shape[1] = 3, shape[2] = 3, shape[3] = 4;
    labels[0] = 5, labels[1] = 9;
    c.run_id = 42;
    c.epoch = 3;
    c.step = 17;
    c.seq = 1234567890123ull;
    c.micro = 1;
    c.micro_count = 4;
    c.n_shape = 4;
    c.shape = shape;
    c.n_labels = 2;
    c.labels = labels;
    return c;
}

static void
test_chunk_round_trip_buf(void **state)
{
    uint32_t shape[4], labels[2];
    Edgetrain__Chunk c = small_chunk(shape, labels);
    float payload[2 * 3 * 3 * 4];
    for (int i = 0; i < 72; i++) {
        payload[i] = i * 0.5f - 3;
    }
    size_t len, used;
    uint8_t *buf = make_frame(ET_MSG_CHUNK, &c.base, payload, sizeof payload,
                              &len);
    struct et_frame f;
    assert_int_equal(et_frame_decode_buf(buf, len, true, &f, &used), 0);
    assert_int_equal(used, len);
    assert_int_equal(f.hdr.type, ET_MSG_CHUNK);
    Edgetrain__Chunk *d = (Edgetrain__Chunk *) f.msg;
    assert_int_equal(d->run_id, 42);
    assert_int_equal(d->epoch, 3);
    assert_int_equal(d->step, 17);
    assert_true(d->seq == 1234567890123ull);
    assert_int_equal(d->micro, 1);
    assert_int_equal(d->micro_count, 4);
    assert_int_equal(d->n_shape, 4);
    assert_int_equal(d->shape[3], 4);
    assert_int_equal(d->labels[1], 9);
    assert_int_equal(f.hdr.payload_len, sizeof payload);
    assert_memory_equal(f.payload, payload, sizeof payload);
    et_frame_clear(&f);
    assert_null(f.msg);
    free(buf);
}

/* Every payload-free message type survives encode/decode unchanged. */
static void
test_every_message_round_trip(void **state)
{
    uint8_t nonce[16] = {1, 2, 3};
    Edgetrain__Challenge ch = EDGETRAIN__CHALLENGE__INIT;
    ch.nonce.data = nonce;
    ch.nonce.len = sizeof nonce;
    ch.protocol_version = 1;

    Edgetrain__SubStream ss = EDGETRAIN__SUB_STREAM__INIT, *ssp = &ss;
    char *hops[] = {"s1", "s3"};
    ss.id = 1, ss.local_port = 40001, ss.remote_port = 7000, ss.weight = 0.25;
    ss.n_hops = 2, ss.hops = hops;
    Edgetrain__Peer peer = EDGETRAIN__PEER__INIT, *peerp = &peer;
    peer.name = "pi2", peer.data_addr = "10.0.0.2:7000";
    peer.n_substreams = 1, peer.substreams = &ssp;
    peer.encoding = EDGETRAIN__DTYPE__DTYPE_F16;
    Edgetrain__ModelConfig mc = EDGETRAIN__MODEL_CONFIG__INIT;
    mc.alpha = 0.5f, mc.input_size = 32, mc.classes = 10, mc.batch = 256;
    mc.optimizer = "adam";
    Edgetrain__Assignment as = EDGETRAIN__ASSIGNMENT__INIT;
    as.run_id = 9, as.generation = 2, as.first_block = 2, as.last_block = 3;
    as.model = &mc, as.n_downstream = 1, as.downstream = &peerp;
    as.token.data = nonce, as.token.len = 8;

    Edgetrain__Hello he = EDGETRAIN__HELLO__INIT;
    he.name = "pi1", he.data_addr = "10.0.0.1:7000", he.cores = 4;
    he.memory_bytes = 1ull << 30, he.gflops = 11.5, he.current = &as;
    Edgetrain__Welcome we = EDGETRAIN__WELCOME__INIT;
    we.controller_id = "c1", we.heartbeat_ms = 500;
    Edgetrain__Heartbeat hb = EDGETRAIN__HEARTBEAT__INIT;
    hb.seq = 77;
    Edgetrain__Metrics me = EDGETRAIN__METRICS__INIT;
    me.name = "pi1", me.images_per_s = 123.5, me.test_top1 = 0.875;
    Edgetrain__Error er = EDGETRAIN__ERROR__INIT;
    er.code = 5, er.message = "bad shape";
    Edgetrain__StreamHello sh = EDGETRAIN__STREAM_HELLO__INIT;
    sh.from = "pi1", sh.substream_id = 3;
    Edgetrain__Credit cr = EDGETRAIN__CREDIT__INIT;
    cr.chunks = 8, cr.acked_seq = 99;
    Edgetrain__InferReply ir = EDGETRAIN__INFER_REPLY__INIT;
    uint32_t cls[3] = {4, 1, 7};
    ir.n_classes = 3, ir.classes = cls;

    struct { int type; ProtobufCMessage *m; } cases[] = {
        {ET_MSG_CHALLENGE, &ch.base}, {ET_MSG_HELLO, &he.base},
        {ET_MSG_WELCOME, &we.base}, {ET_MSG_HEARTBEAT, &hb.base},
        {ET_MSG_ASSIGNMENT, &as.base}, {ET_MSG_METRICS, &me.base},
        {ET_MSG_ERROR, &er.base}, {ET_MSG_STREAM_HELLO, &sh.base},
        {ET_MSG_CREDIT, &cr.base}, {ET_MSG_INFER_REPLY, &ir.base},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        size_t len, used;
        uint8_t *buf = make_frame(cases[i].type, cases[i].m, NULL, 0, &len);
        struct et_frame f;
        assert_int_equal(et_frame_decode_buf(buf, len, true, &f, &used), 0);
        assert_int_equal(f.hdr.type, cases[i].type);
        /* Re-packing the decoded message gives the same bytes. */
        size_t n = protobuf_c_message_get_packed_size(f.msg);
        assert_int_equal(n, len - ET_WIRE_HEADER_SIZE);
        uint8_t *again = malloc(n + 1);
        protobuf_c_message_pack(f.msg, again);
        assert_memory_equal(again, buf + ET_WIRE_HEADER_SIZE, n);
        free(again);
        et_frame_clear(&f);
        free(buf);
    }
    /* Spot-check nested content survived. */
    size_t len, used;
    uint8_t *buf = make_frame(ET_MSG_ASSIGNMENT, &as.base, NULL, 0, &len);
    struct et_frame f;
    assert_int_equal(et_frame_decode_buf(buf, len, true, &f, &used), 0);
    Edgetrain__Assignment *a = (Edgetrain__Assignment *) f.msg;
    assert_int_equal(a->downstream[0]->substreams[0]->local_port, 40001);
    assert_string_equal(a->downstream[0]->substreams[0]->hops[1], "s3");
    assert_true(a->model->alpha == 0.5f);
    et_frame_clear(&f);
    free(buf);
}

/* Feeding a stream one byte at a time: AGAIN until complete, then 0. */
static void
test_evbuffer_incremental(void **state)
{
    uint32_t shape[4], labels[2];
    Edgetrain__Chunk c = small_chunk(shape, labels);
    float payload[72], out[72];
    for (int i = 0; i < 72; i++) {
        payload[i] = (float) i;
    }
    size_t len;
    uint8_t *frame = make_frame(ET_MSG_CHUNK, &c.base, payload,
                                sizeof payload, &len);
    struct evbuffer *in = evbuffer_new();
    struct et_frame f;
    size_t meta_end = len - sizeof payload;
    size_t i;
    for (i = 0; i < meta_end - 1; i++) {
        evbuffer_add(in, frame + i, 1);
        assert_int_equal(et_frame_decode_evbuffer(in, &f), ET_WIRE_AGAIN);
        assert_int_equal(evbuffer_get_length(in), i + 1);
    }
    evbuffer_add(in, frame + i, 1);
    assert_int_equal(et_frame_decode_evbuffer(in, &f), 0);
    assert_int_equal(evbuffer_get_length(in), 0);   /* meta drained */
    assert_int_equal(et_frame_take_payload(in, out, sizeof out), ET_WIRE_AGAIN);
    evbuffer_add(in, frame + meta_end, sizeof payload);
    assert_int_equal(et_frame_take_payload(in, out, sizeof out), 0);
    assert_memory_equal(out, payload, sizeof out);
    et_frame_clear(&f);
    evbuffer_free(in);
    free(frame);
}

static int released;
static void
count_release(const void *p, size_t n, void *arg)
{
    released++;
}

/* The encoder references the payload instead of copying it. */
static void
test_encode_by_reference(void **state)
{
    uint32_t shape[4], labels[2];
    Edgetrain__Chunk c = small_chunk(shape, labels);
    float payload[72] = {1.5f};
    struct evbuffer *out = evbuffer_new();
    released = 0;
    assert_int_equal(et_frame_encode_evbuffer(out, ET_MSG_CHUNK, &c.base,
                                              payload, sizeof payload,
                                              count_release, NULL), 0);
    /* The last segment of the buffer is the caller's memory itself. */
    struct evbuffer_iovec v[4];
    int n = evbuffer_peek(out, -1, NULL, v, 4);
    assert_true(n >= 2);
    assert_ptr_equal(v[n - 1].iov_base, payload);
    struct et_frame f;
    float back[72];
    assert_int_equal(et_frame_decode_evbuffer(out, &f), 0);
    assert_int_equal(et_frame_take_payload(out, back, sizeof back), 0);
    assert_int_equal(released, 1);
    assert_true(back[0] == 1.5f);
    et_frame_clear(&f);
    evbuffer_free(out);
}

/* Decodes 'buf' with both decoders and checks both report 'want'. */
static void
expect_error(const uint8_t *buf, size_t len, int want)
{
    struct et_frame f;
    size_t used;
    assert_int_equal(et_frame_decode_buf(buf, len, true, &f, &used), want);
    assert_null(f.msg);
    struct evbuffer *in = evbuffer_new();
    evbuffer_add(in, buf, len);
    int err = et_frame_decode_evbuffer(in, &f);
    /* A stream cannot tell truncation from "more to come". */
    assert_int_equal(err, want == ET_WIRE_TRUNCATED ? ET_WIRE_AGAIN : want);
    assert_null(f.msg);
    evbuffer_free(in);
}

static void
test_bad_headers(void **state)
{
    Edgetrain__Heartbeat hb = EDGETRAIN__HEARTBEAT__INIT;
    hb.seq = 5;
    size_t len;
    uint8_t *good = make_frame(ET_MSG_HEARTBEAT, &hb.base, NULL, 0, &len);
    uint8_t *b = malloc(len);

    memcpy(b, good, len); b[0] = 'X';
    expect_error(b, len, ET_WIRE_BAD_MAGIC);
    memcpy(b, good, len); b[4] = 2;
    expect_error(b, len, ET_WIRE_BAD_VERSION);
    memcpy(b, good, len); b[5] = 0;
    expect_error(b, len, ET_WIRE_BAD_TYPE);
    memcpy(b, good, len); b[5] = 200;
    expect_error(b, len, ET_WIRE_BAD_TYPE);
    memcpy(b, good, len); b[7] = 1;
    expect_error(b, len, ET_WIRE_BAD_FLAGS);
    /* Oversized lengths are refused from the header alone. */
    memcpy(b, good, len); b[8] = 0x7f;
    expect_error(b, len, ET_WIRE_TOO_LARGE);
    memcpy(b, good, len); b[12] = 0xff;
    expect_error(b, len, ET_WIRE_TOO_LARGE);
    /* A heartbeat may not carry a payload. */
    memcpy(b, good, len); b[15] = 1;
    expect_error(b, len, ET_WIRE_BAD_PAYLOAD);
    /* Truncated: every proper prefix. */
    for (size_t n = 1; n < len; n++) {
        expect_error(good, n, ET_WIRE_TRUNCATED);
    }
    free(b);
    free(good);
}

static void
test_bad_proto(void **state)
{
    uint8_t b[ET_WIRE_HEADER_SIZE + 4];
    /* Field 1 as a length-delimited field running past the end. */
    et_frame_header_write(b, ET_MSG_HEARTBEAT, 4, 0);
    b[16] = 0x0a, b[17] = 0x7f, b[18] = 0x01, b[19] = 0x02;
    expect_error(b, sizeof b, ET_WIRE_BAD_PROTO);
    /* An unterminated varint. */
    b[16] = 0x08, b[17] = 0xff, b[18] = 0xff, b[19] = 0xff;
    expect_error(b, sizeof b, ET_WIRE_BAD_PROTO);
}

static void
test_bad_shapes(void **state)
{
    uint32_t shape[4], labels[2];
    float payload[72] = {0};
    struct { int field; uint32_t value; uint32_t plen; } cases[] = {
        {0, 0, 72 * 4},          /* payload one element short/long */
        {0, 0, 71 * 4},
        {1, 0, 72 * 4},          /* a zero dimension */
        {2, 3, 72 * 4},          /* 3 dims only */
        {3, 99, 72 * 4},         /* unknown dtype */
        {4, 1, 72 * 4},          /* labels count != N */
        {5, 5, 72 * 4},          /* micro >= micro_count */
        {6, 0, 72 * 2},          /* int8 without a scale, f16 size */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        Edgetrain__Chunk c = small_chunk(shape, labels);
        uint32_t plen = cases[i].plen;
        switch (cases[i].field) {
        case 0: if (i == 0) plen += 4; break;
        case 1: shape[2] = 0; break;
        case 2: c.n_shape = 3; break;
        case 3: c.dtype = 99; break;
        case 4: c.n_labels = 1; break;
        case 5: c.micro = 5; c.micro_count = 5; break;
        case 6: c.dtype = EDGETRAIN__DTYPE__DTYPE_INT8; plen = 72; break;
        }
        size_t cap = 256 + plen;
        uint8_t *b = calloc(1, cap);
        size_t n = et_frame_encode_buf(b, cap, ET_MSG_CHUNK, &c.base, plen);
        assert_true(n > 0);
        memcpy(b + n, payload, plen < sizeof payload ? plen : sizeof payload);
        expect_error(b, n + plen, ET_WIRE_BAD_SHAPE);
        free(b);
    }
    /* The same int8 chunk with a scale is fine. */
    Edgetrain__Chunk c = small_chunk(shape, labels);
    c.dtype = EDGETRAIN__DTYPE__DTYPE_INT8;
    c.scale = 0.02f;
    size_t len, used;
    uint8_t *b = make_frame(ET_MSG_CHUNK, &c.base, payload, 72, &len);
    struct et_frame f;
    assert_int_equal(et_frame_decode_buf(b, len, true, &f, &used), 0);
    et_frame_clear(&f);
    free(b);
}

/* Two frames back to back decode as two, in order. */
static void
test_back_to_back(void **state)
{
    Edgetrain__Credit a = EDGETRAIN__CREDIT__INIT, b = EDGETRAIN__CREDIT__INIT;
    a.chunks = 1, b.chunks = 2;
    struct evbuffer *buf = evbuffer_new();
    assert_int_equal(et_frame_encode_evbuffer(buf, ET_MSG_CREDIT, &a.base,
                                              NULL, 0, NULL, NULL), 0);
    assert_int_equal(et_frame_encode_evbuffer(buf, ET_MSG_CREDIT, &b.base,
                                              NULL, 0, NULL, NULL), 0);
    struct et_frame f;
    assert_int_equal(et_frame_decode_evbuffer(buf, &f), 0);
    assert_int_equal(((Edgetrain__Credit *) f.msg)->chunks, 1);
    et_frame_clear(&f);
    assert_int_equal(et_frame_decode_evbuffer(buf, &f), 0);
    assert_int_equal(((Edgetrain__Credit *) f.msg)->chunks, 2);
    et_frame_clear(&f);
    assert_int_equal(et_frame_decode_evbuffer(buf, &f), ET_WIRE_AGAIN);
    evbuffer_free(buf);
}

static void
test_encoder_limits(void **state)
{
    uint32_t shape[4], labels[2];
    Edgetrain__Chunk c = small_chunk(shape, labels);
    struct evbuffer *buf = evbuffer_new();
    static char big;
    assert_int_equal(et_frame_encode_evbuffer(buf, ET_MSG_CHUNK, &c.base, &big,
                                              (size_t) ET_WIRE_MAX_PAYLOAD + 1,
                                              NULL, NULL), ET_WIRE_TOO_LARGE);
    /* The type must match the message. */
    assert_int_equal(et_frame_encode_evbuffer(buf, ET_MSG_CREDIT, &c.base,
                                              NULL, 0, NULL, NULL),
                     ET_WIRE_BAD_TYPE);
    assert_int_equal(evbuffer_get_length(buf), 0);
    evbuffer_free(buf);
    uint8_t small[8];
    assert_int_equal(et_frame_encode_buf(small, sizeof small, ET_MSG_CHUNK,
                                         &c.base, 0), 0);
    assert_string_equal(et_wire_strerror(ET_WIRE_BAD_SHAPE),
                        "tensor shape does not match payload");
    assert_string_equal(et_msg_type_name(ET_MSG_CHUNK), "chunk");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chunk_round_trip_buf),
        cmocka_unit_test(test_every_message_round_trip),
        cmocka_unit_test(test_evbuffer_incremental),
        cmocka_unit_test(test_encode_by_reference),
        cmocka_unit_test(test_bad_headers),
        cmocka_unit_test(test_bad_proto),
        cmocka_unit_test(test_bad_shapes),
        cmocka_unit_test(test_back_to_back),
        cmocka_unit_test(test_encoder_limits),
    };
    return cmocka_run_group_tests_name("wire", tests, NULL, NULL);
}
