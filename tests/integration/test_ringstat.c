/* SPDX-License-Identifier: MIT */
/* test_ringstat.c: runs the real ringstat against rings the test set up and checks its report. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <json.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "ring.h"
#include "stats.h"
#include "test_instance.h"
#include "why.h"

#define RUN_DEADLINE_NS (20 * NSEC_PER_SEC)
#define RUN_OUTPUT_MAX 65536
#define RUN_ARGS_MAX 16
#define TEST_CAPACITY 65536u

/* One run of ringstat: its exit status and everything it wrote. */
struct run {
        pid_t pid;
        int outfd, errfd;
        int64_t deadline_ns;
        int status;             /* exit status, or 128 + signal */
        char out[RUN_OUTPUT_MAX];
        size_t out_len;
        char err[RUN_OUTPUT_MAX];
        size_t err_len;
};

static struct test_instance ti = { .dirfd = -1 };
static char ringstat_bin[PATH_MAX];
static pid_t children[4];
static size_t nchildren;

/*
 * Finds the binary before making the instance: a skipped test does not run
 * the fini, so skipping later would leave the instance behind.
 */
static void setup(void)
{
        const char *dir = getenv("RINGFLOW_BUILDDIR");

        if (dir == NULL || dir[0] == '\0')
                cr_skip_test("RINGFLOW_BUILDDIR is not set: run through `make check`, "
                             "or set it to the build directory holding tools/ringstat");
        snprintf(ringstat_bin, sizeof(ringstat_bin), "%s/tools/ringstat", dir);
        cr_assert(access(ringstat_bin, X_OK) == 0,
                  "%s is not an executable: build tools/ringstat first", ringstat_bin);
        test_instance_init(&ti);
}

/* Kills what a failed test left running, then removes the instance. */
static void teardown(void)
{
        for (size_t i = 0; i < nchildren; i++) {
                if (children[i] > 0) {
                        kill(children[i], SIGKILL);
                        waitpid(children[i], NULL, 0);
                }
        }
        nchildren = 0;
        test_instance_fini(&ti);
}

TestSuite(ringstat, .init = setup, .fini = teardown, .timeout = 60);

/* ---- running the binary ---- */

/* Reads what is available on fd into buf; returns false at end of file. */
static bool pipe_read(int fd, char *buf, size_t *len)
{
        ssize_t n;

        cr_assert(*len < RUN_OUTPUT_MAX - 1, "ringstat wrote more than %d bytes", RUN_OUTPUT_MAX);
        n = read(fd, buf + *len, RUN_OUTPUT_MAX - 1 - *len);
        if (n < 0 && errno == EINTR)
                return true;
        cr_assert(n >= 0, "read from ringstat: %s", strerror(errno));
        *len += (size_t)n;
        buf[*len] = '\0';
        return n > 0;
}

/* Collects stdout and stderr until both close, within RUN_DEADLINE_NS. */
static void run_collect(struct run *r)
{
        struct pollfd pfd[2] = { { .fd = r->outfd, .events = POLLIN },
                                 { .fd = r->errfd, .events = POLLIN } };

        while (pfd[0].fd >= 0 || pfd[1].fd >= 0) {
                int64_t left = r->deadline_ns - clock_mono_ns();

                if (left <= 0) {
                        kill(r->pid, SIGKILL);
                        waitpid(r->pid, NULL, 0);
                        cr_assert_fail("ringstat did not finish within %lld s",
                                       RUN_DEADLINE_NS / NSEC_PER_SEC);
                }
                if (poll(pfd, 2, (int)(left / NSEC_PER_MSEC) + 1) < 0) {
                        cr_assert(errno == EINTR, "poll: %s", strerror(errno));
                        continue;
                }
                if (pfd[0].revents && !pipe_read(pfd[0].fd, r->out, &r->out_len))
                        pfd[0].fd = -1;
                if (pfd[1].revents && !pipe_read(pfd[1].fd, r->err, &r->err_len))
                        pfd[1].fd = -1;
        }
}

/* Starts ringstat with the arguments in ap (NULL-terminated), its output on pipes. */
static void run_start(struct run *r, va_list ap)
{
        char *argv[RUN_ARGS_MAX + 2];
        int out[2], err[2];
        const char *arg;
        size_t argc = 0;

        memset(r, 0, sizeof(*r));
        argv[argc++] = ringstat_bin;
        while ((arg = va_arg(ap, const char *)) != NULL) {
                cr_assert(argc <= RUN_ARGS_MAX, "too many arguments");
                argv[argc++] = strdup(arg);
        }
        argv[argc] = NULL;
        cr_assert(pipe2(out, O_CLOEXEC) == 0 && pipe2(err, O_CLOEXEC) == 0);
        r->deadline_ns = clock_mono_ns() + RUN_DEADLINE_NS;
        r->pid = fork();
        cr_assert(r->pid >= 0, "fork: %s", strerror(errno));
        if (r->pid == 0) {
                dup2(out[1], STDOUT_FILENO);
                dup2(err[1], STDERR_FILENO);
                execv(ringstat_bin, argv);
                _exit(127);
        }
        close(out[1]);
        close(err[1]);
        r->outfd = out[0];
        r->errfd = err[0];
        for (size_t i = 1; i < argc; i++)
                free(argv[i]);
}

/* Reads the rest of the output and waits for ringstat to exit. */
static void run_finish(struct run *r)
{
        int wstatus;

        run_collect(r);
        close(r->outfd);
        close(r->errfd);
        cr_assert(waitpid(r->pid, &wstatus, 0) == r->pid);
        r->status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
}

/* Runs ringstat with the NULL-terminated arguments and waits for it. */
static void run_ringstat(struct run *r, ...)
{
        va_list ap;

        va_start(ap, r);
        run_start(r, ap);
        va_end(ap);
        run_finish(r);
}

/* Starts ringstat and returns once it has printed its first line. */
static void run_ringstat_until_line(struct run *r, ...)
{
        struct pollfd pfd;
        va_list ap;

        va_start(ap, r);
        run_start(r, ap);
        va_end(ap);
        pfd = (struct pollfd){ .fd = r->outfd, .events = POLLIN };
        while (strchr(r->out, '\n') == NULL) {
                int64_t left = r->deadline_ns - clock_mono_ns();

                if (left <= 0) {
                        kill(r->pid, SIGKILL);
                        waitpid(r->pid, NULL, 0);
                        cr_assert_fail("no line from ringstat within %lld s",
                                       RUN_DEADLINE_NS / NSEC_PER_SEC);
                }
                if (poll(&pfd, 1, (int)(left / NSEC_PER_MSEC) + 1) > 0)
                        cr_assert(pipe_read(r->outfd, r->out, &r->out_len),
                                  "ringstat closed its output before the first line");
        }
}

static size_t count_lines(const char *s)
{
        size_t n = 0;

        for (; *s; s++)
                n += *s == '\n';
        return n;
}

/* ---- rings the tests drive ---- */

static size_t rec_bytes(uint32_t len)
{
        return (RING_RECORD_HEADER + len + RING_ALIGN - 1) & ~(size_t)(RING_ALIGN - 1);
}

static void make_ring(const char *producer, const char *consumer)
{
        char why[WHY_MAX] = "";
        int err = ring_create(ti.dirfd, producer, consumer, TEST_CAPACITY, 0, why, sizeof(why));

        cr_assert(err == 0, "ring_create(%s-%s): %s", producer, consumer, why);
}

static struct ring *attach(const char *producer, const char *consumer, enum ring_role role)
{
        char why[WHY_MAX] = "";
        struct ring *r = NULL;
        int err = ring_attach(&r, ti.dirfd, producer, consumer, role, why, sizeof(why));

        cr_assert(err == 0, "ring_attach(%s-%s, %d): %s", producer, consumer, (int)role, why);
        return r;
}

/* Publishes n records of len bytes in one batch. */
static void publish(struct ring *r, unsigned n, uint32_t len)
{
        void *p;

        for (unsigned i = 0; i < n; i++) {
                int err = ring_reserve(r, 1, len, &p);

                cr_assert(err == 0, "ring_reserve #%u: %s", i, strerror(-err));
                memset(p, (int)i, len);
                ring_commit(r, len);
        }
        cr_assert_eq(ring_publish(r), n);
}

/* Peeks n records and releases them; returns the mark after the first `upto`. */
static struct ring_mark consume(struct ring *r, unsigned n, unsigned upto)
{
        struct ring_mark mark = { 0, 0 };
        struct ring_rec rec;

        for (unsigned i = 0; i < n; i++) {
                int err = ring_peek(r, &rec);

                cr_assert(err == 0, "ring_peek #%u: %s", i, strerror(-err));
                if (i + 1 == upto)
                        mark = rec.next;
        }
        ring_release(r);
        return mark;
}

static void track_child(pid_t pid)
{
        cr_assert(nchildren < sizeof(children) / sizeof(children[0]));
        children[nchildren++] = pid;
}

static void stop_child(pid_t pid)
{
        for (size_t i = 0; i < nchildren; i++) {
                if (children[i] == pid) {
                        kill(pid, SIGKILL);
                        waitpid(pid, NULL, 0);
                        children[i] = 0;
                }
        }
}

/* Blocks until the child writes its ready byte; fails if it died first. */
static void wait_ready(int fd)
{
        char c;
        ssize_t n;

        do
                n = read(fd, &c, 1);
        while (n < 0 && errno == EINTR);
        cr_assert_eq(n, 1, "child exited before it was ready");
        close(fd);
}

/* ---- reading the JSON ---- */

static json_object *parse_sample(const char *line)
{
        enum json_tokener_error jerr;
        json_object *o = json_tokener_parse_verbose(line, &jerr);

        cr_assert(o != NULL, "not JSON (%s): %s", json_tokener_error_desc(jerr), line);
        cr_assert(json_object_is_type(o, json_type_object), "not an object: %s", line);
        return o;
}

static json_object *field(json_object *o, const char *key)
{
        json_object *v = NULL;

        cr_assert(json_object_object_get_ex(o, key, &v), "no \"%s\" in %s", key,
                  json_object_to_json_string(o));
        return v;
}

static uint64_t get_u64(json_object *o, const char *key)
{
        json_object *v = field(o, key);

        cr_assert(json_object_is_type(v, json_type_int), "\"%s\" is not an integer", key);
        return json_object_get_uint64(v);
}

static int64_t get_i64(json_object *o, const char *key)
{
        json_object *v = field(o, key);

        cr_assert(json_object_is_type(v, json_type_int), "\"%s\" is not an integer", key);
        return json_object_get_int64(v);
}

static double get_double(json_object *o, const char *key)
{
        json_object *v = field(o, key);

        cr_assert(json_object_is_type(v, json_type_double) ||
                  json_object_is_type(v, json_type_int), "\"%s\" is not a number", key);
        return json_object_get_double(v);
}

static bool get_bool(json_object *o, const char *key)
{
        json_object *v = field(o, key);

        cr_assert(json_object_is_type(v, json_type_boolean), "\"%s\" is not a boolean", key);
        return json_object_get_boolean(v);
}

static const char *get_str(json_object *o, const char *key)
{
        json_object *v = field(o, key);

        cr_assert(json_object_is_type(v, json_type_string), "\"%s\" is not a string", key);
        return json_object_get_string(v);
}

/* The ring named "producer->consumer" in a sample. */
static json_object *find_ring(json_object *sample, const char *name)
{
        json_object *rings = field(sample, "rings");

        cr_assert(json_object_is_type(rings, json_type_array));
        for (size_t i = 0; i < json_object_array_length(rings); i++) {
                json_object *ring = json_object_array_get_idx(rings, i);

                if (strcmp(get_str(ring, "name"), name) == 0)
                        return ring;
        }
        cr_assert_fail("no ring %s in %s", name, json_object_to_json_string(sample));
        return NULL;
}

/* The stage named name in a sample. */
static json_object *find_stage(json_object *sample, const char *name)
{
        json_object *stages = field(sample, "stages");

        cr_assert(json_object_is_type(stages, json_type_array));
        for (size_t i = 0; i < json_object_array_length(stages); i++) {
                json_object *stage = json_object_array_get_idx(stages, i);

                if (strcmp(get_str(stage, "stage"), name) == 0)
                        return stage;
        }
        cr_assert_fail("no stage %s in %s", name, json_object_to_json_string(sample));
        return NULL;
}

/* Runs ringstat --json once on the test instance and parses its one line. */
static json_object *sample_once(struct run *r, int want_status)
{
        run_ringstat(r, "--instance", ti.name, "--json", (const char *)NULL);
        cr_assert_eq(r->status, want_status, "exit %d, want %d; stderr: %s", r->status,
                     want_status, r->err);
        cr_assert_eq(count_lines(r->out), 1, "want one line, got: %s", r->out);
        return parse_sample(r->out);
}

/* ---- tests ---- */

Test(ringstat, json_reports_positions_counts_fill_and_ends_of_each_ring)
{
        static struct run r;
        struct ring *a_prod, *b_prod, *b_cons;
        json_object *sample, *a, *b;
        struct ring_mark mark;
        size_t a_rec = rec_bytes(100), b_rec = rec_bytes(24);

        make_ring("alpha", "beta");
        make_ring("beta", "gamma");
        /* alpha->beta: 100 records waiting, producer here, no consumer ever. */
        a_prod = attach("alpha", "beta", RING_PRODUCER);
        publish(a_prod, 100, 100);
        /* beta->gamma: 50 published by a producer gone since; 30 read, 10 done. */
        b_prod = attach("beta", "gamma", RING_PRODUCER);
        publish(b_prod, 50, 24);
        ring_close(b_prod);
        b_cons = attach("beta", "gamma", RING_CONSUMER);
        mark = consume(b_cons, 30, 10);
        cr_assert_eq(ring_done(b_cons, mark), 0);

        sample = sample_once(&r, 0);
        cr_assert_str_eq(get_str(sample, "instance"), ti.name);
        cr_assert_gt(get_i64(sample, "time_ns"), 0);
        cr_assert_eq(json_object_array_length(field(sample, "rings")), 2);
        cr_assert_eq(r.err_len, 0, "stderr: %s", r.err);

        a = find_ring(sample, "alpha->beta");
        cr_assert_str_eq(get_str(a, "producer"), "alpha");
        cr_assert_str_eq(get_str(a, "consumer"), "beta");
        cr_assert_eq(get_u64(a, "capacity"), TEST_CAPACITY);
        cr_assert_eq(get_u64(a, "write"), 100 * a_rec);
        cr_assert_eq(get_u64(a, "read"), 0);
        cr_assert_eq(get_u64(a, "commit"), 0);
        cr_assert_eq(get_u64(a, "write_count"), 100);
        cr_assert_eq(get_u64(a, "read_count"), 0);
        cr_assert_eq(get_u64(a, "lag_bytes"), 100 * a_rec);
        cr_assert_eq(get_u64(a, "lag_records"), 100);
        cr_assert_eq(get_u64(a, "uncommitted_bytes"), 0);
        cr_assert_float_eq(get_double(a, "fill_pct"), 100.0 * (double)(100 * a_rec) / TEST_CAPACITY,
                           1e-9);
        cr_assert_eq(get_i64(a, "producer_pid"), getpid());
        cr_assert(get_bool(a, "producer_alive"));
        cr_assert_eq(get_i64(a, "consumer_pid"), 0);
        cr_assert(!get_bool(a, "consumer_alive"));
        cr_assert_float_eq(get_double(a, "records_per_sec"), 0.0, 1e-12,
                           "nothing was published while ringstat watched");
        cr_assert_gt(get_i64(a, "rate_interval_ns"), 0);
        cr_assert_eq(get_u64(a, "drops"), 0);

        b = find_ring(sample, "beta->gamma");
        cr_assert_eq(get_u64(b, "write"), 50 * b_rec);
        cr_assert_eq(get_u64(b, "read"), 30 * b_rec);
        cr_assert_eq(get_u64(b, "commit"), 10 * b_rec);
        cr_assert_eq(get_u64(b, "write_count"), 50);
        cr_assert_eq(get_u64(b, "read_count"), 30);
        cr_assert_eq(get_u64(b, "commit_count"), 10);
        cr_assert_eq(get_u64(b, "lag_bytes"), 20 * b_rec);
        cr_assert_eq(get_u64(b, "lag_records"), 20);
        cr_assert_eq(get_u64(b, "uncommitted_bytes"), 20 * b_rec);
        cr_assert_float_eq(get_double(b, "fill_pct"), 100.0 * (double)(40 * b_rec) / TEST_CAPACITY,
                           1e-9);
        cr_assert_eq(get_i64(b, "producer_pid"), getpid());
        cr_assert(!get_bool(b, "producer_alive"), "the producer closed its end");
        cr_assert_eq(get_i64(b, "consumer_pid"), getpid());
        cr_assert(get_bool(b, "consumer_alive"));

        json_object_put(sample);
        ring_close(a_prod);
        ring_close(b_cons);
}

Test(ringstat, reports_a_killed_end_as_not_alive_with_its_last_pid)
{
        static struct run r;
        json_object *sample, *ring;
        int ready[2];
        pid_t pid;

        make_ring("src", "dst");
        cr_assert(pipe(ready) == 0);
        pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
                struct ring *c = attach("src", "dst", RING_CONSUMER);

                (void)c;
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (write(ready[1], "r", 1) != 1)
                        _exit(1);
                for (;;)
                        pause();
        }
        track_child(pid);
        close(ready[1]);
        wait_ready(ready[0]);

        sample = sample_once(&r, 0);
        ring = find_ring(sample, "src->dst");
        cr_assert_eq(get_i64(ring, "consumer_pid"), pid);
        cr_assert(get_bool(ring, "consumer_alive"), "the child holds the consumer end");
        json_object_put(sample);

        stop_child(pid);        /* SIGKILL: its lock goes with it */
        sample = sample_once(&r, 0);
        ring = find_ring(sample, "src->dst");
        cr_assert_eq(get_i64(ring, "consumer_pid"), pid);
        cr_assert(!get_bool(ring, "consumer_alive"), "the consumer was killed");
        json_object_put(sample);
}

Test(ringstat, text_shows_a_header_and_one_row_per_ring_with_liveness_marks)
{
        static struct run r;
        struct ring *prod, *gone;
        char line[512], want_alive[32], want_gone[32];
        char name[80], pid1[32], pid2[32], cap[32];
        const char *p;
        int rows = 0;

        make_ring("alpha", "beta");
        make_ring("beta", "gamma");
        prod = attach("alpha", "beta", RING_PRODUCER);
        publish(prod, 10, 40);
        gone = attach("beta", "gamma", RING_PRODUCER);
        ring_close(gone);       /* beta->gamma: a producer that came and went */
        snprintf(want_alive, sizeof(want_alive), "%ld", (long)getpid());
        snprintf(want_gone, sizeof(want_gone), "%ld!", (long)getpid());

        run_ringstat(&r, "--instance", ti.name, (const char *)NULL);
        cr_assert_eq(r.status, 0, "stderr: %s", r.err);
        cr_assert_eq(count_lines(r.out), 3, "header and two rows: %s", r.out);
        cr_assert(strncmp(r.out, "RING ", 5) == 0, "header first: %s", r.out);
        cr_assert(strstr(r.out, "FILL%") != NULL && strstr(r.out, "REC/S") != NULL);
        for (p = strchr(r.out, '\n') + 1; *p; p = strchr(p, '\n') + 1) {
                size_t len = (size_t)(strchr(p, '\n') - p);

                cr_assert_lt(len, sizeof(line));
                memcpy(line, p, len);
                line[len] = '\0';
                cr_assert_eq(sscanf(line, "%79s %31s %31s %31s", name, pid1, pid2, cap), 4,
                             "row: %s", line);
                cr_assert_str_eq(cap, "64K");
                if (strcmp(name, "alpha->beta") == 0) {
                        cr_assert_str_eq(pid1, want_alive);
                        cr_assert_str_eq(pid2, "-");
                } else {
                        cr_assert_str_eq(name, "beta->gamma");
                        cr_assert_str_eq(pid1, want_gone);
                        cr_assert_str_eq(pid2, "-");
                }
                rows++;
        }
        cr_assert_eq(rows, 2);
        ring_close(prod);
}

Test(ringstat, missing_instance_exits_111_with_one_line_naming_it)
{
        static struct run r;
        char name[INSTANCE_NAME_MAX + 1];

        snprintf(name, sizeof(name), "nosuch-%ld", (long)getpid());
        run_ringstat(&r, "--instance", name, "--json", (const char *)NULL);
        cr_assert_eq(r.status, EXIT_TEMPORARY, "exit %d", r.status);
        cr_assert_eq(r.out_len, 0, "nothing on stdout: %s", r.out);
        cr_assert_eq(count_lines(r.err), 1, "one line: %s", r.err);
        cr_assert(r.err[r.err_len - 1] == '\n');
        cr_assert(strstr(r.err, name) != NULL, "names the instance: %s", r.err);
}

Test(ringstat, unknown_option_exits_100_with_usage)
{
        static struct run r;

        run_ringstat(&r, "--instance", ti.name, "--bogus", (const char *)NULL);
        cr_assert_eq(r.status, EXIT_PERMANENT, "exit %d", r.status);
        cr_assert_eq(r.out_len, 0);
        cr_assert(strstr(r.err, "bogus") != NULL, "names the option: %s", r.err);
        cr_assert(strstr(r.err, "usage:") != NULL, "shows the usage: %s", r.err);

        run_ringstat(&r, "--instance", ti.name, "extra", (const char *)NULL);
        cr_assert_eq(r.status, EXIT_PERMANENT, "an extra argument: exit %d", r.status);
}

Test(ringstat, bad_watch_interval_or_count_exits_100)
{
        static const char *const bad_w[] = { "0", "-1", "abc", "0.5s", "1e9", "nan", "" };
        static const char *const bad_c[] = { "0", "-3", "x", "2.5" };
        static struct run r;

        for (size_t i = 0; i < sizeof(bad_w) / sizeof(bad_w[0]); i++) {
                run_ringstat(&r, "--instance", ti.name, "-w", bad_w[i], (const char *)NULL);
                cr_assert_eq(r.status, EXIT_PERMANENT, "-w \"%s\": exit %d", bad_w[i], r.status);
                cr_assert(strstr(r.err, "usage:") != NULL, "-w \"%s\": %s", bad_w[i], r.err);
        }
        for (size_t i = 0; i < sizeof(bad_c) / sizeof(bad_c[0]); i++) {
                run_ringstat(&r, "--instance", ti.name, "-c", bad_c[i], (const char *)NULL);
                cr_assert_eq(r.status, EXIT_PERMANENT, "-c \"%s\": exit %d", bad_c[i], r.status);
        }
}

Test(ringstat, corrupt_ring_is_reported_with_an_error_and_the_others_still_shown)
{
        static struct run r;
        char path[PATH_MAX];
        json_object *sample, *bad, *good;
        struct ring *prod;
        int fd;

        make_ring("left", "mid");
        make_ring("mid", "right");
        prod = attach("left", "mid", RING_PRODUCER);
        publish(prod, 5, 16);
        ring_close(prod);
        test_instance_path(&ti, "mid-right.ring", path, sizeof(path));
        fd = open(path, O_WRONLY | O_CLOEXEC);
        cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
        cr_assert_eq(pwrite(fd, "garbage!", 8, 0), 8);
        close(fd);

        sample = sample_once(&r, EXIT_TEMPORARY);
        bad = find_ring(sample, "mid->right");
        cr_assert(strlen(get_str(bad, "error")) > 0);
        cr_assert(!json_object_object_get_ex(bad, "write", NULL), "no numbers for a bad ring");
        good = find_ring(sample, "left->mid");
        cr_assert(!json_object_object_get_ex(good, "error", NULL));
        cr_assert_eq(get_u64(good, "write_count"), 5);
        cr_assert_eq(get_u64(good, "write"), 5 * rec_bytes(16));
        json_object_put(sample);

        run_ringstat(&r, "--instance", ti.name, (const char *)NULL);
        cr_assert_eq(r.status, EXIT_TEMPORARY);
        cr_assert(strstr(r.out, "mid->right  bad: ") != NULL, "text row: %s", r.out);
        cr_assert(strstr(r.out, "left->mid ") != NULL, "the good ring: %s", r.out);
}

/* Publishes records of 56 bytes until killed, waiting when the ring is full. */
static void producer_loop(int ready_fd)
{
        struct ring *p = attach("gen", "sink", RING_PRODUCER);
        bool told = false;
        void *rec;

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (;;) {
                int err = ring_reserve(p, 1, 56, &rec);

                if (err == -EAGAIN) {
                        ring_wait_space(p, 56, 0, 100 * NSEC_PER_MSEC);
                        continue;
                }
                if (err != 0)
                        _exit(1);
                memset(rec, 0x5a, 56);
                ring_commit(p, 56);
                ring_publish(p);
                if (!told && write(ready_fd, "r", 1) == 1)
                        told = true;
        }
}

/* Takes every record and marks it done at once, until killed. */
static void consumer_loop(int unused)
{
        struct ring *c = attach("gen", "sink", RING_CONSUMER);
        struct ring_rec recs[64];

        (void)unused;
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        for (;;) {
                int n = ring_peek_batch(c, recs, 64);

                if (n < 0)
                        _exit(1);
                if (n == 0) {
                        ring_wait_data(c, 0, 100 * NSEC_PER_MSEC);
                        continue;
                }
                if (ring_done(c, recs[n - 1].next) != 0)
                        _exit(1);
        }
}

static pid_t spawn(void (*loop)(int), int arg)
{
        pid_t pid = fork();

        cr_assert(pid >= 0, "fork: %s", strerror(errno));
        if (pid == 0) {
                loop(arg);
                _exit(0);
        }
        track_child(pid);
        return pid;
}

Test(ringstat, watch_prints_count_samples_with_rates_of_a_running_producer)
{
        static struct run r;
        char *line, *save = NULL;
        int64_t last_time = 0;
        pid_t prod, cons;
        int ready[2], lines = 0;

        make_ring("gen", "sink");
        cr_assert(pipe(ready) == 0);
        cons = spawn(consumer_loop, -1);
        prod = spawn(producer_loop, ready[1]);
        close(ready[1]);
        wait_ready(ready[0]);

        run_ringstat(&r, "--instance", ti.name, "-w", "0.1", "-c", "3", "--json",
                     (const char *)NULL);
        cr_assert_eq(r.status, 0, "exit %d; stderr: %s", r.status, r.err);
        cr_assert_eq(count_lines(r.out), 3, "exactly 3 samples: %s", r.out);
        for (line = strtok_r(r.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                json_object *sample = parse_sample(line);
                json_object *ring = find_ring(sample, "gen->sink");

                cr_assert_gt(get_i64(sample, "time_ns"), last_time, "samples move forward");
                last_time = get_i64(sample, "time_ns");
                cr_assert_gt(get_double(ring, "records_per_sec"), 0.0, "sample %d: %s", lines,
                             line);
                cr_assert_gt(get_double(ring, "bytes_per_sec"), 0.0);
                cr_assert_gt(get_i64(ring, "rate_interval_ns"), 0);
                cr_assert_eq(get_i64(ring, "producer_pid"), prod);
                cr_assert(get_bool(ring, "producer_alive"));
                cr_assert_eq(get_i64(ring, "consumer_pid"), cons);
                cr_assert(get_bool(ring, "consumer_alive"));
                json_object_put(sample);
                lines++;
        }
        cr_assert_eq(lines, 3);
        stop_child(prod);
        stop_child(cons);
}

Test(ringstat, watch_stops_on_sigint_or_sigterm_with_exit_0_and_whole_lines)
{
        static const int sigs[] = { SIGINT, SIGTERM };
        static struct run r;

        make_ring("one", "two");
        for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
                char *line, *save = NULL;

                run_ringstat_until_line(&r, "--instance", ti.name, "--json", "-w", "0.05",
                                        (const char *)NULL);
                cr_assert_eq(kill(r.pid, sigs[i]), 0);
                run_finish(&r);
                cr_assert_eq(r.status, 0, "%s: exit %d; stderr: %s", strsignal(sigs[i]),
                             r.status, r.err);
                cr_assert(r.out_len > 0 && r.out[r.out_len - 1] == '\n', "whole lines: %s", r.out);
                for (line = strtok_r(r.out, "\n", &save); line;
                     line = strtok_r(NULL, "\n", &save))
                        json_object_put(parse_sample(line));
        }
}

/* The whole ring file: header page and data area. */
static void read_ring_file(const char *fname, unsigned char *buf, size_t len)
{
        char path[PATH_MAX];
        int fd = open(test_instance_path(&ti, fname, path, sizeof(path)), O_RDONLY | O_CLOEXEC);

        cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
        cr_assert_eq(pread(fd, buf, len, 0), (ssize_t)len);
        close(fd);
}

Test(ringstat, never_changes_the_ring_it_inspects)
{
        static unsigned char before[RING_HEADER_SIZE + TEST_CAPACITY];
        static unsigned char after[RING_HEADER_SIZE + TEST_CAPACITY];
        static struct run r;
        struct ring *prod, *cons;
        struct ring_mark mark;

        make_ring("keep", "same");
        prod = attach("keep", "same", RING_PRODUCER);
        publish(prod, 40, 72);
        cons = attach("keep", "same", RING_CONSUMER);
        mark = consume(cons, 25, 12);
        cr_assert_eq(ring_done(cons, mark), 0);
        read_ring_file("keep-same.ring", before, sizeof(before));

        run_ringstat(&r, "--instance", ti.name, "--json", (const char *)NULL);
        cr_assert_eq(r.status, 0, "stderr: %s", r.err);
        run_ringstat(&r, "--instance", ti.name, "-w", "0.05", "-c", "3", (const char *)NULL);
        cr_assert_eq(r.status, 0, "stderr: %s", r.err);

        read_ring_file("keep-same.ring", after, sizeof(after));
        for (size_t i = 0; i < sizeof(before); i++)
                cr_assert_eq(after[i], before[i], "byte %zu of the ring file changed", i);
        ring_close(cons);
        ring_close(prod);
}

Test(ringstat, empty_instance_reports_no_rings)
{
        static struct run r;
        json_object *sample = sample_once(&r, 0);

        cr_assert_eq(json_object_array_length(field(sample, "rings")), 0);
        json_object_put(sample);
}

Test(ringstat, version_and_help_exit_0_on_stdout)
{
        static struct run r;

        run_ringstat(&r, "--version", (const char *)NULL);
        cr_assert_eq(r.status, 0);
        cr_assert_str_eq(r.out, "ringstat (ringflow) " PACKAGE_VERSION "\n");
        run_ringstat(&r, "--help", (const char *)NULL);
        cr_assert_eq(r.status, 0);
        cr_assert(strstr(r.out, "--instance") != NULL && strstr(r.out, "-w") != NULL);
        cr_assert(strstr(r.out, "--stages") != NULL && strstr(r.out, "--all") != NULL);
        cr_assert(strstr(r.out, "upper bound") != NULL, "says what the quantiles are: %s", r.out);
        cr_assert_eq(r.err_len, 0);
}

/* ---- stages: the <stage>.stats files ---- */

/* A table like ingest's: per-source lines/accepted/rejected, and one of each other kind. */
enum {
        IN_STDIN_LINES, IN_STDIN_ACCEPTED, IN_STDIN_REJECTED,
        IN_TCP_LINES, IN_TCP_ACCEPTED, IN_TCP_REJECTED,
        IN_REJECT_SYNTAX, IN_OUT_WAITS, IN_CONNECTIONS, IN_PARSE_NS, IN_NDEFS
};

static const struct stats_def ingest_defs[IN_NDEFS] = {
        [IN_STDIN_LINES] = { "stdin.lines", STATS_COUNTER },
        [IN_STDIN_ACCEPTED] = { "stdin.accepted", STATS_COUNTER },
        [IN_STDIN_REJECTED] = { "stdin.rejected", STATS_COUNTER },
        [IN_TCP_LINES] = { "tcp.lines", STATS_COUNTER },
        [IN_TCP_ACCEPTED] = { "tcp.accepted", STATS_COUNTER },
        [IN_TCP_REJECTED] = { "tcp.rejected", STATS_COUNTER },
        [IN_REJECT_SYNTAX] = { "reject.syntax", STATS_COUNTER },
        [IN_OUT_WAITS] = { "out.waits", STATS_COUNTER },
        [IN_CONNECTIONS] = { "connections", STATS_GAUGE },
        [IN_PARSE_NS] = { "parse_ns", STATS_HISTOGRAM },
};

/* A stage without any of the summary counters. */
static const struct stats_def store_defs[] = {
        { "txn.commits", STATS_COUNTER },
        { "batch_rows", STATS_GAUGE },
};

static struct stats *make_stats(const char *stage, const struct stats_def *defs, unsigned n)
{
        char why[WHY_MAX] = "";
        struct stats *s = NULL;
        int err = stats_create(&s, ti.dirfd, stage, defs, n, why, sizeof(why));

        cr_assert(err == 0, "stats_create(%s): %s", stage, why);
        return s;
}

/*
 * ingest: stdin 700 lines (690 accepted, 10 rejected), tcp 5 lines all
 * accepted, 3 connections, parse_ns {0, 100, 1000, 5000}: buckets 0, 7,
 * 10 and 13, whose upper bounds are 0, 127, 1023 and 8191. out.waits 0.
 */
static struct stats *make_ingest_stats(void)
{
        struct stats *s = make_stats("ingest", ingest_defs, IN_NDEFS);
        static const uint64_t parse_ns[] = { 0, 100, 1000, 5000 };

        stats_add(stats_slot(s, IN_STDIN_LINES), 700);
        stats_add(stats_slot(s, IN_STDIN_ACCEPTED), 690);
        stats_add(stats_slot(s, IN_STDIN_REJECTED), 10);
        stats_add(stats_slot(s, IN_REJECT_SYNTAX), 10);
        stats_add(stats_slot(s, IN_TCP_LINES), 5);
        stats_add(stats_slot(s, IN_TCP_ACCEPTED), 5);
        stats_set(stats_slot(s, IN_CONNECTIONS), 3);
        for (size_t i = 0; i < sizeof(parse_ns) / sizeof(parse_ns[0]); i++)
                stats_hist_add(s, IN_PARSE_NS, parse_ns[i]);
        return s;
}

static size_t count_str(const char *text, const char *needle)
{
        size_t n = 0;

        for (const char *p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle))
                n++;
        return n;
}

/* Copies the line of text that starts with prefix (a whole first word or more) into line. */
static bool find_line(const char *text, const char *prefix, char *line, size_t len)
{
        size_t plen = strlen(prefix);

        for (const char *p = text; *p; ) {
                const char *nl = strchr(p, '\n');
                size_t n = nl ? (size_t)(nl - p) : strlen(p);

                if (n >= plen && strncmp(p, prefix, plen) == 0) {
                        cr_assert_lt(n, len, "line too long: %.*s", (int)n, p);
                        memcpy(line, p, n);
                        line[n] = '\0';
                        return true;
                }
                p += nl ? n + 1 : n;
        }
        return false;
}

Test(ringstat, text_shows_a_stages_table_after_the_rings_with_in_ok_rej_summed_over_sources)
{
        static struct run r;
        char line[512], name[64], pid[32], hb[32], in[32], inr[32], ok[32], okr[32], rej[32];
        char rejr[32], want_pid[32];
        struct stats *ingest, *store;
        const char *stages;

        make_ring("alpha", "beta");
        ingest = make_ingest_stats();
        store = make_stats("store", store_defs, 2);
        stats_add(stats_slot(store, 0), 42);
        snprintf(want_pid, sizeof(want_pid), "%ld", (long)getpid());

        run_ringstat(&r, "--instance", ti.name, (const char *)NULL);
        cr_assert_eq(r.status, 0, "exit %d; stderr: %s", r.status, r.err);
        cr_assert_eq(r.err_len, 0, "stderr: %s", r.err);
        /* The rings table first, as always; then an empty line and the stages table. */
        cr_assert(strncmp(r.out, "RING ", 5) == 0, "rings first: %s", r.out);
        cr_assert(find_line(r.out, "alpha->beta ", line, sizeof(line)), "ring row: %s", r.out);
        stages = strstr(r.out, "\n\nSTAGE ");
        cr_assert(stages != NULL, "an empty line, then the stages header: %s", r.out);
        cr_assert(strstr(r.out, "alpha->beta") < stages, "rings before stages: %s", r.out);
        cr_assert(find_line(stages + 2, "STAGE ", line, sizeof(line)));
        cr_assert_eq(sscanf(line, "%63s %31s %31s %31s %31s %31s %31s %31s %31s", name, pid, hb,
                            in, inr, ok, okr, rej, rejr), 9, "header: %s", line);
        cr_assert_str_eq(pid, "PID");
        cr_assert_str_eq(hb, "HB");
        cr_assert_str_eq(in, "IN");
        cr_assert_str_eq(ok, "OK");
        cr_assert_str_eq(rej, "REJ");
        cr_assert_str_eq(rejr, "REJ/S");
        cr_assert_eq(count_lines(r.out), 2 + 1 + 1 + 2, "rings, empty line, stages: %s", r.out);

        cr_assert(find_line(stages, "ingest ", line, sizeof(line)), "ingest row: %s", r.out);
        cr_assert_eq(sscanf(line, "%63s %31s %31s %31s %31s %31s %31s %31s %31s", name, pid, hb,
                            in, inr, ok, okr, rej, rejr), 9, "row: %s", line);
        cr_assert_str_eq(pid, want_pid, "this process writes it: %s", line);
        cr_assert_str_neq(hb, "-", "stats_create sends a heartbeat: %s", line);
        cr_assert_str_eq(in, "705", "stdin.lines + tcp.lines: %s", line);
        cr_assert_str_eq(ok, "695", "stdin.accepted + tcp.accepted: %s", line);
        cr_assert_str_eq(rej, "10", "stdin.rejected + tcp.rejected, not reject.*: %s", line);
        cr_assert_str_eq(inr, "0", "nothing counted while ringstat watched: %s", line);
        cr_assert_str_eq(okr, "0");
        cr_assert_str_eq(rejr, "0");

        cr_assert(find_line(stages, "store ", line, sizeof(line)), "store row: %s", r.out);
        cr_assert_eq(sscanf(line, "%63s %31s %31s %31s %31s %31s %31s %31s %31s", name, pid, hb,
                            in, inr, ok, okr, rej, rejr), 9, "row: %s", line);
        cr_assert_str_eq(in, "-", "no *.lines counter: %s", line);
        cr_assert_str_eq(inr, "-");
        cr_assert_str_eq(ok, "-");
        cr_assert_str_eq(rej, "-");
        cr_assert(strstr(r.out, "stdin.lines") == NULL, "no per-counter lines without -s");

        /* The writer gone: the pid gets its mark, the values stay. */
        stats_close(ingest);
        snprintf(want_pid, sizeof(want_pid), "%ld!", (long)getpid());
        run_ringstat(&r, "--instance", ti.name, (const char *)NULL);
        cr_assert_eq(r.status, 0, "stderr: %s", r.err);
        cr_assert(find_line(r.out, "ingest ", line, sizeof(line)), "ingest row: %s", r.out);
        cr_assert_eq(sscanf(line, "%63s %31s %31s %31s", name, pid, hb, in), 4, "row: %s", line);
        cr_assert_str_eq(pid, want_pid, "the writer closed it: %s", line);
        cr_assert_str_eq(in, "705");
        stats_close(store);
}

Test(ringstat, stages_flag_lists_every_nonzero_value_with_rates_and_histogram_bounds)
{
        static const char *const flags[] = { "-s", "--stages", "--all" };
        static struct run r;
        char line[512], stage[64], name[64], value[64], rate[64];
        struct stats *ingest = make_ingest_stats();

        for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
                run_ringstat(&r, "--instance", ti.name, flags[i], (const char *)NULL);
                cr_assert_eq(r.status, 0, "%s: exit %d; stderr: %s", flags[i], r.status, r.err);
                cr_assert(find_line(r.out, "ingest  stdin.lines ", line, sizeof(line)),
                          "%s: a line per counter: %s", flags[i], r.out);
                cr_assert_eq(sscanf(line, "%63s %63s %63s %63s", stage, name, value, rate), 4,
                             "stage name value rate: %s", line);
                cr_assert_str_eq(value, "700", "the exact value: %s", line);
                cr_assert_str_eq(rate, "0.0/s", "a rate: %s", line);
                cr_assert(find_line(r.out, "ingest  tcp.accepted ", line, sizeof(line)), "%s",
                          r.out);
                cr_assert_eq(sscanf(line, "%63s %63s %63s", stage, name, value), 3);
                cr_assert_str_eq(value, "5");
                cr_assert(find_line(r.out, "ingest  connections ", line, sizeof(line)),
                          "the gauge: %s", r.out);
                cr_assert_eq(sscanf(line, "%63s %63s %63s %63s", stage, name, value, rate), 3,
                             "a gauge has no rate: %s", line);
                cr_assert_str_eq(value, "3");
                cr_assert(strstr(r.out, "out.waits") == NULL, "a zero counter is left out: %s",
                          r.out);
                cr_assert(find_line(r.out, "ingest  parse_ns ", line, sizeof(line)),
                          "the histogram: %s", r.out);
                cr_assert(strstr(line, " count=4 mean=1525 p50<=127 p99<=8191 max<=8191") != NULL,
                          "count, mean and bucket upper bounds: %s", line);
        }
        stats_close(ingest);
}

Test(ringstat, json_reports_every_counter_gauge_and_histogram_of_each_stage)
{
        static const uint64_t want_buckets[] = { 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 1 };
        static struct run r;
        json_object *sample, *stage, *counters, *gauges, *hist, *buckets, *rates;
        struct stats *ingest = make_ingest_stats();

        stats_close(make_stats("store", store_defs, 2));
        sample = sample_once(&r, 0);
        cr_assert_eq(r.err_len, 0, "stderr: %s", r.err);
        cr_assert_eq(json_object_array_length(field(sample, "stages")), 2);
        cr_assert_eq(json_object_array_length(field(sample, "rings")), 0);

        stage = find_stage(sample, "ingest");
        cr_assert(!json_object_object_get_ex(stage, "error", NULL));
        cr_assert_eq(get_i64(stage, "pid"), getpid());
        cr_assert(get_bool(stage, "alive"));
        cr_assert_gt(get_i64(stage, "started_ns"), 0);
        cr_assert_geq(get_i64(stage, "heartbeat_age_ns"), 0);
        counters = field(stage, "counters");
        cr_assert_eq(json_object_object_length(counters), 8, "every counter, zeros too: %s",
                     json_object_to_json_string(counters));
        cr_assert_eq(get_u64(counters, "stdin.lines"), 700);
        cr_assert_eq(get_u64(counters, "stdin.accepted"), 690);
        cr_assert_eq(get_u64(counters, "stdin.rejected"), 10);
        cr_assert_eq(get_u64(counters, "tcp.lines"), 5);
        cr_assert_eq(get_u64(counters, "reject.syntax"), 10);
        cr_assert_eq(get_u64(counters, "out.waits"), 0);
        gauges = field(stage, "gauges");
        cr_assert_eq(json_object_object_length(gauges), 1);
        cr_assert_eq(get_u64(gauges, "connections"), 3);
        cr_assert(!json_object_object_get_ex(counters, "connections", NULL));
        hist = field(field(stage, "histograms"), "parse_ns");
        cr_assert_eq(get_u64(hist, "count"), 4);
        cr_assert_eq(get_u64(hist, "sum"), 6100);
        cr_assert_eq(get_u64(hist, "p50"), 127);
        cr_assert_eq(get_u64(hist, "p90"), 8191);
        cr_assert_eq(get_u64(hist, "p99"), 8191);
        buckets = field(hist, "buckets");
        cr_assert_eq(json_object_array_length(buckets),
                     sizeof(want_buckets) / sizeof(want_buckets[0]),
                     "up to the last bucket used: %s", json_object_to_json_string(buckets));
        for (size_t b = 0; b < sizeof(want_buckets) / sizeof(want_buckets[0]); b++)
                cr_assert_eq(json_object_get_uint64(json_object_array_get_idx(buckets, b)),
                             want_buckets[b], "bucket %zu", b);
        /* One-shot samples twice, so rates are measured, and nothing moved. */
        cr_assert_gt(get_i64(stage, "rate_interval_ns"), 0);
        rates = field(stage, "rates");
        cr_assert_float_eq(get_double(rates, "stdin.lines"), 0.0, 1e-12);
        cr_assert(!json_object_object_get_ex(rates, "connections", NULL), "gauges have no rate");
        cr_assert(!json_object_object_get_ex(rates, "parse_ns", NULL));

        stage = find_stage(sample, "store");
        cr_assert_eq(get_i64(stage, "pid"), getpid());
        cr_assert(!get_bool(stage, "alive"), "closed: no writer now");
        cr_assert_eq(get_u64(field(stage, "counters"), "txn.commits"), 0);
        cr_assert_eq(get_u64(field(stage, "gauges"), "batch_rows"), 0);
        cr_assert_eq(json_object_object_length(field(stage, "histograms")), 0);
        json_object_put(sample);
        stats_close(ingest);
}

/* Counts stdin lines, about one every 100 us, until killed: a stage at work. */
static void stage_loop(int ready_fd)
{
        struct stats *s = make_stats("ingest", ingest_defs, IN_NDEFS);
        struct timespec pace = { 0, 100 * 1000 };

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (write(ready_fd, "r", 1) != 1)
                _exit(1);
        for (;;) {
                stats_add(stats_slot(s, IN_STDIN_LINES), 1);
                stats_add(stats_slot(s, IN_STDIN_ACCEPTED), 1);
                stats_hist_add(s, IN_PARSE_NS, 300);
                stats_heartbeat(s);
                nanosleep(&pace, NULL);         /* pacing, not synchronisation */
        }
}

Test(ringstat, watch_shows_the_rates_of_a_running_stage_and_marks_it_gone_once_killed)
{
        static struct run r;
        char *line, *save = NULL, text[512], name[64], pid[32], hb[32], in[32], inr[32];
        char want_pid[32];
        json_object *sample, *stage;
        int ready[2], lines = 0;
        pid_t child;

        cr_assert(pipe(ready) == 0);
        child = spawn(stage_loop, ready[1]);
        close(ready[1]);
        wait_ready(ready[0]);

        run_ringstat(&r, "--instance", ti.name, "-w", "0.1", "-c", "3", "--json",
                     (const char *)NULL);
        cr_assert_eq(r.status, 0, "exit %d; stderr: %s", r.status, r.err);
        cr_assert_eq(count_lines(r.out), 3, "exactly 3 samples: %s", r.out);
        for (line = strtok_r(r.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                sample = parse_sample(line);
                stage = find_stage(sample, "ingest");
                cr_assert_eq(get_i64(stage, "pid"), child);
                cr_assert(get_bool(stage, "alive"));
                cr_assert_gt(get_i64(stage, "rate_interval_ns"), 0);
                cr_assert_gt(get_double(field(stage, "rates"), "stdin.lines"), 0.0,
                             "sample %d: %s", lines, line);
                cr_assert_gt(get_double(field(stage, "rates"), "stdin.accepted"), 0.0);
                cr_assert_float_eq(get_double(field(stage, "rates"), "tcp.lines"), 0.0, 1e-12);
                cr_assert_gt(get_u64(field(field(stage, "histograms"), "parse_ns"), "count"), 0);
                json_object_put(sample);
                lines++;
        }
        cr_assert_eq(lines, 3);

        run_ringstat(&r, "--instance", ti.name, "-w", "0.1", "-c", "2", (const char *)NULL);
        cr_assert_eq(r.status, 0, "exit %d; stderr: %s", r.status, r.err);
        cr_assert(find_line(r.out, "ingest ", text, sizeof(text)), "ingest row: %s", r.out);
        cr_assert_eq(sscanf(text, "%63s %31s %31s %31s %31s", name, pid, hb, in, inr), 5,
                     "row: %s", text);
        snprintf(want_pid, sizeof(want_pid), "%ld", (long)child);
        cr_assert_str_eq(pid, want_pid);
        cr_assert(strcmp(inr, "0") != 0 && strcmp(inr, "-") != 0, "IN/S moves: %s", text);
        /* Both samples print both tables with their headers. */
        cr_assert_eq(count_str(r.out, "\nSTAGE "), 2, "a stages header per sample: %s", r.out);
        cr_assert(strncmp(r.out, "RING ", 5) == 0, "%s", r.out);
        cr_assert_eq(count_str(r.out, "\n\nRING "), 1, "the second sample's rings header: %s",
                     r.out);

        stop_child(child);      /* SIGKILL: its lock goes with it */
        sample = sample_once(&r, 0);
        stage = find_stage(sample, "ingest");
        cr_assert_eq(get_i64(stage, "pid"), child);
        cr_assert(!get_bool(stage, "alive"), "the writer was killed");
        json_object_put(sample);
        run_ringstat(&r, "--instance", ti.name, (const char *)NULL);
        snprintf(want_pid, sizeof(want_pid), "%ld!", (long)child);
        cr_assert(find_line(r.out, "ingest ", text, sizeof(text)), "ingest row: %s", r.out);
        cr_assert_eq(sscanf(text, "%63s %31s %31s %31s %31s", name, pid, hb, in, inr), 5);
        cr_assert_str_eq(pid, want_pid, "killed: %s", text);
        cr_assert_str_eq(inr, "0", "a dead stage counts nothing: %s", text);
}

/* Writes len bytes of data at offset off of the instance file fname (creating it, 0600). */
static void damage(const char *fname, off_t off, const void *data, size_t len)
{
        char path[PATH_MAX];
        int fd = open(test_instance_path(&ti, fname, path, sizeof(path)),
                      O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

        cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
        cr_assert_eq(pwrite(fd, data, len, off), (ssize_t)len);
        close(fd);
}

/* Where the bytes of s first occur in the instance file fname. */
static off_t find_in_file(const char *fname, const char *s)
{
        static char buf[65536];
        char path[PATH_MAX];
        int fd = open(test_instance_path(&ti, fname, path, sizeof(path)), O_RDONLY | O_CLOEXEC);
        ssize_t n;
        const char *at;

        cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
        n = pread(fd, buf, sizeof(buf), 0);
        close(fd);
        cr_assert_gt(n, 0);
        at = memmem(buf, (size_t)n, s, strlen(s));
        cr_assert(at != NULL, "no \"%s\" in %s", s, path);
        return at - buf;
}

Test(ringstat, corrupt_or_foreign_stats_file_is_reported_naming_it_and_exits_111)
{
        static struct run r;
        json_object *sample, *stage, *good;
        char line[512];
        struct stats *ok;

        make_ring("left", "mid");
        stats_close(make_ingest_stats());
        damage("ingest.stats", 0, "garbage!", 8);               /* the magic */
        damage("junk.stats", 0, "{\"not\": \"stats\"}\n", 17);  /* a stranger, too short */
        /* A counter name that would clear the operator's screen. */
        stats_close(make_stats("escape", store_defs, 2));
        damage("escape.stats", find_in_file("escape.stats", "txn.commits"), "\x1b[2J", 4);
        stats_close(make_stats("copied", store_defs, 2));
        cr_assert_eq(renameat(ti.dirfd, "copied.stats", ti.dirfd, "alias.stats"), 0);
        ok = make_stats("store", store_defs, 2);
        stats_add(stats_slot(ok, 0), 7);

        sample = sample_once(&r, EXIT_TEMPORARY);
        cr_assert_eq(json_object_array_length(field(sample, "stages")), 5);
        stage = find_stage(sample, "ingest");
        cr_assert(strstr(get_str(stage, "error"), "ingest.stats") != NULL, "names the file: %s",
                  get_str(stage, "error"));
        cr_assert(strstr(get_str(stage, "error"), "magic") != NULL, "says what is wrong: %s",
                  get_str(stage, "error"));
        cr_assert_str_eq(get_str(stage, "errno"), "EBADMSG");
        cr_assert(!json_object_object_get_ex(stage, "counters", NULL), "no numbers when bad");
        stage = find_stage(sample, "junk");
        cr_assert(strstr(get_str(stage, "error"), "junk.stats") != NULL, "%s",
                  get_str(stage, "error"));
        cr_assert_str_eq(get_str(stage, "errno"), "EBADMSG");
        stage = find_stage(sample, "alias");
        cr_assert(strstr(get_str(stage, "error"), "alias.stats") != NULL &&
                  strstr(get_str(stage, "error"), "copied") != NULL,
                  "a renamed file would show its numbers under the wrong name: %s",
                  get_str(stage, "error"));
        stage = find_stage(sample, "escape");
        cr_assert(strstr(get_str(stage, "error"), "escape.stats: slot 0: bad counter name") != NULL, "%s",
                  get_str(stage, "error"));
        good = find_stage(sample, "store");
        cr_assert(!json_object_object_get_ex(good, "error", NULL));
        cr_assert_eq(get_u64(field(good, "counters"), "txn.commits"), 7);
        cr_assert(!json_object_object_get_ex(find_ring(sample, "left->mid"), "error", NULL));
        json_object_put(sample);

        run_ringstat(&r, "--instance", ti.name, "-s", (const char *)NULL);
        cr_assert_eq(r.status, EXIT_TEMPORARY, "exit %d; stderr: %s", r.status, r.err);
        cr_assert(find_line(r.out, "ingest  bad: ", line, sizeof(line)), "text row: %s", r.out);
        cr_assert(strstr(line, "ingest.stats") != NULL, "names the file: %s", line);
        cr_assert(find_line(r.out, "junk    bad: junk.stats", line, sizeof(line)), "%s", r.out);
        cr_assert(find_line(r.out, "store ", line, sizeof(line)), "the good stage: %s", r.out);
        cr_assert(find_line(r.out, "store   txn.commits ", line, sizeof(line)), "%s", r.out);
        cr_assert(find_line(r.out, "left->mid ", line, sizeof(line)), "the ring: %s", r.out);
        cr_assert(strchr(r.out, '\x1b') == NULL, "no escape reaches the terminal: %s", r.out);
        stats_close(ok);
}

/*
 * Two rings that nobody attached: every column is known, so the output can
 * be spelled out byte for byte, as ringstat printed it before stages.
 */
Test(ringstat, instance_with_rings_only_prints_exactly_as_before)
{
        static const char header[] =
                "RING        PROD     CONS   CAP FILL%  WRITE   READ COMMIT    LAG LAGREC "
                "UNCOMM  REC/S    MB/S  PWAIT  CWAIT  DROPS    PHB    CHB\n";
        static const char rows[] =
                "aa->bb         -        -   64K   0.0      0      0      0      0      0 "
                "     0      0     0.0      0      0      0      -      -\n"
                "bb->cc         -        -   64K   0.0      0      0      0      0      0 "
                "     0      0     0.0      0      0      0      -      -\n";
        static char want[1024];
        static struct run r;
        json_object *sample;

        make_ring("aa", "bb");
        make_ring("bb", "cc");
        snprintf(want, sizeof(want), "%s%s", header, rows);
        run_ringstat(&r, "--instance", ti.name, (const char *)NULL);
        cr_assert_eq(r.status, 0, "stderr: %s", r.err);
        cr_assert_str_eq(r.out, want);
        run_ringstat(&r, "--instance", ti.name, "-s", (const char *)NULL);
        cr_assert_str_eq(r.out, want, "-s adds nothing without stats files");

        snprintf(want, sizeof(want), "%s%s\n%s\n%s", header, rows, rows, rows);
        run_ringstat(&r, "--instance", ti.name, "-w", "0.05", "-c", "3", (const char *)NULL);
        cr_assert_eq(r.status, 0, "stderr: %s", r.err);
        cr_assert_str_eq(r.out, want);

        sample = sample_once(&r, 0);
        cr_assert_eq(json_object_array_length(field(sample, "stages")), 0);
        json_object_put(sample);
}
