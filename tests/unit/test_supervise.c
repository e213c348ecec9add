/* SPDX-License-Identifier: MIT */
/* test_supervise.c: ringflowd's state table, restart backoff, stage list, ring choice and drain order. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "clock.h"
#include "supervise.h"
#include "why.h"

TestSuite(supervise);

static const struct sv_limits lim = {
        .restart_min = 100 * NSEC_PER_MSEC,
        .restart_max = 30 * NSEC_PER_SEC,
        .restart_reset = 60 * NSEC_PER_SEC,
};

static struct sv_stage fresh(void)
{
        struct sv_stage s;

        memset(&s, 0, sizeof(s));
        strcpy(s.name, "store");
        return s;
}

Test(supervise, backoff_doubles_from_restart_min_to_restart_max)
{
        int64_t d = 0;
        int64_t want[] = { 100, 200, 400, 800, 1600, 3200, 6400, 12800, 25600, 30000, 30000 };

        for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
                d = sv_backoff_next(d, &lim);
                cr_assert_eq(d, want[i] * NSEC_PER_MSEC, "step %zu: %lld", i, (long long)d);
        }
}

Test(supervise, backoff_never_overflows_with_a_huge_cap)
{
        struct sv_limits big = { .restart_min = 1, .restart_max = INT64_MAX };
        int64_t d = 0;

        for (int i = 0; i < 200; i++) {
                int64_t next = sv_backoff_next(d, &big);

                cr_assert(next >= d && next > 0);
                d = next;
        }
        cr_assert_eq(d, INT64_MAX);
}

Test(supervise, a_started_stage_is_up_at_its_first_heartbeat)
{
        struct sv_stage s = fresh();

        cr_assert_eq(sv_step(&s, SV_EV_START, 0, &lim), SV_ACT_SPAWN);
        cr_assert_eq(s.state, SV_STARTING);
        cr_assert_eq(s.starts, 1);
        cr_assert_eq(s.restarts, 0);
        cr_assert_eq(sv_step(&s, SV_EV_HEARTBEAT, 5, &lim), SV_ACT_UP);
        cr_assert_eq(s.state, SV_UP);
        cr_assert_eq(s.up_ns, 5);
        cr_assert_eq(sv_step(&s, SV_EV_HEARTBEAT, 6, &lim), SV_ACT_NONE, "a heartbeat when up is nothing new");
        cr_assert_eq(s.up_ns, 5);
}

Test(supervise, crashes_restart_later_with_growing_delays_and_count_a_crash_loop)
{
        struct sv_stage s = fresh();
        int64_t now = 1000;
        int64_t delay = 100 * NSEC_PER_MSEC;

        sv_step(&s, SV_EV_START, now, &lim);
        for (unsigned k = 1; k <= SV_CRASH_LOOP_FAILS + 1; k++) {
                cr_assert_eq(sv_step(&s, SV_EV_EXIT_CRASH, now, &lim), SV_ACT_RESTART_LATER);
                cr_assert_eq(s.state, SV_BACKOFF);
                cr_assert_eq(s.restart_at - now, delay, "failure %u waits %lld", k,
                             (long long)(s.restart_at - now));
                cr_assert_eq(s.fails, k);
                cr_assert_eq(s.crash_loops, k >= SV_CRASH_LOOP_FAILS ? 1u : 0u);
                cr_assert_eq(sv_step(&s, SV_EV_TIMER, s.restart_at, &lim), SV_ACT_SPAWN);
                cr_assert_eq(s.state, SV_STARTING);
                cr_assert_eq(s.restarts, k);
                now = s.restart_at + 1;
                delay *= 2;
        }
}

Test(supervise, a_healthy_run_forgives_past_failures)
{
        struct sv_stage s = fresh();

        sv_step(&s, SV_EV_START, 0, &lim);
        sv_step(&s, SV_EV_EXIT_CRASH, 0, &lim);
        sv_step(&s, SV_EV_TIMER, s.restart_at, &lim);
        sv_step(&s, SV_EV_EXIT_CRASH, s.restart_at, &lim);
        sv_step(&s, SV_EV_TIMER, s.restart_at, &lim);
        cr_assert_eq(s.delay_ns, 400 * NSEC_PER_MSEC);
        sv_step(&s, SV_EV_HEARTBEAT, 0, &lim);
        cr_assert_eq(sv_step(&s, SV_EV_HEALTHY, 0, &lim), SV_ACT_FORGIVE);
        cr_assert_eq(s.fails, 0);
        cr_assert_eq(sv_step(&s, SV_EV_EXIT_CRASH, 1000, &lim), SV_ACT_RESTART_LATER);
        cr_assert_eq(s.restart_at, 1000 + 100 * NSEC_PER_MSEC, "back to restart_min");
}

Test(supervise, exit_100_is_final)
{
        struct sv_stage s = fresh();

        sv_step(&s, SV_EV_START, 0, &lim);
        sv_step(&s, SV_EV_HEARTBEAT, 0, &lim);
        cr_assert_eq(sv_step(&s, SV_EV_EXIT_PERMANENT, 0, &lim), SV_ACT_NONE);
        cr_assert_eq(s.state, SV_FAILED);
        for (int ev = 0; ev < SV_NEVENTS; ev++) {
                cr_assert_eq(sv_step(&s, (enum sv_event)ev, 0, &lim), SV_ACT_NONE, "event %s",
                             sv_event_name((enum sv_event)ev));
                cr_assert_eq(s.state, SV_FAILED);
        }
        cr_assert(sv_finished(s.state));
}

Test(supervise, a_hung_stage_is_killed_then_restarted)
{
        struct sv_stage s = fresh();

        sv_step(&s, SV_EV_START, 0, &lim);
        sv_step(&s, SV_EV_HEARTBEAT, 0, &lim);
        cr_assert_eq(sv_step(&s, SV_EV_HUNG, 0, &lim), SV_ACT_KILL);
        cr_assert_eq(s.state, SV_KILLING);
        cr_assert_eq(s.watchdog_kills, 1);
        cr_assert_eq(sv_step(&s, SV_EV_STOP, 0, &lim), SV_ACT_NONE, "SIGKILL is already on its way");
        cr_assert_eq(sv_step(&s, SV_EV_EXIT_CRASH, 0, &lim), SV_ACT_RESTART_LATER);
        cr_assert_eq(s.state, SV_BACKOFF);
}

Test(supervise, stopping_is_sigterm_then_sigkill_at_the_deadline)
{
        struct sv_stage s = fresh();

        sv_step(&s, SV_EV_START, 0, &lim);
        cr_assert_eq(sv_step(&s, SV_EV_STOP, 0, &lim), SV_ACT_TERM, "a starting stage is stopped too");
        cr_assert_eq(s.state, SV_STOPPING);
        cr_assert_eq(sv_step(&s, SV_EV_STOP, 0, &lim), SV_ACT_NONE);
        cr_assert_eq(sv_step(&s, SV_EV_HUNG, 0, &lim), SV_ACT_NONE, "no watchdog while draining");
        cr_assert_eq(sv_step(&s, SV_EV_KILL, 0, &lim), SV_ACT_KILL);
        cr_assert_eq(sv_step(&s, SV_EV_EXIT_DONE, 0, &lim), SV_ACT_NONE);
        cr_assert_eq(s.state, SV_STOPPED);
}

Test(supervise, a_stage_that_crashes_while_draining_comes_back)
{
        struct sv_stage s = fresh();

        sv_step(&s, SV_EV_START, 0, &lim);
        sv_step(&s, SV_EV_STOP, 0, &lim);
        cr_assert_eq(sv_step(&s, SV_EV_EXIT_CRASH, 0, &lim), SV_ACT_RESTART_LATER);
        cr_assert_eq(s.state, SV_BACKOFF);
        /* ...unless the drain no longer needs it, or time is up. */
        cr_assert_eq(sv_step(&s, SV_EV_STOP, 0, &lim), SV_ACT_NONE);
        cr_assert_eq(s.state, SV_STOPPED);
        cr_assert_eq(sv_step(&s, SV_EV_TIMER, 0, &lim), SV_ACT_NONE, "a stale timer starts nothing");
        cr_assert_eq(s.state, SV_STOPPED);
}

Test(supervise, every_state_and_event_has_a_name)
{
        for (int st = 0; st < SV_NSTATES; st++)
                cr_assert_neq(strcmp(sv_state_name((enum sv_state)st), "?"), 0);
        for (int ev = 0; ev < SV_NEVENTS; ev++)
                cr_assert_neq(strcmp(sv_event_name((enum sv_event)ev), "?"), 0);
        cr_assert_str_eq(sv_state_name(SV_NSTATES), "?");
}

Test(supervise, the_stage_list_is_parsed_in_order)
{
        char names[SV_STAGES_MAX][SV_NAME_MAX + 1];
        char why[WHY_MAX];

        cr_assert_eq(sv_parse_stages("ingest, process, store, api", names, why, sizeof(why)), 4);
        cr_assert_str_eq(names[0], "ingest");
        cr_assert_str_eq(names[3], "api");
        cr_assert_eq(sv_parse_stages(" store,ingest\t", names, why, sizeof(why)), 2);
        cr_assert_str_eq(names[0], "store");
        cr_assert_str_eq(names[1], "ingest");
        cr_assert_eq(sv_parse_stages("ingest, ingest", names, why, sizeof(why)), -EINVAL);
        cr_assert(strstr(why, "twice") != NULL, "%s", why);
        cr_assert_eq(sv_parse_stages("ingest, proces", names, why, sizeof(why)), -EINVAL);
        cr_assert(strstr(why, "\"proces\"") != NULL, "%s", why);
        cr_assert_eq(sv_parse_stages(" , ", names, why, sizeof(why)), -EINVAL);
        cr_assert_eq(sv_parse_stages("averyveryverylongstagename", names, why, sizeof(why)), -EINVAL);
}

static int ring_wanted(const char *list, const char *producer)
{
        char names[SV_STAGES_MAX][SV_NAME_MAX + 1];
        char why[WHY_MAX];
        int n = sv_parse_stages(list, names, why, sizeof(why));

        cr_assert(n > 0, "%s", why);
        for (unsigned r = 0; r < sv_nring_defs; r++)
                if (strcmp(sv_ring_defs[r].producer, producer) == 0)
                        return sv_ring_wanted(&sv_ring_defs[r], names, n);
        cr_assert_fail("no ring from %s", producer);
        return 0;
}

Test(supervise, rings_are_made_for_the_stages_that_run)
{
        cr_assert(sv_nring_defs <= SV_RINGS_MAX);
        cr_assert(ring_wanted("ingest", "ingest"));
        cr_assert(!ring_wanted("ingest", "process"));
        cr_assert(!ring_wanted("ingest", "api"), "ingest alone would poll an api ring for nothing");
        cr_assert(ring_wanted("store", "process"), "the store cannot start without its input");
        cr_assert(ring_wanted("store", "store"));
        cr_assert(ring_wanted("ingest, api", "api"));
}

struct drained_ctx {
        int drained;
        const char *asked;
};

static int drained_fn(void *ctx, const char *producer, const char *consumer)
{
        struct drained_ctx *d = ctx;

        (void)consumer;
        d->asked = producer;
        return d->drained;
}

Test(supervise, a_stage_drains_after_every_stage_before_it_stopped_and_its_input_is_read)
{
        char names[SV_STAGES_MAX][SV_NAME_MAX + 1];
        enum sv_state st[SV_STAGES_MAX] = { SV_UP, SV_UP, SV_UP, SV_UP };
        struct drained_ctx d = { 0, NULL };
        char why[WHY_MAX];
        int n = sv_parse_stages("ingest, process, store, api", names, why, sizeof(why));

        cr_assert(sv_drain_ready(names, st, n, 0, drained_fn, &d), "ingest goes first");
        cr_assert_null(d.asked, "ingest does not wait for the api, which comes later");
        cr_assert(!sv_drain_ready(names, st, n, 1, drained_fn, &d), "process waits for ingest");
        st[0] = SV_STOPPED;
        cr_assert(!sv_drain_ready(names, st, n, 1, drained_fn, &d), "...and for its input ring");
        cr_assert_str_eq(d.asked, "ingest");
        d.drained = 1;
        cr_assert(sv_drain_ready(names, st, n, 1, drained_fn, &d));
        st[1] = SV_FAILED;
        cr_assert(sv_drain_ready(names, st, n, 2, drained_fn, &d), "a failed stage counts as stopped");
        cr_assert(!sv_drain_ready(names, st, n, 3, drained_fn, &d), "the api waits for the store");
        st[2] = SV_STOPPED;
        d.drained = 0;
        cr_assert(sv_drain_ready(names, st, n, 3, drained_fn, &d), "store-api is lossy: never waited for");
}

Test(supervise, child_env_drops_what_speaks_to_systemd)
{
        char *env[] = { (char *)(uintptr_t)"PATH=/bin", (char *)(uintptr_t)"NOTIFY_SOCKET=/run/x",
                        (char *)(uintptr_t)"WATCHDOG_USEC=5", (char *)(uintptr_t)"WATCHDOG_PID=1",
                        (char *)(uintptr_t)"HOME=/root", NULL };
        char **out = child_env(env);

        cr_assert_not_null(out);
        cr_assert_str_eq(out[0], "PATH=/bin");
        cr_assert_str_eq(out[1], "HOME=/root");
        cr_assert_null(out[2]);
        free(out);
}

Test(supervise, child_spawn_reports_an_exec_failure)
{
        char *argv[] = { (char *)(uintptr_t)"/nonexistent/ringflow-x", NULL };
        char *envp[] = { NULL };
        struct child_spec spec = { .path = argv[0], .argv = argv, .envp = envp, .stdin_fd = -1 };
        pid_t pid = 0;

        cr_assert_eq(child_spawn(&spec, &pid), -ENOENT);
        cr_assert_eq(pid, 0);
}

Test(supervise, child_find_binary_names_where_it_looked)
{
        char out[4096], why[WHY_MAX];

        cr_assert_eq(child_find_binary("/nonexistent", "/x", "store", out, sizeof(out), why, sizeof(why)),
                     -ENOENT);
        cr_assert(strstr(why, "/nonexistent/ringflow-store") != NULL, "%s", why);
        cr_assert_eq(child_find_binary("", "/nonexistent/b/supervise", "ingest", out, sizeof(out), why,
                                       sizeof(why)), -ENOENT);
        cr_assert(strstr(why, "/nonexistent/b/supervise/ringflow-ingest") != NULL &&
                  strstr(why, "/nonexistent/b/supervise/../ingest/ringflow-ingest") != NULL, "%s", why);
}

/* Whether signal sig is set in the hexadecimal mask of /proc/<pid>/status line `field`. */
static int sig_in_status(pid_t pid, const char *field, int sig)
{
        char path[64], line[256];
        unsigned long long mask = 0;
        int found = 0;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
        f = fopen(path, "r");
        cr_assert_not_null(f, "%s", path);
        while (fgets(line, sizeof(line), f) != NULL)
                if (strncmp(line, field, strlen(field)) == 0) {
                        found = sscanf(line + strlen(field), "%llx", &mask) == 1;
                        break;
                }
        fclose(f);
        cr_assert(found, "%s has no %s", path, field);
        return (mask >> (sig - 1)) & 1;
}

Test(supervise, child_spawn_runs_the_binary_in_its_own_group_with_our_stdin)
{
        char *argv[] = { (char *)(uintptr_t)"/bin/sleep", (char *)(uintptr_t)"30", NULL };
        char *envp[] = { NULL };
        struct child_spec spec = { .path = argv[0], .argv = argv, .envp = envp, .stdin_fd = -1,
                                   .own_pgrp = 1, .deathsig = SIGKILL };
        char fdpath[64], target[256];
        pid_t pid = 0;
        ssize_t n;
        int ws;

        if (access(argv[0], X_OK) != 0)
                cr_skip_test("no /bin/sleep");
        cr_assert_eq(child_spawn(&spec, &pid), 0);
        cr_assert_gt(pid, 0);
        cr_assert_eq(getpgid(pid), pid, "a process group of its own");
        snprintf(fdpath, sizeof(fdpath), "/proc/%ld/fd/0", (long)pid);
        n = readlink(fdpath, target, sizeof(target) - 1);
        cr_assert_gt(n, 0);
        target[n] = '\0';
        cr_assert_str_eq(target, "/dev/null", "stdin_fd -1 is /dev/null");
        /* The stop signals arrive blocked (pending until the stage reads them); others not. */
        cr_assert_eq(kill(pid, SIGTERM), 0);
        cr_assert(sig_in_status(pid, "SigBlk:", SIGTERM) && sig_in_status(pid, "SigBlk:", SIGHUP) &&
                  sig_in_status(pid, "SigBlk:", SIGINT), "the stop signals are blocked");
        cr_assert(!sig_in_status(pid, "SigBlk:", SIGUSR1), "only the stop signals are blocked");
        cr_assert(sig_in_status(pid, "ShdPnd:", SIGTERM), "SIGTERM waits, pending");
        kill(pid, SIGKILL);
        cr_assert_eq(waitpid(pid, &ws, 0), pid);
        cr_assert(WIFSIGNALED(ws) && WTERMSIG(ws) == SIGKILL);
}
