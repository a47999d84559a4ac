/* httpget: a minimal HTTP/1.0 client for the CLI's talks with the
 * controller (status, start). Plain sockets; no redirects, no TLS. */
#ifndef ET_CLI_HTTPGET_H
#define ET_CLI_HTTPGET_H 1

#include <stddef.h>

/* Sends 'method' ("GET", "POST") for 'url' ("http://host:port/path" or
 * "host:port", path defaulting to 'default_path'), waits at most
 * 'timeout_ms'. On success returns 0, the status code in '*status' and the
 * body (malloc'd, NUL-terminated) in '*body'. Otherwise returns an errno
 * with a message in 'err'. */
int httpget_request(const char *method, const char *url,
                    const char *default_path, int timeout_ms, int *status,
                    char **body, char *err, size_t err_size);

/* The same with one extra header line ("Name: value", no CRLF), or NULL. */
int httpget_request_hdr(const char *method, const char *url,
                        const char *default_path, const char *header,
                        int timeout_ms, int *status, char **body, char *err,
                        size_t err_size);

#endif /* ET_CLI_HTTPGET_H */
