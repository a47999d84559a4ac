/* edgetrain agent-sim: a scripted client of the controller's management
 * channel. It registers like an agent (answering the challenge, with the
 * HMAC if given a key), sends heartbeats and optional Metrics, and prints
 * one line per frame it receives, so tests and demos can drive the
 * controller with real processes before (or without) the real agent. It
 * trains nothing.
 *
 * Lines: "challenge ...", "welcome ...", "assignment ...", "error ...",
 * "closed ...". */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <netdb.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "wire.h"

static void
usage(FILE *f)
{
    fprintf(f,
"usage: edgetrain agent-sim --controller HOST:PORT --name NAME [OPTIONS]\n"
"  --data HOST:PORT        data address to announce (default: none, the\n"
"                          controller uses the topology's)\n"
"  --gflops F --memory-mb N --cores N   figures to announce\n"
"  --key-file FILE         cluster key for the challenge's HMAC\n"
"  --silent-after-ms N     stop sending anything after N ms (the controller\n"
"                          should declare this agent dead), keep the socket\n"
"  --exit-after-ms N       close and exit after N ms\n"
"  --metrics-ms N          send Metrics every N ms once assigned\n"
"  --epoch-ms N            the reported epoch grows every N ms\n"
"  --eval                  also report a made-up evaluation (rising test\n"
"                          accuracy) of each finished epoch\n"
"  --current RUN:GEN:STAGE:COUNT:FIRST-LAST:EPOCH   claim to be running\n"
"                          that (Hello.current, token 16 x 0xab), as after\n"
"                          a controller restart\n");
}

static long
ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int
send_frame(int fd, int type, const ProtobufCMessage *msg)
{
    uint8_t buf[65536];
    size_t n = et_frame_encode_buf(buf, sizeof buf, type, msg, 0);
    if (!n) {
        return EMSGSIZE;
    }
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(fd, buf + off, n - off);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            return errno ? errno : EPIPE;
        }
        off += (size_t) w;
    }
    return 0;
}

static void
print_peer(const char *dir, const Edgetrain__Peer *p)
{
    printf(" %s=%s@%s subs=[", dir, p->name, p->data_addr);
    for (size_t k = 0; k < p->n_substreams; k++) {
        const Edgetrain__SubStream *s = p->substreams[k];
        printf("%s%u:%u->%u w=%.4f hops=", k ? ";" : "", s->id, s->local_port,
               s->remote_port, s->weight);
        for (size_t h = 0; h < s->n_hops; h++) {
            printf("%s%s", h ? "," : "", s->hops[h]);
        }
    }
    printf("]");
}

static void
print_assignment(const Edgetrain__Assignment *a)
{
    printf("assignment run=%016llx gen=%u stage=%u/%u blocks=%u-%u",
           (unsigned long long) a->run_id, a->generation, a->stage_index,
           a->stage_count, a->first_block, a->last_block);
    if (a->model) {
        printf(" alpha=%g input=%u classes=%u batch=%u epochs=%u",
               a->model->alpha, a->model->input_size, a->model->classes,
               a->model->batch, a->model->epochs);
    }
    printf(" token=%zuB:", a->token.len);
    for (size_t i = 0; i < a->token.len && i < 4; i++) {
        printf("%02x", a->token.data[i]);
    }
    printf(" start_epoch=%u", a->start_epoch);
    for (size_t i = 0; i < a->n_upstream; i++) {
        print_peer("up", a->upstream[i]);
    }
    for (size_t i = 0; i < a->n_downstream; i++) {
        print_peer("down", a->downstream[i]);
    }
    if (a->data_spec && a->data_spec[0]) {
        printf(" data=%s", a->data_spec);
    }
    /* The whole token on a line of its own, for tests that play an
     * upstream (tests/integration/security.sh). */
    printf("\ntoken-hex ");
    for (size_t i = 0; i < a->token.len; i++) {
        printf("%02x", a->token.data[i]);
    }
    printf("\n");
}

int
cmd_agent_sim(int argc, char **argv)
{
    static const struct option options[] = {
        {"controller", required_argument, NULL, 'c'},
        {"name", required_argument, NULL, 'n'},
        {"data", required_argument, NULL, 'd'},
        {"gflops", required_argument, NULL, 'g'},
        {"memory-mb", required_argument, NULL, 'm'},
        {"cores", required_argument, NULL, 'C'},
        {"key-file", required_argument, NULL, 'k'},
        {"silent-after-ms", required_argument, NULL, 's'},
        {"exit-after-ms", required_argument, NULL, 'x'},
        {"metrics-ms", required_argument, NULL, 'M'},
        {"epoch-ms", required_argument, NULL, 'e'},
        {"current", required_argument, NULL, 'u'},
        {"eval", no_argument, NULL, 'E'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *controller = NULL, *name = NULL, *data = "", *key_file = NULL;
    double gflops = 0;
    long memory_mb = 0, cores = 0, silent_after = -1, exit_after = -1;
    long metrics_ms = 0, epoch_ms = 0;
    bool eval = false;
    const char *current = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'c': controller = optarg; break;
        case 'n': name = optarg; break;
        case 'd': data = optarg; break;
        case 'g': gflops = atof(optarg); break;
        case 'm': memory_mb = atol(optarg); break;
        case 'C': cores = atol(optarg); break;
        case 'k': key_file = optarg; break;
        case 's': silent_after = atol(optarg); break;
        case 'x': exit_after = atol(optarg); break;
        case 'M': metrics_ms = atol(optarg); break;
        case 'e': epoch_ms = atol(optarg); break;
        case 'u': current = optarg; break;
        case 'E': eval = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!controller || !name) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    uint8_t key[4096];
    size_t key_len = 0;
    if (key_file) {
        FILE *f = fopen(key_file, "rb");
        if (!f) {
            fprintf(stderr, "agent-sim: %s: %s\n", key_file, strerror(errno));
            return 1;
        }
        key_len = fread(key, 1, sizeof key, f);
        fclose(f);
        while (key_len && (key[key_len - 1] == '\n' || key[key_len - 1] == '\r')) {
            key_len--;
        }
    }
    char host[256];
    const char *colon = strrchr(controller, ':');
    if (!colon || (size_t) (colon - controller) >= sizeof host) {
        fprintf(stderr, "agent-sim: bad --controller %s\n", controller);
        return 2;
    }
    memcpy(host, controller, colon - controller);
    host[colon - controller] = '\0';
    struct addrinfo hints = {0}, *ai;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(host, colon + 1, &hints, &ai)) {
        fprintf(stderr, "agent-sim: cannot resolve %s\n", controller);
        return 1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen)) {
        fprintf(stderr, "agent-sim: connect %s: %s\n", controller,
                strerror(errno));
        freeaddrinfo(ai);
        return 1;
    }
    freeaddrinfo(ai);

    long start = ms_now(), next_hb = -1, next_metrics = -1;
    long hb_ms = 1000;
    uint64_t seq = 0, run_id = 0, step = 0;
    bool assigned = false;
    size_t cap = 1 << 20, len = 0;
    uint8_t *buf = malloc(cap);
    int rc = 0;
    for (;;) {
        long now = ms_now();
        bool silent = silent_after >= 0 && now - start >= silent_after;
        if (exit_after >= 0 && now - start >= exit_after) {
            printf("closed by agent-sim after %ld ms\n", now - start);
            break;
        }
        if (!silent && next_hb >= 0 && now >= next_hb) {
            Edgetrain__Heartbeat hb = EDGETRAIN__HEARTBEAT__INIT;
            hb.seq = ++seq;
            hb.time_us = (uint64_t) now * 1000;
            send_frame(fd, ET_MSG_HEARTBEAT, &hb.base);
            next_hb = now + hb_ms;
        }
        if (!silent && assigned && metrics_ms > 0 && now >= next_metrics) {
            Edgetrain__Metrics m = EDGETRAIN__METRICS__INIT;
            m.name = (char *) name;
            m.run_id = run_id;
            m.epoch = epoch_ms > 0 ? (uint32_t) ((now - start) / epoch_ms) : 0;
            m.step = ++step;
            m.images_per_s = eval ? 100 + (double) (step % 7) : 100;
            m.loss = 2.0 / (1 + step);
            if (eval && m.epoch > 0) {
                /* A made-up evaluation of the last finished epoch, so
                 * dashboards and status readers see accuracy rise. */
                m.eval_done = true;
                m.epoch -= 1;
                m.test_top1 = 1.0 - 0.9 / (m.epoch + 1.5);
                m.test_top3 = 1.0 - 0.5 / (m.epoch + 1.5);
            }
            send_frame(fd, ET_MSG_METRICS, &m.base);
            next_metrics = now + metrics_ms;
        }
        long wait = 200;
        if (next_hb >= 0 && !silent) {
            wait = next_hb - now < wait ? next_hb - now : wait;
        }
        struct pollfd p = {fd, POLLIN, 0};
        int pr = poll(&p, 1, wait < 0 ? 0 : (int) wait);
        if (pr <= 0) {
            continue;
        }
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        ssize_t r = read(fd, buf + len, cap - len);
        if (r <= 0) {
            printf("closed by controller\n");
            break;
        }
        len += (size_t) r;
        for (;;) {
            struct et_frame f;
            size_t used;
            memset(&f, 0, sizeof f);
            int e = et_frame_decode_buf(buf, len, false, &f, &used);
            if (e == ET_WIRE_AGAIN) {
                break;
            }
            if (e) {
                printf("bad frame from controller: %s\n", et_wire_strerror(e));
                rc = 1;
                goto out;
            }
            switch (f.hdr.type) {
            case ET_MSG_CHALLENGE: {
                const Edgetrain__Challenge *ch = (void *) f.msg;
                printf("challenge nonce=%zuB version=%u\n", ch->nonce.len,
                       ch->protocol_version);
                Edgetrain__Hello h = EDGETRAIN__HELLO__INIT;
                uint8_t mac[EVP_MAX_MD_SIZE];
                unsigned int mac_len = 0;
                if (key_len) {
                    HMAC(EVP_sha256(), key, (int) key_len, ch->nonce.data,
                         ch->nonce.len, mac, &mac_len);
                    h.auth.data = mac;
                    h.auth.len = mac_len;
                }
                h.name = (char *) name;
                h.data_addr = (char *) data;
                h.cores = (uint32_t) cores;
                h.memory_bytes = (uint64_t) memory_mb << 20;
                h.gflops = gflops;
                h.protocol_version = 1;
                h.software_version = "agent-sim " EDGETRAIN_VERSION;
                Edgetrain__Assignment cur = EDGETRAIN__ASSIGNMENT__INIT;
                uint8_t token[16];
                unsigned long long run;
                unsigned gen, stage, count, first, last, epoch;
                if (current && sscanf(current, "%llx:%u:%u:%u:%u-%u:%u", &run,
                                      &gen, &stage, &count, &first, &last,
                                      &epoch) == 7) {
                    memset(token, 0xab, sizeof token);
                    cur.run_id = run;
                    cur.generation = gen;
                    cur.stage_index = stage;
                    cur.stage_count = count;
                    cur.first_block = first;
                    cur.last_block = last;
                    cur.token.data = token;
                    cur.token.len = sizeof token;
                    h.current = &cur;
                    h.last_epoch = epoch;
                }
                send_frame(fd, ET_MSG_HELLO, &h.base);
                break;
            }
            case ET_MSG_WELCOME: {
                const Edgetrain__Welcome *w = (void *) f.msg;
                printf("welcome controller=\"%s\" heartbeat_ms=%u "
                       "timeout_ms=%u\n", w->controller_id, w->heartbeat_ms,
                       w->timeout_ms);
                hb_ms = w->heartbeat_ms ? w->heartbeat_ms : 1000;
                next_hb = ms_now();
                break;
            }
            case ET_MSG_HEARTBEAT:
                break;
            case ET_MSG_ASSIGNMENT: {
                const Edgetrain__Assignment *a = (void *) f.msg;
                print_assignment(a);
                run_id = a->run_id;
                assigned = true;
                next_metrics = ms_now();
                break;
            }
            case ET_MSG_ERROR: {
                const Edgetrain__Error *er = (void *) f.msg;
                printf("error code=%u message=\"%s\"\n", er->code,
                       er->message);
                rc = 1;
                break;
            }
            default:
                printf("unexpected %s\n", et_msg_type_name(f.hdr.type));
                break;
            }
            fflush(stdout);
            et_frame_clear(&f);
            memmove(buf, buf + used, len - used);
            len -= used;
        }
        fflush(stdout);
    }
out:
    fflush(stdout);
    close(fd);
    free(buf);
    return rc;
}
