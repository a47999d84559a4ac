/* ctlq: mutex-protected FIFO with a wake-up fd. See ctlq.h. */
#include "ctlq.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/eventfd.h>
#endif

struct ctlq {
    pthread_mutex_t mutex;
    struct ctlq_msg *head, *tail;   /* FIFO, guarded by 'mutex' */
    bool signalled;                 /* wake-up fd readable; guarded too */
    int rfd, wfd;                   /* same fd for an eventfd */
};

struct ctlq *
ctlq_create(void)
{
    struct ctlq *q = calloc(1, sizeof *q);
    if (!q) {
        return NULL;
    }
#ifdef __linux__
    q->rfd = q->wfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->rfd < 0)
#endif
    {
        int fds[2];
        if (pipe(fds)) {
            free(q);
            return NULL;
        }
        for (int i = 0; i < 2; i++) {
            fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
            fcntl(fds[i], F_SETFD, FD_CLOEXEC);
        }
        q->rfd = fds[0];
        q->wfd = fds[1];
    }
    pthread_mutex_init(&q->mutex, NULL);
    return q;
}

void
ctlq_destroy(struct ctlq *q)
{
    if (!q) {
        return;
    }
    struct ctlq_msg *m;
    while ((m = ctlq_pop(q)) != NULL) {
        ctlq_msg_destroy(m);
    }
    if (q->wfd != q->rfd) {
        close(q->wfd);
    }
    close(q->rfd);
    pthread_mutex_destroy(&q->mutex);
    free(q);
}

/* Makes the fd readable. Called with the mutex held. */
static void
ctlq_signal(struct ctlq *q)
{
    if (!q->signalled) {
        uint64_t one = 1;
        ssize_t n;
        do {
            n = write(q->wfd, &one, q->wfd == q->rfd ? sizeof one : 1);
        } while (n < 0 && errno == EINTR);
        q->signalled = true;
    }
}

/* Makes the fd unreadable again. Called with the mutex held. */
static void
ctlq_unsignal(struct ctlq *q)
{
    if (q->signalled) {
        uint64_t buf[8];
        while (read(q->rfd, buf, q->wfd == q->rfd ? sizeof buf[0] : sizeof buf) > 0) {
            continue;
        }
        q->signalled = false;
    }
}

void
ctlq_push(struct ctlq *q, struct ctlq_msg *msg)
{
    msg->next = NULL;
    pthread_mutex_lock(&q->mutex);
    if (q->tail) {
        q->tail->next = msg;
    } else {
        q->head = msg;
    }
    q->tail = msg;
    ctlq_signal(q);
    pthread_mutex_unlock(&q->mutex);
}

struct ctlq_msg *
ctlq_pop(struct ctlq *q)
{
    pthread_mutex_lock(&q->mutex);
    struct ctlq_msg *m = q->head;
    if (m) {
        q->head = m->next;
        if (!q->head) {
            q->tail = NULL;
        }
        m->next = NULL;
    }
    if (!q->head) {
        ctlq_unsignal(q);
    }
    pthread_mutex_unlock(&q->mutex);
    return m;
}

int
ctlq_fd(const struct ctlq *q)
{
    return q->rfd;
}

struct ctlq_msg *
ctlq_msg_create(enum ctlq_type type)
{
    struct ctlq_msg *m = calloc(1, sizeof *m);
    if (!m) {
        abort();
    }
    m->type = type;
    return m;
}

void
ctlq_msg_destroy(struct ctlq_msg *msg)
{
    if (!msg) {
        return;
    }
    switch (msg->type) {
    case CTLQ_SET_FLOWS:
        sb_flow_set_destroy(msg->u.flows);
        break;
    case CTLQ_PORT_STATS:
        if (msg->u.stats) {
            free(msg->u.stats->ports);
            free(msg->u.stats);
        }
        break;
    default:
        break;
    }
    free(msg);
}
