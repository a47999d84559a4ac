/* The one explicit hand-off between the agent's two threads.
 *
 * The I/O thread (libevent: management channel, data streams, inference
 * connections) and the compute thread (training) share nothing mutable
 * except two of these queues: 'to_compute' (received chunks, assignments,
 * inference requests, stop) and 'to_io' (output chunks, metrics,
 * checkpoints, replies, errors). A queue is a mutex-protected FIFO; the
 * compute side blocks on a condition variable, the I/O side is woken
 * through an eventfd that its event loop watches.
 *
 * Only chunk messages count against a queue's bound ('cap'); control
 * messages always fit, so a stop or an assignment is never stuck behind
 * data. Ownership of a message and everything it points to passes with
 * it. */
#ifndef ET_AGENT_QUEUE_H
#define ET_AGENT_QUEUE_H 1

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct et_chunk;

enum et_qmsg_kind {
    ET_QMSG_CHUNK,          /* io -> compute: received chunk, in order;
                             * compute -> io: output chunk to send */
    ET_QMSG_ASSIGN,         /* io -> compute: packed Assignment in 'meta' */
    ET_QMSG_INFER,          /* io -> compute: InferRequest meta + payload,
                             * reply to connection 'conn_id' */
    ET_QMSG_STOP,           /* io -> compute: finish up and exit */
    ET_QMSG_FRAME,          /* compute -> io: frame 'type' with packed
                             * 'meta' and 'payload' for the controller, or
                             * for connection 'conn_id' if nonzero */
    ET_QMSG_METRICS,        /* compute -> io: packed Metrics; io adds queue
                             * depths and stream statistics */
};

struct et_qmsg {
    struct et_qmsg *next;
    enum et_qmsg_kind kind;
    struct et_chunk *chunk;
    int type;               /* ET_QMSG_FRAME: enum et_msg_type */
    uint8_t *meta;          /* malloc'd packed protobuf */
    size_t meta_len;
    uint8_t *payload;       /* malloc'd */
    size_t payload_len;
    uint64_t conn_id;
    uint32_t stage_gen;     /* CHUNK from compute: which assignment made it
                             * (the I/O thread drops those of old ones) */
};

struct et_queue {
    pthread_mutex_t mu;
    pthread_cond_t cond;    /* compute side waits here */
    struct et_qmsg *head, *tail;
    size_t n_chunks, cap;
    int wake_fd;            /* eventfd written to wake the I/O thread */
    bool wake_on_push;      /* to_io: wake io when something arrives */
    bool wake_on_room;      /* to_compute: wake io when a chunk slot frees */
    bool closed;
};

/* Initialises 'q' with room for 'cap' chunks; wakes 'wake_fd' as the flags
 * say. Returns 0 or an errno. */
int et_queue_init(struct et_queue *q, size_t cap, int wake_fd,
                  bool wake_on_push, bool wake_on_room);
/* Frees queued messages (and their chunks). */
void et_queue_destroy(struct et_queue *q);

/* Appends 'm'. A chunk message waits for room if 'block', else returns
 * EAGAIN when the queue is full. Returns EPIPE once closed (the caller
 * keeps 'm'). */
int et_queue_push(struct et_queue *q, struct et_qmsg *m, bool block);

/* Removes the first message. Blocks until there is one if 'block'; returns
 * NULL if none (non-blocking) or once the queue is closed and empty. */
struct et_qmsg *et_queue_pop(struct et_queue *q, bool block);

/* True if a chunk message would fit now. */
bool et_queue_has_room(struct et_queue *q);
size_t et_queue_chunks(struct et_queue *q);

/* Wakes every waiter; later pushes fail with EPIPE. */
void et_queue_close(struct et_queue *q);

/* Allocates a zeroed message of 'kind'. */
struct et_qmsg *et_qmsg_new(enum et_qmsg_kind kind);
/* Frees 'm' and what it owns. Accepts NULL. */
void et_qmsg_free(struct et_qmsg *m);

#endif /* ET_AGENT_QUEUE_H */
