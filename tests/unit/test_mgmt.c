/* mgmt: the management channel server over real TCP sockets, driven from
 * the test thread (a blocking client socket; the server's event loop is
 * pumped while waiting). Challenge/Hello/Welcome with and without HMAC,
 * refusals, heartbeat echo, a Checkpoint payload arriving in pieces,
 * Metrics, heartbeat timeout, malformed and out-of-place frames. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mgmt.h"

/* What the callbacks saw. */
struct seen {
    int hellos, frames, closed;
    int last_type;
    char closed_reason[160];
    uint8_t payload[4096];
    size_t payload_len;
    uint64_t metrics_step;
};

static int
cb_hello(void *aux, struct mgmt_conn *c, const Edgetrain__Hello *h,
         char *reason, size_t size)
{
    struct seen *s = aux;
    s->hellos++;
    if (strcmp(h->name, "good")) {
        snprintf(reason, size, "unknown agent '%s'", h->name);
        return ENOENT;
    }
    return 0;
}

static void
cb_frame(void *aux, struct mgmt_conn *c, int type, const ProtobufCMessage *m,
         const uint8_t *payload, size_t len)
{
    struct seen *s = aux;
    s->frames++;
    s->last_type = type;
    if (type == ET_MSG_CHECKPOINT && len <= sizeof s->payload) {
        memcpy(s->payload, payload, len);
        s->payload_len = len;
    }
    if (type == ET_MSG_METRICS) {
        s->metrics_step = ((const Edgetrain__Metrics *) m)->step;
    }
}

static void
cb_closed(void *aux, struct mgmt_conn *c, const char *reason)
{
    struct seen *s = aux;
    s->closed++;
    snprintf(s->closed_reason, sizeof s->closed_reason, "%s", reason);
}

struct fixture {
    struct event_base *base;
    struct mgmt *m;
    struct seen seen;
    uint8_t key[16];
};

static const struct mgmt_callbacks callbacks = {cb_hello, cb_frame,
                                                cb_closed};

static struct fixture *
fixture_new(bool with_key)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->base = event_base_new();
    memcpy(f->key, "0123456789abcdef", 16);
    struct mgmt_config cfg = {"127.0.0.1:0", 50, 3, with_key ? f->key : NULL,
                              with_key ? 16 : 0, "test-controller"};
    assert_int_equal(mgmt_create(f->base, &cfg, &callbacks, &f->seen, &f->m),
                     0);
    assert_true(mgmt_port(f->m) > 0);
    return f;
}

static void
fixture_free(struct fixture *f)
{
    mgmt_destroy(f->m);
    event_base_free(f->base);
    free(f);
}

static long
ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* Runs the server's loop for about 'ms'. */
static void
pump(struct fixture *f, long ms)
{
    long end = ms_now() + ms;
    do {
        event_base_loop(f->base, EVLOOP_NONBLOCK);
        usleep(1000);
    } while (ms_now() < end);
}

static int
client_connect(struct fixture *f)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sin = {0};
    sin.sin_family = AF_INET;
    sin.sin_port = htons(mgmt_port(f->m));
    sin.sin_addr.s_addr = htonl(0x7f000001);
    assert_int_equal(connect(fd, (struct sockaddr *) &sin, sizeof sin), 0);
    return fd;
}

/* Client side receive buffer. */
struct rx {
    uint8_t buf[65536];
    size_t len;
    bool eof;
};

/* Waits (pumping the server) for one frame; returns false on EOF or after
 * 2 s. */
static bool
recv_frame(struct fixture *f, int fd, struct rx *rx, struct et_frame *fr)
{
    long end = ms_now() + 2000;
    for (;;) {
        size_t used;
        memset(fr, 0, sizeof *fr);
        if (rx->len && !et_frame_decode_buf(rx->buf, rx->len, false, fr,
                                            &used)) {
            memmove(rx->buf, rx->buf + used, rx->len - used);
            rx->len -= used;
            return true;
        }
        if (rx->eof || ms_now() > end) {
            return false;
        }
        event_base_loop(f->base, EVLOOP_NONBLOCK);
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 2) == 1) {
            ssize_t n = read(fd, rx->buf + rx->len, sizeof rx->buf - rx->len);
            if (n <= 0) {
                rx->eof = true;
            } else {
                rx->len += (size_t) n;
            }
        }
    }
}

static void
send_msg(int fd, int type, const ProtobufCMessage *m, const void *payload,
         size_t payload_len)
{
    uint8_t buf[8192];
    size_t n = et_frame_encode_buf(buf, sizeof buf, type, m,
                                   (uint32_t) payload_len);
    assert_true(n > 0);
    assert_int_equal(write(fd, buf, n), (ssize_t) n);
    if (payload_len) {
        assert_int_equal(write(fd, payload, payload_len), (ssize_t) payload_len);
    }
}

/* Connects, reads the Challenge, sends Hello{name} (with the HMAC if
 * 'key'). Returns the fd; 'rx' is the client buffer. */
static int
hello(struct fixture *f, struct rx *rx, const char *name, const uint8_t *key)
{
    int fd = client_connect(f);
    struct et_frame fr;
    assert_true(recv_frame(f, fd, rx, &fr));
    assert_int_equal(fr.hdr.type, ET_MSG_CHALLENGE);
    const Edgetrain__Challenge *ch = (const void *) fr.msg;
    assert_int_equal(ch->nonce.len, 32);
    assert_int_equal(ch->protocol_version, MGMT_PROTOCOL_VERSION);
    Edgetrain__Hello h = EDGETRAIN__HELLO__INIT;
    uint8_t mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (key) {
        HMAC(EVP_sha256(), key, 16, ch->nonce.data, ch->nonce.len, mac,
             &mac_len);
        h.auth.data = mac;
        h.auth.len = mac_len;
    }
    h.name = (char *) name;
    h.protocol_version = 1;
    send_msg(fd, ET_MSG_HELLO, &h.base, NULL, 0);
    et_frame_clear(&fr);
    return fd;
}

static void
expect_error_and_eof(struct fixture *f, int fd, struct rx *rx, uint32_t code,
                     const char *text)
{
    struct et_frame fr;
    assert_true(recv_frame(f, fd, rx, &fr));
    assert_int_equal(fr.hdr.type, ET_MSG_ERROR);
    const Edgetrain__Error *e = (const void *) fr.msg;
    assert_int_equal(e->code, code);
    if (!strstr(e->message, text)) {
        fail_msg("error '%s' lacks '%s'", e->message, text);
    }
    et_frame_clear(&fr);
    assert_false(recv_frame(f, fd, rx, &fr));
    assert_true(rx->eof);
}

static void
test_register_heartbeat_checkpoint(void **state)
{
    struct fixture *f = fixture_new(false);
    struct rx rx = {0};
    int fd = hello(f, &rx, "good", NULL);
    struct et_frame fr;
    assert_true(recv_frame(f, fd, &rx, &fr));
    assert_int_equal(fr.hdr.type, ET_MSG_WELCOME);
    const Edgetrain__Welcome *w = (const void *) fr.msg;
    assert_string_equal(w->controller_id, "test-controller");
    assert_int_equal(w->heartbeat_ms, 50);
    assert_int_equal(w->timeout_ms, 150);
    et_frame_clear(&fr);

    Edgetrain__Heartbeat hb = EDGETRAIN__HEARTBEAT__INIT;
    hb.seq = 7;
    send_msg(fd, ET_MSG_HEARTBEAT, &hb.base, NULL, 0);
    assert_true(recv_frame(f, fd, &rx, &fr));
    assert_int_equal(fr.hdr.type, ET_MSG_HEARTBEAT);
    assert_int_equal(((const Edgetrain__Heartbeat *) fr.msg)->seq, 7);
    et_frame_clear(&fr);

    /* A Checkpoint whose payload arrives in two pieces, 30 ms apart. */
    uint8_t payload[3000];
    for (size_t i = 0; i < sizeof payload; i++) {
        payload[i] = (uint8_t) (i * 7);
    }
    Edgetrain__Checkpoint ck = EDGETRAIN__CHECKPOINT__INIT;
    ck.name = "good";
    ck.first_block = 1;
    ck.last_block = 3;
    uint8_t buf[256];
    size_t n = et_frame_encode_buf(buf, sizeof buf, ET_MSG_CHECKPOINT,
                                   &ck.base, sizeof payload);
    assert_int_equal(write(fd, buf, n), (ssize_t) n);
    assert_int_equal(write(fd, payload, 1000), 1000);
    pump(f, 30);
    assert_int_equal(f->seen.frames, 0);        /* still waiting */
    assert_int_equal(write(fd, payload + 1000, 2000), 2000);
    Edgetrain__Metrics m = EDGETRAIN__METRICS__INIT;
    m.step = 42;
    send_msg(fd, ET_MSG_METRICS, &m.base, NULL, 0);
    /* Up to 2 s: a loaded machine may take longer than one short pump. */
    for (int i = 0; i < 100 && f->seen.frames < 2; i++) {
        pump(f, 20);
    }
    assert_int_equal(f->seen.frames, 2);
    assert_int_equal(f->seen.payload_len, sizeof payload);
    assert_memory_equal(f->seen.payload, payload, sizeof payload);
    assert_int_equal(f->seen.metrics_step, 42);
    assert_int_equal(f->seen.last_type, ET_MSG_METRICS);
    assert_int_equal(f->seen.closed, 0);

    /* Silence: dead after 3 periods of 50 ms; Error ETIMEDOUT, then EOF. */
    long t0 = ms_now();
    expect_error_and_eof(f, fd, &rx, ETIMEDOUT, "heartbeat timeout");
    long waited = ms_now() - t0;
    assert_true(waited >= 100 && waited < 1000);
    assert_int_equal(f->seen.closed, 1);
    assert_non_null(strstr(f->seen.closed_reason, "heartbeat timeout"));
    assert_int_equal(mgmt_get_stats(f->m)->timeouts, 1);
    close(fd);
    fixture_free(f);
}

static void
test_refusals(void **state)
{
    struct fixture *f = fixture_new(true);
    struct rx rx = {0};
    /* Unknown name (the owner refuses). */
    int fd = hello(f, &rx, "stranger", f->key);
    expect_error_and_eof(f, fd, &rx, ENOENT, "unknown agent 'stranger'");
    close(fd);
    /* Wrong HMAC. */
    memset(&rx, 0, sizeof rx);
    uint8_t bad[16] = {0};
    fd = hello(f, &rx, "good", bad);
    expect_error_and_eof(f, fd, &rx, EACCES, "authentication failed");
    close(fd);
    /* No HMAC at all. */
    memset(&rx, 0, sizeof rx);
    fd = hello(f, &rx, "good", NULL);
    expect_error_and_eof(f, fd, &rx, EACCES, "authentication failed");
    close(fd);
    /* Right HMAC. */
    memset(&rx, 0, sizeof rx);
    fd = hello(f, &rx, "good", f->key);
    struct et_frame fr;
    assert_true(recv_frame(f, fd, &rx, &fr));
    assert_int_equal(fr.hdr.type, ET_MSG_WELCOME);
    et_frame_clear(&fr);
    /* A data-channel frame on the management channel: protocol error. */
    Edgetrain__Credit cr = EDGETRAIN__CREDIT__INIT;
    send_msg(fd, ET_MSG_CREDIT, &cr.base, NULL, 0);
    expect_error_and_eof(f, fd, &rx, EPROTO, "unexpected credit");
    assert_int_equal(f->seen.closed, 1);       /* only accepted ones */
    close(fd);
    /* HMAC failures never reach the owner: it saw 'stranger' and the
     * accepted one. */
    assert_int_equal(f->seen.hellos, 2);
    fixture_free(f);
}

static void
test_malformed(void **state)
{
    struct fixture *f = fixture_new(false);
    struct rx rx = {0};
    int fd = client_connect(f);
    struct et_frame fr;
    assert_true(recv_frame(f, fd, &rx, &fr));    /* Challenge */
    et_frame_clear(&fr);
    assert_int_equal(write(fd, "GARBAGE!GARBAGE!", 16), 16);
    /* Closed without an Error frame (the peer may not speak the
     * protocol). */
    assert_false(recv_frame(f, fd, &rx, &fr));
    assert_true(rx.eof);
    close(fd);
    assert_int_equal(mgmt_get_stats(f->m)->bad_frames, 1);
    /* A frame before Hello. */
    memset(&rx, 0, sizeof rx);
    fd = client_connect(f);
    assert_true(recv_frame(f, fd, &rx, &fr));
    et_frame_clear(&fr);
    Edgetrain__Heartbeat hb = EDGETRAIN__HEARTBEAT__INIT;
    send_msg(fd, ET_MSG_HEARTBEAT, &hb.base, NULL, 0);
    expect_error_and_eof(f, fd, &rx, EPROTO, "expected hello, got heartbeat");
    close(fd);
    /* The server still accepts and serves. */
    memset(&rx, 0, sizeof rx);
    fd = hello(f, &rx, "good", NULL);
    assert_true(recv_frame(f, fd, &rx, &fr));
    assert_int_equal(fr.hdr.type, ET_MSG_WELCOME);
    et_frame_clear(&fr);
    close(fd);
    pump(f, 20);
    assert_int_equal(f->seen.closed, 1);       /* peer closed */
    assert_non_null(strstr(f->seen.closed_reason, "closed by peer"));
    assert_int_equal(mgmt_get_stats(f->m)->connections, 3);
    fixture_free(f);
}

static void
test_bad_listen(void **state)
{
    struct event_base *base = event_base_new();
    struct mgmt *m;
    struct mgmt_config cfg = {"nonsense", 1000, 3, NULL, 0, "x"};
    assert_int_equal(mgmt_create(base, &cfg, &callbacks, NULL, &m), EINVAL);
    cfg.listen = "localhost:7000";
    assert_int_equal(mgmt_create(base, &cfg, &callbacks, NULL, &m), EINVAL);
    event_base_free(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_register_heartbeat_checkpoint),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_bad_listen),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
