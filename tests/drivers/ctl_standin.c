/* ctl_standin: a scripted controller for agent tests. It speaks the real
 * management protocol (Challenge, Hello, Welcome, Assignment) to two real
 * agents and changes their stream mid-run, which the real controller only
 * does after a network event.
 *
 *   ctl_standin --listen ADDR:PORT --data SPEC --port-base N
 *               [--switch-ms MS] [--run-ms MS]
 *
 * The first agent to register ("a1" by name is stage 1, blocks 1-4, with
 * the data; "a2" is stage 2, blocks 5-13) gets generation 1 with
 * sub-streams {0: w 0.5, 1: w 0.5}. After the first Metrics arrives plus
 * --switch-ms, generation 2: {1: w 0.8, 2: w 0.2} (sub-stream 0 removed
 * while chunks are in flight, 2 added); --switch-ms later, generation 3:
 * {1: w 0.3, 2: w 0.7}. Prints one line per event ("assign ...",
 * "metrics ...", "error ...", "checkpoint ...") and exits after --run-ms
 * or on SIGTERM. */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "stream.h"
#include "wire.h"

struct peer_conn {
    int fd;
    char name[32];
    char data_addr[64];
    uint8_t *buf;
    size_t len, cap;
};

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
    stop = 1;
}

static long
ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int
send_msg(int fd, int type, const ProtobufCMessage *m)
{
    uint8_t buf[65536];
    size_t n = et_frame_encode_buf(buf, sizeof buf, type, m, 0);
    if (!n) {
        return -1;
    }
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, buf + off, n - off);
        if (w <= 0) {
            return -1;
        }
        off += (size_t) w;
    }
    return 0;
}

/* Reads what is there; decodes complete frames into 'f' one at a time.
 * Returns 1 with a frame, 0 if more bytes are needed, -1 on EOF/error. */
static int
next_frame(struct peer_conn *p, struct et_frame *f, bool readable)
{
    if (readable) {
        if (p->cap - p->len < 65536) {
            p->cap = p->cap ? p->cap * 2 : 1 << 20;
            p->buf = realloc(p->buf, p->cap);
        }
        ssize_t r = read(p->fd, p->buf + p->len, p->cap - p->len);
        if (r <= 0) {
            return -1;
        }
        p->len += (size_t) r;
    }
    size_t used;
    int err = et_frame_decode_buf(p->buf, p->len, false, f, &used);
    if (err == ET_WIRE_AGAIN) {
        return 0;
    }
    if (err) {
        printf("error %s: bad frame: %s\n", p->name, et_wire_strerror(err));
        return -1;
    }
    /* The payload (a checkpoint) is not needed: drop the bytes now, after
     * the caller has looked at the meta only. */
    memmove(p->buf, p->buf + used, p->len - used);
    p->len -= used;
    f->payload = NULL;
    return 1;
}

static void
send_assignment(struct peer_conn *p, uint32_t gen, const char *data,
                const struct peer_conn *other, uint32_t port_base)
{
    bool first = !strcmp(p->name, "a1");
    static const struct { uint32_t id; double w; } sets[4][2] = {
        {{0, 0}, {0, 0}},
        {{0, 0.5}, {1, 0.5}},
        {{1, 0.8}, {2, 0.2}},
        {{1, 0.3}, {2, 0.7}},
    };
    Edgetrain__SubStream subs[2], *subp[2];
    for (int k = 0; k < 2; k++) {
        edgetrain__sub_stream__init(&subs[k]);
        subs[k].id = sets[gen][k].id;
        subs[k].local_port = port_base + sets[gen][k].id;
        const char *addr = first ? other->data_addr : p->data_addr;
        subs[k].remote_port = (uint32_t) atoi(strrchr(addr, ':') + 1);
        subs[k].weight = sets[gen][k].w;
        subp[k] = &subs[k];
    }
    Edgetrain__Peer peer = EDGETRAIN__PEER__INIT, *peerp = &peer;
    peer.name = first ? "a2" : "a1";
    peer.data_addr = (char *) other->data_addr;
    peer.n_substreams = 2;
    peer.substreams = subp;
    Edgetrain__ModelConfig m = EDGETRAIN__MODEL_CONFIG__INIT;
    m.alpha = 0.5f, m.input_size = 32, m.in_channels = 1, m.classes = 10;
    m.batch = 64, m.micro_batch = 16, m.epochs = 1, m.seed = 1;
    m.optimizer = "adam", m.lr = 0.004f, m.schedule = "onecycle";
    m.head_pool = 4;
    static uint8_t token[16] = "standin-token-16";
    Edgetrain__Assignment a = EDGETRAIN__ASSIGNMENT__INIT;
    a.run_id = 0x5eed;
    a.generation = gen;
    a.first_block = first ? 1 : 5;
    a.last_block = first ? 4 : 13;
    a.stage_index = first ? 0 : 1;
    a.stage_count = 2;
    a.model = &m;
    a.token.data = token;
    a.token.len = sizeof token;
    a.data_spec = first ? (char *) data : "";
    if (first) {
        a.n_downstream = 1;
        a.downstream = &peerp;
    } else {
        a.n_upstream = 1;
        a.upstream = &peerp;
    }
    send_msg(p->fd, ET_MSG_ASSIGNMENT, &a.base);
    printf("assign %s generation %u: sub-streams %u (w %.1f), %u (w %.1f)\n",
           p->name, gen, subs[0].id, subs[0].weight, subs[1].id,
           subs[1].weight);
    fflush(stdout);
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"listen", required_argument, NULL, 'l'},
        {"data", required_argument, NULL, 'd'},
        {"port-base", required_argument, NULL, 'p'},
        {"switch-ms", required_argument, NULL, 's'},
        {"run-ms", required_argument, NULL, 'r'},
        {NULL, 0, NULL, 0},
    };
    const char *listen_at = NULL, *data = "fashion-mnist";
    long port_base = 0, switch_ms = 1000, run_ms = 120000;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'l': listen_at = optarg; break;
        case 'd': data = optarg; break;
        case 'p': port_base = atol(optarg); break;
        case 's': switch_ms = atol(optarg); break;
        case 'r': run_ms = atol(optarg); break;
        default: return 2;
        }
    }
    struct sockaddr_storage ss;
    int slen;
    if (!listen_at || !port_base || et_parse_addr(listen_at, &ss, &slen)) {
        fprintf(stderr, "usage: ctl_standin --listen ADDR:PORT --port-base N "
                "[--data SPEC] [--switch-ms MS] [--run-ms MS]\n");
        return 2;
    }
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    int lfd = socket(ss.ss_family, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(lfd, (struct sockaddr *) &ss, (socklen_t) slen)
        || listen(lfd, 8)) {
        perror("ctl_standin: listen");
        return 1;
    }
    printf("listening\n");
    fflush(stdout);

    /* Register both agents. */
    struct peer_conn peers[2];
    memset(peers, 0, sizeof peers);
    for (int i = 0; i < 2 && !stop; i++) {
        struct peer_conn *p = &peers[i];
        p->fd = accept(lfd, NULL, NULL);
        if (p->fd < 0) {
            return 1;
        }
        uint8_t nonce[16] = {1};
        Edgetrain__Challenge ch = EDGETRAIN__CHALLENGE__INIT;
        ch.nonce.data = nonce;
        ch.nonce.len = sizeof nonce;
        ch.protocol_version = 1;
        send_msg(p->fd, ET_MSG_CHALLENGE, &ch.base);
        struct et_frame f;
        int r;
        while ((r = next_frame(p, &f, true)) == 0) {
            continue;
        }
        if (r < 0 || f.hdr.type != ET_MSG_HELLO) {
            fprintf(stderr, "ctl_standin: no Hello\n");
            return 1;
        }
        Edgetrain__Hello *h = (Edgetrain__Hello *) f.msg;
        snprintf(p->name, sizeof p->name, "%s", h->name);
        snprintf(p->data_addr, sizeof p->data_addr, "%s", h->data_addr);
        printf("hello %s data %s gflops %.1f\n", p->name, p->data_addr,
               h->gflops);
        et_frame_clear(&f);
        Edgetrain__Welcome w = EDGETRAIN__WELCOME__INIT;
        w.controller_id = "standin";
        w.heartbeat_ms = 500;
        w.timeout_ms = 5000;
        send_msg(p->fd, ET_MSG_WELCOME, &w.base);
    }
    if (strcmp(peers[0].name, "a1")) {      /* keep a1 first */
        struct peer_conn t = peers[0];
        peers[0] = peers[1];
        peers[1] = t;
    }
    uint32_t gen = 1;
    send_assignment(&peers[1], gen, data, &peers[0], (uint32_t) port_base);
    send_assignment(&peers[0], gen, data, &peers[1], (uint32_t) port_base);

    long start = ms_now(), next_switch = 0;
    while (!stop && ms_now() - start < run_ms) {
        struct pollfd pf[2] = {{.fd = peers[0].fd, .events = POLLIN},
                               {.fd = peers[1].fd, .events = POLLIN}};
        poll(pf, 2, 50);
        for (int i = 0; i < 2; i++) {
            if (peers[i].fd < 0 || !(pf[i].revents & (POLLIN | POLLHUP))) {
                continue;
            }
            struct et_frame f;
            int r = next_frame(&peers[i], &f, true);
            while (r == 1) {
                if (f.hdr.type == ET_MSG_METRICS) {
                    Edgetrain__Metrics *m = (Edgetrain__Metrics *) f.msg;
                    printf("metrics %s epoch %u step %llu eval_done %d "
                           "top1 %.4f dup %llu gap %llu\n", m->name, m->epoch,
                           (unsigned long long) m->step, m->eval_done,
                           m->test_top1,
                           (unsigned long long) m->chunks_duplicate,
                           (unsigned long long) m->chunks_gap);
                    if (!next_switch && gen == 1) {
                        next_switch = ms_now() + switch_ms;
                    }
                } else if (f.hdr.type == ET_MSG_ERROR) {
                    printf("error %s: %s\n", peers[i].name,
                           ((Edgetrain__Error *) f.msg)->message);
                } else if (f.hdr.type == ET_MSG_CHECKPOINT) {
                    printf("checkpoint %s\n", peers[i].name);
                }
                et_frame_clear(&f);
                r = next_frame(&peers[i], &f, false);
            }
            if (r < 0) {
                printf("closed %s\n", peers[i].name);
                close(peers[i].fd);
                peers[i].fd = -1;
            }
        }
        fflush(stdout);
        if (next_switch && ms_now() >= next_switch && gen < 3
            && peers[0].fd >= 0 && peers[1].fd >= 0) {
            gen++;
            send_assignment(&peers[1], gen, data, &peers[0],
                            (uint32_t) port_base);
            send_assignment(&peers[0], gen, data, &peers[1],
                            (uint32_t) port_base);
            next_switch = gen < 3 ? ms_now() + switch_ms : 0;
        }
    }
    for (int i = 0; i < 2; i++) {
        if (peers[i].fd >= 0) {
            close(peers[i].fd);
        }
        free(peers[i].buf);
    }
    close(lfd);
    return 0;
}
