/* Activation streams: chunk helpers and address parsing shared by the
 * sender (stream_tx.c) and the receiver (stream_rx.c). */
#include "stream.h"

#include <errno.h>
#include <malloc.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct et_chunk *
et_chunk_new(uint32_t n, uint32_t h, uint32_t w, uint32_t c)
{
    if (!n || !h || !w || !c) {
        return NULL;
    }
    struct et_chunk *ch = calloc(1, sizeof *ch);
    if (!ch) {
        return NULL;
    }
    ch->shape[0] = n, ch->shape[1] = h, ch->shape[2] = w, ch->shape[3] = c;
    ch->micro_count = 1;
    ch->labels = calloc(n, sizeof *ch->labels);
    ch->data = malloc((size_t) n * h * w * c * sizeof *ch->data);
    if (!ch->labels || !ch->data) {
        et_chunk_free(ch);
        return NULL;
    }
    return ch;
}

uint32_t
et_substream_path_id(const char *const *hops, size_t n)
{
    uint32_t h = 2166136261u;           /* FNV-1a over "hop\0hop\0..." */
    for (size_t i = 0; i < n; i++) {
        for (const char *p = hops[i]; ; p++) {
            h = (h ^ (uint8_t) *p) * 16777619u;
            if (!*p) {
                break;
            }
        }
    }
    return h ? h : 1;
}

size_t
et_chunk_elems(const struct et_chunk *c)
{
    return (size_t) c->shape[0] * c->shape[1] * c->shape[2] * c->shape[3];
}

void
et_chunk_free(struct et_chunk *c)
{
    if (!c) {
        return;
    }
    if (c->wire && c->wire != c->data) {
        free(c->wire);
    }
    if (!c->borrowed) {
        free(c->data);
    }
    free(c->labels);
    free(c);
}

int
et_parse_addr(const char *host_port, struct sockaddr_storage *ss, int *len)
{
    if (!host_port) {
        return EINVAL;
    }
    const char *colon = strrchr(host_port, ':');
    if (!colon || colon == host_port || !colon[1]
        || (size_t) (colon - host_port) >= 256) {
        return EINVAL;
    }
    char host[256];
    size_t hl = (size_t) (colon - host_port);
    memcpy(host, host_port, hl);
    host[hl] = '\0';
    /* "[::1]:7000" */
    char *h = host;
    if (h[0] == '[' && hl > 2 && h[hl - 1] == ']') {
        h[hl - 1] = '\0';
        h++;
    }
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end || port < 0 || port > 65535) {
        return EINVAL;
    }
    if (!strcmp(h, "*") || !h[0]) {
        h = "0.0.0.0";
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res;
    if (getaddrinfo(h, colon + 1, &hints, &res) || !res) {
        return EINVAL;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = (int) res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

void
et_stream_tune_malloc(void)
{
    /* Chunks up to the 64 MiB frame limit come from the heap, and the heap
     * keeps up to 256 MiB of free memory instead of trimming it. */
    mallopt(M_MMAP_THRESHOLD, 64 << 20);
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
}
