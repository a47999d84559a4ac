/* edgetrain status: the controller's GET /status, printed for a person
 * (or raw with --json). */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "httpget.h"

static void
usage(FILE *f)
{
    fprintf(f, "usage: edgetrain status [--controller URL] [--json]\n"
               "  --controller URL  controller HTTP address (default"
               " http://127.0.0.1:7080)\n"
               "  --json            print the raw /status document\n");
}

static double
num(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static const char *
str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "?";
}

static bool
flag(const cJSON *o, const char *key)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static void
print_status(const cJSON *root)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(root, "controller");
    const cJSON *run = cJSON_GetObjectItemCaseSensitive(root, "run");
    const cJSON *x;
    printf("controller %s: topology %s, placement %s, routing %s%s\n",
           str(c, "version"), str(c, "topology"), str(c, "placement_policy"),
           str(c, "routing_policy"), flag(c, "openflow") ? ", OpenFlow" : "");
    printf("run: %s", str(run, "state"));
    if (*str(run, "run_id")) {
        printf(" (id %s, generation %.0f), bottleneck %.3f s/step, planned "
               "in %.2f ms, re-plans %.0f paths / %.0f placement",
               str(run, "run_id"), num(run, "generation"),
               num(run, "bottleneck_s"), num(run, "plan_ms"),
               num(run, "path_replans"), num(run, "placement_replans"));
    }
    printf("\n");
    if (cJSON_GetObjectItemCaseSensitive(run, "last_error")) {
        printf("  last planning error: %s\n", str(run, "last_error"));
    }
    const cJSON *agents = cJSON_GetObjectItemCaseSensitive(root, "agents");
    printf("agents (%.0f alive, %.0f expected):\n", num(run, "alive_agents"),
           num(run, "expect_agents"));
    cJSON_ArrayForEach(x, agents) {
        printf("  %-12s %-6s %-22s %6.1f GFLOP/s %7.0f MiB", str(x, "name"),
               flag(x, "alive") ? "alive" : flag(x, "registered") ? "dead"
                                                                  : "-",
               str(x, "data"), num(x, "gflops"), num(x, "memory_mb"));
        const cJSON *m = cJSON_GetObjectItemCaseSensitive(x, "metrics");
        if (m) {
            printf("  epoch %.0f step %.0f, %.1f img/s, loss %.4f, top1 %.4f",
                   num(m, "epoch"), num(m, "step"), num(m, "images_per_s"),
                   num(m, "loss"), num(m, "test_top1"));
        }
        printf("\n");
    }
    const cJSON *placement = cJSON_GetObjectItemCaseSensitive(root,
                                                              "placement");
    if (cJSON_GetArraySize(placement)) {
        printf("placement:\n");
        cJSON_ArrayForEach(x, placement) {
            printf("  stage %.0f  %-12s blocks %2.0f-%-2.0f  compute %.3f s"
                   "  transfer %.3f s  %.0f MiB\n", num(x, "stage"),
                   str(x, "agent"), num(x, "first_block"),
                   num(x, "last_block"), num(x, "compute_s"),
                   num(x, "transfer_s"), num(x, "memory_mb"));
        }
    }
    const cJSON *paths = cJSON_GetObjectItemCaseSensitive(root, "paths");
    if (cJSON_GetArraySize(paths)) {
        printf("paths:\n");
        cJSON_ArrayForEach(x, paths) {
            printf("  %s -> %s: %.1f Mbit/s for %.1f Mbit/s demand\n",
                   str(x, "from"), str(x, "to"), num(x, "rate_mbps"),
                   num(x, "demand_mbps"));
            const cJSON *s;
            cJSON_ArrayForEach(s, cJSON_GetObjectItemCaseSensitive(
                                      x, "substreams")) {
                printf("    #%.0f weight %.3f  port %.0f -> %.0f  via",
                       num(s, "id"), num(s, "weight"), num(s, "local_port"),
                       num(s, "remote_port"));
                const cJSON *h;
                int n = 0;
                cJSON_ArrayForEach(h, cJSON_GetObjectItemCaseSensitive(s,
                                                                      "hops")) {
                    printf(" %s", cJSON_IsString(h) ? h->valuestring : "?");
                    n++;
                }
                printf("%s\n", n ? "" : " (direct)");
            }
        }
    }
    const cJSON *links = cJSON_GetObjectItemCaseSensitive(root, "links");
    if (cJSON_GetArraySize(links)) {
        printf("links:\n");
        cJSON_ArrayForEach(x, links) {
            printf("  %s:%.0f - %s:%.0f  %-4s %7.1f Mbit/s  util %3.0f%% / "
                   "%3.0f%%\n", str(x, "a"), num(x, "a_port"), str(x, "b"),
                   num(x, "b_port"), flag(x, "up") ? "up" : "DOWN",
                   num(x, "capacity_mbps"), 100 * num(x, "util_ab"),
                   100 * num(x, "util_ba"));
        }
    }
}

int
cmd_status(int argc, char **argv)
{
    static const struct option options[] = {
        {"controller", required_argument, NULL, 'c'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url = "http://127.0.0.1:7080";
    bool raw = false;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'c': url = optarg; break;
        case 'j': raw = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    char err[256], full[512], *body;
    int status;
    /* A bare controller address gets the path. */
    const char *rest = strncmp(url, "http://", 7) ? url : url + 7;
    snprintf(full, sizeof full, "%s%s", url, strchr(rest, '/') ? "" : "/status");
    if (httpget_request("GET", full, "/status", 5000, &status, &body, err,
                        sizeof err)) {
        fprintf(stderr, "edgetrain status: %s\n", err);
        return 1;
    }
    if (status != 200) {
        fprintf(stderr, "edgetrain status: HTTP %d from %s\n", status, full);
        free(body);
        return 1;
    }
    if (raw) {
        fputs(body, stdout);
        free(body);
        return 0;
    }
    cJSON *root = cJSON_Parse(body);
    free(body);
    if (!root) {
        fprintf(stderr, "edgetrain status: %s did not return JSON\n", full);
        return 1;
    }
    print_status(root);
    cJSON_Delete(root);
    return 0;
}
