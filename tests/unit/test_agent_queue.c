/* The agent's thread hand-off queue: FIFO order, the chunk bound (control
 * messages always fit), a producer blocked on a full queue resumes when the
 * consumer pops, the eventfd wakes the I/O side, close unblocks everyone. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "queue.h"

static struct et_qmsg *
chunk_msg(int tag)
{
    struct et_qmsg *m = et_qmsg_new(ET_QMSG_CHUNK);
    m->conn_id = (uint64_t) tag;       /* a label to check the order */
    return m;
}

static bool
fd_readable(int fd, int ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, ms) != 1) {
        return false;
    }
    uint64_t v;
    return read(fd, &v, sizeof v) == sizeof v;
}

static void
test_order_and_bound(void **state)
{
    int efd = eventfd(0, EFD_NONBLOCK);
    struct et_queue q;
    assert_int_equal(et_queue_init(&q, 3, efd, true, false), 0);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(et_queue_push(&q, chunk_msg(i), false), 0);
    }
    struct et_qmsg *extra = chunk_msg(99);
    assert_int_equal(et_queue_push(&q, extra, false), EAGAIN);
    assert_false(et_queue_has_room(&q));
    /* Control messages are not held back by data. */
    assert_int_equal(et_queue_push(&q, et_qmsg_new(ET_QMSG_STOP), false), 0);
    assert_true(fd_readable(efd, 100));            /* wake_on_push */
    for (int i = 0; i < 3; i++) {
        struct et_qmsg *m = et_queue_pop(&q, false);
        assert_non_null(m);
        assert_int_equal(m->kind, ET_QMSG_CHUNK);
        assert_int_equal(m->conn_id, i);
        et_qmsg_free(m);
    }
    struct et_qmsg *m = et_queue_pop(&q, false);
    assert_int_equal(m->kind, ET_QMSG_STOP);
    et_qmsg_free(m);
    assert_null(et_queue_pop(&q, false));
    assert_int_equal(et_queue_push(&q, extra, false), 0);
    et_queue_destroy(&q);
    close(efd);
}

struct producer {
    struct et_queue *q;
    int n, pushed, last_rc;
};

static void *
produce(void *arg)
{
    struct producer *p = arg;
    for (int i = 0; i < p->n; i++) {
        struct et_qmsg *m = chunk_msg(i);
        p->last_rc = et_queue_push(p->q, m, true);
        if (p->last_rc) {
            et_qmsg_free(m);
            return NULL;
        }
        __atomic_add_fetch(&p->pushed, 1, __ATOMIC_SEQ_CST);
    }
    return NULL;
}

/* A producer faster than its consumer never has more than 'cap' chunks
 * queued, and each pop from a full queue wakes the I/O side. */
static void
test_blocking_producer(void **state)
{
    int efd = eventfd(0, EFD_NONBLOCK);
    struct et_queue q;
    et_queue_init(&q, 2, efd, false, true);
    struct producer p = {.q = &q, .n = 50};
    pthread_t t;
    pthread_create(&t, NULL, produce, &p);
    usleep(50 * 1000);
    assert_int_equal(__atomic_load_n(&p.pushed, __ATOMIC_SEQ_CST), 2);
    assert_int_equal(et_queue_chunks(&q), 2);
    for (int i = 0; i < 50; i++) {
        struct et_qmsg *m = et_queue_pop(&q, true);
        assert_non_null(m);
        assert_int_equal(m->conn_id, i);
        assert_true(et_queue_chunks(&q) <= 2);
        et_qmsg_free(m);
        if (i == 0) {
            assert_true(fd_readable(efd, 100));    /* wake_on_room */
        }
    }
    pthread_join(t, NULL);
    assert_int_equal(p.pushed, 50);
    et_queue_destroy(&q);
    close(efd);
}

static void *
consume(void *arg)
{
    return et_queue_pop(arg, true);
}

/* Closing wakes a blocked consumer (NULL) and a blocked producer (EPIPE). */
static void
test_close_unblocks(void **state)
{
    struct et_queue q;
    et_queue_init(&q, 1, -1, false, false);
    pthread_t c;
    pthread_create(&c, NULL, consume, &q);
    usleep(20 * 1000);
    et_queue_close(&q);
    void *got;
    pthread_join(c, &got);
    assert_null(got);

    struct et_queue q2;
    et_queue_init(&q2, 1, -1, false, false);
    struct producer p = {.q = &q2, .n = 5};
    pthread_t t;
    pthread_create(&t, NULL, produce, &p);
    usleep(20 * 1000);
    assert_int_equal(p.pushed, 1);
    et_queue_close(&q2);
    pthread_join(t, NULL);
    assert_int_equal(p.last_rc, EPIPE);
    struct et_qmsg *stop = et_qmsg_new(ET_QMSG_STOP);
    assert_int_equal(et_queue_push(&q2, stop, false), EPIPE);
    et_qmsg_free(stop);
    et_queue_destroy(&q);
    et_queue_destroy(&q2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_bound),
        cmocka_unit_test(test_blocking_producer),
        cmocka_unit_test(test_close_unblocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
