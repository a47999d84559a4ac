#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static char log_tag[64] = "edgetrain";
static int log_level = -1;      /* -1: not yet read from the environment */

void
et_log_set_tag(const char *tag)
{
    snprintf(log_tag, sizeof log_tag, "%s", tag);
}

void
et_log_set_level(enum et_log_level level)
{
    log_level = level;
}

int
et_log_level_from_string(const char *s)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (s && !strcmp(s, names[i])) {
            return i;
        }
    }
    return -1;
}

void
et_log(enum et_log_level level, const char *fmt, ...)
{
    static const char *const names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    if (log_level < 0) {
        int l = et_log_level_from_string(getenv("EDGETRAIN_LOG"));
        log_level = l < 0 ? ET_LOG_INFO : l;
    }
    if ((int) level < log_level) {
        return;
    }

    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    char ts[32];
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ %s %s: %s\n", ts, (long) tv.tv_usec / 1000,
            log_tag, names[level], msg);
}
