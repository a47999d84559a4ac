/* Activation streams between agents: one logical, ordered stream of chunks
 * from a sender to one downstream peer, carried over K TCP sub-streams.
 *
 * Sender (et_stream_tx): opens one TCP connection per sub-stream, bound to
 * the sub-stream's local source port before connecting (so the controller's
 * exact-match flows pin it to one path), sends StreamHello first, then Chunk
 * frames. Each chunk gets the next per-stream sequence number; a smooth
 * weighted round-robin over the connected sub-streams picks the one that
 * carries it. The payload is handed to the socket buffer by reference.
 * A chunk stays held until the receiver's Credit.acked_seq covers it; when
 * a sub-stream dies or is removed, its unacked chunks are sent again on the
 * others (the receiver drops the duplicates by seq).
 *
 * Receiver (et_stream_rx): listens on one port, authenticates each
 * connection's StreamHello (run id, token, known upstream), reads Chunk
 * payloads straight into the chunk's tensor, reorders across sub-streams
 * in a window of W chunks, and hands chunks to its consumer strictly in
 * sequence order: never twice, never skipping one.
 *
 * Flow control is credit based and idempotent: Credit{chunks = W,
 * acked_seq = A} means "every seq < A has been consumed; you may have seqs
 * below A + W outstanding". The receiver therefore holds at most W chunks
 * per stream (plus one partially read chunk per connection) and the sender
 * at most W + max_pending chunks. docs/agent.md states the bounds.
 *
 * Both sides run on one libevent loop (the agent's I/O thread); nothing
 * here is thread-safe. */
#ifndef ET_STREAM_H
#define ET_STREAM_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;

/* One micro-batch of activations with its labels. Tensor (N,H,W,C) f32. */
struct et_chunk {
    uint64_t run_id;
    uint32_t epoch;
    uint64_t step;              /* training step within the epoch */
    uint64_t seq;               /* per-stream sequence number (tx assigns) */
    uint32_t micro;             /* index within the step */
    uint32_t micro_count;       /* chunks in the step */
    uint32_t shape[4];          /* N, H, W, C */
    bool eval;                  /* evaluation pass: forward only */
    bool end_of_epoch;
    uint64_t steps_per_epoch;   /* set by the source; 0 if unknown */
    uint32_t *labels;           /* N labels, owned */
    float *data;                /* N*H*W*C floats; owned unless 'borrowed' */
    bool borrowed;              /* 'data' belongs to someone else */

    /* Sender bookkeeping, private to stream.c. */
    struct et_chunk *next;      /* in the sender's held list, by seq */
    void *wire;                 /* encoded payload (== data for f32) */
    size_t wire_len;
    int dtype;                  /* Edgetrain__DType of 'wire' */
    float scale;                /* int8 scale */
    struct et_substream *sub;   /* where it was last sent; NULL: unsent */
    int refs;                   /* socket buffers still pointing at 'wire' */
    bool released;              /* acked: free once 'refs' drops to 0 */
};

/* Allocates a chunk of shape (n,h,w,c) with zeroed labels and uninitialised
 * data. Returns NULL if out of memory or a dimension is 0. */
struct et_chunk *et_chunk_new(uint32_t n, uint32_t h, uint32_t w, uint32_t c);

/* Frees 'c' and what it owns. Accepts NULL. */
void et_chunk_free(struct et_chunk *c);

/* Number of floats in the chunk's tensor. */
size_t et_chunk_elems(const struct et_chunk *c);

/* Keeps freed chunk tensors in the process heap (glibc mallopt) instead of
 * returning them to the kernel, so a receiver's next chunk does not page-
 * fault and zero megabytes of fresh memory. Call once at start-up. */
void et_stream_tune_malloc(void);

/* ------------------------------------------------------------------------
 * Sender. */

/* One sub-stream as the controller describes it (proto SubStream). */
struct et_substream_spec {
    uint32_t id;
    uint16_t local_port;        /* 0: any ephemeral port */
    uint16_t remote_port;       /* 0: the port of the peer's data address */
    double weight;              /* share of chunks; 0 = keep open, unused */
    uint32_t path;              /* identity of the network path (see
                                 * et_substream_path_id()); 0: unknown */
    bool old_path_up;           /* moved off a path still up: no resend */
};

/* A non-zero identity of the path 'hops' (switch names, in order; n may be
 * 0 for a direct path). Two specs of one sub-stream with different
 * non-zero identities mean the controller moved it to another path. */
uint32_t et_substream_path_id(const char *const *hops, size_t n);

struct et_stream_tx_config {
    const char *from;           /* this agent's name, sent in StreamHello */
    const char *peer;           /* the receiver's name (logs, stats) */
    const char *peer_addr;      /* "host:port" of the receiver */
    /* "host:port" of this agent's data address, or NULL. Sub-streams with
     * a pinned source port bind it on this host: a wildcard bind clashes
     * with any socket that got the same port as an ephemeral one (the
     * management connection did, on another address), and the flows
     * match the source address too. A wildcard host binds the port only. */
    const char *local_addr;
    uint64_t run_id;
    const uint8_t *token;
    size_t token_len;
    uint32_t generation;
    int dtype;                  /* wire encoding, an Edgetrain__DType */
    uint32_t max_pending;       /* accepted chunks not yet sent; 0: 8 */
    size_t substream_buffer;    /* bytes queued per connection; 0: 8 MiB */
};

struct et_substream_stats {
    uint32_t id;
    bool up;
    double weight;
    uint64_t bytes;             /* payload + framing bytes queued to send */
    uint64_t chunks;
    uint64_t reconnects;
};

struct et_stream_tx_stats {
    uint64_t next_seq;          /* seqs assigned so far */
    uint64_t acked;             /* Credit.acked_seq: all seqs below done */
    uint32_t window;            /* Credit.chunks */
    uint32_t held;              /* chunks held (unacked), <= window+pending */
    uint32_t unsent;            /* held chunks waiting for a sub-stream */
    uint64_t resent;            /* chunks sent again after a sub-stream died */
    uint64_t nack_resent;       /* ... because the receiver reported one
                                 * missing (Credit.head_missing) */
    uint64_t payload_bytes_acked;
    size_t n_substreams;
    struct et_substream_stats subs[16];
};

struct et_stream_tx;

/* Creates a sender on 'base' (copies 'cfg'). Connections open when
 * sub-streams are set. Returns NULL on bad config or out of memory. */
struct et_stream_tx *et_stream_tx_create(struct event_base *base,
                                         const struct et_stream_tx_config *);

/* Replaces the sub-stream set and weights, at any time. Sub-streams whose
 * id and ports are unchanged keep their connection (only the weight
 * changes); removed ones are closed and their unacked chunks are sent
 * again on the others; new ones connect. 'generation' goes into the
 * StreamHello of new connections. Returns 0 or EINVAL (n > 16 or no
 * positive weight while n > 0). */
int et_stream_tx_set_substreams(struct et_stream_tx *,
                                const struct et_substream_spec *, size_t n,
                                uint32_t generation);

/* Changes the wire encoding of chunks accepted from now on. */
void et_stream_tx_set_dtype(struct et_stream_tx *, int dtype);

/* True if et_stream_tx_send() would accept a chunk now. */
bool et_stream_tx_can_send(const struct et_stream_tx *);

/* Queues 'c' for sending and takes ownership: assigns c->run_id and c->seq,
 * encodes it, and frees it once acked. Returns 0, or EAGAIN if the sender
 * is full (caller keeps 'c'), or EINVAL for an invalid chunk. */
int et_stream_tx_send(struct et_stream_tx *, struct et_chunk *c);

/* Calls 'cb(arg)' on the loop whenever room for more chunks appears (an
 * ack or a send), so a producer that got EAGAIN can continue. */
void et_stream_tx_set_room_cb(struct et_stream_tx *, void (*cb)(void *),
                              void *arg);

/* Number of chunks accepted and not yet acked; 0 means all delivered. */
uint32_t et_stream_tx_held(const struct et_stream_tx *);

void et_stream_tx_get_stats(const struct et_stream_tx *,
                            struct et_stream_tx_stats *);

/* Closes every connection and frees held chunks. Accepts NULL. */
void et_stream_tx_destroy(struct et_stream_tx *);

/* ------------------------------------------------------------------------
 * Receiver. */

struct et_frame;
struct et_stream_conn;

/* How a receiver reports to its owner. Every callback is optional. */
struct et_stream_rx_cbs {
    /* New chunks are ready for et_stream_rx_pop(). */
    void (*ready)(void *arg);
    /* A connection was closed for bad input (or a gap was detected):
     * 'code' is an et_wire_err or errno, 'msg' says what and where. The
     * agent forwards it to the controller as an Error. */
    void (*error)(void *arg, int code, const char *msg);
    /* A connection opened with a frame other than StreamHello (for
     * example InferRequest). 'f' and 'payload' are valid during the call
     * only; reply with et_stream_conn_send(). Return 0 to keep the
     * connection, nonzero to close it. */
    int (*request)(void *arg, struct et_stream_conn *conn,
                   const struct et_frame *f, const void *payload);
    void *arg;
};

struct et_stream_rx_config {
    const char *name;           /* this agent's name (logs) */
    uint64_t run_id;
    const uint8_t *token;
    size_t token_len;
    const char *const *upstreams;  /* accepted senders; NULL: anyone */
    size_t n_upstreams;
    uint32_t window;            /* W, chunks per stream; 0: 16 */
    uint32_t expect_hwc[3];     /* chunk H, W, C; 0 = not checked */
    uint32_t max_n;             /* chunk N at most; 0 = not checked */
    uint32_t gap_timeout_ms;    /* hole at the head this long = gap; 0: 3000 */
    uint32_t nack_ms;           /* hole at the head this long: ask the sender
                                 * to send it again (repeated as long as it
                                 * lasts); 0: 400 */
};

struct et_stream_rx_stats {
    uint64_t received;          /* chunks fully received (incl. duplicates) */
    uint64_t delivered;         /* chunks popped, in order */
    uint64_t duplicates;
    uint64_t gaps;              /* holes reported after gap_timeout */
    uint64_t nacks;             /* head chunks asked for again */
    uint64_t rejected;          /* connections closed for bad input */
    uint64_t bytes;             /* bytes read from all data connections */
    uint32_t queued;            /* chunks held (in window, not yet popped) */
    uint32_t connections;
    uint32_t streams;
};

struct et_stream_rx;

/* Creates a receiver (copies 'cfg' and 'cbs'). */
struct et_stream_rx *et_stream_rx_create(struct event_base *,
                                         const struct et_stream_rx_config *,
                                         const struct et_stream_rx_cbs *);

/* Listens on "addr:port" (port 0 picks one; '*bound' gets it). Returns 0
 * or an errno value. */
int et_stream_rx_listen(struct et_stream_rx *, const char *addr_port,
                        uint16_t *bound);

/* Changes run, token, upstreams, shape checks (a new Assignment). Streams
 * of the same run keep their state; streams of other runs are dropped
 * and their connections closed. */
int et_stream_rx_reconfigure(struct et_stream_rx *,
                             const struct et_stream_rx_config *);

/* Returns the next chunk in sequence order (caller owns it), or NULL if
 * the next one has not arrived. Freed window slots are granted back to
 * the sender as credit. */
struct et_chunk *et_stream_rx_pop(struct et_stream_rx *);

void et_stream_rx_get_stats(const struct et_stream_rx *,
                            struct et_stream_rx_stats *);

/* Sends a frame (a reply to a request) on 'conn'. Returns 0 or an
 * et_wire_err. The payload is copied. */
int et_stream_conn_send(struct et_stream_conn *, int type,
                        const void *msg, const void *payload, size_t len);

/* A connection's id (never reused) and the connection of an id, or NULL
 * if it has closed since: replies from another thread go by id. */
uint64_t et_stream_conn_id(const struct et_stream_conn *);
struct et_stream_conn *et_stream_rx_conn(struct et_stream_rx *, uint64_t id);

/* Closes every connection and the listener; frees queued chunks. */
void et_stream_rx_destroy(struct et_stream_rx *);

/* Parses "host:port" into an IPv4/IPv6 socket address. Returns 0 or
 * EINVAL. */
struct sockaddr_storage;
int et_parse_addr(const char *host_port, struct sockaddr_storage *ss,
                  int *len);

#endif /* ET_STREAM_H */
