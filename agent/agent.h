/* edgetrain-agent: the daemon on every edge device.
 *
 * Two threads (docs/agent.md):
 *   - the I/O thread runs one libevent loop for everything on the network:
 *     the management channel to the controller (agent_mgmt_*), the data
 *     listener (activation streams from upstream, inference requests) and
 *     the sender toward the downstream peer;
 *   - the compute thread (compute.c) trains the assigned stage.
 * They meet only in two et_queues (queue.h): 'to_compute' and 'to_io'. */
#ifndef ET_AGENT_H
#define ET_AGENT_H 1

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "edgetrain.pb-c.h"
#include "queue.h"

struct event;
struct event_base;
struct bufferevent;
struct et_frame;
struct et_stream_rx;
struct et_stream_tx;

struct agent_options {
    const char *name;
    const char *controller;     /* host:port of the management channel */
    const char *listen;         /* data address, host:port */
    const char *data;           /* dataset spec (the source agent) */
    const char *state_dir;      /* checkpoints */
    const char *key_file;       /* cluster key for the challenge HMAC */
    int threads;                /* compute threads (0: all cores) */
    uint32_t window;            /* receive window, chunks (0: 16) */
    uint32_t queue_chunks;      /* bound of each thread queue (0: 16) */
    double gflops;              /* declared speed (0: self-benchmark) */
};

/* Receive-side bounds, stated in docs/agent.md. */
#define AGENT_DEFAULT_WINDOW 16
#define AGENT_DEFAULT_QUEUE 16

enum agent_mgmt_state { MGMT_DOWN, MGMT_CONNECTING, MGMT_UP };

struct agent {
    struct agent_options opt;
    struct event_base *base;
    int wake_fd;                        /* eventfd: compute -> io */
    struct event *wake_ev, *sigint_ev, *sigterm_ev, *stats_ev;

    /* Management channel (I/O thread). */
    enum agent_mgmt_state mgmt_state;
    struct bufferevent *mgmt;
    struct event *mgmt_retry, *mgmt_hb;
    int mgmt_backoff_ms;
    uint32_t hb_ms;
    uint64_t hb_seq;
    uint8_t *key;
    size_t key_len;
    uint32_t cores;
    uint64_t memory;
    double gflops;
    char data_addr[128];

    /* A Checkpoint frame from the controller whose payload is still
     * arriving, and the last checkpoint received (resume.h). */
    struct et_frame *mgmt_pend;
    Edgetrain__Checkpoint *resume_meta;
    uint8_t *resume_buf;
    size_t resume_len;
    /* An Assignment waiting for the checkpoint it asked the controller
     * for (its own copy was missing or did not match), and the id asked
     * for (asked once per id: a second miss starts the stage fresh). */
    Edgetrain__Assignment *resume_pending;
    char resume_asked[64];

    /* Current assignment (I/O thread's copy). */
    Edgetrain__Assignment *assign;
    uint32_t last_epoch;                /* from the compute thread's reports */
    uint32_t stage_gen;                 /* ASSIGN messages handed to compute */

    /* Streams (I/O thread). */
    struct et_stream_rx *rx;
    struct et_stream_tx *tx;
    char tx_peer[64], tx_addr[128];
    struct et_qmsg *out_stash;          /* chunk waiting for sender room */

    struct et_queue to_compute, to_io;
    pthread_t compute;
    bool compute_started;
    bool stopping;
};

/* Runs the agent until SIGINT/SIGTERM. Returns the exit status. */
int agent_run(const struct agent_options *);

/* The compute thread (compute.c). 'arg' is the struct agent. */
void *agent_compute_main(void *arg);

/* Splits a data spec "SPEC[?train-limit=N&test-limit=N&per-class=N]" into
 * the dataset_open() spec (into 'spec', 'cap' bytes) and options. */
struct dataset_options;
void agent_parse_data_spec(const char *full, char *spec, size_t cap,
                           struct dataset_options *o);

/* Measures this machine's sgemm rate for Hello.gflops (~0.1 s). */
double agent_self_benchmark(void);

/* Sends a frame to the controller if connected (I/O thread only).
 * Returns 0 or ENOTCONN. */
int agent_mgmt_send(struct agent *, int type, const ProtobufCMessage *msg,
                    const void *payload, size_t len);

#endif /* ET_AGENT_H */
