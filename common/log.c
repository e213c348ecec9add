/* SPDX-License-Identifier: MIT */
/* log.c: stderr logging, one line per message, journald-aware. */
#include "autoconf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"

static const char *log_progname = "ringflow";
static enum log_level log_threshold = LOG_LEVEL_INFO;
static int log_journal;

/*
 * JOURNAL_STREAM is "device:inode" of the stream systemd connected; only when
 * it matches our stderr is the output really going to the journal (a child
 * of a unit may have redirected stderr elsewhere).
 */
static int log_stderr_is_journal(void)
{
        const char *js = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;

        if (js == NULL || sscanf(js, "%llu:%llu", &dev, &ino) != 2)
                return 0;
        if (fstat(fileno(stderr), &st) != 0)
                return 0;
        return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_init(const char *progname)
{
        const char *slash = strrchr(progname, '/');

        log_progname = slash ? slash + 1 : progname;
        log_journal = log_stderr_is_journal();
}

void log_set_level(enum log_level level)
{
        log_threshold = level;
}

__attribute__((format(printf, 3, 0)))
static void log_vwrite(enum log_level level, int errnum, const char *fmt, va_list ap)
{
        char msg[1024];
        int n;

        if (level > log_threshold)
                return;
        n = vsnprintf(msg, sizeof(msg), fmt, ap);
        if (n < 0)
                return;
        /* One fprintf per line so concurrent stages do not interleave within a line. */
        if (log_journal)
                fprintf(stderr, "<%d>%s%s%s\n", (int)level, msg,
                        errnum ? ": " : "", errnum ? strerror(errnum) : "");
        else
                fprintf(stderr, "%s: %s%s%s\n", log_progname, msg,
                        errnum ? ": " : "", errnum ? strerror(errnum) : "");
}

#define LOG_BODY(level, errnum) do {                    \
                va_list ap;                             \
                va_start(ap, fmt);                      \
                log_vwrite((level), (errnum), fmt, ap); \
                va_end(ap);                             \
        } while (0)

void log_warn(const char *fmt, ...)
{
        int saved = errno;

        LOG_BODY(LOG_LEVEL_WARNING, saved);
        errno = saved;
}

void log_warnx(const char *fmt, ...)
{
        LOG_BODY(LOG_LEVEL_WARNING, 0);
}

void log_info(const char *fmt, ...)
{
        LOG_BODY(LOG_LEVEL_INFO, 0);
}

void log_debug(const char *fmt, ...)
{
        LOG_BODY(LOG_LEVEL_DEBUG, 0);
}

void fatal(int status, const char *fmt, ...)
{
        int saved = errno;

        LOG_BODY(LOG_LEVEL_ERR, saved);
        exit(status);
}

void fatalx(int status, const char *fmt, ...)
{
        LOG_BODY(LOG_LEVEL_ERR, 0);
        exit(status);
}
