/* edgetrain-agent: the daemon on every edge device. */
#include <stdio.h>
#include <string.h>

#include "log.h"

static void
usage(void)
{
    printf("usage: edgetrain-agent --name NAME --controller HOST:PORT\n"
           "         [--listen ADDR:PORT] [--data SPEC] [--threads N]\n"
           "         [--state-dir DIR]\n");
}

int
main(int argc, char **argv)
{
    et_log_set_tag("agent");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage();
            return 0;
        }
        if (!strcmp(argv[i], "--version")) {
            printf("edgetrain-agent %s\n", EDGETRAIN_VERSION);
            return 0;
        }
    }
    usage();
    return 2;
}
