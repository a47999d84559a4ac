/* dashboard: serves the embedded page. See dashboard.h. */
#include "dashboard.h"

#include <event2/buffer.h>
#include <event2/http.h>
#include <stddef.h>

/* Generated at build time from controller/web/dashboard.html by
 * `xxd -i` (Makefile, "controller: embedded dashboard"). */
extern unsigned char dashboard_html[];
extern unsigned int dashboard_html_len;

static void
dashboard_cb(struct evhttp_request *req, void *aux)
{
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    struct evkeyvalq *hdrs = evhttp_request_get_output_headers(req);
    if (cmd != EVHTTP_REQ_GET && cmd != EVHTTP_REQ_HEAD) {
        evhttp_add_header(hdrs, "Allow", "GET, HEAD");
        evhttp_send_error(req, 405, "use GET");
        return;
    }
    struct evbuffer *out = evbuffer_new();
    /* The page is static and lives as long as the process: no copy. */
    evbuffer_add_reference(out, dashboard_html, dashboard_html_len, NULL,
                           NULL);
    evhttp_add_header(hdrs, "Content-Type", "text/html; charset=utf-8");
    evhttp_add_header(hdrs, "Cache-Control", "no-cache");
    evhttp_send_reply(req, 200, "OK", out);
    evbuffer_free(out);
}

void
dashboard_register(struct evhttp *http)
{
    evhttp_set_cb(http, "/", dashboard_cb, NULL);
    evhttp_set_cb(http, "/dashboard", dashboard_cb, NULL);
}
