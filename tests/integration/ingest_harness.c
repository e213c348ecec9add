/* SPDX-License-Identifier: MIT */
/* ingest_harness.c: starting ringflow-ingest, consuming its ring and reading its stats for tests. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "ingest_harness.h"
#include "why.h"

#define IH_CHILDREN_MAX 64

struct test_instance ih_ti = { .dirfd = -1 };
static char ih_bin[PATH_MAX];

/* Every child the test started and has not reaped: killed by the teardown. */
static pid_t ih_children[IH_CHILDREN_MAX];
static bool ih_is_writer[IH_CHILDREN_MAX];

static void ih_track(pid_t pid, bool writer)
{
        for (size_t i = 0; i < IH_CHILDREN_MAX; i++) {
                if (ih_children[i] == 0) {
                        ih_children[i] = pid;
                        ih_is_writer[i] = writer;
                        return;
                }
        }
        cr_assert_fail("more than %d children at once", IH_CHILDREN_MAX);
}

static void ih_untrack(pid_t pid)
{
        for (size_t i = 0; i < IH_CHILDREN_MAX; i++)
                if (ih_children[i] == pid)
                        ih_children[i] = 0;
}

void ih_setup(void)
{
        const char *dir = getenv("RINGFLOW_BUILDDIR");

        /* Skip before making the instance: a skipped test does not run the fini. */
        if (dir == NULL || dir[0] == '\0')
                cr_skip_test("RINGFLOW_BUILDDIR is not set: run through `make check`, "
                             "or set it to the build directory holding stages/ingest");
        snprintf(ih_bin, sizeof(ih_bin), "%s/stages/ingest/ringflow-ingest", dir);
        cr_assert(access(ih_bin, X_OK) == 0,
                  "%s is not an executable: build stages/ingest/ringflow-ingest first", ih_bin);
        /* A writer child blocked on a pipe must not kill us when a reader dies. */
        signal(SIGPIPE, SIG_IGN);
        test_instance_init(&ih_ti);
}

void ih_teardown(void)
{
        for (size_t i = 0; i < IH_CHILDREN_MAX; i++) {
                if (ih_children[i] > 0) {
                        kill(ih_children[i], SIGKILL);
                        waitpid(ih_children[i], NULL, 0);
                        ih_children[i] = 0;
                }
        }
        test_instance_fini(&ih_ti);
}

/* ---- running ringflow-ingest ---- */

void ih_startv(struct ih_proc *p, int stdin_fd, const char *const *args)
{
        char *argv[IH_ARGS_MAX + 4];
        size_t argc = 0;

        memset(p, 0, sizeof(*p));
        p->status = -1;
        argv[argc++] = strdup(ih_bin);
        argv[argc++] = strdup("--instance");
        argv[argc++] = strdup(ih_ti.name);
        for (size_t i = 0; args[i] != NULL; i++) {
                cr_assert(i < IH_ARGS_MAX, "too many arguments");
                argv[argc++] = strdup(args[i]);
        }
        argv[argc] = NULL;
        p->outfd = memfd_create("ingest-stdout", MFD_CLOEXEC);
        p->errfd = memfd_create("ingest-stderr", MFD_CLOEXEC);
        cr_assert(p->outfd >= 0 && p->errfd >= 0, "memfd_create: %s", strerror(errno));
        p->started_ns = clock_mono_ns();
        p->pid = fork();
        cr_assert(p->pid >= 0, "fork: %s", strerror(errno));
        if (p->pid == 0) {
                int in = stdin_fd >= 0 ? stdin_fd : open("/dev/null", O_RDONLY);

                if (in < 0 || dup2(in, STDIN_FILENO) < 0 || dup2(p->outfd, STDOUT_FILENO) < 0 ||
                    dup2(p->errfd, STDERR_FILENO) < 0)
                        _exit(126);
                sigset_t stop;

                /* Never outlive the test, whatever happens to it. */
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                signal(SIGPIPE, SIG_DFL);
                /*
                 * Ingest reads SIGTERM, SIGINT and SIGHUP from a signalfd and
                 * blocks them first thing; blocked from here, one the test
                 * sends while the new process is still starting waits for
                 * that signalfd instead of killing it.
                 */
                sigemptyset(&stop);
                sigaddset(&stop, SIGTERM);
                sigaddset(&stop, SIGINT);
                sigaddset(&stop, SIGHUP);
                sigprocmask(SIG_BLOCK, &stop, NULL);
                execv(ih_bin, argv);
                _exit(127);
        }
        ih_track(p->pid, false);
        for (size_t i = 0; i < argc; i++)
                free(argv[i]);
}

static void ih_vstart(struct ih_proc *p, int stdin_fd, va_list ap)
{
        const char *args[IH_ARGS_MAX + 1];
        const char *arg;
        size_t n = 0;

        while ((arg = va_arg(ap, const char *)) != NULL) {
                cr_assert(n < IH_ARGS_MAX, "too many arguments");
                args[n++] = arg;
        }
        args[n] = NULL;
        ih_startv(p, stdin_fd, args);
}

void ih_start(struct ih_proc *p, int stdin_fd, ...)
{
        va_list ap;

        va_start(ap, stdin_fd);
        ih_vstart(p, stdin_fd, ap);
        va_end(ap);
}

int ih_run(struct ih_proc *p, int stdin_fd, ...)
{
        va_list ap;

        va_start(ap, stdin_fd);
        ih_vstart(p, stdin_fd, ap);
        va_end(ap);
        return ih_wait(p, IH_TIMEOUT_NS);
}

static void ih_set_status(struct ih_proc *p, int wstatus)
{
        ih_untrack(p->pid);
        p->pid = 0;
        p->status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
}

bool ih_exited(struct ih_proc *p)
{
        int wstatus;
        pid_t got;

        if (p->pid == 0)
                return true;
        got = waitpid(p->pid, &wstatus, WNOHANG);
        cr_assert(got >= 0, "waitpid: %s", strerror(errno));
        if (got == 0)
                return false;
        ih_set_status(p, wstatus);
        return true;
}

int ih_wait(struct ih_proc *p, int64_t timeout_ns)
{
        int64_t deadline = clock_mono_ns() + timeout_ns;

        while (!ih_exited(p)) {
                if (clock_mono_ns() > deadline) {
                        char *err;

                        kill(p->pid, SIGKILL);
                        waitpid(p->pid, NULL, 0);
                        ih_untrack(p->pid);
                        p->pid = 0;
                        err = ih_stderr(p);
                        cr_assert_fail("ringflow-ingest did not exit within %.1f s; stderr:\n%s",
                                       (double)timeout_ns / NSEC_PER_SEC, err);
                }
                ih_poll_pause();
        }
        return p->status;
}

void ih_signal(struct ih_proc *p, int sig)
{
        int wstatus;

        cr_assert(p->pid > 0, "signal to a process already reaped");
        cr_assert(kill(p->pid, sig) == 0, "kill: %s", strerror(errno));
        if (sig != SIGKILL)
                return;
        cr_assert(waitpid(p->pid, &wstatus, 0) == p->pid);
        ih_set_status(p, wstatus);
}

static char *ih_memfd_text(int fd)
{
        struct stat st;
        char *buf;
        ssize_t n;

        cr_assert(fstat(fd, &st) == 0);
        buf = malloc((size_t)st.st_size + 1);
        cr_assert(buf != NULL);
        n = pread(fd, buf, (size_t)st.st_size, 0);
        cr_assert(n >= 0, "pread: %s", strerror(errno));
        buf[n] = '\0';
        return buf;
}

char *ih_stderr(const struct ih_proc *p)
{
        return ih_memfd_text(p->errfd);
}

char *ih_stdout(const struct ih_proc *p)
{
        return ih_memfd_text(p->outfd);
}

void ih_proc_fini(struct ih_proc *p)
{
        if (p->outfd >= 0)
                close(p->outfd);
        if (p->errfd >= 0)
                close(p->errfd);
        p->outfd = p->errfd = -1;
}

/* ---- feeding stdin ---- */

/* Writes len bytes of p to fd 3 of a writer child, or exits 1. */
static void ih_writer_write(const char *p, size_t len)
{
        while (len > 0) {
                ssize_t n = write(3, p, len);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        _exit(1);
                p += n;
                len -= (size_t)n;
        }
}

pid_t ih_spawn_writer_gated(int fd, const void *buf, size_t len, size_t gate_at, int gate_fd)
{
        pid_t pid = fork();

        cr_assert(pid >= 0, "fork: %s", strerror(errno));
        if (pid == 0) {
                char c;

                /*
                 * Hold no other descriptor: a stray copy of another pipe's
                 * write end would keep its reader from ever seeing the end.
                 */
                if ((fd != 3 && dup2(fd, 3) < 0) || (gate_fd >= 0 && dup2(gate_fd, 4) < 0))
                        _exit(2);
                close_range(gate_fd >= 0 ? 5 : 4, ~0u, 0);
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (gate_fd < 0 || gate_at > len)
                        gate_at = len;
                ih_writer_write(buf, gate_at);
                if (gate_at < len) {
                        while (read(4, &c, 1) < 0 && errno == EINTR)
                                ;
                        ih_writer_write((const char *)buf + gate_at, len - gate_at);
                }
                _exit(0);
        }
        ih_track(pid, true);
        return pid;
}

pid_t ih_spawn_writer(int fd, const void *buf, size_t len)
{
        return ih_spawn_writer_gated(fd, buf, len, len, -1);
}

void ih_reap_writers(void)
{
        for (size_t i = 0; i < IH_CHILDREN_MAX; i++) {
                int wstatus;

                if (ih_children[i] <= 0 || !ih_is_writer[i])
                        continue;
                cr_assert(waitpid(ih_children[i], &wstatus, 0) == ih_children[i]);
                ih_children[i] = 0;
                cr_assert(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0,
                          "a writer child could not write all its input (status %#x)", wstatus);
        }
}

int ih_pipe_feed(const void *buf, size_t len)
{
        int fds[2];

        cr_assert(pipe2(fds, O_CLOEXEC) == 0, "pipe2: %s", strerror(errno));
        ih_spawn_writer(fds[1], buf, len);
        close(fds[1]);
        return fds[0];
}

char *ih_lines(ih_line_fn fn, unsigned n, size_t *len)
{
        char *buf = NULL;
        size_t cap = 0;

        *len = 0;
        for (unsigned i = 0; i < n; i++) {
                int w;

                if (cap - *len < 1024) {
                        cap = cap ? 2 * cap : 1u << 20;
                        buf = realloc(buf, cap);
                        cr_assert(buf != NULL);
                }
                w = fn(buf + *len, cap - *len, i);
                cr_assert(w > 0 && (size_t)w < cap - *len, "line %u does not fit", i);
                *len += (size_t)w;
        }
        return buf;
}

int ih_file_feed(const void *buf, size_t len)
{
        const char *tmp = getenv("TMPDIR");
        char path[PATH_MAX];
        const char *p = buf;
        int fd, rfd;

        snprintf(path, sizeof(path), "%s/ringflow-ingest-test-XXXXXX",
                 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
        fd = mkostemp(path, O_CLOEXEC);
        cr_assert(fd >= 0, "mkostemp %s: %s", path, strerror(errno));
        while (len > 0) {
                ssize_t n = write(fd, p, len);

                cr_assert(n > 0, "write %s: %s", path, strerror(errno));
                p += n;
                len -= (size_t)n;
        }
        rfd = open(path, O_RDONLY | O_CLOEXEC);
        cr_assert(rfd >= 0, "open %s: %s", path, strerror(errno));
        unlink(path);
        close(fd);
        return rfd;
}

/* ---- rings ---- */

void ih_ring_create(const char *producer, const char *consumer, uint64_t capacity)
{
        char why[WHY_MAX] = "";
        int err = ring_create(ih_ti.dirfd, producer, consumer, capacity, 0, why, sizeof(why));

        cr_assert(err == 0, "ring_create(%s-%s): %s", producer, consumer, why);
}

struct ring *ih_attach(const char *producer, const char *consumer, enum ring_role role)
{
        char why[WHY_MAX] = "";
        struct ring *r = NULL;
        int err = ring_attach(&r, ih_ti.dirfd, producer, consumer, role, why, sizeof(why));

        cr_assert(err == 0, "ring_attach(%s-%s, %d): %s", producer, consumer, (int)role, why);
        return r;
}

void ih_sink_init(struct ih_sink *s, ih_fn fn, void *ctx)
{
        s->ring = ih_attach("ingest", "process", RING_CONSUMER);
        s->fn = fn;
        s->ctx = ctx;
        s->n = 0;
}

void ih_sink_fini(struct ih_sink *s)
{
        if (s->ring != NULL)
                ring_close(s->ring);
        s->ring = NULL;
}

size_t ih_take(struct ih_sink *s, size_t max)
{
        struct ring_mark last = { 0, 0 };
        struct ring_rec rec;
        size_t n = 0;

        while (n < max) {
                char why[WHY_MAX] = "";
                struct ih_view v;
                int err = ring_peek(s->ring, &rec);

                if (err == -EAGAIN)
                        break;
                cr_assert(err == 0, "ring_peek on ingest-process: %s", ring_why(s->ring));
                memset(&v, 0, sizeof(v));
                v.type = rec.type;
                v.index = rec.next.count - 1;
                v.pos = rec.pos;
                if (rec.type == EVENT_REC_EVENT)
                        cr_assert(event_decode(rec.data, rec.len, &v.ev, why, sizeof(why)) == 0,
                                  "record #%llu at %llu is not a valid event: %s",
                                  (unsigned long long)v.index, (unsigned long long)rec.pos, why);
                else if (rec.type == EVENT_REC_REJECT)
                        cr_assert(event_reject_decode(rec.data, rec.len, &v.rj, why, sizeof(why)) == 0,
                                  "record #%llu at %llu is not a valid reject: %s",
                                  (unsigned long long)v.index, (unsigned long long)rec.pos, why);
                else
                        cr_assert_fail("record #%llu at %llu has type %u: ingest writes only "
                                       "events (%u) and rejects (%u)",
                                       (unsigned long long)v.index, (unsigned long long)rec.pos,
                                       rec.type, EVENT_REC_EVENT, EVENT_REC_REJECT);
                s->fn(&v, s->ctx);
                last = rec.next;
                n++;
                s->n++;
        }
        if (n > 0)
                cr_assert(ring_done(s->ring, last) == 0, "ring_done: %s", ring_why(s->ring));
        return n;
}

void ih_take_until(struct ih_sink *s, bool (*done)(void *ctx), void *ctx, struct ih_proc *p,
                   int64_t timeout_ns)
{
        int64_t deadline = clock_mono_ns() + timeout_ns;

        for (;;) {
                int err;

                ih_take(s, SIZE_MAX);
                if (done(ctx))
                        return;
                if (p != NULL && ih_exited(p)) {
                        char *err_text;

                        ih_take(s, SIZE_MAX);
                        if (done(ctx))
                                return;
                        err_text = ih_stderr(p);
                        cr_assert_fail("ringflow-ingest exited (status %d) after %llu records, "
                                       "before the test had what it waited for; stderr:\n%s",
                                       p->status, (unsigned long long)s->n, err_text);
                }
                cr_assert(clock_mono_ns() < deadline,
                          "waited %.1f s for records from ringflow-ingest; have %llu",
                          (double)timeout_ns / NSEC_PER_SEC, (unsigned long long)s->n);
                err = ring_wait_data(s->ring, 0, 20 * NSEC_PER_MSEC);
                cr_assert(err == 0 || err == -ETIMEDOUT || err == -EINTR, "ring_wait_data: %s",
                          strerror(-err));
        }
}

struct ih_count_goal {
        struct ih_sink *s;
        uint64_t want;
};

static bool ih_count_reached(void *ctx)
{
        struct ih_count_goal *g = ctx;

        return g->s->n >= g->want;
}

void ih_take_count(struct ih_sink *s, uint64_t want, struct ih_proc *p, int64_t timeout_ns)
{
        struct ih_count_goal g = { s, want };

        ih_take_until(s, ih_count_reached, &g, p, timeout_ns);
}

int ih_take_until_exit(struct ih_sink *s, struct ih_proc *p, int64_t timeout_ns)
{
        int64_t deadline = clock_mono_ns() + timeout_ns;

        for (;;) {
                int err;

                ih_take(s, SIZE_MAX);
                if (ih_exited(p)) {
                        /* Everything it published before it died is visible now. */
                        ih_take(s, SIZE_MAX);
                        return p->status;
                }
                if (clock_mono_ns() > deadline) {
                        char *err_text;

                        kill(p->pid, SIGKILL);
                        waitpid(p->pid, NULL, 0);
                        ih_untrack(p->pid);
                        p->pid = 0;
                        err_text = ih_stderr(p);
                        cr_assert_fail("ringflow-ingest did not exit within %.1f s (%llu records "
                                       "taken); stderr:\n%s", (double)timeout_ns / NSEC_PER_SEC,
                                       (unsigned long long)s->n, err_text);
                }
                err = ring_wait_data(s->ring, 0, 20 * NSEC_PER_MSEC);
                cr_assert(err == 0 || err == -ETIMEDOUT || err == -EINTR, "ring_wait_data: %s",
                          strerror(-err));
        }
}

int ih_exit_at_eof(struct ih_sink *s, struct ih_proc *p)
{
        int64_t deadline = clock_mono_ns() + 10 * NSEC_PER_SEC;

        while (!ih_exited(p) && clock_mono_ns() < deadline) {
                if (s == NULL || ih_take(s, SIZE_MAX) == 0)
                        ih_poll_pause();
        }
        if (!ih_exited(p)) {
                cr_expect_fail("--exit-on-eof: all input was handled but ringflow-ingest did not "
                               "exit within 10 s (stopped with SIGTERM)");
                ih_signal(p, SIGTERM);
                if (s == NULL)
                        return ih_wait(p, IH_TIMEOUT_NS);
                return ih_take_until_exit(s, p, IH_TIMEOUT_NS);
        }
        if (s != NULL)
                ih_take(s, SIZE_MAX);
        return p->status;
}

static char *ih_dup(const char *s, size_t len)
{
        char *d = malloc(len + 1);

        cr_assert(d != NULL);
        memcpy(d, s, len);
        d[len] = '\0';
        return d;
}

void ih_collect(const struct ih_view *v, void *ctx)
{
        struct ih_recs *rs = ctx;
        struct ih_rec *r;

        if (rs->n == rs->cap) {
                rs->cap = rs->cap ? 2 * rs->cap : 64;
                rs->v = realloc(rs->v, rs->cap * sizeof(*rs->v));
                cr_assert(rs->v != NULL);
        }
        r = &rs->v[rs->n++];
        memset(r, 0, sizeof(*r));
        r->type = v->type;
        r->seen_ns = clock_real_ns();
        if (v->type == EVENT_REC_EVENT) {
                r->seq = v->ev.seq;
                r->received_ns = v->ev.received_ns;
                r->origin = v->ev.origin;
                r->source_kind = v->ev.source_kind;
                r->timestamp_ms = v->ev.timestamp_ms;
                r->flags = v->ev.flags;
                r->id = ih_dup(v->ev.id, v->ev.id_len);
                r->etype = ih_dup(v->ev.type, v->ev.type_len);
                r->source = ih_dup(v->ev.source, v->ev.source_len);
                r->data = ih_dup(v->ev.data, v->ev.data_len);
        } else {
                r->seq = v->rj.seq;
                r->received_ns = v->rj.received_ns;
                r->origin = v->rj.origin;
                r->source_kind = v->rj.source_kind;
                r->reason = v->rj.reason;
                r->raw = ih_dup(v->rj.raw, v->rj.raw_len);
                r->raw_len = v->rj.raw_len;
                r->raw_total = v->rj.raw_total;
                r->message = ih_dup(v->rj.message, v->rj.message_len);
        }
}

void ih_recs_free(struct ih_recs *rs)
{
        for (size_t i = 0; i < rs->n; i++) {
                struct ih_rec *r = &rs->v[i];

                free(r->id);
                free(r->etype);
                free(r->source);
                free(r->data);
                free(r->raw);
                free(r->message);
        }
        free(rs->v);
        memset(rs, 0, sizeof(*rs));
}

const char *ih_rec_describe(const struct ih_rec *r, char *buf, size_t len)
{
        if (r->type == EVENT_REC_EVENT)
                snprintf(buf, len, "event seq %llu origin %llu source_kind %d id \"%.60s\" "
                         "type \"%.60s\" data %.200s", (unsigned long long)r->seq,
                         (unsigned long long)r->origin, (int)r->source_kind, r->id, r->etype,
                         r->data);
        else
                snprintf(buf, len, "reject seq %llu origin %llu source_kind %d reason %s "
                         "(raw %u of %u bytes): %.200s", (unsigned long long)r->seq,
                         (unsigned long long)r->origin, (int)r->source_kind,
                         event_reason_name(r->reason), r->raw_len, r->raw_total, r->message);
        return buf;
}

/* ---- ingest.stats ---- */

bool ih_stats_try(struct stats_snapshot *snap)
{
        char why[WHY_MAX] = "";
        int err = stats_read(ih_ti.dirfd, "ingest", snap, why, sizeof(why));

        if (err == -ENOENT)
                return false;
        cr_assert(err == 0, "stats_read(ingest): %s", why);
        return true;
}

void ih_stats(struct stats_snapshot *snap)
{
        cr_assert(ih_stats_try(snap), "ingest.stats does not exist in %s", ih_ti.name);
}

uint64_t ih_stat(const struct stats_snapshot *snap, const char *name)
{
        const struct stats_value *v = stats_find(snap, name);

        cr_assert(v != NULL, "ingest.stats has no counter \"%s\"", name);
        return v->value;
}

uint64_t ih_stat_now(const char *name)
{
        struct stats_snapshot snap;
        uint64_t v;

        ih_stats(&snap);
        v = ih_stat(&snap, name);
        stats_snapshot_free(&snap);
        return v;
}

uint64_t ih_wait_stat(const char *name, uint64_t min, struct ih_proc *p, int64_t timeout_ns)
{
        int64_t deadline = clock_mono_ns() + timeout_ns;
        uint64_t v = 0;

        for (;;) {
                struct stats_snapshot snap;

                if (ih_stats_try(&snap)) {
                        v = ih_stat(&snap, name);
                        stats_snapshot_free(&snap);
                        if (v >= min)
                                return v;
                }
                if (p != NULL && ih_exited(p)) {
                        char *err;

                        /* It may have got there just before it exited. */
                        ih_stats(&snap);
                        v = ih_stat(&snap, name);
                        stats_snapshot_free(&snap);
                        if (v >= min)
                                return v;
                        err = ih_stderr(p);
                        cr_assert_fail("ringflow-ingest exited (status %d) while the test waited "
                                       "for %s >= %llu (it is %llu); stderr:\n%s", p->status,
                                       name, (unsigned long long)min, (unsigned long long)v, err);
                }
                cr_assert(clock_mono_ns() < deadline, "waited %.1f s for %s >= %llu; it is %llu",
                          (double)timeout_ns / NSEC_PER_SEC, name, (unsigned long long)min,
                          (unsigned long long)v);
                ih_poll_pause();
        }
}

uint64_t ih_wait_stat_settles(const char *name, unsigned polls, struct ih_proc *p)
{
        int64_t deadline = clock_mono_ns() + IH_TIMEOUT_NS;
        uint64_t last = ih_stat_now(name);
        unsigned same = 0;

        while (same < polls) {
                uint64_t v;

                cr_assert(!ih_exited(p), "ringflow-ingest exited (%d): %s", p->status, ih_stderr(p));
                cr_assert(clock_mono_ns() < deadline, "%s never settled", name);
                ih_poll_pause();
                v = ih_stat_now(name);
                same = v == last ? same + 1 : 0;
                last = v;
        }
        return last;
}

void ih_check_invariants(const struct stats_snapshot *snap)
{
        static const char *const sources[] = { "stdin", "unix", "tcp", "api" };
        uint64_t rejected = 0, reasons = 0;
        char name[STATS_NAME_MAX + 1];

        for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++) {
                uint64_t lines, acc, rej;

                snprintf(name, sizeof(name), "%s.lines", sources[i]);
                lines = ih_stat(snap, name);
                snprintf(name, sizeof(name), "%s.accepted", sources[i]);
                acc = ih_stat(snap, name);
                snprintf(name, sizeof(name), "%s.rejected", sources[i]);
                rej = ih_stat(snap, name);
                cr_expect_eq(lines, acc + rej, "%s.lines %llu != accepted %llu + rejected %llu",
                             sources[i], (unsigned long long)lines, (unsigned long long)acc,
                             (unsigned long long)rej);
                rejected += rej;
        }
        for (int r = EVENT_OK + 1; r < EVENT_ERR_REASON_COUNT; r++) {
                snprintf(name, sizeof(name), "reject.%s", event_reason_name((enum event_reason)r));
                reasons += ih_stat(snap, name);
        }
        cr_expect_eq(reasons, rejected, "sum of reject.* %llu != sum of S.rejected %llu",
                     (unsigned long long)reasons, (unsigned long long)rejected);
}

/* ---- sockets ---- */

int ih_free_port(void)
{
        struct sockaddr_in sa = { .sin_family = AF_INET };
        socklen_t salen = sizeof(sa);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int port;

        cr_assert(fd >= 0, "socket: %s", strerror(errno));
        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        cr_assert(bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "bind: %s", strerror(errno));
        cr_assert(getsockname(fd, (struct sockaddr *)&sa, &salen) == 0);
        port = ntohs(sa.sin_port);
        close(fd);
        return port;
}

static int ih_connect_retry(int family, const struct sockaddr *sa, socklen_t salen,
                            const char *what, int64_t timeout_ns)
{
        int64_t deadline = clock_mono_ns() + timeout_ns;

        for (;;) {
                int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);

                cr_assert(fd >= 0, "socket: %s", strerror(errno));
                if (connect(fd, sa, salen) == 0)
                        return fd;
                close(fd);
                cr_assert(errno == ENOENT || errno == ECONNREFUSED || errno == EINTR,
                          "connect %s: %s", what, strerror(errno));
                cr_assert(clock_mono_ns() < deadline, "nothing listens on %s after %.1f s (%s)",
                          what, (double)timeout_ns / NSEC_PER_SEC, strerror(errno));
                ih_poll_pause();
        }
}

int ih_connect_unix(const char *path, int64_t timeout_ns)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        cr_assert(strlen(path) < sizeof(sa.sun_path));
        strcpy(sa.sun_path, path);
        return ih_connect_retry(AF_UNIX, (struct sockaddr *)&sa, sizeof(sa), path, timeout_ns);
}

int ih_connect_tcp(int port, int64_t timeout_ns)
{
        struct sockaddr_in sa = { .sin_family = AF_INET };
        char what[32];

        sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        sa.sin_port = htons((uint16_t)port);
        snprintf(what, sizeof(what), "127.0.0.1:%d", port);
        return ih_connect_retry(AF_INET, (struct sockaddr *)&sa, sizeof(sa), what, timeout_ns);
}

void ih_send_all(int fd, const void *buf, size_t len)
{
        const char *p = buf;

        while (len > 0) {
                ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

                if (n < 0 && errno == EINTR)
                        continue;
                cr_assert(n > 0, "send: %s", strerror(errno));
                p += n;
                len -= (size_t)n;
        }
}

bool ih_wait_closed(int fd, int64_t timeout_ns)
{
        int64_t deadline = clock_mono_ns() + timeout_ns;

        for (;;) {
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                int64_t left = deadline - clock_mono_ns();
                char buf[4096];
                ssize_t n;

                if (left <= 0)
                        return false;
                if (poll(&pfd, 1, (int)(left / NSEC_PER_MSEC) + 1) <= 0)
                        continue;
                n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
                if (n == 0 || (n < 0 && (errno == ECONNRESET || errno == EPIPE)))
                        return true;
        }
}

/* ---- small things ---- */

void ih_poll_pause(void)
{
        struct timespec ts = { 0, NSEC_PER_MSEC };

        nanosleep(&ts, NULL);
}

unsigned ih_seed(void)
{
        const char *env = getenv("RINGFLOW_TEST_SEED");
        unsigned seed;

        if (env != NULL && env[0] != '\0')
                seed = (unsigned)strtoul(env, NULL, 0);
        else
                seed = (unsigned)(clock_real_ns() ^ getpid());
        cr_log_info("random seed %u (set RINGFLOW_TEST_SEED=%u to repeat)", seed, seed);
        return seed;
}
