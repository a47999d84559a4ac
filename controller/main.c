/* edgetrain-controller: the SDN controller (see docs/architecture.md). */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "openvswitch/ofp-protocol.h"


static void
usage(void)
{
    printf("usage: edgetrain-controller --topology FILE [--listen ADDR:PORT]\n"
           "         [--openflow ptcp:PORT] [--http ADDR:PORT]\n"
           "         [--placement NAME] [--routing NAME] [--plugin FILE.so]\n"
           "         [--expect-agents N]\n");
}

int
main(int argc, char **argv)
{
    et_log_set_tag("controller");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage();
            return 0;
        }
        if (!strcmp(argv[i], "--version")) {
            /* Also proves the libopenvswitch link: its OpenFlow versions. */
            printf("edgetrain-controller %s (libopenvswitch, %s)\n",
                   EDGETRAIN_VERSION, ofputil_version_to_string(OFP13_VERSION));
            return 0;
        }
    }
    usage();
    return 2;
}
