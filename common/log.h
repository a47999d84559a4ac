/* Levelled logging to stderr, shared by every edgetrain process.
 *
 * Lines look like "2026-11-28T02:10:13.123Z agent[a1] WARN: message". The
 * level threshold comes from et_log_set_level() or the EDGETRAIN_LOG
 * environment variable (debug, info, warn, error). Thread-safe: one
 * fprintf per line. */
#ifndef ET_LOG_H
#define ET_LOG_H 1

enum et_log_level { ET_LOG_DEBUG, ET_LOG_INFO, ET_LOG_WARN, ET_LOG_ERROR };

/* Sets the process tag printed on every line ("controller", "agent[a1]"). */
void et_log_set_tag(const char *tag);
void et_log_set_level(enum et_log_level level);

/* Parses "debug", "info", "warn" or "error"; returns -1 otherwise. */
int et_log_level_from_string(const char *s);

void et_log(enum et_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#define ET_DEBUG(...) et_log(ET_LOG_DEBUG, __VA_ARGS__)
#define ET_INFO(...) et_log(ET_LOG_INFO, __VA_ARGS__)
#define ET_WARN(...) et_log(ET_LOG_WARN, __VA_ARGS__)
#define ET_ERROR(...) et_log(ET_LOG_ERROR, __VA_ARGS__)

#endif /* ET_LOG_H */
