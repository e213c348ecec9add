/* SPDX-License-Identifier: MIT */
/* test_ringflowd.c: the real ringflowd supervising real stages (and a stand-in stage) in a test instance. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "event.h"
#include "ring.h"
#include "ringflowd_harness.h"
#include "supervise.h"
#include "why.h"

#define LINE_MAX_BYTES 128
#define PIPE_BYTES (1 << 20)

TestSuite(ringflowd, .init = rf_setup, .fini = rf_teardown, .timeout = 90);

static uint64_t sv_get(const char *stage, const char *field)
{
        char name[64];

        snprintf(name, sizeof(name), "%s.%s", stage, field);
        return rf_sv(name);
}

static bool stage_up(const char *stage)
{
        return sv_get(stage, "state") == SV_UP && sv_get(stage, "pid") != 0;
}

static void stub_log_path(char *buf, size_t len)
{
        snprintf(buf, len, "%s/stub.log", rf_data_dir);
}

/* "STUB_LOG=<data dir>/stub.log" for the environment. */
static const char *stub_log_env(void)
{
        static char env[4200];
        char path[4096];

        stub_log_path(path, sizeof(path));
        snprintf(env, sizeof(env), "STUB_LOG=%s", path);
        return env;
}

static int line_of(char *buf, size_t cap, unsigned i)
{
        return snprintf(buf, cap, "{\"id\":\"line-%u\",\"type\":\"t\",\"source\":\"test\"}\n", i);
}

static void write_all(int fd, const char *buf, size_t len)
{
        while (len > 0) {
                ssize_t w = write(fd, buf, len);

                cr_assert(w > 0, "write: %s", strerror(errno));
                buf += w;
                len -= (size_t)w;
        }
}

static void write_lines(int fd, unsigned from, unsigned to)
{
        char line[LINE_MAX_BYTES];

        for (unsigned i = from; i < to; i++)
                write_all(fd, line, (size_t)line_of(line, sizeof(line), i));
}

/* A pipe whose read end becomes ringflowd's stdin; 1 MiB so the test never blocks writing. */
static void make_pipe(int fds[2])
{
        cr_assert(pipe2(fds, O_CLOEXEC) == 0);
        fcntl(fds[1], F_SETPIPE_SZ, PIPE_BYTES);
}

static bool ring_written(const char *producer, const char *consumer, struct ring_stats *rs)
{
        struct ring *r = NULL;
        char why[WHY_MAX];
        bool ok;

        if (ring_attach(&r, rf_ti.dirfd, producer, consumer, RING_OBSERVER, why, sizeof(why)) != 0)
                return false;
        ok = ring_stats(r, rs) == 0;
        ring_close(r);
        return ok;
}

static uint64_t ring_write_count(const char *producer, const char *consumer)
{
        struct ring_stats rs;

        return ring_written(producer, consumer, &rs) ? rs.write_count : 0;
}

/* Reads every event of ingest-process.ring as its consumer; seen[i] counts "line-<i>". */
static uint64_t read_ids(unsigned *seen, unsigned n)
{
        struct ring *r = NULL;
        struct ring_rec rec;
        char why[WHY_MAX];
        uint64_t events = 0;
        int err;

        err = ring_attach(&r, rf_ti.dirfd, "ingest", "process", RING_CONSUMER, why, sizeof(why));
        cr_assert(err == 0, "attach ingest-process: %s", why);
        while ((err = ring_peek(r, &rec)) == 0) {
                struct event_view ev;
                unsigned i;

                cr_assert(rec.type == EVENT_REC_EVENT, "a record of type %u: no line was bad", rec.type);
                cr_assert(event_decode(rec.data, rec.len, &ev, why, sizeof(why)) == 0, "%s", why);
                cr_assert(sscanf(ev.id, "line-%u", &i) == 1 && i < n, "unexpected id %s", ev.id);
                seen[i]++;
                events++;
        }
        cr_assert(err == -EAGAIN, "ring_peek: %s", ring_why(r));
        ring_close(r);
        return events;
}

Test(ringflowd, help_lists_its_flags_and_the_supervise_settings)
{
        struct rf_proc p;
        char *out;

        rf_start(&p, -1, NULL, "--help", NULL);
        cr_assert_eq(rf_wait(&p, RF_WAIT_NS), 0);
        out = rf_output(&p);
        cr_assert(strstr(out, "--exit-on-eof") != NULL, "%s", out);
        cr_assert(strstr(out, "--stages") != NULL && strstr(out, "--watchdog") != NULL &&
                  strstr(out, "--shutdown-timeout") != NULL && strstr(out, "--stage-dir") != NULL,
                  "%s", out);
        free(out);
}

Test(ringflowd, a_missing_stage_binary_is_exit_100_naming_it)
{
        struct rf_proc p;
        char *out;

        rf_start(&p, -1, NULL, "--stage-dir", rf_stage_dir, "--stages", "store", NULL);
        cr_assert_eq(rf_wait(&p, RF_WAIT_NS), 100);
        out = rf_output(&p);
        cr_assert(strstr(out, "ringflow-store") != NULL && strstr(out, rf_stage_dir) != NULL, "%s", out);
        free(out);
        /* The default list names stages this tree may not have built; never a hang or a crash. */
        rf_start(&p, -1, NULL, "--stages", "ingest, bogus", NULL);
        cr_assert_eq(rf_wait(&p, RF_WAIT_NS), 100);
        out = rf_output(&p);
        cr_assert(strstr(out, "\"bogus\" is not a stage") != NULL, "%s", out);
        free(out);
}

Test(ringflowd, sigterm_stops_real_stages_in_order_and_exits_0)
{
        struct rf_proc p;
        char *out, *a, *b;

        rf_start(&p, -1, NULL, "--stages", "ingest, store", NULL);
        RF_WAIT_FOR(stage_up("ingest") && stage_up("store"), &p, "ingest and store up");
        cr_assert_eq(rf_sv("stages.up"), 2);
        kill(p.pid, SIGTERM);
        cr_assert_eq(rf_wait(&p, RF_WAIT_NS), 0, "%s", rf_output(&p));
        out = rf_output(&p);
        cr_assert_eq(sv_get("ingest", "state"), SV_STOPPED);
        cr_assert_eq(sv_get("store", "state"), SV_STOPPED);
        cr_assert_eq(sv_get("ingest", "last_exit"), 0);
        cr_assert_eq(sv_get("store", "last_exit"), 0);
        cr_assert_eq(sv_get("store", "last_signal"), 0);
        cr_assert_eq(sv_get("store", "restarts"), 0);
        a = strstr(out, "ingest: stopping");
        b = strstr(out, "store: stopping");
        cr_assert(a != NULL && b != NULL && a < b, "ingest must be stopped before store:\n%s", out);
        free(out);
}

Test(ringflowd, a_killed_stage_is_restarted_with_a_new_pid)
{
        struct rf_proc p;
        pid_t old;

        rf_start(&p, -1, NULL, "--stages", "ingest, store", NULL);
        RF_WAIT_FOR(stage_up("ingest") && stage_up("store"), &p, "ingest and store up");
        old = (pid_t)sv_get("store", "pid");
        cr_assert_eq(kill(old, SIGKILL), 0);
        RF_WAIT_FOR(stage_up("store") && sv_get("store", "pid") != (uint64_t)old, &p,
                    "store restarted");
        cr_assert_eq(sv_get("store", "restarts"), 1);
        cr_assert_eq(sv_get("store", "last_signal"), SIGKILL);
        cr_assert_eq(sv_get("ingest", "restarts"), 0, "the other stage was left alone");
        cr_assert(rf_pid_dead(old));
        kill(p.pid, SIGTERM);
        cr_assert_eq(rf_wait(&p, RF_WAIT_NS), 0, "%s", rf_output(&p));
}

Test(ringflowd, a_crash_loop_backs_off_doubling_and_is_counted)
{
        const char *env[] = { "STUB_MODE=store=exit:3", stub_log_env(), NULL };
        int64_t t[8];
        char log[4096];
        struct rf_proc p;
        unsigned n;

        rf_stub("store");
        stub_log_path(log, sizeof(log));
        rf_start(&p, -1, env, "--stage-dir", rf_stage_dir, "--stages", "store", "--restart-min", "100ms",
                 NULL);
        RF_WAIT_FOR(sv_get("store", "crash_loops") == 1, &p, "a crash loop counted");
        n = rf_stub_log(log, "store start", t, NULL, 8);
        cr_assert(n >= 5, "%u starts", n);
        /* 100, 200, 400, 800 ms: a timer never fires early, so the gaps are at least these. */
        for (unsigned k = 1; k < 5; k++) {
                int64_t want = (100 * NSEC_PER_MSEC) << (k - 1);

                cr_assert(t[k] - t[k - 1] >= want - 2 * NSEC_PER_MSEC,
                          "gap %u is %lld ns, want at least %lld", k, (long long)(t[k] - t[k - 1]),
                          (long long)want);
        }
        cr_assert(sv_get("store", "restart_delay_ns") >= 1600 * NSEC_PER_MSEC);
        cr_assert(sv_get("store", "restarts") >= 4);
        cr_assert_eq(sv_get("store", "last_exit"), 3);
        kill(p.pid, SIGTERM);
        cr_assert_eq(rf_wait(&p, RF_WAIT_NS), 0, "a stage waiting to restart just stays stopped");
}

Test(ringflowd, exit_100_is_not_restarted_and_ringflowd_exits_100_naming_the_stage)
{
        const char *env[] = { "STUB_MODE=store=exit:100", stub_log_env(), NULL };
        char log[4096], *out;
        struct rf_proc p;

        rf_stub("ingest");
        rf_stub("store");
        stub_log_path(log, sizeof(log));
        rf_start(&p, -1, env, "--stage-dir", rf_stage_dir, "--stages", "ingest, store", NULL);
        cr_assert_eq(rf_wait(&p, RF_WAIT_NS), 100, "%s", rf_output(&p));
        out = rf_output(&p);
        cr_assert(strstr(out, "store: exit status 100 is a permanent error") != NULL, "%s", out);
        cr_assert_eq(rf_stub_log(log, "store start", NULL, NULL, 0), 1, "started once, never again");
        cr_assert_eq(sv_get("store", "state"), SV_FAILED);
        cr_assert_eq(sv_get("store", "restarts"), 0);
        cr_assert_eq(sv_get("ingest", "state"), SV_STOPPED, "the other stage was stopped");
        cr_assert_eq(sv_get("ingest", "last_exit"), 0);
        free(out);
}

Test(ringflowd, the_watchdog_kills_and_restarts_a_stopped_stage)
{
        struct rf_proc p;
        pid_t old;

        /* The store alone: on a loaded machine a 1 s watchdog could catch a starved bystander too. */
        rf_start(&p, -1, NULL, "--stages", "store", "--watchdog", "1s", NULL);
        RF_WAIT_FOR(stage_up("store"), &p, "store up");
        old = (pid_t)sv_get("store", "pid");
        cr_assert_eq(kill(old, SIGSTOP), 0);
        RF_WAIT_FOR(sv_get("store", "watchdog_kills") >= 1 && stage_up("store") &&
                    sv_get("store", "pid") != (uint64_t)old, &p, "the stopped store replaced");
        cr_assert_eq(sv_get("store", "last_signal"), SIGKILL);
        cr_assert(rf_pid_dead(old));
        kill(p.pid, SIGTERM);
        cr_assert_eq(rf_wait(&p, RF_WAIT_NS), 0, "%s", rf_output(&p));
}

Test(ringflowd, a_stage_that_never_heartbeats_is_killed_by_the_watchdog)
{
        const char *env[] = { "STUB_MODE=store=hang", stub_log_env(), NULL };
        char log[4096];
        struct rf_proc p;

        rf_stub("store");
        stub_log_path(log, sizeof(log));
        rf_start(&p, -1, env, "--stage-dir", rf_stage_dir, "--stages", "store", "--watchdog", "300ms",
                 NULL);
        RF_WAIT_FOR(sv_get("store", "watchdog_kills") >= 2, &p, "two watchdog kills");
        cr_assert(rf_stub_log(log, "store start", NULL, NULL, 0) >= 2);
        cr_assert_neq(sv_get("store", "state"), SV_UP, "it never counted as up");
        kill(p.pid, SIGTERM);
        cr_assert_eq(rf_wait(&p, RF_WAIT_NS), 0, "%s", rf_output(&p));
}

Test(ringflowd, sighup_is_passed_to_every_stage_that_is_up)
{
        const char *env[] = { stub_log_env(), NULL };
        char log[4096];
        struct rf_proc p;

        rf_stub("ingest");
        rf_stub("store");
        stub_log_path(log, sizeof(log));
        rf_start(&p, -1, env, "--stage-dir", rf_stage_dir, "--stages", "ingest store", NULL);
        RF_WAIT_FOR(stage_up("ingest") && stage_up("store"), &p, "both up");
        kill(p.pid, SIGHUP);
        RF_WAIT_FOR(rf_stub_log(log, "ingest hup", NULL, NULL, 0) == 1 &&
                    rf_stub_log(log, "store hup", NULL, NULL, 0) == 1, &p, "both got SIGHUP");
        cr_assert(!rf_exited(&p), "ringflowd goes on");
        cr_assert_eq(sv_get("store", "restarts"), 0);
        kill(p.pid, SIGTERM);
        cr_assert_eq(rf_wait(&p, RF_WAIT_NS), 0, "%s", rf_output(&p));
}

Test(ringflowd, a_second_supervisor_of_the_same_instance_is_refused)
{
        struct rf_proc p, q;
        char *out;

        rf_stub("store");
        rf_start(&p, -1, NULL, "--stage-dir", rf_stage_dir, "--stages", "store", NULL);
        RF_WAIT_FOR(stage_up("store"), &p, "store up");
        rf_start(&q, -1, NULL, "--stage-dir", rf_stage_dir, "--stages", "store", NULL);
        cr_assert_eq(rf_wait(&q, RF_WAIT_NS), 111);
        out = rf_output(&q);
        cr_assert(strstr(out, "supervised by another ringflowd") != NULL, "%s", out);
        free(out);
        kill(p.pid, SIGTERM);
        cr_assert_eq(rf_wait(&p, RF_WAIT_NS), 0);
}

Test(ringflowd, stdin_reaches_the_ring_across_an_ingest_kill_without_losing_a_line)
{
        enum { N = 1000, HALF = 500 };
        static unsigned seen[N];
        char line[LINE_MAX_BYTES];
        struct rf_proc p;
        uint64_t events;
        int fds[2], len;
        pid_t old;

        make_pipe(fds);
        /* The default stage_dir: ringflowd finds ringflow-ingest in the build tree by itself. */
        rf_start(&p, fds[0], NULL, "--stages", "ingest", "--exit-on-eof", "--ring-capacity", "1M", NULL);
        close(fds[0]);
        write_lines(fds[1], 0, HALF);
        RF_WAIT_FOR(ring_write_count("ingest", "process") >= HALF, &p, "the first half in the ring");
        RF_WAIT_FOR(stage_up("ingest"), &p, "ingest up");
        old = (pid_t)sv_get("ingest", "pid");
        cr_assert_eq(kill(old, SIGKILL), 0);
        /* Half a line while no ingest runs: the next one must read it whole. */
        len = line_of(line, sizeof(line), HALF);
        write_all(fds[1], line, (size_t)len / 2);
        RF_WAIT_FOR(stage_up("ingest") && sv_get("ingest", "pid") != (uint64_t)old, &p, "ingest restarted");
        write_all(fds[1], line + len / 2, (size_t)(len - len / 2));
        write_lines(fds[1], HALF + 1, N);
        close(fds[1]);
        cr_assert_eq(rf_wait(&p, RF_WAIT_NS), 0, "%s", rf_output(&p));
        cr_assert_eq(sv_get("ingest", "restarts"), 1);
        events = read_ids(seen, N);
        for (unsigned i = 0; i < N; i++)
                cr_assert(seen[i] >= 1, "line %u is missing (%llu events read)", i,
                          (unsigned long long)events);
}

Test(ringflowd, notify_socket_gets_ready_status_watchdog_and_stopping)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct timeval tv = { 0, 200000 };
        char env_sock[200], buf[1024];
        const char *env[] = { env_sock, "WATCHDOG_USEC=1000000", "WATCHDOG_PID=self", NULL };
        bool ready = false, status = false, watchdog = false, stopping = false;
        struct rf_proc p;
        int64_t dl;
        int s;

        cr_assert((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/notify", rf_data_dir) <
                  sizeof(sa.sun_path));
        snprintf(env_sock, sizeof(env_sock), "NOTIFY_SOCKET=%s", sa.sun_path);
        s = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        cr_assert(s >= 0);
        cr_assert(bind(s, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind: %s", strerror(errno));
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        rf_start(&p, -1, env, "--stages", "ingest, store", NULL);
        dl = rf_deadline(RF_WAIT_NS);
        while (!(ready && status && watchdog)) {
                ssize_t n = recv(s, buf, sizeof(buf) - 1, 0);

                cr_assert(clock_mono_ns() < dl, "ready %d status %d watchdog %d; ringflowd said:\n%s",
                          ready, status, watchdog, rf_output(&p));
                if (n <= 0)
                        continue;
                buf[n] = '\0';
                if (strstr(buf, "READY=1") != NULL) {
                        cr_assert(stage_up("ingest") && stage_up("store"), "READY=1 before both were up");
                        ready = true;
                }
                if (strstr(buf, "STATUS=2/2 stages up, ") != NULL && strstr(buf, "events/s in") != NULL)
                        status = true;
                if (strstr(buf, "WATCHDOG=1") != NULL)
                        watchdog = true;
        }
        {
                /* WatchdogSec=1s: pings every half second, so at least 3 in 2 s (4 when on time). */
                int64_t until = rf_deadline(2 * NSEC_PER_SEC);
                unsigned pings = 0;

                while (clock_mono_ns() < until) {
                        ssize_t n = recv(s, buf, sizeof(buf) - 1, 0);

                        if (n <= 0)
                                continue;
                        buf[n] = '\0';
                        pings += strstr(buf, "WATCHDOG=1") != NULL;
                }
                cr_assert(pings >= 3, "%u WATCHDOG=1 in 2 s with WatchdogSec=1s", pings);
        }
        kill(p.pid, SIGTERM);
        cr_assert_eq(rf_wait(&p, RF_WAIT_NS), 0, "%s", rf_output(&p));
        for (;;) {
                ssize_t n = recv(s, buf, sizeof(buf) - 1, MSG_DONTWAIT);

                if (n <= 0)
                        break;
                buf[n] = '\0';
                if (strstr(buf, "STOPPING=1") != NULL)
                        stopping = true;
        }
        cr_assert(stopping, "STOPPING=1 after SIGTERM");
        close(s);
}

Test(ringflowd, a_killed_supervisor_takes_its_stages_along_and_the_next_adopts_the_rings)
{
        enum { N = 100 };
        static unsigned seen[N];
        struct ring_stats before, after;
        struct rf_proc p, q;
        int fds[2];
        pid_t ingest;
        char *out;

        make_pipe(fds);
        rf_start(&p, fds[0], NULL, "--stages", "ingest", "--ring-capacity", "1M", NULL);
        close(fds[0]);
        write_lines(fds[1], 0, N);
        RF_WAIT_FOR(ring_write_count("ingest", "process") == N, &p, "every line in the ring");
        RF_WAIT_FOR(stage_up("ingest"), &p, "ingest up");
        ingest = (pid_t)sv_get("ingest", "pid");
        cr_assert(ring_written("ingest", "process", &before));
        kill(p.pid, SIGKILL);
        cr_assert_eq(rf_wait(&p, RF_WAIT_NS), 128 + SIGKILL);
        RF_WAIT_FOR(rf_pid_dead(ingest), (struct rf_proc *)NULL, "ingest dies with its supervisor");
        close(fds[1]);

        rf_start(&q, -1, NULL, "--stages", "ingest", "--ring-capacity", "1M", "--exit-on-eof", NULL);
        cr_assert_eq(rf_wait(&q, RF_WAIT_NS), 0, "%s", rf_output(&q));
        out = rf_output(&q);
        cr_assert(strstr(out, "adopted ingest-process.ring") != NULL, "%s", out);
        free(out);
        cr_assert(ring_written("ingest", "process", &after));
        cr_assert_eq(after.created_ns, before.created_ns, "the ring was adopted, not made again");
        cr_assert_eq(after.write_count, N);
        cr_assert_eq(read_ids(seen, N), N);
        for (unsigned i = 0; i < N; i++)
                cr_assert_eq(seen[i], 1, "line %u seen %u times", i, seen[i]);
}

Test(ringflowd, a_stage_that_ignores_sigterm_is_killed_at_shutdown_timeout_and_exit_is_111)
{
        const char *env[] = { "STUB_MODE=store=deaf", NULL };
        struct rf_proc p;
        int64_t t0;
        char *out;

        rf_stub("ingest");
        rf_stub("store");
        rf_start(&p, -1, env, "--stage-dir", rf_stage_dir, "--stages", "ingest, store",
                 "--shutdown-timeout", "300ms", NULL);
        RF_WAIT_FOR(stage_up("ingest") && stage_up("store"), &p, "both up");
        t0 = clock_mono_ns();
        kill(p.pid, SIGTERM);
        cr_assert_eq(rf_wait(&p, RF_WAIT_NS), 111, "%s", rf_output(&p));
        cr_assert(clock_mono_ns() - t0 >= 300 * NSEC_PER_MSEC, "not before shutdown_timeout");
        out = rf_output(&p);
        cr_assert(strstr(out, "shutdown_timeout") != NULL && strstr(out, "SIGKILL to store") != NULL,
                  "%s", out);
        free(out);
        cr_assert_eq(sv_get("ingest", "last_exit"), 0, "ingest stopped by itself");
        cr_assert_eq(sv_get("store", "last_signal"), SIGKILL);
        cr_assert_eq(sv_get("store", "state"), SV_STOPPED);
}

Test(ringflowd, at_the_end_of_input_every_stage_drains_in_order_and_commits_everything)
{
        enum { N = 3000 };
        const char *env[] = { "STUB_MODE=process=pass", NULL };
        struct ring_stats a, b;
        struct rf_proc p;
        int fds[2];

        rf_real("ingest");
        rf_stub("process");
        rf_real("store");
        make_pipe(fds);
        rf_start(&p, fds[0], env, "--stage-dir", rf_stage_dir, "--stages", "ingest, process, store",
                 "--exit-on-eof", "--retention", "0", NULL);
        close(fds[0]);
        write_lines(fds[1], 0, N);
        close(fds[1]);
        cr_assert_eq(rf_wait(&p, RF_WAIT_NS), 0, "%s", rf_output(&p));
        cr_assert(ring_written("ingest", "process", &a) && ring_written("process", "store", &b));
        cr_assert_eq(a.write_count, N);
        cr_assert_eq(a.commit, a.write, "process left records of its input behind");
        cr_assert_eq(b.write_count, N);
        cr_assert_eq(b.commit, b.write, "the store left records of its input behind");
        for (int i = 0; i < 3; i++) {
                static const char *const st[] = { "ingest", "process", "store" };

                cr_assert_eq(sv_get(st[i], "last_exit"), 0, "%s", st[i]);
                cr_assert_eq(sv_get(st[i], "last_signal"), 0, "%s", st[i]);
        }
}

Test(ringflowd, a_consumer_asleep_at_the_end_of_its_input_counts_as_drained)
{
        enum { N = 10 };
        const char *env[] = { "STUB_MODE=process=hold", NULL };
        struct ring_stats rs;
        struct rf_proc p;
        uint64_t held = 0;
        int fds[2];

        rf_real("ingest");
        rf_stub("process");
        make_pipe(fds);
        rf_start(&p, fds[0], env, "--stage-dir", rf_stage_dir, "--stages", "ingest, process",
                 "--shutdown-timeout", "20s", NULL);
        close(fds[0]);
        write_lines(fds[1], 0, N);
        RF_WAIT_FOR(rf_stat_try("process", "beats", &held) && held == N, &p, "process peeked all");
        kill(p.pid, SIGTERM);
        /* Its `read` never moves: only its sleeping on an empty ring tells it is done. */
        cr_assert_eq(rf_wait(&p, 10 * NSEC_PER_SEC), 0, "%s", rf_output(&p));
        cr_assert_eq(sv_get("process", "last_exit"), 0);
        cr_assert(ring_written("ingest", "process", &rs));
        cr_assert(rs.read < rs.write, "the stand-in was to keep `read` behind");
        close(fds[1]);
}
