/* ctlq: the one queue between the controller's two threads.
 *
 * The controller runs two event loops (DESIGN.md): libevent (agents, HTTP,
 * planning) on the main thread and libopenvswitch's poll loop (OpenFlow) on
 * the southbound thread. They share no mutable state; they exchange owned
 * messages through two ctlq instances, one per direction:
 *
 *   main      --ctlq (to_sb)-->   southbound    desired flows, stop
 *   southbound --ctlq (to_ctl)--> main          switch up/down, port stats,
 *                                               port status, flows installed
 *
 * A ctlq is a mutex-protected FIFO plus a wake-up fd (an eventfd, a pipe
 * where there is none). The consumer waits for the fd to become readable:
 * libevent with event_new(fd, EV_READ|EV_PERSIST), the OVS poll loop with
 * poll_fd_wait(ctlq_fd(q), POLLIN). It then calls ctlq_pop() until it
 * returns NULL; ctlq_pop() clears the wake-up when the queue runs empty.
 *
 * Ownership: ctlq_push() takes the message; ctlq_pop() hands it to the
 * caller, who frees it with ctlq_msg_destroy(). */
#ifndef ET_CTLQ_H
#define ET_CTLQ_H 1

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "southbound.h"

enum ctlq_type {
    /* main -> southbound */
    CTLQ_SET_FLOWS,        /* u.flows: the complete desired flow set */
    CTLQ_STOP,             /* southbound thread exits its loop */

    /* southbound -> main */
    CTLQ_SWITCH_UP,        /* u.sw: handshake done (dpid known) */
    CTLQ_SWITCH_DOWN,      /* u.sw: connection lost */
    CTLQ_PORT_STATS,       /* u.stats: one switch's port counters */
    CTLQ_PORT_STATUS,      /* u.port: a port went up or down */
    CTLQ_FLOWS_INSTALLED,  /* u.installed: a switch acknowledged (barrier or
                            * bundle commit) flow set 'generation' */
};

struct ctlq_msg {
    enum ctlq_type type;
    union {
        struct sb_flow_set *flows;          /* CTLQ_SET_FLOWS, owned */
        struct sb_switch_event sw;          /* CTLQ_SWITCH_UP/DOWN */
        struct sb_port_stats_batch *stats;  /* CTLQ_PORT_STATS, owned */
        struct sb_port_status port;         /* CTLQ_PORT_STATUS */
        struct sb_flows_installed installed;/* CTLQ_FLOWS_INSTALLED */
    } u;
    struct ctlq_msg *next;                  /* private to ctlq */
};

struct ctlq;

/* Creates an empty queue. Returns NULL if no fd or memory is available. */
struct ctlq *ctlq_create(void);

/* Destroys 'q' and every message still in it. Accepts NULL. */
void ctlq_destroy(struct ctlq *q);

/* Appends 'msg' (taking ownership) and wakes the consumer. Thread-safe. */
void ctlq_push(struct ctlq *q, struct ctlq_msg *msg);

/* Removes and returns the oldest message, or NULL if the queue is empty.
 * Thread-safe; meant for a single consumer thread. */
struct ctlq_msg *ctlq_pop(struct ctlq *q);

/* The fd that is readable while the queue may hold messages. */
int ctlq_fd(const struct ctlq *q);

/* Returns a zeroed message of 'type' (never NULL: aborts on OOM, as the
 * OVS xmalloc does). */
struct ctlq_msg *ctlq_msg_create(enum ctlq_type type);

/* Frees 'msg' and what its union member owns. Accepts NULL. */
void ctlq_msg_destroy(struct ctlq_msg *msg);

#endif /* ET_CTLQ_H */
