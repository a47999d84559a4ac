/* edgetrain bench: training-step throughput of a MobileNet stage (forward,
 * backward, SGD-momentum update) on random data. The last line is
 * "images_per_s=<f> gflops=<f> peak_rss_mb=<n>"; tests/bench/run.sh runs
 * the same model in PyTorch beside it. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "commands.h"
#include "model.h"
#include "threads.h"

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double
cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec
           + 1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

/* "full", "block1" or "blocks:A-B" -> block range; -1 on error. */
static int
parse_stage(const char *s, int *first, int *last)
{
    if (!strcmp(s, "full")) {
        *first = 1, *last = MN_BLOCKS;
    } else if (!strcmp(s, "block1")) {
        *first = *last = 1;
    } else if (sscanf(s, "blocks:%d-%d", first, last) == 2) {
        if (*first < 1 || *last > MN_BLOCKS || *first > *last) {
            return -1;
        }
    } else if (sscanf(s, "blocks:%d", first) == 1 && *first >= 1
               && *first <= MN_BLOCKS) {
        *last = *first;
    } else {
        return -1;
    }
    return 0;
}

static void
usage(void)
{
    printf("usage: edgetrain bench [--stage full|block1|blocks:A-B] "
           "[--alpha 1.0]\n"
           "         [--input 64] [--in-channels 1] [--classes 340] "
           "[--head-pool 4]\n"
           "         [--batch 256] [--threads 2] [--steps 5]\n");
}

int
cmd_bench(int argc, char **argv)
{
    static const struct option opts[] = {
        {"stage", required_argument, NULL, 's'},
        {"alpha", required_argument, NULL, 'a'},
        {"input", required_argument, NULL, 'i'},
        {"in-channels", required_argument, NULL, 'c'},
        {"classes", required_argument, NULL, 'k'},
        {"head-pool", required_argument, NULL, 'p'},
        {"batch", required_argument, NULL, 'b'},
        {"threads", required_argument, NULL, 't'},
        {"steps", required_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    /* Idle OpenMP threads sleep, as in training (argv is main's + 1). */
    train_threads_passive_wait(argv - 1);
    struct mn_config cfg;
    mn_config_default(&cfg);
    cfg.threads = 2;
    const char *stage = "full";
    long steps = 5;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 's': stage = optarg; break;
        case 'a': cfg.alpha = strtof(optarg, NULL); break;
        case 'i': cfg.input_size = atoi(optarg); break;
        case 'c': cfg.in_channels = atoi(optarg); break;
        case 'k': cfg.classes = atoi(optarg); break;
        case 'p': cfg.head_pool = atoi(optarg); break;
        case 'b': cfg.batch_capacity = atoi(optarg); break;
        case 't': cfg.threads = atoi(optarg); break;
        case 'n': steps = strtol(optarg, NULL, 10); break;
        case 'h': usage(); return 0;
        default: usage(); return 2;
        }
    }
    int first, last;
    if (parse_stage(stage, &first, &last) || steps < 1) {
        fprintf(stderr, "bench: bad --stage '%s' or --steps %ld\n", stage,
                steps);
        return 2;
    }
    char err[256];
    if (mn_config_check(&cfg, err, sizeof err)) {
        fprintf(stderr, "bench: %s\n", err);
        return 2;
    }
    mn_set_threads(cfg.threads);
    struct mn_stage *s = mn_stage_create(&cfg, first, last, err, sizeof err);
    if (!s) {
        fprintf(stderr, "bench: %s\n", err);
        return 1;
    }
    int h, w, ch;
    mn_stage_input_shape(s, &h, &w, &ch);
    size_t n = (size_t) cfg.batch_capacity, nin = n * h * w * ch;
    float *x = malloc(nin * sizeof *x);
    uint32_t *labels = malloc(n * sizeof *labels);
    if (!x || !labels) {
        fprintf(stderr, "bench: out of memory\n");
        return 1;
    }
    /* Data-like input for block 1, ReLU6-like activations after it. */
    uint64_t r = 12345;
    for (size_t i = 0; i < nin; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        float u = (float) (r >> 40) / 16777216.0f;
        x[i] = first == 1 ? 2.0f * u - 1.0f : 6.0f * u;
    }
    for (size_t i = 0; i < n; i++) {
        labels[i] = (uint32_t) (i * 7919 % (size_t) cfg.classes);
    }
    struct mn_optim o;
    mn_optim_default(&o);
    o.kind = MN_SGD;
    o.momentum = 0.9f;
    o.weight_decay = 5e-5f;
    printf("bench: blocks %d-%d alpha %g input %dx%dx%d classes %d head "
           "pool %d batch %zu threads %d steps %ld openblas_core=%s\n",
           first, last, cfg.alpha, h, w, ch, cfg.classes,
           mn_stage_head_pool(s), n, cfg.threads, steps, mn_blas_corename());
    struct mn_metrics m;
    double t = 0.0, cpu = 0.0;
    for (long i = -1; i < steps; i++) {   /* step -1 warms up */
        double c0 = cpu_s();
        double t0 = now_s();
        int e = mn_stage_forward(s, x, n, true);
        if (!e) {
            e = mn_stage_backward(s, labels, &m, err, sizeof err);
        }
        if (!e) {
            e = mn_stage_step(s, &o, 0.01f);
        }
        if (e) {
            fprintf(stderr, "bench: training step failed: %s\n", err);
            return 1;
        }
        if (i >= 0) {
            t += now_s() - t0;
            cpu += cpu_s() - c0;
        }
    }
    double ips = (double) n * steps / t;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    /* CPU time per step shows the work done even when other processes
     * take the cores (then wall time alone misleads). */
    printf("bench: %.1f ms/step, %.1f CPU-ms/step, loss %.3f, %.1f "
           "MFLOP/image (3x forward)\n", 1e3 * t / steps, 1e3 * cpu / steps,
           m.loss, mn_stage_train_flops(s) / 1e6);
    printf("images_per_s=%.1f gflops=%.1f peak_rss_mb=%ld\n", ips,
           ips * mn_stage_train_flops(s) / 1e9, ru.ru_maxrss / 1024);
    mn_stage_destroy(s);
    free(x);
    free(labels);
    return 0;
}
