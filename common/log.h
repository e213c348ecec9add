/* SPDX-License-Identifier: MIT */
/* log.h: one line per message on stderr, with journald priorities. */
#ifndef RINGFLOW_LOG_H
#define RINGFLOW_LOG_H

#include <stdarg.h>

/* Exit statuses every ringflow binary uses (DESIGN.md, command-line contract). */
#define EXIT_PERMANENT 100      /* bad config or usage: do not restart */
#define EXIT_TEMPORARY 111      /* worth retrying */

enum log_level {
        LOG_LEVEL_ERR = 3,
        LOG_LEVEL_WARNING = 4,
        LOG_LEVEL_INFO = 6,
        LOG_LEVEL_DEBUG = 7,
};

/*
 * Names the program in every line. When stderr is the journal (JOURNAL_STREAM
 * names our stderr), lines carry a "<N>" priority prefix instead of the name,
 * which journald strips and stores as the priority.
 */
void log_init(const char *progname);
void log_set_level(enum log_level level);

/* log_warn appends ": strerror(errno)"; log_warnx does not. */
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Logs at error priority and exits with status (EXIT_PERMANENT or EXIT_TEMPORARY). */
void fatal(int status, const char *fmt, ...)
        __attribute__((format(printf, 2, 3), noreturn));
void fatalx(int status, const char *fmt, ...)
        __attribute__((format(printf, 2, 3), noreturn));

#endif
