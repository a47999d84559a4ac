/* dashboard: the live HTML dashboard (controller/web/dashboard.html),
 * compiled into the controller so the installed binary needs no data
 * files. The page polls GET /status; see docs/architecture.md. */
#ifndef DASHBOARD_H
#define DASHBOARD_H 1

struct evhttp;

/* Serves the page at GET / and GET /dashboard on 'http'. */
void dashboard_register(struct evhttp *http);

#endif /* dashboard.h */
