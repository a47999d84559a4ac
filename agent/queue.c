/* Thread hand-off queue: see queue.h. */
#include "queue.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "stream.h"

int
et_queue_init(struct et_queue *q, size_t cap, int wake_fd, bool wake_on_push,
              bool wake_on_room)
{
    q->head = q->tail = NULL;
    q->n_chunks = 0;
    q->cap = cap ? cap : 1;
    q->wake_fd = wake_fd;
    q->wake_on_push = wake_on_push;
    q->wake_on_room = wake_on_room;
    q->closed = false;
    if (pthread_mutex_init(&q->mu, NULL)) {
        return ENOMEM;
    }
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    int err = pthread_cond_init(&q->cond, &ca);
    pthread_condattr_destroy(&ca);
    return err;
}

void
et_queue_destroy(struct et_queue *q)
{
    struct et_qmsg *m;
    while ((m = q->head)) {
        q->head = m->next;
        et_qmsg_free(m);
    }
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cond);
}

static void
wake(int fd)
{
    uint64_t one = 1;
    if (fd >= 0 && write(fd, &one, sizeof one) < 0) {
        /* The counter is saturated: the reader is awake anyway. */
    }
}

int
et_queue_push(struct et_queue *q, struct et_qmsg *m, bool block)
{
    bool chunk = m->kind == ET_QMSG_CHUNK;
    pthread_mutex_lock(&q->mu);
    while (chunk && q->n_chunks >= q->cap && !q->closed) {
        if (!block) {
            pthread_mutex_unlock(&q->mu);
            return EAGAIN;
        }
        pthread_cond_wait(&q->cond, &q->mu);
    }
    if (q->closed) {
        pthread_mutex_unlock(&q->mu);
        return EPIPE;
    }
    m->next = NULL;
    if (q->tail) {
        q->tail->next = m;
    } else {
        q->head = m;
    }
    q->tail = m;
    q->n_chunks += chunk;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->mu);
    if (q->wake_on_push) {
        wake(q->wake_fd);
    }
    return 0;
}

struct et_qmsg *
et_queue_pop(struct et_queue *q, bool block)
{
    pthread_mutex_lock(&q->mu);
    while (!q->head && block && !q->closed) {
        pthread_cond_wait(&q->cond, &q->mu);
    }
    struct et_qmsg *m = q->head;
    bool room = false;
    if (m) {
        q->head = m->next;
        if (!q->head) {
            q->tail = NULL;
        }
        if (m->kind == ET_QMSG_CHUNK) {
            room = q->n_chunks-- == q->cap;
        }
        pthread_cond_broadcast(&q->cond);
    }
    pthread_mutex_unlock(&q->mu);
    if (room && q->wake_on_room) {
        wake(q->wake_fd);
    }
    return m;
}

bool
et_queue_has_room(struct et_queue *q)
{
    pthread_mutex_lock(&q->mu);
    bool room = q->n_chunks < q->cap && !q->closed;
    pthread_mutex_unlock(&q->mu);
    return room;
}

size_t
et_queue_chunks(struct et_queue *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->n_chunks;
    pthread_mutex_unlock(&q->mu);
    return n;
}

void
et_queue_close(struct et_queue *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = true;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->mu);
    wake(q->wake_fd);
}

struct et_qmsg *
et_qmsg_new(enum et_qmsg_kind kind)
{
    struct et_qmsg *m = calloc(1, sizeof *m);
    if (m) {
        m->kind = kind;
    }
    return m;
}

void
et_qmsg_free(struct et_qmsg *m)
{
    if (m) {
        et_chunk_free(m->chunk);
        free(m->meta);
        free(m->payload);
        free(m);
    }
}
