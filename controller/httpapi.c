/* httpapi: evhttp front end. See httpapi.h. */
#include "httpapi.h"

#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "auth.h"
#include "dashboard.h"
#include "log.h"

struct httpapi {
    struct evhttp *http;
    struct httpapi_handlers h;
    void *aux;
    uint16_t port;
    char token[ET_AUTH_TOKEN_LEN + 1];  /* "" = POST needs no key */
};

static void
reply_text(struct evhttp_request *req, int code, const char *reason,
           const char *type, const char *body)
{
    struct evbuffer *out = evbuffer_new();
    evbuffer_add(out, body, strlen(body));
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      type);
    evhttp_send_reply(req, code, reason, out);
    evbuffer_free(out);
}

static bool
method_is(struct evhttp_request *req, enum evhttp_cmd_type cmd)
{
    if (evhttp_request_get_command(req) == cmd) {
        return true;
    }
    reply_text(req, 405, "Method Not Allowed", "text/plain",
               cmd == EVHTTP_REQ_GET ? "use GET\n" : "use POST\n");
    return false;
}

static void
status_cb(struct evhttp_request *req, void *http_)
{
    struct httpapi *http = http_;
    if (!method_is(req, EVHTTP_REQ_GET)) {
        return;
    }
    char *json = http->h.status_json(http->aux);
    reply_text(req, 200, "OK", "application/json", json ? json : "{}");
    free(json);
}

static void
metrics_cb(struct evhttp_request *req, void *http_)
{
    struct httpapi *http = http_;
    if (!method_is(req, EVHTTP_REQ_GET)) {
        return;
    }
    struct evbuffer *out = evbuffer_new();
    http->h.metrics_text(http->aux, out);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4");
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

/* Checks the Authorization header of a state-changing request; answers
 * 401 and logs the peer if it is missing or wrong. */
static bool
authorized(struct httpapi *http, struct evhttp_request *req)
{
    if (!http->token[0]) {
        return true;
    }
    const char *h = evhttp_find_header(evhttp_request_get_input_headers(req),
                                       "Authorization");
    static const char scheme[] = "Edgetrain-Key ";
    if (h && !strncmp(h, scheme, sizeof scheme - 1)
        && et_auth_streq(h + sizeof scheme - 1, http->token)) {
        return true;
    }
    char *peer = NULL;
    ev_uint16_t port = 0;
    evhttp_connection_get_peer(evhttp_request_get_connection(req), &peer,
                               &port);
    ET_WARN("http: refused %s from %s:%u: %s", evhttp_request_get_uri(req),
            peer ? peer : "?", port,
            h ? "wrong key token" : "no Authorization header");
    evhttp_add_header(evhttp_request_get_output_headers(req),
                      "WWW-Authenticate", "Edgetrain-Key");
    reply_text(req, 401, "Unauthorized", "text/plain",
               "this controller needs the cluster key: "
               "edgetrain start --key-file FILE\n");
    return false;
}

void
httpapi_set_key(struct httpapi *http, const uint8_t *key, size_t len)
{
    if (key && len) {
        et_auth_http_token(key, len, http->token);
    } else {
        http->token[0] = '\0';
    }
}

static void
start_cb(struct evhttp_request *req, void *http_)
{
    struct httpapi *http = http_;
    if (!method_is(req, EVHTTP_REQ_POST) || !authorized(http, req)) {
        return;
    }
    char err[256] = "", body[320];
    int e = http->h.start(http->aux, err, sizeof err);
    if (!e) {
        reply_text(req, 202, "Accepted", "application/json",
                   "{\"started\": true}\n");
        return;
    }
    snprintf(body, sizeof body, "{\"started\": false, \"error\": \"%s\"}\n",
             e == EALREADY ? "a run is already going" : "planning failed");
    ET_WARN("http: POST /start: %s", err[0] ? err : strerror(e));
    reply_text(req, e == EALREADY ? 409 : 500,
               e == EALREADY ? "Conflict" : "Internal Server Error",
               "application/json", body);
}

static void
other_cb(struct evhttp_request *req, void *http_)
{
    reply_text(req, 404, "Not Found", "text/plain",
               "edgetrain-controller: GET / (dashboard), GET /status, "
               "GET /metrics, POST /start\n");
}

/* A listening socket on numeric HOST:PORT. evhttp_bind_socket() asks
 * getaddrinfo() with AI_ADDRCONFIG, which finds no IPv4 address for
 * 127.0.0.1 in a network namespace with only loopback up (where the
 * emulator and the TLS test run controllers). Returns the fd or -1 with
 * errno set. */
static int
listen_numeric(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICHOST
                                         | AI_NUMERICSERV};
    struct addrinfo *ai;
    int e = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
    if (e) {
        errno = e == EAI_SYSTEM ? errno : EINVAL;
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    0);
    int one = 1;
    if (fd < 0
        || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one)
        || bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 128)) {
        e = errno;
        if (fd >= 0) {
            close(fd);
        }
        freeaddrinfo(ai);
        errno = e;
        return -1;
    }
    freeaddrinfo(ai);
    return fd;
}

int
httpapi_create(struct event_base *base, const char *addr,
               const struct httpapi_handlers *h, void *aux,
               struct httpapi **httpp)
{
    *httpp = NULL;
    const char *colon = addr ? strrchr(addr, ':') : NULL;
    char host[64];
    char *end;
    long port = colon ? strtol(colon + 1, &end, 10) : -1;
    if (!colon || (size_t) (colon - addr) >= sizeof host || *end || port < 0
        || port > 65535 || colon == addr) {
        ET_ERROR("http: bad address '%s' (want IP:PORT)", addr ? addr : "");
        return EINVAL;
    }
    memcpy(host, addr, colon - addr);
    host[colon - addr] = '\0';
    struct httpapi *http = calloc(1, sizeof *http);
    http->h = *h;
    http->aux = aux;
    http->http = evhttp_new(base);
    errno = 0;
    int fd = listen_numeric(host, colon + 1);
    struct evhttp_bound_socket *bs = http->http && fd >= 0
        ? evhttp_accept_socket_with_handle(http->http, fd) : NULL;
    if (!bs) {
        int e = errno ? errno : ENOMEM;
        if (fd >= 0) {
            close(fd);
        }
        ET_ERROR("http: cannot listen on %s: %s", addr, strerror(e));
        httpapi_destroy(http);
        return e;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *) &ss, &len);
    http->port = ntohs(ss.ss_family == AF_INET6
                       ? ((struct sockaddr_in6 *) &ss)->sin6_port
                       : ((struct sockaddr_in *) &ss)->sin_port);
    evhttp_set_allowed_methods(http->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST
                                           | EVHTTP_REQ_HEAD);
    evhttp_set_cb(http->http, "/status", status_cb, http);
    evhttp_set_cb(http->http, "/metrics", metrics_cb, http);
    evhttp_set_cb(http->http, "/start", start_cb, http);
    dashboard_register(http->http);
    evhttp_set_gencb(http->http, other_cb, http);
    evhttp_set_timeout(http->http, 10);
    ET_INFO("http: listening on %s (port %u)", addr, http->port);
    *httpp = http;
    return 0;
}

void
httpapi_destroy(struct httpapi *http)
{
    if (http) {
        if (http->http) {
            evhttp_free(http->http);
        }
        free(http);
    }
}

uint16_t
httpapi_port(const struct httpapi *http)
{
    return http->port;
}
