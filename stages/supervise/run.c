/* SPDX-License-Identifier: MIT */
/* run.c: ringflowd's one loop: stage processes, signals, timers, watchdog, drain order (see supervise.h). */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "clock.h"
#include "config.h"
#include "log.h"
#include "notify.h"
#include "ring.h"
#include "stage.h"
#include "stats.h"
#include "supervise_priv.h"
#include "why.h"

/* How often heartbeats are read while all is steady, and while a stage starts or the pipeline drains. */
#define CHECK_NS (1 * NSEC_PER_SEC)
#define CHECK_FAST_NS (20 * NSEC_PER_MSEC)

/* ---- actions ---- */

static void sv_begin_stop(struct supervise *sv, enum sv_mode mode, int64_t now);
static void sv_event(struct supervise *sv, int i, enum sv_event ev, int64_t now);

/* "TERM" for SIGTERM, for logs. */
static const char *sv_signame(int sig)
{
        const char *abbrev = sigabbrev_np(sig);

        return abbrev != NULL ? abbrev : "?";
}

static double sv_secs(int64_t ns)
{
        return (double)ns / (double)NSEC_PER_SEC;
}

static void sv_spawn(struct supervise *sv, int i, int64_t now)
{
        struct sv_stage *s = &sv->st[i];
        struct child_spec spec = {
                .path = sv->path[i],
                .argv = sv->argv[i],
                .envp = sv->envp,
                .stdin_fd = i == sv->ingest ? sv->stdin_fd : -1,
                /* A terminal's reader must be in the foreground group, or it is stopped (SIGTTIN). */
                .own_pgrp = !(i == sv->ingest && sv->stdin_tty),
                .deathsig = SIGKILL,
        };
        pid_t pid = 0;
        int err;

        s->started_ns = now;
        err = child_spawn(&spec, &pid);
        if (err < 0) {
                log_warnx("%s: cannot start %s: %s", s->name, sv->path[i], strerror(-err));
                s->pid = 0;
                s->last_exit = 127;
                s->last_signal = 0;
                /* Like a crash: a binary replaced under us may be back by the next try. */
                sv_event(sv, i, SV_EV_EXIT_CRASH, now);
                return;
        }
        s->pid = pid;
        stats_set(sv->slot[(unsigned)i * SLOTS_PER_STAGE + SL_LAST_START], (uint64_t)clock_real_ns());
        if (s->starts > 1)
                log_info("%s: restarted (pid %ld, restart %llu)", s->name, (long)pid,
                         (unsigned long long)s->restarts);
        else
                log_info("%s: started (pid %ld)", s->name, (long)pid);
}

static void sv_signal(struct supervise *sv, int i, int sig)
{
        struct sv_stage *s = &sv->st[i];

        if (s->pid > 0 && kill(s->pid, sig) != 0 && errno != ESRCH)
                log_warn("%s: kill(%ld, SIG%s)", s->name, (long)s->pid, sv_signame(sig));
}

/* Feeds ev to stage i and carries out what the table says. */
static void sv_event(struct supervise *sv, int i, enum sv_event ev, int64_t now)
{
        struct sv_stage *s = &sv->st[i];
        enum sv_state from = s->state;

        switch (sv_step(s, ev, now, &sv->lim)) {
        case SV_ACT_SPAWN:
                sv_spawn(sv, i, now);
                break;
        case SV_ACT_UP:
                log_info("%s: up (pid %ld, first heartbeat after %.2fs)", s->name, (long)s->pid,
                         sv_secs(now - s->started_ns));
                break;
        case SV_ACT_TERM:
                sv_signal(sv, i, SIGTERM);
                break;
        case SV_ACT_KILL:
                if (ev == SV_EV_HUNG)
                        log_warnx("%s: no heartbeat for %.1fs (hung or stopped): SIGKILL, then restart",
                                  s->name, sv_secs(now - (s->heartbeat_ns > s->started_ns ?
                                                          s->heartbeat_ns : s->started_ns)));
                sv_signal(sv, i, SIGKILL);
                break;
        case SV_ACT_RESTART_LATER:
                log_info("%s: restart in %.3fs%s", s->name, sv_secs(s->restart_at - now),
                         from == SV_STOPPING ? " (it had not finished draining)" : "");
                if (s->fails == SV_CRASH_LOOP_FAILS)
                        log_warnx("%s: crash loop: %u failures in a row, none up for %.0fs; "
                                  "restarts back off up to %.0fs", s->name, s->fails,
                                  sv_secs(sv->lim.restart_reset), sv_secs(sv->lim.restart_max));
                break;
        case SV_ACT_FORGIVE:
                log_info("%s: up for %.0fs: restart delay back to %.3fs", s->name,
                         sv_secs(sv->lim.restart_reset), sv_secs(sv->lim.restart_min));
                break;
        case SV_ACT_NONE:
                break;
        }
}

/* ---- child exits ---- */

static void sv_describe_exit(char *buf, size_t len, int ws)
{
        if (WIFEXITED(ws))
                snprintf(buf, len, "exited with status %d", WEXITSTATUS(ws));
        else if (WIFSIGNALED(ws))
                snprintf(buf, len, "killed by SIG%s", sv_signame(WTERMSIG(ws)));
        else
                snprintf(buf, len, "ended (wait status %#x)", (unsigned)ws);
}

static void sv_reap(struct supervise *sv, int64_t now)
{
        pid_t pid;
        int ws;

        while ((pid = waitpid(-1, &ws, WNOHANG)) > 0) {
                struct sv_stage *s = NULL;
                enum sv_event ev;
                char how[96];
                int i;

                for (i = 0; i < sv->n; i++)
                        if (sv->st[i].pid == pid && sv_running(sv->st[i].state))
                                break;
                if (i == sv->n)
                        continue;
                s = &sv->st[i];
                s->pid = 0;
                s->last_exit = WIFEXITED(ws) ? WEXITSTATUS(ws) : 0;
                s->last_signal = WIFSIGNALED(ws) ? WTERMSIG(ws) : 0;
                sv_describe_exit(how, sizeof(how), ws);
                if (WIFEXITED(ws) && WEXITSTATUS(ws) == EXIT_PERMANENT)
                        ev = SV_EV_EXIT_PERMANENT;
                else if (WIFEXITED(ws) && WEXITSTATUS(ws) == 0 &&
                         (s->state == SV_STOPPING ||
                          (i == sv->ingest && (sv->flags & SUPERVISE_EXIT_ON_EOF))))
                        ev = SV_EV_EXIT_DONE;
                /* Told to stop, and killed by it before it could block the signal: it did stop. */
                else if (WIFSIGNALED(ws) && WTERMSIG(ws) == SIGTERM && s->state == SV_STOPPING)
                        ev = SV_EV_EXIT_DONE;
                else
                        ev = SV_EV_EXIT_CRASH;

                if (ev == SV_EV_EXIT_CRASH)
                        log_warnx("%s: pid %ld %s after %.2fs", s->name, (long)pid, how,
                                  sv_secs(now - s->started_ns));
                else
                        log_info("%s: pid %ld %s", s->name, (long)pid, how);
                sv_event(sv, i, ev, now);
                if (ev == SV_EV_EXIT_PERMANENT) {
                        log_warnx("%s: exit status %d is a permanent error (its reason is logged above): "
                                  "not restarted; stopping the other stages", s->name, EXIT_PERMANENT);
                        sv->status = EXIT_PERMANENT;
                        sv_begin_stop(sv, MODE_ABORT, now);
                } else if (ev == SV_EV_EXIT_DONE && i == sv->ingest && sv->mode == MODE_RUN) {
                        log_info("ingest: finished its input; draining the rest of the pipeline");
                        sv_begin_stop(sv, MODE_DRAIN, now);
                }
        }
}

/* ---- heartbeats, watchdog, status ---- */

/* Sum of ingest's accepted events over its sources. */
static uint64_t sv_ingest_accepted(const struct stats_snapshot *snap)
{
        static const char *const names[] = { "stdin.accepted", "unix.accepted", "tcp.accepted",
                                             "api.accepted" };
        uint64_t sum = 0;

        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
                const struct stats_value *v = stats_find(snap, names[k]);

                if (v != NULL)
                        sum += v->value;
        }
        return sum;
}

static void sv_check_stage(struct supervise *sv, int i, int64_t now)
{
        struct sv_stage *s = &sv->st[i];
        struct stats_snapshot snap;
        char w[WHY_MAX];
        int err;

        if (!sv_running(s->state))
                return;
        err = stats_read(sv->dirfd, s->name, &snap, w, sizeof(w));
        if (err == 0) {
                /* Only its own heartbeat counts, not one a previous run left in the file. */
                if (snap.pid == s->pid && snap.heartbeat_ns > s->started_ns)
                        s->heartbeat_ns = snap.heartbeat_ns;
                /* A rate over at least a second, however often the checks come. */
                if (i == sv->ingest && now - sv->in_prev_ns >= CHECK_NS) {
                        uint64_t in = sv_ingest_accepted(&snap);

                        if (sv->in_prev_ns != 0 && in >= sv->in_prev)
                                sv->in_rate = (in - sv->in_prev) * (uint64_t)NSEC_PER_SEC /
                                              (uint64_t)(now - sv->in_prev_ns);
                        sv->in_prev = in;
                        sv->in_prev_ns = now;
                }
                stats_snapshot_free(&snap);
        } else if (err != -ENOENT && !sv->stats_warned[i]) {
                /* A stage that has not made its file yet is normal; a bad file is said once. */
                sv->stats_warned[i] = 1;
                log_warnx("%s: cannot read its heartbeat: %s", s->name, w);
        }
        if (s->state == SV_STARTING && s->heartbeat_ns != 0)
                sv_event(sv, i, SV_EV_HEARTBEAT, now);
        if ((s->state == SV_STARTING || s->state == SV_UP) && sv->cfg.watchdog > 0) {
                int64_t last = s->heartbeat_ns > s->started_ns ? s->heartbeat_ns : s->started_ns;

                if (now - last > sv->cfg.watchdog)
                        sv_event(sv, i, SV_EV_HUNG, now);
        }
        if (s->state == SV_UP && s->fails > 0 && now - s->up_ns >= sv->lim.restart_reset)
                sv_event(sv, i, SV_EV_HEALTHY, now);
}

static void sv_notify(struct supervise *sv, int64_t now)
{
        char status[160];
        int up = 0;

        for (int i = 0; i < sv->n; i++)
                up += sv->st[i].state == SV_UP;
        if (sv->mode != MODE_RUN) {
                /* Checks come every CHECK_FAST_NS while draining; systemd hears once a second. */
                if (now >= sv->next_notify) {
                        snprintf(status, sizeof(status), "stopping: %d/%d stages running", up, sv->n);
                        notify_status(&sv->nt, status);
                        sv->next_notify = now + CHECK_NS;
                }
                return;
        }
        snprintf(status, sizeof(status), "%d/%d stages up, %llu events/s in", up, sv->n,
                 (unsigned long long)sv->in_rate);
        if (up == sv->n && !sv->nt.ready_sent) {
                log_info("all %d stages up", sv->n);
                notify_ready(&sv->nt, status);
        } else if (now >= sv->next_notify) {
                notify_status(&sv->nt, status);
        }
        if (now >= sv->next_notify) {
                int64_t every = CHECK_NS;

                if (up == sv->n)
                        notify_watchdog(&sv->nt);
                /* systemd wants a ping well within WatchdogSec: at half of it when that is under 2 s. */
                if (sv->nt.watchdog_ns > 0 && sv->nt.watchdog_ns / 2 < every)
                        every = sv->nt.watchdog_ns / 2;
                sv->next_notify = now + every;
        }
}

/* ---- stopping ---- */

static void sv_begin_stop(struct supervise *sv, enum sv_mode mode, int64_t now)
{
        char status[96];

        if (sv->mode == MODE_RUN) {
                sv->deadline = now + sv->cfg.shutdown_timeout;
                snprintf(status, sizeof(status), "stopping: draining the stages in order");
                notify_stopping(&sv->nt, status);
        }
        if (mode > sv->mode)
                sv->mode = mode;
}

/* 1 when the consumer of producer-consumer has everything written there (see sv_drain_ready). */
static int sv_ring_drained(void *ctx, const char *producer, const char *consumer)
{
        struct supervise *sv = ctx;
        struct ring_stats rs;
        int c = sv_index(sv, consumer);

        for (unsigned r = 0; r < sv_nring_defs; r++) {
                if (strcmp(sv_ring_defs[r].producer, producer) != 0 ||
                    strcmp(sv_ring_defs[r].consumer, consumer) != 0)
                        continue;
                if (sv->rings[r] == NULL)
                        return 1;
                if (ring_stats(sv->rings[r], &rs) != 0) {
                        if (!sv->warned_ring++)
                                log_warnx("%s-%s.ring: %s: not waiting for it to drain", producer,
                                          consumer, ring_why(sv->rings[r]));
                        return 1;
                }
                /*
                 * One that is not running yet replays from `commit`, so
                 * only commit tells it is done.
                 */
                if (c < 0 || sv->st[c].state != SV_UP)
                        return rs.commit == rs.write;
                /* A consumer that is up is done when it has looked at everything: its stop finishes that. */
                if (rs.read == rs.write)
                        return 1;
                /*
                 * Or when it sleeps for more data, which it does once its
                 * cursor reached `write` (a consumer may publish `read`
                 * only at its checkpoints), and the producer has stopped.
                 * It raises the flag just before its last look, so a
                 * flag seen once may be that instant: it must be seen
                 * twice, with no progress between.
                 */
                if (rs.cons.sleeping && rs.cons.alive) {
                        if (sv->idle_seen[r] && sv->idle_read[r] == rs.read)
                                return 1;
                        sv->idle_seen[r] = 1;
                        sv->idle_read[r] = rs.read;
                        return 0;
                }
                sv->idle_seen[r] = 0;
                return 0;
        }
        return 1;
}

static void sv_drain(struct supervise *sv, int64_t now)
{
        enum sv_state states[SV_STAGES_MAX];

        for (int i = 0; i < sv->n; i++) {
                struct sv_stage *s = &sv->st[i];

                for (int j = 0; j < sv->n; j++)
                        states[j] = sv->st[j].state;
                if (s->state != SV_STARTING && s->state != SV_UP && s->state != SV_BACKOFF)
                        continue;
                if (sv->mode == MODE_ABORT ||
                    sv_drain_ready(sv->names, states, sv->n, i, sv_ring_drained, sv)) {
                        if (s->state != SV_BACKOFF)
                                log_info("%s: stopping (SIGTERM)", s->name);
                        sv_event(sv, i, SV_EV_STOP, now);
                }
        }
}

static void sv_kill_all(struct supervise *sv, int64_t now)
{
        if (!sv->killed) {
                char left[128] = "";
                size_t n = 0;

                sv->killed = 1;
                for (int i = 0; i < sv->n; i++)
                        if (!sv_finished(sv->st[i].state) && n < sizeof(left))
                                n += (size_t)snprintf(left + n, sizeof(left) - n, " %s", sv->st[i].name);
                log_warnx("shutdown_timeout (%.1fs) passed: SIGKILL to%s", sv_secs(sv->cfg.shutdown_timeout),
                          left);
                if (sv->status == 0)
                        sv->status = EXIT_TEMPORARY;
        }
        for (int i = 0; i < sv->n; i++)
                sv_event(sv, i, SV_EV_KILL, now);
}

/* ---- the loop ---- */

static void sv_read_signals(struct supervise *sv, int64_t now)
{
        struct signalfd_siginfo si;
        int child = 0;

        while (read(sv->sigfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
                int sig = (int)si.ssi_signo;

                if (sig == SIGCHLD) {
                        child = 1;
                } else if (sig == SIGHUP) {
                        int n = 0;

                        /* Only stages that are up have their signalfd: SIGHUP would kill one still starting. */
                        for (int i = 0; i < sv->n; i++)
                                if (sv->st[i].state == SV_UP) {
                                        sv_signal(sv, i, SIGHUP);
                                        n++;
                                }
                        log_info("SIGHUP: passed to %d stage%s, which reload what they can; stages, "
                                 "stage_dir, ring capacities and the other [supervise] settings take "
                                 "effect when ringflowd restarts", n, n == 1 ? "" : "s");
                } else if (sv->mode == MODE_RUN) {
                        log_info("%s: stopping the stages in order, each once its input is drained "
                                 "(at most %.1fs)", strsignal(sig), sv_secs(sv->cfg.shutdown_timeout));
                        sv_begin_stop(sv, MODE_DRAIN, now);
                } else {
                        log_info("%s: already stopping; what is left is killed in %.1fs", strsignal(sig),
                                 sv_secs(sv->deadline - now));
                }
        }
        if (child)
                sv_reap(sv, now);
}

static int sv_all_finished(const struct supervise *sv)
{
        for (int i = 0; i < sv->n; i++)
                if (!sv_finished(sv->st[i].state))
                        return 0;
        return 1;
}

/* One pass over everything that is due at now; returns when the loop should wake next. */
static int64_t sv_tick(struct supervise *sv, int64_t now)
{
        int64_t wake, check_every = CHECK_NS;
        int checked = now >= sv->next_check;

        if (checked)
                for (int i = 0; i < sv->n; i++)
                        sv_check_stage(sv, i, now);
        /* Stops before restarts: a stage the drain no longer needs is not started again. */
        if (sv->mode != MODE_RUN) {
                if (now >= sv->deadline)
                        sv_kill_all(sv, now);
                else
                        sv_drain(sv, now);
        }
        for (int i = 0; i < sv->n; i++)
                if (sv->st[i].state == SV_BACKOFF && now >= sv->st[i].restart_at)
                        sv_event(sv, i, SV_EV_TIMER, now);
        sv_stats_publish(sv);
        /* After the stats: whoever hears READY=1 finds every stage up in supervise.stats. */
        if (checked)
                sv_notify(sv, now);

        for (int i = 0; i < sv->n; i++)
                if (sv->st[i].state == SV_STARTING || sv->st[i].state == SV_STOPPING)
                        check_every = CHECK_FAST_NS;
        if (sv->mode != MODE_RUN)
                check_every = CHECK_FAST_NS;
        if (sv->nt.watchdog_ns > 0 && sv->nt.watchdog_ns / 2 < check_every)
                check_every = sv->nt.watchdog_ns / 2;
        if (now >= sv->next_check)
                sv->next_check = now + check_every;
        else if (sv->next_check > now + check_every)
                sv->next_check = now + check_every;
        wake = sv->next_check;
        for (int i = 0; i < sv->n; i++)
                if (sv->st[i].state == SV_BACKOFF && sv->st[i].restart_at < wake)
                        wake = sv->st[i].restart_at;
        if (sv->mode != MODE_RUN && !sv->killed && sv->deadline < wake)
                wake = sv->deadline;
        return wake;
}

int supervise_run(struct supervise *sv)
{
        int64_t now = clock_mono_ns();

        log_info("instance %s: starting %d stage%s", sv->cfg.instance, sv->n, sv->n == 1 ? "" : "s");
        for (int i = 0; i < sv->n && sv->mode == MODE_RUN; i++)
                sv_event(sv, i, SV_EV_START, clock_mono_ns());
        sv->next_check = now;
        for (;;) {
                struct itimerspec its = { 0 };
                struct epoll_event ev[4];
                int64_t wake;
                int n;

                now = clock_mono_ns();
                wake = sv_tick(sv, now);
                if (sv->mode != MODE_RUN && sv_all_finished(sv))
                        break;
                its.it_value.tv_sec = wake / NSEC_PER_SEC;
                its.it_value.tv_nsec = wake % NSEC_PER_SEC;
                if (wake <= now)
                        its.it_value = (struct timespec){ 0, 1 };
                if (timerfd_settime(sv->tfd, TFD_TIMER_ABSTIME, &its, NULL) != 0) {
                        log_warn("timerfd_settime");
                        return EXIT_TEMPORARY;
                }
                n = epoll_wait(sv->epfd, ev, 4, -1);
                if (n < 0 && errno != EINTR) {
                        log_warn("epoll_wait");
                        return EXIT_TEMPORARY;
                }
                for (int k = 0; k < n; k++) {
                        if (ev[k].data.fd == sv->tfd) {
                                uint64_t ticks;

                                if (read(sv->tfd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
                                        log_warn("timerfd read");
                        }
                }
                sv_read_signals(sv, clock_mono_ns());
        }
        sv_stats_publish(sv);
        for (int i = 0; i < sv->n; i++)
                if (sv->st[i].state == SV_FAILED)
                        log_warnx("%s failed (exit status %d)", sv->st[i].name, sv->st[i].last_exit);
        log_info("all stages stopped; exit status %d", sv->status);
        return sv->status;
}
