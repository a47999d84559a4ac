/* libFuzzer target: the topology parser and validator on arbitrary text.
 * Every input must give a topology or EINVAL with a message, never a crash
 * or a leak; an accepted topology must be internally consistent.
 * fuzz-sources: controller/topology.c */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "topology.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    memcpy(text, data, size);
    text[size] = '\0';
    struct topology *t;
    char err[256];
    int e = topology_parse(text, "fuzz", &t, err, sizeof err);
    if (e) {
        if (e != EINVAL || t || !err[0]) {
            abort();
        }
    } else {
        for (size_t l = 0; l < t->n_links; l++) {
            if (t->links[l].a < 0 || (size_t) t->links[l].a >= topology_n_nodes(t)
                || t->links[l].b < 0
                || (size_t) t->links[l].b >= topology_n_nodes(t)
                || !(t->links[l].capacity_mbps > 0)) {
                abort();
            }
        }
        for (size_t i = 0; i < t->n_agents; i++) {
            if (topology_find_agent(t, t->agents[i].name) != (int) i) {
                abort();
            }
        }
        topology_destroy(t);
    }
    free(text);
    return 0;
}
