/* edgetrain infer --agent HOST:PORT: top-3 classes of images under the cut
 * model served by a running agent (the one holding stage 1), over the
 * agent's data port: InferRequest (f32 images, normalised as the dataset's
 * batches are) -> InferReply. */
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "batch.h"
#include "commands.h"
#include "dataset.h"
#include "infer_input.h"
#include "stream.h"
#include "wire.h"

static int
write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n) {
        ssize_t w = write(fd, b, n);
        if (w <= 0) {
            return -1;
        }
        b += w;
        n -= (size_t) w;
    }
    return 0;
}

/* Reads one frame (no payload expected) within 'ms'. Returns 0 or -1. */
static int
read_frame(int fd, struct et_frame *f, uint8_t *buf, size_t cap, int ms)
{
    size_t have = 0;
    for (;;) {
        size_t used;
        int err = et_frame_decode_buf(buf, have, false, f, &used);
        if (!err) {
            return 0;
        }
        if (err != ET_WIRE_AGAIN) {
            fprintf(stderr, "edgetrain infer: bad reply: %s\n",
                    et_wire_strerror(err));
            return -1;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (have == cap || poll(&p, 1, ms) != 1) {
            fprintf(stderr, "edgetrain infer: no reply from the agent\n");
            return -1;
        }
        ssize_t r = read(fd, buf + have, cap - have);
        if (r <= 0) {
            fprintf(stderr, "edgetrain infer: the agent closed the "
                    "connection\n");
            return -1;
        }
        have += (size_t) r;
    }
}

int
cmd_infer_agent(int argc, char **argv)
{
    static const struct option opts[] = {
        {"agent", required_argument, NULL, 'a'},
        {"data", required_argument, NULL, 'd'},
        {"input", required_argument, NULL, 'i'},
        {"no-invert", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *agent = NULL, *data = "fashion-mnist";
    long input = 32;
    bool invert = true;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'a': agent = optarg; break;
        case 'd': data = optarg; break;
        case 'i': input = atol(optarg); break;
        case 'n': invert = false; break;
        default:
            fprintf(c == 'h' ? stdout : stderr,
"usage: edgetrain infer --agent HOST:PORT [--data SPEC] [--input N]\n"
"       [--no-invert] FILE...\n"
"Asks the agent holding stage 1 (its data address) for the top-3 classes\n"
"of each FILE (PNG/PGM image, or test:INDEX / train:INDEX of --data) under\n"
"its cut model. --data is the run's dataset spec (normalisation and class\n"
"names; default fashion-mnist), --input the model's input side (32).\n");
            return c == 'h' ? 0 : 2;
        }
    }
    if (!agent || optind >= argc || input < 8 || input > 1024) {
        fprintf(stderr, "edgetrain infer: need --agent HOST:PORT and FILE... "
                "(see --help)\n");
        return 2;
    }
    struct dataset_options dopt;
    dataset_options_init(&dopt);
    char spec[512];
    agent_parse_data_spec(data, spec, sizeof spec, &dopt);
    struct dataset *ds;
    char *derr = NULL;
    if (dataset_open(spec, &dopt, &ds, &derr)) {
        fprintf(stderr, "edgetrain infer: %s\n", derr);
        free(derr);
        return 1;
    }
    struct sockaddr_storage ss;
    int slen;
    int fd = -1;
    if (et_parse_addr(agent, &ss, &slen)
        || (fd = socket(ss.ss_family, SOCK_STREAM, 0)) < 0
        || connect(fd, (struct sockaddr *) &ss, (socklen_t) slen)) {
        fprintf(stderr, "edgetrain infer: cannot connect to agent %s\n",
                agent);
        dataset_destroy(ds);
        if (fd >= 0) {
            close(fd);
        }
        return 1;
    }
    size_t per = (size_t) input * input;
    float *x = malloc(per * sizeof *x);
    uint8_t *buf = malloc(1 << 20);
    int rc = 0;
    for (int a = optind; a < argc && !rc; a++) {
        const char *arg = argv[a];
        const char *label;
        if (infer_input_load(arg, ds, (uint32_t) input, ds->mean, ds->std,
                             invert, x, &label)) {
            rc = 1;
            break;
        }
        uint32_t shape[4] = {1, (uint32_t) input, (uint32_t) input, 1};
        Edgetrain__InferRequest r = EDGETRAIN__INFER_REQUEST__INIT;
        r.n_shape = 4;
        r.shape = shape;
        r.upto = 1;
        r.top = 3;
        uint8_t hdr[256];
        size_t n = et_frame_encode_buf(hdr, sizeof hdr, ET_MSG_INFER_REQUEST,
                                       &r.base, (uint32_t) (per * 4));
        struct et_frame f;
        if (!n || write_all(fd, hdr, n) || write_all(fd, x, per * 4)
            || read_frame(fd, &f, buf, 1 << 20, 10000)) {
            rc = 1;
            break;
        }
        if (f.hdr.type == ET_MSG_ERROR) {
            Edgetrain__Error *e = (Edgetrain__Error *) f.msg;
            fprintf(stderr, "edgetrain infer: agent: %s\n", e->message);
            rc = 1;
        } else if (f.hdr.type == ET_MSG_INFER_REPLY) {
            Edgetrain__InferReply *rep = (Edgetrain__InferReply *) f.msg;
            printf("%s:", arg);
            for (size_t k = 0; k < rep->n_classes && k < rep->n_probs; k++) {
                uint32_t cl = rep->classes[k];
                printf(" %s=%.3f%s", cl < ds->n_classes ? ds->class_names[cl]
                       : "?", rep->probs[k],
                       k + 1 < rep->n_classes ? "," : "");
            }
            if (label) {
                printf(" (label %s)", label);
            }
            printf(" [%.3f ms on the agent]\n", rep->latency_ms);
        } else {
            fprintf(stderr, "edgetrain infer: unexpected %s reply\n",
                    et_msg_type_name(f.hdr.type));
            rc = 1;
        }
        et_frame_clear(&f);
    }
    close(fd);
    free(x);
    free(buf);
    dataset_destroy(ds);
    return rc;
}
