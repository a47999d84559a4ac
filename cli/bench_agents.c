/* bench_agents: background load for `edgetrain bench-flows --agents N`.
 * A management server (the controller's own mgmt.c, with HMAC
 * authentication) runs on its own event-loop thread, as in the controller,
 * and N `edgetrain agent-sim` processes register with it (challenge,
 * HMAC Hello), get an Assignment and stream Metrics every 50 ms, while the
 * benchmark installs flows through the southbound code on the main thread. */
#include "bench_agents.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <event2/thread.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mgmt.h"

struct bench_agents {
    struct event_base *base;
    struct mgmt *mgmt;
    pthread_t thread;
    pid_t *pids;
    size_t n;
    atomic_size_t registered;
    atomic_size_t metrics;
    char key_path[64];
};

static void
send_assignment(evutil_socket_t fd, short what, void *conn)
{
    static uint8_t token[16] = {1};
    Edgetrain__Assignment a = EDGETRAIN__ASSIGNMENT__INIT;
    a.run_id = 1;
    a.generation = 1;
    a.stage_count = 1;
    a.first_block = 1;
    a.last_block = 13;
    a.token.data = token;
    a.token.len = sizeof token;
    mgmt_send(conn, ET_MSG_ASSIGNMENT, &a.base);
}

static int
on_hello(void *aux, struct mgmt_conn *conn, const Edgetrain__Hello *h,
         char *reason, size_t size)
{
    struct bench_agents *b = aux;
    b->registered++;
    /* After the Welcome that mgmt sends when this returns. */
    struct timeval zero = {0, 0};
    event_base_once(b->base, -1, EV_TIMEOUT, send_assignment, conn, &zero);
    return 0;
}

static void
on_frame(void *aux, struct mgmt_conn *conn, int type,
         const ProtobufCMessage *msg, const uint8_t *payload, size_t len)
{
    struct bench_agents *b = aux;
    if (type == ET_MSG_METRICS) {
        b->metrics++;
    }
}

static void on_closed(void *aux, struct mgmt_conn *c, const char *r) { }

static void *
loop_main(void *b_)
{
    struct bench_agents *b = b_;
    event_base_loop(b->base, EVLOOP_NO_EXIT_ON_EMPTY);
    return NULL;
}

int
bench_agents_start(size_t n, struct bench_agents **bp, char *err,
                   size_t err_size)
{
    struct bench_agents *b = calloc(1, sizeof *b);
    *bp = NULL;
    evthread_use_pthreads();
    b->base = event_base_new();
    snprintf(b->key_path, sizeof b->key_path, "/tmp/et-bench-key.%d",
             (int) getpid());
    FILE *f = fopen(b->key_path, "w");
    if (!f) {
        snprintf(err, err_size, "%s: %s", b->key_path, strerror(errno));
        return errno;
    }
    fputs("bench-cluster-key\n", f);
    fclose(f);
    static const uint8_t key[] = "bench-cluster-key";
    struct mgmt_config mc = {"127.0.0.1:0", 200, 3, key, sizeof key - 1,
                             "bench-flows"};
    struct mgmt_callbacks cb = {on_hello, on_frame, on_closed};
    int e = mgmt_create(b->base, &mc, &cb, b, &b->mgmt);
    if (e) {
        snprintf(err, err_size, "management server: %s", strerror(e));
        return e;
    }
    char port[16];
    snprintf(port, sizeof port, "127.0.0.1:%u", mgmt_port(b->mgmt));
    pthread_create(&b->thread, NULL, loop_main, b);
    b->pids = calloc(n, sizeof *b->pids);
    for (size_t i = 0; i < n; i++) {
        char name[32];
        snprintf(name, sizeof name, "sim%zu", i);
        pid_t p = fork();
        if (p == 0) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, 1);
            execl("/proc/self/exe", "edgetrain", "agent-sim", "--controller",
                  port, "--name", name, "--key-file", b->key_path,
                  "--metrics-ms", "50", (char *) NULL);
            _exit(127);
        }
        b->pids[b->n++] = p;
    }
    /* Wait (10 s at most) until every one registered. */
    for (int i = 0; i < 1000 && b->registered < n; i++) {
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    *bp = b;
    if (b->registered < n) {
        snprintf(err, err_size, "only %zu of %zu agents registered",
                 (size_t) b->registered, n);
        return ETIMEDOUT;
    }
    return 0;
}

size_t
bench_agents_metrics(const struct bench_agents *b)
{
    return b->metrics;
}

void
bench_agents_stop(struct bench_agents *b)
{
    if (!b) {
        return;
    }
    for (size_t i = 0; i < b->n; i++) {
        kill(b->pids[i], SIGTERM);
        waitpid(b->pids[i], NULL, 0);
    }
    event_base_loopbreak(b->base);
    pthread_join(b->thread, NULL);
    mgmt_destroy(b->mgmt);
    event_base_free(b->base);
    unlink(b->key_path);
    free(b->pids);
    free(b);
}
