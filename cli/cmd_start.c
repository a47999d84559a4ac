/* edgetrain start: asks the controller to start a run now with the agents
 * registered so far (POST /start). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "auth.h"
#include "httpget.h"

int
cmd_start(int argc, char **argv)
{
    static const struct option options[] = {
        {"controller", required_argument, NULL, 'c'},
        {"key-file", required_argument, NULL, 'k'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url = "http://127.0.0.1:7080", *key_file = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'c': url = optarg; break;
        case 'k': key_file = optarg; break;
        case 'h':
            printf("usage: edgetrain start [--controller URL] "
                   "[--key-file FILE]\n");
            return 0;
        default:
            fprintf(stderr, "usage: edgetrain start [--controller URL] "
                   "[--key-file FILE]\n");
            return 2;
        }
    }
    char err[256], full[512], *body;
    int status;
    const char *rest = strncmp(url, "http://", 7) ? url : url + 7;
    snprintf(full, sizeof full, "%s%s", url, strchr(rest, '/') ? "" : "/start");
    /* A controller with a cluster key wants the key's token (see
     * docs/security.md); the key itself is not sent. */
    char auth[32 + ET_AUTH_TOKEN_LEN] = "";
    if (key_file) {
        uint8_t *key;
        size_t len;
        if (et_auth_read_key(key_file, &key, &len, err, sizeof err)) {
            fprintf(stderr, "edgetrain start: %s\n", err);
            return 1;
        }
        char tok[ET_AUTH_TOKEN_LEN + 1];
        et_auth_http_token(key, len, tok);
        free(key);
        snprintf(auth, sizeof auth, "Authorization: Edgetrain-Key %s", tok);
    }
    if (httpget_request_hdr("POST", full, "/start", auth[0] ? auth : NULL,
                            10000, &status, &body, err, sizeof err)) {
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
