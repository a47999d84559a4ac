/* httpapi: the controller's HTTP server (libevent evhttp), loopback by
 * default.
 *
 *   GET  /status    JSON: topology, link state, agents and their metrics,
 *                   placement, paths with weights (docs/controller.md)
 *   GET  /metrics   Prometheus text exposition format 0.0.4
 *   POST /start     start a run with the agents registered so far
 *   GET  /          the live dashboard (dashboard.h; also /dashboard)
 *
 * The content comes from the owner through the callbacks; httpapi only
 * speaks HTTP. Runs on the owner's event_base thread. */
#ifndef ET_HTTPAPI_H
#define ET_HTTPAPI_H 1

#include <stddef.h>
#include <stdint.h>

struct event_base;
struct evbuffer;
struct httpapi;

struct httpapi_handlers {
    char *(*status_json)(void *aux);                  /* malloc'd */
    void (*metrics_text)(void *aux, struct evbuffer *out);
    /* Returns 0 (202 Accepted), EALREADY (409) or another errno (500)
     * with a message in 'err'. */
    int (*start)(void *aux, char *err, size_t err_size);
};

/* Listens on 'addr' ("IP:PORT", port 0 picks one). Returns 0 or a
 * positive errno (logged). */
int httpapi_create(struct event_base *base, const char *addr,
                   const struct httpapi_handlers *h, void *aux,
                   struct httpapi **httpp);
void httpapi_destroy(struct httpapi *http);     /* accepts NULL */

/* With a cluster key, every state-changing request (POST) must carry
 * "Authorization: Edgetrain-Key TOKEN" with TOKEN = et_auth_http_token(key)
 * (common/auth.h); others get 401 and a log line. GET stays open (it
 * binds to loopback by default). Without a key POST is open as before. */
void httpapi_set_key(struct httpapi *http, const uint8_t *key, size_t len);
uint16_t httpapi_port(const struct httpapi *http);

#endif /* ET_HTTPAPI_H */
