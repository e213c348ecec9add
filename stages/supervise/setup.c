/* SPDX-License-Identifier: MIT */
/* setup.c: ringflowd before its loop: settings, binaries, supervise.stats, rings made or adopted (see supervise.h). */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "child.h"
#include "clock.h"
#include "log.h"
#include "stage.h"
#include "supervise_priv.h"
#include "why.h"

extern char **environ;

/* How long a new supervisor waits for the stages of a dead one to be gone (their death signal). */
#define ADOPT_WAIT_NS (5 * NSEC_PER_SEC)
#define ADOPT_POLL_NS (10 * NSEC_PER_MSEC)

static int sv_check_limits(const struct config *c, char *why, size_t whylen)
{
        if (c->restart_min <= 0)
                return why_set(why, whylen, -EINVAL, "restart_min must be above 0");
        if (c->restart_max < c->restart_min)
                return why_set(why, whylen, -EINVAL, "restart_max must be at least restart_min");
        if (c->shutdown_timeout <= 0)
                return why_set(why, whylen, -EINVAL, "shutdown_timeout must be above 0");
        return 0;
}

int sv_index(const struct supervise *sv, const char *name)
{
        for (int i = 0; i < sv->n; i++)
                if (strcmp(sv->names[i], name) == 0)
                        return i;
        return -1;
}

static int sv_build_argv(struct supervise *sv, int i, char *const *args, int nargs)
{
        static char exit_on_eof[] = "--exit-on-eof";
        size_t k = 0;
        char **a = calloc((size_t)nargs + 3, sizeof(*a));

        if (a == NULL)
                return -ENOMEM;
        a[k++] = sv->path[i];
        for (int j = 0; j < nargs; j++)
                a[k++] = args[j];
        /* Only ingest knows the end of the input; the others are stopped in order after it. */
        if (i == sv->ingest && (sv->flags & SUPERVISE_EXIT_ON_EOF))
                a[k++] = exit_on_eof;
        a[k] = NULL;
        sv->argv[i] = a;
        return 0;
}

static int sv_stats_open(struct supervise *sv, char *why, size_t whylen)
{
        static const char *const fields[SLOTS_PER_STAGE] = {
                [SL_STATE] = "state", [SL_PID] = "pid", [SL_RESTARTS] = "restarts",
                [SL_LAST_EXIT] = "last_exit", [SL_LAST_SIGNAL] = "last_signal",
                [SL_LAST_START] = "last_start_ns", [SL_CRASH_LOOPS] = "crash_loops",
                [SL_WATCHDOG_KILLS] = "watchdog_kills", [SL_DELAY] = "restart_delay_ns",
        };
        struct stats_def defs[SLOTS_MAX];
        unsigned k = 0;
        int err;

        for (int i = 0; i < sv->n; i++) {
                for (unsigned f = 0; f < SLOTS_PER_STAGE; f++, k++) {
                        snprintf(sv->slot_names[k], sizeof(sv->slot_names[k]), "%s.%s", sv->names[i],
                                 fields[f]);
                        defs[k].name = sv->slot_names[k];
                        defs[k].kind = f == SL_RESTARTS || f == SL_CRASH_LOOPS ||
                                       f == SL_WATCHDOG_KILLS ? STATS_COUNTER : STATS_GAUGE;
                }
        }
        defs[k++] = (struct stats_def){ "stages.configured", STATS_GAUGE };
        defs[k++] = (struct stats_def){ "stages.up", STATS_GAUGE };
        err = stats_create(&sv->stats, sv->dirfd, "supervise", defs, k, why, whylen);
        if (err == -EBUSY) {
                struct stats_snapshot snap;
                char w[WHY_MAX];
                long pid = 0;

                if (stats_read(sv->dirfd, "supervise", &snap, w, sizeof(w)) == 0) {
                        pid = snap.pid;
                        stats_snapshot_free(&snap);
                }
                return why_set(why, whylen, err, "instance %s is supervised by another ringflowd (pid %ld)",
                               sv->cfg.instance, pid);
        }
        if (err < 0)
                return err;
        for (unsigned j = 0; j < k; j++)
                sv->slot[j] = stats_slot(sv->stats, j);
        return 0;
}

/* Counters carry on across supervisor restarts; this run's own numbers start from them. */
static void sv_stats_load(struct supervise *sv)
{
        for (int i = 0; i < sv->n; i++) {
                struct sv_stage *s = &sv->st[i];
                _Atomic uint64_t **sl = &sv->slot[(unsigned)i * SLOTS_PER_STAGE];

                s->restarts = atomic_load(sl[SL_RESTARTS]);
                s->crash_loops = atomic_load(sl[SL_CRASH_LOOPS]);
                s->watchdog_kills = atomic_load(sl[SL_WATCHDOG_KILLS]);
        }
}

void sv_stats_publish(struct supervise *sv)
{
        unsigned up = 0;

        for (int i = 0; i < sv->n; i++) {
                const struct sv_stage *s = &sv->st[i];
                _Atomic uint64_t **sl = &sv->slot[(unsigned)i * SLOTS_PER_STAGE];

                stats_set(sl[SL_STATE], (uint64_t)s->state);
                stats_set(sl[SL_PID], (uint64_t)s->pid);
                stats_set(sl[SL_RESTARTS], s->restarts);
                stats_set(sl[SL_LAST_EXIT], (uint64_t)s->last_exit);
                stats_set(sl[SL_LAST_SIGNAL], (uint64_t)s->last_signal);
                stats_set(sl[SL_CRASH_LOOPS], s->crash_loops);
                stats_set(sl[SL_WATCHDOG_KILLS], s->watchdog_kills);
                stats_set(sl[SL_DELAY], (uint64_t)(s->delay_ns > 0 ? s->delay_ns : sv->lim.restart_min));
                up += s->state == SV_UP;
        }
        stats_set(sv->slot[(unsigned)sv->n * SLOTS_PER_STAGE], (uint64_t)sv->n);
        stats_set(sv->slot[(unsigned)sv->n * SLOTS_PER_STAGE + 1], up);
        stats_heartbeat(sv->stats);
}

/* The pid of a live end of any wanted ring, or of a live writer of a stage's stats; 0 when none. */
static long sv_instance_busy(struct supervise *sv, char *what, size_t len)
{
        for (unsigned r = 0; r < sv_nring_defs; r++) {
                struct ring_stats rs;

                if (sv->rings[r] == NULL || ring_stats(sv->rings[r], &rs) != 0)
                        continue;
                if (rs.prod.alive || rs.cons.alive) {
                        snprintf(what, len, "ring %s-%s's %s", rs.producer, rs.consumer,
                                 rs.prod.alive ? "producer" : "consumer");
                        return rs.prod.alive ? rs.prod.pid : rs.cons.pid;
                }
        }
        for (int i = 0; i < sv->n; i++) {
                struct stats_snapshot snap;
                char w[WHY_MAX];
                long pid = 0;

                if (stats_read(sv->dirfd, sv->names[i], &snap, w, sizeof(w)) != 0)
                        continue;
                if (snap.alive)
                        pid = snap.pid;
                stats_snapshot_free(&snap);
                if (pid != 0) {
                        snprintf(what, len, "%s.stats's writer", sv->names[i]);
                        return pid;
                }
        }
        return 0;
}

/*
 * Makes each wanted ring, or adopts the one a previous supervisor left:
 * attaching as an observer validates its header and positions without
 * touching them, so what it holds is replayed by the stages, not lost.
 */
static int sv_rings_open(struct supervise *sv, char *why, size_t whylen)
{
        for (unsigned r = 0; r < sv_nring_defs; r++) {
                const struct sv_ring_def *d = &sv_ring_defs[r];
                uint64_t cap = d->lossy ? sv->cfg.live_ring_capacity : sv->cfg.ring_capacity;
                struct ring_stats rs;
                char w[WHY_MAX];
                int err, made;

                if (!sv_ring_wanted(d, sv->names, sv->n))
                        continue;
                err = ring_create(sv->dirfd, d->producer, d->consumer, cap, d->lossy ? RING_LOSSY : 0,
                                  w, sizeof(w));
                if (err < 0 && err != -EEXIST)
                        return why_set(why, whylen, err, "instance %s: %s", sv->cfg.instance, w);
                made = err == 0;
                err = ring_attach(&sv->rings[r], sv->dirfd, d->producer, d->consumer, RING_OBSERVER,
                                  w, sizeof(w));
                if (err < 0) {
                        sv->rings[r] = NULL;
                        /* A ring file that is not a valid ring needs a person: do not restart. */
                        return why_set(why, whylen, err == -ENOMEM || err == -EMFILE ? err : -EINVAL,
                                       "instance %s: %s (remove the instance to start afresh; "
                                       "its unconsumed records are then lost)", sv->cfg.instance, w);
                }
                if (ring_stats(sv->rings[r], &rs) != 0)
                        return why_set(why, whylen, -EINVAL, "instance %s: %s-%s.ring: %s",
                                       sv->cfg.instance, d->producer, d->consumer, ring_why(sv->rings[r]));
                if (made)
                        log_debug("made %s-%s.ring: %llu bytes%s", d->producer, d->consumer,
                                  (unsigned long long)rs.capacity, d->lossy ? ", lossy" : "");
                else
                        log_info("adopted %s-%s.ring: %llu records written, %llu not yet committed downstream",
                                 d->producer, d->consumer, (unsigned long long)rs.write_count,
                                 (unsigned long long)(rs.write_count - rs.commit_count));
                if (rs.capacity != cap)
                        log_warnx("%s-%s.ring holds %llu bytes, not the configured %llu: it is kept "
                                  "(remove the instance once it is drained to resize it)",
                                  d->producer, d->consumer, (unsigned long long)rs.capacity,
                                  (unsigned long long)cap);
        }
        return 0;
}

static int sv_wait_previous(struct supervise *sv, char *why, size_t whylen)
{
        int64_t deadline = clock_mono_ns() + ADOPT_WAIT_NS;
        struct timespec poll = { 0, ADOPT_POLL_NS };
        char what[128];
        long pid;
        int said = 0;

        while ((pid = sv_instance_busy(sv, what, sizeof(what))) != 0) {
                if (clock_mono_ns() >= deadline)
                        return why_set(why, whylen, -EBUSY,
                                       "instance %s: %s (pid %ld) is still running: stop it first",
                                       sv->cfg.instance, what, pid);
                if (!said++)
                        log_info("instance %s: waiting for %s (pid %ld) to exit", sv->cfg.instance, what,
                                 pid);
                nanosleep(&poll, NULL);
        }
        return 0;
}

static int sv_loop_fds(struct supervise *sv)
{
        struct epoll_event ev = { .events = EPOLLIN };
        sigset_t mask;

        sigemptyset(&mask);
        sigaddset(&mask, SIGCHLD);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0)
                return -errno;
        sv->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (sv->sigfd < 0)
                return -errno;
        sv->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (sv->tfd < 0)
                return -errno;
        sv->epfd = epoll_create1(EPOLL_CLOEXEC);
        if (sv->epfd < 0)
                return -errno;
        ev.data.fd = sv->sigfd;
        if (epoll_ctl(sv->epfd, EPOLL_CTL_ADD, sv->sigfd, &ev) != 0)
                return -errno;
        ev.data.fd = sv->tfd;
        if (epoll_ctl(sv->epfd, EPOLL_CTL_ADD, sv->tfd, &ev) != 0)
                return -errno;
        return 0;
}

int supervise_open(struct supervise **svp, const struct config *cfg, unsigned flags,
                   char *const *args, int nargs, char *why, size_t whylen)
{
        struct supervise *sv;
        char self[PATH_MAX];
        int err;

        *svp = NULL;
        sv = calloc(1, sizeof(*sv));
        if (sv == NULL)
                return why_set(why, whylen, -ENOMEM, "out of memory");
        sv->cfg = *cfg;
        sv->cfg.named = NULL;
        sv->cfg.nnamed = 0;
        sv->flags = flags;
        sv->dirfd = sv->sigfd = sv->tfd = sv->epfd = -1;
        sv->stdin_fd = -1;
        sv->lim = (struct sv_limits){ cfg->restart_min, cfg->restart_max, cfg->restart_reset };

        err = sv_check_limits(cfg, why, whylen);
        if (err < 0)
                goto err;
        err = sv->n = sv_parse_stages(cfg->stages, sv->names, why, whylen);
        if (err < 0)
                goto err;
        sv->ingest = sv_index(sv, "ingest");
        if ((flags & SUPERVISE_EXIT_ON_EOF) && sv->ingest < 0)
                log_info("--exit-on-eof: ingest is not among the stages; ignored");
        err = child_self_dir(self, sizeof(self));
        if (err < 0) {
                err = why_set(why, whylen, err, "/proc/self/exe: %s", strerror(-err));
                goto err;
        }
        for (int i = 0; i < sv->n; i++) {
                snprintf(sv->st[i].name, sizeof(sv->st[i].name), "%s", sv->names[i]);
                err = child_find_binary(cfg->stage_dir, self, sv->names[i], sv->path[i],
                                        sizeof(sv->path[i]), why, whylen);
                if (err < 0) {
                        err = -EINVAL;  /* a missing binary is fixed by a person, not by a restart */
                        goto err;
                }
                err = sv_build_argv(sv, i, args, nargs);
                if (err < 0) {
                        err = why_set(why, whylen, err, "out of memory");
                        goto err;
                }
        }
        sv->envp = child_env(environ);
        if (sv->envp == NULL) {
                err = why_set(why, whylen, -ENOMEM, "out of memory");
                goto err;
        }
        if (sv->ingest >= 0 && cfg->ingest_stdin && fcntl(STDIN_FILENO, F_GETFD) >= 0) {
                /* Kept open here for good: a restarted ingest goes on reading the same pipe. */
                sv->stdin_fd = STDIN_FILENO;
                sv->stdin_tty = isatty(STDIN_FILENO);
        }

        err = stage_instance_open(cfg->instance, 1, why, whylen);
        if (err < 0)
                goto err;
        sv->dirfd = err;
        err = sv_stats_open(sv, why, whylen);
        if (err < 0)
                goto err;
        sv_stats_load(sv);
        err = sv_rings_open(sv, why, whylen);
        if (err < 0)
                goto err;
        err = sv_wait_previous(sv, why, whylen);
        if (err < 0)
                goto err;
        err = sv_loop_fds(sv);
        if (err < 0) {
                err = why_set(why, whylen, err, "signalfd, timerfd or epoll: %s", strerror(-err));
                goto err;
        }
        notify_init(&sv->nt);
        *svp = sv;
        return 0;
err:
        supervise_close(sv);
        return err;
}

void supervise_close(struct supervise *sv)
{
        if (sv == NULL)
                return;
        for (unsigned r = 0; r < sizeof(sv->rings) / sizeof(sv->rings[0]); r++)
                if (sv->rings[r] != NULL)
                        ring_close(sv->rings[r]);
        if (sv->stats != NULL)
                stats_close(sv->stats);
        for (int i = 0; i < SV_STAGES_MAX; i++)
                free(sv->argv[i]);
        free(sv->envp);
        if (sv->epfd >= 0)
                close(sv->epfd);
        if (sv->tfd >= 0)
                close(sv->tfd);
        if (sv->sigfd >= 0)
                close(sv->sigfd);
        if (sv->dirfd >= 0)
                close(sv->dirfd);
        free(sv);
}
