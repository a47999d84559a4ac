/* ctlq: FIFO order, wake-up fd semantics, and a producer thread. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <poll.h>
#include <pthread.h>
#include <stdlib.h>

#include "ctlq.h"

static bool
readable(struct ctlq *q)
{
    struct pollfd p = {.fd = ctlq_fd(q), .events = POLLIN};
    return poll(&p, 1, 0) == 1;
}

static void
test_fifo_and_wakeup(void **state)
{
    struct ctlq *q = ctlq_create();
    assert_non_null(q);
    assert_false(readable(q));
    assert_null(ctlq_pop(q));
    for (uint32_t i = 0; i < 5; i++) {
        struct ctlq_msg *m = ctlq_msg_create(CTLQ_PORT_STATUS);
        m->u.port.port_no = i;
        ctlq_push(q, m);
        assert_true(readable(q));
    }
    for (uint32_t i = 0; i < 5; i++) {
        struct ctlq_msg *m = ctlq_pop(q);
        assert_non_null(m);
        assert_int_equal(m->u.port.port_no, i);
        /* Still readable while messages remain; clear once empty. */
        assert_int_equal(readable(q), i < 4);
        ctlq_msg_destroy(m);
    }
    assert_null(ctlq_pop(q));
    /* Owned payloads are freed with the queue. */
    struct ctlq_msg *m = ctlq_msg_create(CTLQ_SET_FLOWS);
    m->u.flows = sb_flow_set_create(1);
    ctlq_push(q, m);
    ctlq_destroy(q);
}

#define N_THREAD_MSGS 20000

static void *
producer(void *q_)
{
    struct ctlq *q = q_;
    for (uint32_t i = 0; i < N_THREAD_MSGS; i++) {
        struct ctlq_msg *m = ctlq_msg_create(CTLQ_PORT_STATS);
        m->u.stats = calloc(1, sizeof *m->u.stats);
        m->u.stats->dpid = i;
        ctlq_push(q, m);
    }
    return NULL;
}

static void
test_threads(void **state)
{
    struct ctlq *q = ctlq_create();
    pthread_t t;
    pthread_create(&t, NULL, producer, q);
    uint32_t next = 0;
    while (next < N_THREAD_MSGS) {
        struct pollfd p = {.fd = ctlq_fd(q), .events = POLLIN};
        assert_int_equal(poll(&p, 1, 5000), 1);   /* a wake-up never lost */
        struct ctlq_msg *m;
        while ((m = ctlq_pop(q)) != NULL) {
            assert_int_equal(m->u.stats->dpid, next);
            next++;
            ctlq_msg_destroy(m);
        }
    }
    pthread_join(t, NULL);
    ctlq_destroy(q);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_and_wakeup),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
