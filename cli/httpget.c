/* httpget: minimal HTTP client. See httpget.h. */
#include "httpget.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long
ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

int
httpget_request(const char *method, const char *url, const char *default_path,
                int timeout_ms, int *status, char **body, char *err,
                size_t err_size)
{
    return httpget_request_hdr(method, url, default_path, NULL, timeout_ms,
                               status, body, err, err_size);
}

int
httpget_request_hdr(const char *method, const char *url,
                    const char *default_path, const char *header,
                    int timeout_ms, int *status, char **body, char *err,
                    size_t err_size)
{
    *body = NULL;
    *status = 0;
    const char *p = url;
    if (!strncmp(p, "http://", 7)) {
        p += 7;
    }
    const char *slash = strchr(p, '/');
    const char *path = slash ? slash : default_path;
    char hostport[256], host[256], port[16];
    size_t hl = slash ? (size_t) (slash - p) : strlen(p);
    if (!hl || hl >= sizeof hostport) {
        snprintf(err, err_size, "bad URL '%s'", url);
        return EINVAL;
    }
    memcpy(hostport, p, hl);
    hostport[hl] = '\0';
    char *colon = strrchr(hostport, ':');
    if (colon) {
        *colon = '\0';
        snprintf(port, sizeof port, "%s", colon + 1);
    } else {
        snprintf(port, sizeof port, "80");
    }
    snprintf(host, sizeof host, "%s", hostport);
    struct addrinfo hints = {0}, *ai;
    hints.ai_socktype = SOCK_STREAM;
    int g = getaddrinfo(host, port, &hints, &ai);
    if (g) {
        snprintf(err, err_size, "%s:%s: %s", host, port, gai_strerror(g));
        return ENOENT;
    }
    int fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen)) {
        int e = errno;
        snprintf(err, err_size, "cannot connect to %s:%s: %s", host, port,
                 strerror(e));
        freeaddrinfo(ai);
        if (fd >= 0) {
            close(fd);
        }
        return e;
    }
    freeaddrinfo(ai);
    char req[1024];
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.0\r\nHost: %s\r\n"
                     "%s%sContent-Length: 0\r\nConnection: close\r\n\r\n",
                     method, path, hostport, header ? header : "",
                     header ? "\r\n" : "");
    if (n < 0 || (size_t) n >= sizeof req) {
        close(fd);
        snprintf(err, err_size, "request too long");
        return EINVAL;
    }
    if (write(fd, req, n) != n) {
        int e = errno;
        snprintf(err, err_size, "write: %s", strerror(e));
        close(fd);
        return e;
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap);
    long deadline = ms_now() + timeout_ms;
    for (;;) {
        long left = deadline - ms_now();
        struct pollfd pfd = {fd, POLLIN, 0};
        if (left <= 0 || poll(&pfd, 1, (int) left) <= 0) {
            snprintf(err, err_size, "timeout waiting for %s:%s", host, port);
            close(fd);
            free(buf);
            return ETIMEDOUT;
        }
        if (len + 4096 > cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
        ssize_t r = read(fd, buf + len, cap - len - 1);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        if (r <= 0) {
            break;
        }
        len += (size_t) r;
    }
    close(fd);
    buf[len] = '\0';
    char *sep = strstr(buf, "\r\n\r\n");
    if (strncmp(buf, "HTTP/1.", 7) || !sep || sscanf(buf + 8, " %d", status) != 1) {
        snprintf(err, err_size, "not an HTTP response from %s:%s", host, port);
        free(buf);
        return EPROTO;
    }
    size_t off = (size_t) (sep + 4 - buf);
    memmove(buf, buf + off, len - off + 1);
    *body = buf;
    return 0;
}
