/* SPDX-License-Identifier: MIT */
/* stage.c: the signalfd, instance and ring setup every stage shares (see stage.h). */
#include "autoconf.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "instance.h"
#include "log.h"
#include "stage.h"
#include "why.h"

/*
 * Signals are blocked and read from a signalfd, so a stage sees them
 * between batches, never inside one: a stop finishes (publishes, commits)
 * what is open before the exit.
 */
int stage_signals_open(void)
{
        sigset_t mask;
        int fd;

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0)
                return -errno;
        fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

int stage_signals_read(int fd, int *stop, int *reload)
{
        struct signalfd_siginfo si;
        ssize_t got;
        int n = 0;

        for (;;) {
                got = read(fd, &si, sizeof(si));
                if (got != (ssize_t)sizeof(si))
                        break;
                n++;
                if (si.ssi_signo == SIGHUP)
                        (*reload)++;
                else if (*stop == 0)
                        *stop = (int)si.ssi_signo;
        }
        /* A signalfd gives whole records or fails; EAGAIN is the normal end. */
        if (got < 0 && errno != EAGAIN)
                return -errno;
        return n;
}

int stage_signals(int fd, const char *stopping, int *stopped)
{
        int stop = 0, reload = 0, n;

        n = stage_signals_read(fd, &stop, &reload);
        if (n < 0)
                fatalx(EXIT_TEMPORARY, "signalfd: %s", strerror(-n));
        if (reload > 0)
                log_info("SIGHUP: nothing to reload; restart to change settings");
        if (stop != 0) {
                log_info("%s: %s", strsignal(stop), stopping);
                *stopped = 1;
        }
        return n;
}

int stage_instance_open(const char *instance, int create, char *why, size_t whylen)
{
        char w[WHY_MAX];
        int fd;

        fd = instance_open(instance, create, w, sizeof(w));
        if (fd == -ENOENT)
                return why_set(why, whylen, fd,
                               "instance %s does not exist (%s): start ringflowd or pass --create",
                               instance, w);
        if (fd < 0)
                return why_set(why, whylen, fd, "instance %s: %s", instance, w);
        return fd;
}

int stage_ring_create(int dirfd, const char *instance, const char *producer, const char *consumer,
                      uint64_t capacity, unsigned flags, char *why, size_t whylen)
{
        char w[WHY_MAX];
        int err;

        err = ring_create(dirfd, producer, consumer, capacity, flags, w, sizeof(w));
        if (err < 0 && err != -EEXIST)
                return why_set(why, whylen, err, "instance %s: %s", instance, w);
        return 0;
}

int stage_ring_attach(struct ring **rp, int dirfd, const char *instance, const char *producer,
                      const char *consumer, enum ring_role role, char *why, size_t whylen)
{
        char w[WHY_MAX];
        int err;

        err = ring_attach(rp, dirfd, producer, consumer, role, w, sizeof(w));
        if (err == -ENOENT)
                return why_set(why, whylen, err, "instance %s: %s: start ringflowd or pass --create",
                               instance, w);
        if (err < 0)
                return why_set(why, whylen, err, "instance %s: %s", instance, w);
        return 0;
}
