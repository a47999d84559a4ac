/* edgetrain train: the single-process block-wise (or end-to-end) trainer. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "threads.h"
#include "trainer.h"

static void
train_usage(FILE *f, const struct trainer_options *d)
{
    fprintf(f,
"usage: edgetrain train [OPTIONS]\n"
"Trains MobileNet v1 block-wise (each stage on its own head, on the detached\n"
"output of the previous stage) or end to end, with test metrics per epoch.\n\n"
"  --data SPEC          fashion-mnist, mnist, DIR, quickdraw:DIR (%s)\n"
"  --out DIR            metrics.csv, run.json, stage<i>.ckpt, accuracy.png (%s)\n"
"  --mode M             blockwise, e2e, or both side by side (blockwise)\n"
"  --stages LIST        block ranges, e.g. 1,2-3,4-5,6-11,12-13 (%s)\n"
"  --input N            input side in pixels (%u)\n"
"  --alpha F            width multiplier (%g)\n"
"  --head-pool P        heads average-pool to P x P before the dense layer (%d)\n"
"  --batch N            images per step (%zu)\n"
"  --epochs N           (%d)\n"
"  --optimizer O        sgd, adam, adamw (adam)\n"
"  --lr F               peak learning rate (%g)\n"
"  --schedule S         constant, cosine (warm-up + cosine), onecycle (onecycle)\n"
"  --pct-start F        onecycle warm-up fraction (%g)\n"
"  --weight-decay F     (%g)\n"
"  --momentum F         sgd momentum (%g)\n"
"  --shift N            augmentation: random shift up to N pixels, 0 off (%u)\n"
"  --flip / --no-flip   augmentation: random horizontal flip (%s)\n"
"  --seed N             initialisation, shuffling, augmentation (%llu)\n"
"  --threads N          OpenMP threads, 0 = all cores (%d)\n"
"  --blas-threads N     OpenBLAS threads, 0 = as --threads (1, see train/threads.h)\n"
"  --per-class N        images per class (QuickDraw: read per category)\n"
"  --train-limit N      use N training images (deterministic subset)\n"
"  --test-limit N       use N test images (deterministic subset)\n"
"  --test-fraction F    QuickDraw held-out fraction (%g)\n"
"  --format F           QuickDraw files: auto, npy, ndjson, bin (auto)\n"
"  --progress / --no-progress   progress bar (default: when on a terminal)\n"
"  --no-plot            skip accuracy.png\n",
            d->data_spec, d->out_dir, d->stages, d->input, d->alpha,
            d->head_pool, d->batch, d->epochs, d->schedule.lr_max,
            d->schedule.pct_start, d->optim.weight_decay, d->optim.momentum,
            d->aug_shift, d->aug_flip ? "on" : "off",
            (unsigned long long) d->seed, d->threads, d->data.test_fraction);
}

/* Parses a non-negative integer option; returns -1 on junk. */
static long long
opt_num(const char *name, const char *v)
{
    char *end;
    long long n = strtoll(v, &end, 10);
    if (end == v || *end || n < 0) {
        fprintf(stderr, "edgetrain: --%s wants a non-negative integer, not "
                "\"%s\"\n", name, v);
        return -1;
    }
    return n;
}

static int
opt_float(const char *name, const char *v, float *out)
{
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end) {
        fprintf(stderr, "edgetrain: --%s wants a number, not \"%s\"\n", name,
                v);
        return -1;
    }
    *out = (float) d;
    return 0;
}

int
cmd_train(int argc, char **argv)
{
    /* argv is main's argv + 1: re-exec with the whole of it. */
    train_threads_passive_wait(argv - 1);
    struct trainer_options o;
    trainer_options_default(&o);
    enum {
        O_DATA = 256, O_OUT, O_MODE, O_STAGES, O_INPUT, O_ALPHA, O_HEADPOOL,
        O_BATCH, O_EPOCHS, O_OPTIM, O_LR, O_SCHED, O_PCT, O_WD, O_MOM,
        O_SHIFT, O_FLIP, O_NOFLIP, O_SEED, O_THREADS, O_PERCLASS, O_TRLIM,
        O_TELIM, O_TEFRAC, O_FORMAT, O_PROG, O_NOPROG, O_NOPLOT, O_BLAS, O_HELP,
    };
    static const struct option longopts[] = {
        {"data", 1, 0, O_DATA}, {"out", 1, 0, O_OUT}, {"mode", 1, 0, O_MODE},
        {"stages", 1, 0, O_STAGES}, {"input", 1, 0, O_INPUT},
        {"alpha", 1, 0, O_ALPHA}, {"head-pool", 1, 0, O_HEADPOOL},
        {"batch", 1, 0, O_BATCH}, {"epochs", 1, 0, O_EPOCHS},
        {"optimizer", 1, 0, O_OPTIM}, {"lr", 1, 0, O_LR},
        {"schedule", 1, 0, O_SCHED}, {"pct-start", 1, 0, O_PCT},
        {"weight-decay", 1, 0, O_WD}, {"momentum", 1, 0, O_MOM},
        {"shift", 1, 0, O_SHIFT}, {"flip", 0, 0, O_FLIP},
        {"no-flip", 0, 0, O_NOFLIP}, {"seed", 1, 0, O_SEED},
        {"threads", 1, 0, O_THREADS}, {"per-class", 1, 0, O_PERCLASS},
        {"train-limit", 1, 0, O_TRLIM}, {"test-limit", 1, 0, O_TELIM},
        {"test-fraction", 1, 0, O_TEFRAC}, {"format", 1, 0, O_FORMAT},
        {"progress", 0, 0, O_PROG}, {"no-progress", 0, 0, O_NOPROG},
        {"no-plot", 0, 0, O_NOPLOT}, {"blas-threads", 1, 0, O_BLAS},
        {"help", 0, 0, O_HELP}, {0, 0, 0, 0},
    };
    int c;
    long long n;
    float f;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        const char *name = c >= O_DATA && c < O_HELP
                           ? longopts[c - O_DATA].name : "?";
        switch (c) {
        case O_DATA: o.data_spec = optarg; break;
        case O_OUT: o.out_dir = optarg; break;
        case O_MODE:
            if (!strcmp(optarg, "blockwise")) {
                o.mode = TRAINER_BLOCKWISE;
            } else if (!strcmp(optarg, "e2e")) {
                o.mode = TRAINER_E2E;
            } else if (!strcmp(optarg, "both")) {
                o.mode = TRAINER_BOTH;
            } else {
                fprintf(stderr, "edgetrain: --mode wants blockwise, e2e or "
                        "both, not \"%s\"\n", optarg);
                return 2;
            }
            break;
        case O_STAGES:
            snprintf(o.stages, sizeof o.stages, "%s", optarg);
            break;
        case O_OPTIM:
            if ((n = mn_optim_kind_from_string(optarg)) < 0) {
                fprintf(stderr, "edgetrain: --optimizer wants sgd, adam or "
                        "adamw, not \"%s\"\n", optarg);
                return 2;
            }
            o.optim.kind = (enum mn_optim_kind) n;
            break;
        case O_SCHED:
            if ((n = mn_lr_kind_from_string(optarg)) < 0) {
                fprintf(stderr, "edgetrain: --schedule wants constant, "
                        "cosine or onecycle, not \"%s\"\n", optarg);
                return 2;
            }
            o.schedule.kind = (enum mn_lr_kind) n;
            break;
        case O_FORMAT:
            if ((n = dataset_format_from_string(optarg)) < 0) {
                fprintf(stderr, "edgetrain: --format wants auto, npy, ndjson "
                        "or bin, not \"%s\"\n", optarg);
                return 2;
            }
            o.data.format = (enum dataset_format) n;
            break;
        case O_ALPHA: case O_LR: case O_PCT: case O_WD: case O_MOM:
        case O_TEFRAC:
            if (opt_float(name, optarg, &f)) {
                return 2;
            }
            if (c == O_ALPHA) o.alpha = f;
            if (c == O_LR) o.schedule.lr_max = f;
            if (c == O_PCT) o.schedule.pct_start = f;
            if (c == O_WD) o.optim.weight_decay = f;
            if (c == O_MOM) o.optim.momentum = f;
            if (c == O_TEFRAC) o.data.test_fraction = f;
            break;
        case O_INPUT: case O_HEADPOOL: case O_BATCH: case O_EPOCHS:
        case O_SHIFT: case O_SEED: case O_THREADS: case O_PERCLASS:
        case O_TRLIM: case O_TELIM: case O_BLAS:
            if ((n = opt_num(name, optarg)) < 0) {
                return 2;
            }
            if (c == O_INPUT) o.input = (uint32_t) n;
            if (c == O_HEADPOOL) o.head_pool = (int) n;
            if (c == O_BATCH) o.batch = (size_t) n;
            if (c == O_EPOCHS) o.epochs = (int) n;
            if (c == O_SHIFT) o.aug_shift = (uint32_t) n;
            if (c == O_SEED) o.seed = (uint64_t) n;
            if (c == O_THREADS) o.threads = (int) n;
            if (c == O_PERCLASS) o.data.per_class = (size_t) n;
            if (c == O_TRLIM) o.data.train_limit = (size_t) n;
            if (c == O_TELIM) o.data.test_limit = (size_t) n;
            if (c == O_BLAS) o.blas_threads = (int) n;
            break;
        case O_FLIP: o.aug_flip = true; break;
        case O_NOFLIP: o.aug_flip = false; break;
        case O_PROG: o.progress = 1; break;
        case O_NOPROG: o.progress = 0; break;
        case O_NOPLOT: o.plot = false; break;
        case O_HELP:
            train_usage(stdout, &o);
            return 0;
        default:
            train_usage(stderr, &o);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "edgetrain train: unexpected argument \"%s\"\n",
                argv[optind]);
        return 2;
    }
    char err[512] = "";
    int error = trainer_run(&o, NULL, NULL, err, sizeof err);
    if (error) {
        fprintf(stderr, "edgetrain train: %s\n", err);
        return 1;
    }
    return 0;
}
