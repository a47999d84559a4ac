/* edgetrain start: asks the controller to start a run now with the agents
 * registered so far (POST /start). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "httpget.h"

int
cmd_start(int argc, char **argv)
{
    static const struct option options[] = {
        {"controller", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url = "http://127.0.0.1:7080";
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'c': url = optarg; break;
        case 'h':
            printf("usage: edgetrain start [--controller URL]\n");
            return 0;
        default:
            fprintf(stderr, "usage: edgetrain start [--controller URL]\n");
            return 2;
        }
    }
    char err[256], full[512], *body;
    int status;
    const char *rest = strncmp(url, "http://", 7) ? url : url + 7;
    snprintf(full, sizeof full, "%s%s", url, strchr(rest, '/') ? "" : "/start");
    if (httpget_request("POST", full, "/start", 10000, &status, &body, err,
                        sizeof err)) {
        fprintf(stderr, "edgetrain start: %s\n", err);
        return 1;
    }
    printf("%s", body);
    free(body);
    if (status != 202) {
        fprintf(stderr, "edgetrain start: HTTP %d (see the controller's "
                "log)\n", status);
        return 1;
    }
    return 0;
}
