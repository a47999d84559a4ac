/* mgmt: the controller's side of the agent management channel.
 *
 * TCP with libevent bufferevents; every message is a frame of proto/wire.h.
 * Per connection (docs/protocol.md, "Management channel"):
 *
 *   controller                         agent
 *   ---------- accept ---------------> (connects)
 *   Challenge{nonce, version}  ------>
 *                              <------ Hello{name, data_addr, ..., auth}
 *   Welcome{id, hb_ms, timeout} ----->      (or Error + close)
 *                              <------ Heartbeat{seq} every hb_ms
 *   Heartbeat{same seq}        ------>
 *   Assignment                 ------>      (when a run starts or changes)
 *                              <------ Metrics, Checkpoint, Error
 *
 * Any valid frame counts as a sign of life; after 'timeout_periods'
 * heartbeat periods without one the connection is closed ("heartbeat
 * timeout") and the owner is told. A malformed frame, a frame of the wrong
 * type for the state, or a bad Hello closes that one connection with a
 * logged reason (and an Error frame when the bytes were parseable); the
 * listener keeps serving.
 *
 * mgmt knows nothing about runs: the owner decides on Hellos and handles
 * Metrics/Checkpoint/Error through the callbacks below. Single-threaded:
 * everything runs on the event_base's thread. */
#ifndef ET_MGMT_H
#define ET_MGMT_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire.h"

struct event_base;
struct mgmt;
struct mgmt_conn;

#define MGMT_PROTOCOL_VERSION 1

struct mgmt_callbacks {
    /* A Hello passed authentication. Return 0 to accept (mgmt answers with
     * Welcome) or a positive errno and a reason (mgmt sends Error{errno,
     * reason} and closes). */
    int (*hello)(void *aux, struct mgmt_conn *conn,
                 const Edgetrain__Hello *hello, char *reason,
                 size_t reason_size);
    /* Metrics, Checkpoint (with its payload) or Error from an accepted
     * agent. 'msg' and 'payload' are valid during the call only. */
    void (*frame)(void *aux, struct mgmt_conn *conn, int type,
                  const ProtobufCMessage *msg, const uint8_t *payload,
                  size_t payload_len);
    /* An accepted connection is closing (peer closed, heartbeat timeout,
     * protocol error, replaced, or mgmt_close()). 'conn' must not be used
     * after this returns. */
    void (*closed)(void *aux, struct mgmt_conn *conn, const char *reason);
};

struct mgmt_config {
    const char *listen;           /* "ADDR:PORT"; port 0 picks one */
    uint32_t heartbeat_ms;        /* the agents' heartbeat period */
    uint32_t timeout_periods;     /* dead after this many periods (3) */
    const uint8_t *key;           /* cluster key for the HMAC, or NULL */
    size_t key_len;
    const char *controller_id;    /* sent in Welcome */
};

struct mgmt_stats {
    uint64_t connections;         /* accepted TCP connections */
    uint64_t frames_in, frames_out;
    uint64_t bad_frames;          /* connections closed for bad input */
    uint64_t timeouts;
};

/* Binds and starts listening. Returns 0 or a positive errno (logged). */
int mgmt_create(struct event_base *base, const struct mgmt_config *cfg,
                const struct mgmt_callbacks *cb, void *aux,
                struct mgmt **mgmtp);

/* Closes every connection (without callbacks) and the listener. */
void mgmt_destroy(struct mgmt *m);

/* The bound TCP port (useful with port 0). */
uint16_t mgmt_port(const struct mgmt *m);

const struct mgmt_stats *mgmt_get_stats(const struct mgmt *m);

/* Queues 'msg' as a frame of 'type' on 'conn'. Returns 0 or an
 * et_wire_err / errno; a closing connection returns EPIPE. */
int mgmt_send(struct mgmt_conn *conn, int type, const ProtobufCMessage *msg);
/* The same with a raw payload after the meta (a Checkpoint's file bytes),
 * copied into the connection's output at once. */
int mgmt_send_payload(struct mgmt_conn *conn, int type,
                      const ProtobufCMessage *msg, const void *payload,
                      size_t len);

/* Sends Error{code, reason} (if code is nonzero), then closes 'conn' after
 * its output drained (at most 1 s). Calls cb->closed for an accepted
 * connection. Safe inside callbacks. */
void mgmt_close(struct mgmt_conn *conn, uint32_t code, const char *reason);

/* The agent name (after Hello) or the peer address. */
const char *mgmt_conn_name(const struct mgmt_conn *conn);

/* Owner's pointer per connection. */
void mgmt_conn_set_data(struct mgmt_conn *conn, void *data);
void *mgmt_conn_get_data(const struct mgmt_conn *conn);

#endif /* ET_MGMT_H */
