/* SPDX-License-Identifier: MIT */
/* test_ingest_kill.c: SIGKILLs the real ringflow-ingest at random moments and checks that no input is lost or emitted twice where the contract forbids it. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ingest_harness.h"
#include "why.h"

TestSuite(ingest_kill, .init = ih_setup, .fini = ih_teardown, .timeout = 180);

#define KILLS 6
#define OUT_RING (256u * 1024u)   /* small: the stage often waits on it */

/* ---- what came out, record by record ---- */

struct krec {
        uint32_t line;          /* the input's number, from its id */
        uint64_t seq;
        uint64_t origin;
};

struct kstate {
        const char *prefix;     /* ids are <prefix><number> */
        enum event_source kind;
        struct krec *v;
        size_t n, cap;
        unsigned char *seen;    /* per input number: arrived at least once */
        size_t unique;
};

static void kstate_init(struct kstate *ks, const char *prefix, enum event_source kind, size_t inputs)
{
        memset(ks, 0, sizeof(*ks));
        ks->prefix = prefix;
        ks->kind = kind;
        ks->seen = calloc(inputs, 1);
        cr_assert(ks->seen != NULL);
        ks->cap = inputs;
        ks->v = malloc(ks->cap * sizeof(*ks->v));
        cr_assert(ks->v != NULL);
}

static void kstate_fini(struct kstate *ks)
{
        free(ks->v);
        free(ks->seen);
}

static void kill_collect(const struct ih_view *v, void *ctx)
{
        struct kstate *ks = ctx;
        size_t plen = strlen(ks->prefix);
        unsigned long line;
        char *end;

        cr_assert_eq(v->type, EVENT_REC_EVENT, "record #%llu is a reject (%s): %.*s",
                     (unsigned long long)v->index,
                     v->type == EVENT_REC_REJECT ? event_reason_name(v->rj.reason) : "?",
                     v->type == EVENT_REC_REJECT ? (int)v->rj.raw_len : 0,
                     v->type == EVENT_REC_REJECT ? v->rj.raw : "");
        cr_assert_eq(v->ev.source_kind, ks->kind, "record #%llu: source_kind %d",
                     (unsigned long long)v->index, (int)v->ev.source_kind);
        cr_assert(strncmp(v->ev.id, ks->prefix, plen) == 0, "record #%llu: unexpected id %s",
                  (unsigned long long)v->index, v->ev.id);
        line = strtoul(v->ev.id + plen, &end, 10);
        cr_assert(*end == '\0', "record #%llu: unexpected id %s", (unsigned long long)v->index,
                  v->ev.id);
        if (ks->n == ks->cap) {
                ks->cap *= 2;
                ks->v = realloc(ks->v, ks->cap * sizeof(*ks->v));
                cr_assert(ks->v != NULL);
        }
        ks->v[ks->n++] = (struct krec){ (uint32_t)line, v->ev.seq, v->ev.origin };
        if (!ks->seen[line]) {
                ks->seen[line] = 1;
                ks->unique++;
        }
}

struct unique_goal {
        struct kstate *ks;
        size_t want;
};

static bool unique_reached(void *ctx)
{
        struct unique_goal *g = ctx;

        return g->ks->unique >= g->want;
}

/* Seq is 1, 2, 3, ... over every record, across every restart. */
static void check_seq(const struct kstate *ks, const uint64_t *bounds, unsigned nb)
{
        unsigned run = 0;

        for (size_t i = 0; i < ks->n; i++) {
                while (run < nb && i >= bounds[run])
                        run++;
                cr_assert_eq(ks->v[i].seq, i + 1,
                             "record #%zu (run %u, after %u kills) has seq %llu, want %zu: seq "
                             "repeated, went back or skipped across a restart", i, run, run,
                             (unsigned long long)ks->v[i].seq, i + 1);
        }
}

/* KILLS distinct-ish random record counts in [lo, hi), sorted. */
static void pick_targets(uint64_t *t, unsigned n, uint64_t lo, uint64_t hi, unsigned *seed)
{
        for (unsigned i = 0; i < n; i++)
                t[i] = lo + (uint64_t)rand_r(seed) % (hi - lo);
        for (unsigned i = 1; i < n; i++)
                for (unsigned j = i; j > 0 && t[j - 1] > t[j]; j--) {
                        uint64_t x = t[j];

                        t[j] = t[j - 1];
                        t[j - 1] = x;
                }
}

/* Busy-waits 0..max_us microseconds, so kills land at varied points of the stage's loop. */
static void jitter(unsigned *seed, unsigned max_us)
{
        int64_t until = clock_mono_ns() + (int64_t)(rand_r(seed) % (max_us + 1)) * NSEC_PER_USEC;

        while (clock_mono_ns() < until)
                ;
}

/*
 * Waits until the stage waits on a full output ring: out.waits goes up, or
 * (when it was already waiting as the test stopped consuming) its end of
 * the ring is parked on the futex with the ring more than half full.
 */
static void wait_blocked_on_full_ring(struct ih_proc *p, struct ring *out)
{
        int64_t deadline = clock_mono_ns() + IH_TIMEOUT_NS;
        uint64_t waits = ih_stat_now("out.waits");

        for (;;) {
                struct ring_stats st;

                cr_assert_eq(ring_stats(out, &st), 0);
                if (ih_stat_now("out.waits") > waits ||
                    (st.prod.sleeping && st.write - st.commit > st.capacity / 2))
                        return;
                cr_assert(!ih_exited(p), "exited (%d): %s", p->status, ih_stderr(p));
                cr_assert(clock_mono_ns() < deadline, "the stage never waited on the full ring "
                          "(out.waits %llu, ring %llu of %llu bytes used, producer sleeping %d)",
                          (unsigned long long)waits, (unsigned long long)(st.write - st.commit),
                          (unsigned long long)st.capacity, st.prod.sleeping);
                ih_poll_pause();
        }
}

/*
 * Ends the last run once every input has arrived: with --exit-on-eof it
 * must exit 0 by itself (checked, but the records are still checked when
 * it does not); otherwise SIGTERM, and it must exit 0.
 */
static void finish_run(struct ih_proc *p, struct ih_sink *sink, struct kstate *ks, size_t inputs,
                       bool exits_at_eof)
{
        struct unique_goal all = { ks, inputs };
        int64_t deadline;

        ih_take_until(sink, unique_reached, &all, p, IH_TIMEOUT_NS);
        if (exits_at_eof) {
                deadline = clock_mono_ns() + 10 * NSEC_PER_SEC;
                while (!ih_exited(p) && clock_mono_ns() < deadline) {
                        ih_take(sink, SIZE_MAX);
                        ih_poll_pause();
                }
                if (ih_exited(p)) {
                        ih_take(sink, SIZE_MAX);
                        cr_expect_eq(p->status, 0, "last run: exit %d; stderr:\n%s", p->status,
                                     ih_stderr(p));
                        return;
                }
                cr_expect_fail("every input arrived but --exit-on-eof did not exit within 10 s");
        }
        ih_signal(p, SIGTERM);
        cr_assert_eq(ih_take_until_exit(sink, p, IH_TIMEOUT_NS), 0, "SIGTERM: exit %d; stderr:\n%s",
                     p->status, ih_stderr(p));
}

/*
 * Runs the kill loop: waits for the sink to reach each target, kills the
 * stage (the first kill while it waits on a full output ring), records
 * the ring's write_count at each kill (the boundary of that run's records)
 * and restarts it on stdin_fd (a fresh open of reopen_path on odd restarts
 * when reopen_path is set). Leaves the last run going in *p.
 */
static void kill_loop(struct ih_proc *p, struct ih_sink *sink, int stdin_fd, const char *reopen_path,
                      const char *const *args, const uint64_t *targets, uint64_t *bounds,
                      unsigned *seed)
{
        for (unsigned j = 0; j < KILLS; j++) {
                struct ring_stats st;
                int fd = stdin_fd;

                ih_take_count(sink, targets[j], p, IH_TIMEOUT_NS);
                if (j == 0) {
                        /*
                         * Stop consuming until the stage waits on a full ring, then
                         * kill it (the first kill: most of the input is still to come).
                         */
                        wait_blocked_on_full_ring(p, sink->ring);
                } else {
                        jitter(seed, 2000);
                }
                cr_assert(!ih_exited(p), "ringflow-ingest exited (%d) before kill %u: %s", p->status,
                          j, ih_stderr(p));
                ih_signal(p, SIGKILL);
                ih_proc_fini(p);
                cr_assert_eq(ring_stats(sink->ring, &st), 0);
                bounds[j] = st.write_count;
                cr_log_info("kill %u: SIGKILL after %llu records were published", j,
                            (unsigned long long)bounds[j]);
                if (reopen_path != NULL && j % 2 == 0) {
                        fd = open(reopen_path, O_RDONLY | O_CLOEXEC);
                        cr_assert(fd >= 0, "open %s: %s", reopen_path, strerror(errno));
                }
                ih_startv(p, fd, args);
                if (fd != stdin_fd)
                        close(fd);
        }
}

/* ---- 4: a pipe survives SIGKILL at any instant ---- */

#define PIPE_LINES 300000u
#define KILL_FMT "{\"id\":\"k%07u\",\"type\":\"kill\",\"source\":\"pipe\",\"data\":{\"n\":\"%07u\"}}\n"

static int kill_line(char *buf, size_t cap, unsigned i)
{
        return snprintf(buf, cap, KILL_FMT, i, i);
}

Test(ingest_kill, sigkill_on_a_pipe_loses_no_line_and_repeats_none)
{
        static const char *const args[] = { "--exit-on-eof", NULL };
        static struct ih_proc p;
        struct kstate ks;
        struct ih_sink sink;
        uint64_t targets[KILLS], bounds[KILLS];
        unsigned seed = ih_seed();
        size_t len, L = (size_t)kill_line(NULL, 0, 0);
        char *buf = ih_lines(kill_line, PIPE_LINES, &len);
        int64_t max_seen = -1;
        uint64_t dups = 0;
        unsigned origin_shifted = 0;
        int fd;

        cr_assert_eq(len, L * PIPE_LINES, "lines are of one length");
        kstate_init(&ks, "k", EVENT_SRC_STDIN, PIPE_LINES);
        ih_ring_create("ingest", "process", OUT_RING);
        ih_sink_init(&sink, kill_collect, &ks);
        /* The test holds the read end across restarts, as the supervisor does. */
        fd = ih_pipe_feed(buf, len);
        pick_targets(targets, KILLS, PIPE_LINES / 50, PIPE_LINES * 85 / 100, &seed);
        ih_startv(&p, fd, args);
        kill_loop(&p, &sink, fd, NULL, args, targets, bounds, &seed);
        finish_run(&p, &sink, &ks, PIPE_LINES, true);
        ih_reap_writers();

        check_seq(&ks, bounds, KILLS);
        /* Run by run: each one reads the pipe on from where the last published run left it. */
        for (unsigned r = 0; r <= KILLS; r++) {
                size_t from = r == 0 ? 0 : bounds[r - 1], to = r < KILLS ? bounds[r] : ks.n;
                int64_t first, base;

                if (from == to) {
                        cr_log_info("run %u published nothing", r);
                        continue;
                }
                first = ks.v[from].line;
                cr_assert(first <= max_seen + 1, "run %u starts at line %lld but only lines up to %lld "
                          "had arrived: lines %lld..%lld are lost", r, (long long)first,
                          (long long)max_seen, (long long)(max_seen + 1), (long long)(first - 1));
                for (size_t i = from + 1; i < to; i++) {
                        cr_assert_eq(ks.v[i].line, ks.v[i - 1].line + 1,
                                     "run %u: line %u follows line %u (lost or reordered)", r,
                                     ks.v[i].line, ks.v[i - 1].line);
                        cr_assert_eq(ks.v[i].origin, ks.v[i - 1].origin + L,
                                     "run %u: line %u has origin %llu after %llu", r, ks.v[i].line,
                                     (unsigned long long)ks.v[i].origin,
                                     (unsigned long long)ks.v[i - 1].origin);
                }
                base = (int64_t)ks.v[from].origin - first * (int64_t)L;
                if (r == 0)
                        cr_assert_eq(base, 0, "run 0: line %lld has origin %llu", (long long)first,
                                     (unsigned long long)ks.v[from].origin);
                else if (base != 0)
                        origin_shifted++;
                cr_log_info("run %u: records %zu..%zu, lines %lld..%u, replayed %lld, origin - "
                            "stream offset %lld", r, from, to, (long long)first, ks.v[to - 1].line,
                            (long long)(first <= max_seen ? max_seen + 1 - first : 0), (long long)base);
                /* A run killed before it got past the replayed lines repeats only what it published. */
                if (first <= max_seen)
                        dups += (uint64_t)(max_seen + 1 - first) < to - from ? (uint64_t)(max_seen + 1 - first)
                                                                             : (uint64_t)(to - from);
                if ((int64_t)ks.v[to - 1].line > max_seen)
                        max_seen = ks.v[to - 1].line;
        }
        cr_assert_eq(max_seen, PIPE_LINES - 1, "the last line to arrive is %lld", (long long)max_seen);
        cr_assert_eq(ks.unique, PIPE_LINES);
        cr_assert_eq(ks.n, PIPE_LINES + dups);
        /* The spill file tells a restart what the killed run consumed: nothing is read twice. */
        cr_assert_eq(dups, 0, "%llu lines were delivered twice", (unsigned long long)dups);
        cr_assert_eq(origin_shifted, 0, "%u restarts gave origins not equal to the stream offset",
                     origin_shifted);
        cr_expect_eq(ih_stat_now("seq"), ks.n);
        cr_log_info("pipe, %u lines, %d SIGKILLs: %llu lines delivered twice; %u restarts gave "
                    "origins not equal to the stream offset", PIPE_LINES, KILLS,
                    (unsigned long long)dups, origin_shifted);
        close(fd);
        ih_sink_fini(&sink);
        kstate_fini(&ks);
        free(buf);
}

/* ---- 5: a regular file resumes exactly where the published records end ---- */

#define FILE_LINES 200000u

static int other_line(char *buf, size_t cap, unsigned i)
{
        /* Same length as kill_line, another prefix: a different file. */
        return snprintf(buf, cap, "{\"id\":\"g%07u\",\"type\":\"kill\",\"source\":\"pipe\",\"data\":{\"n\":\"%07u\"}}\n",
                        i, i);
}

Test(ingest_kill, sigkill_on_a_regular_file_loses_nothing_and_repeats_nothing)
{
        static const char *const args[] = { "--exit-on-eof", NULL };
        static struct ih_proc p;
        struct kstate ks, ks2;
        struct ih_sink sink;
        uint64_t targets[KILLS], bounds[KILLS];
        unsigned seed = ih_seed();
        size_t len, len2, L = (size_t)kill_line(NULL, 0, 0);
        char *buf = ih_lines(kill_line, FILE_LINES, &len), *buf2;
        char path[64];
        int fd, fd2;

        kstate_init(&ks, "k", EVENT_SRC_STDIN, FILE_LINES);
        ih_ring_create("ingest", "process", OUT_RING);
        ih_sink_init(&sink, kill_collect, &ks);
        fd = ih_file_feed(buf, len);
        /* Half the restarts get a fresh descriptor at offset 0: the saved offset must win. */
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        pick_targets(targets, KILLS, FILE_LINES / 50, FILE_LINES * 85 / 100, &seed);
        ih_startv(&p, fd, args);
        kill_loop(&p, &sink, fd, path, args, targets, bounds, &seed);
        finish_run(&p, &sink, &ks, FILE_LINES, true);
        ih_proc_fini(&p);

        check_seq(&ks, bounds, KILLS);
        for (size_t i = 0; i < ks.n; i++) {
                unsigned run = 0;

                while (run < KILLS && i >= bounds[run])
                        run++;
                cr_assert_eq(ks.v[i].line, i, "record #%zu (run %u) is line %u, want line %zu: a "
                             "line %s", i, run, ks.v[i].line, i,
                             ks.v[i].line < i ? "repeated" : "lost");
                cr_assert_eq(ks.v[i].origin, i * L, "line %zu: origin %llu, want %zu", i,
                             (unsigned long long)ks.v[i].origin, i * L);
        }
        cr_assert_eq(ks.n, FILE_LINES, "%zu records for %u lines", ks.n, FILE_LINES);

        /* The same file again: it was read to the end, nothing comes out. */
        cr_assert_eq(ih_run(&p, fd, "--exit-on-eof", (const char *)NULL), 0, "stderr:\n%s",
                     ih_stderr(&p));
        ih_proc_fini(&p);
        cr_assert_eq(ih_take(&sink, SIZE_MAX), 0, "re-reading a finished file emitted records");

        /* Another file, positioned at line 1000: it starts there, seq goes on. */
        buf2 = ih_lines(other_line, 2000, &len2);
        fd2 = ih_file_feed(buf2, len2);
        cr_assert_eq(lseek(fd2, (off_t)(1000 * L), SEEK_SET), (off_t)(1000 * L));
        kstate_init(&ks2, "g", EVENT_SRC_STDIN, 2000);
        ih_sink_fini(&sink);
        ih_sink_init(&sink, kill_collect, &ks2);
        cr_assert_eq(ih_run(&p, fd2, "--exit-on-eof", (const char *)NULL), 0, "stderr:\n%s",
                     ih_stderr(&p));
        ih_take(&sink, SIZE_MAX);
        cr_assert_eq(ks2.n, 1000, "%zu records from the second half of another file", ks2.n);
        for (size_t i = 0; i < ks2.n; i++) {
                cr_assert_eq(ks2.v[i].line, 1000 + i);
                cr_assert_eq(ks2.v[i].seq, FILE_LINES + 1 + i);
                cr_assert_eq(ks2.v[i].origin, (1000 + i) * L, "origin %llu, want the file offset %zu",
                             (unsigned long long)ks2.v[i].origin, (1000 + i) * L);
        }
        close(fd);
        close(fd2);
        ih_sink_fini(&sink);
        kstate_fini(&ks);
        kstate_fini(&ks2);
        free(buf);
        free(buf2);
}

/* ---- 7: the api ring: dedup by the saved mark across SIGKILL ---- */

#define API_EVENTS 40000u
#define API_RING (8u << 20)

Test(ingest_kill, sigkill_with_the_api_ring_emits_each_api_record_once)
{
        static const char *const args[] = { "--ingest-stdin", "no", NULL };
        static struct ih_proc p;
        static uint64_t pos[API_EVENTS];
        struct event_limits lim;
        struct event_parser *ep;
        struct ring_stats st;
        struct kstate ks;
        struct ih_sink sink;
        struct ring *api;
        struct unique_goal all = { &ks, API_EVENTS };
        uint64_t targets[KILLS], bounds[KILLS];
        unsigned seed = ih_seed();
        size_t max;
        int64_t deadline;

        event_limits_default(&lim);
        cr_assert_eq(event_parser_create(&ep, &lim), 0);
        max = event_record_max(&lim);
        kstate_init(&ks, "api-", EVENT_SRC_API, API_EVENTS);
        ih_ring_create("ingest", "process", OUT_RING);
        ih_ring_create("api", "ingest", API_RING);
        api = ih_attach("api", "ingest", RING_PRODUCER);
        for (unsigned i = 0; i < API_EVENTS; i++) {
                struct event_error err;
                char json[160];
                void *rec;
                long n;
                int e = ring_reserve(api, EVENT_REC_EVENT, (uint32_t)max, &rec);

                cr_assert(e == 0, "ring_reserve(api-ingest) #%u: %s", i, strerror(-e));
                snprintf(json, sizeof(json), "{\"id\":\"api-%u\",\"type\":\"api\",\"source\":\"http\","
                         "\"data\":{\"i\":%u}}", i, i);
                n = event_parse(ep, json, strlen(json), clock_real_ns(), EVENT_SRC_API, 0, rec, max, &err);
                cr_assert(n > 0, "event_parse: %s", err.message);
                cr_assert_eq(ring_commit(api, (uint32_t)n), 0);
                ring_publish(api);
                cr_assert_eq(ring_stats(api, &st), 0);
                pos[i] = st.write - ih_rec_bytes((uint64_t)n);
        }
        ih_sink_init(&sink, kill_collect, &ks);
        pick_targets(targets, KILLS, API_EVENTS / 50, API_EVENTS * 85 / 100, &seed);
        ih_startv(&p, -1, args);
        kill_loop(&p, &sink, -1, NULL, args, targets, bounds, &seed);
        ih_take_until(&sink, unique_reached, &all, &p, IH_TIMEOUT_NS);
        /* Wait for the api ring's commit to catch up, then stop it: nothing more may come. */
        deadline = clock_mono_ns() + IH_TIMEOUT_NS;
        for (;;) {
                cr_assert_eq(ring_stats(api, &st), 0);
                if (st.commit == st.write)
                        break;
                cr_assert(clock_mono_ns() < deadline, "api-ingest commit %llu never reached write %llu",
                          (unsigned long long)st.commit, (unsigned long long)st.write);
                ih_poll_pause();
        }
        ih_signal(&p, SIGTERM);
        cr_assert_eq(ih_take_until_exit(&sink, &p, IH_TIMEOUT_NS), 0, "stderr:\n%s", ih_stderr(&p));

        check_seq(&ks, bounds, KILLS);
        for (size_t i = 0; i < ks.n; i++) {
                unsigned run = 0;

                while (run < KILLS && i >= bounds[run])
                        run++;
                cr_assert_eq(ks.v[i].line, i, "record #%zu (run %u) is api event %u, want %zu: an "
                             "api record %s", i, run, ks.v[i].line, i,
                             ks.v[i].line < i ? "emitted twice" : "lost");
                cr_assert_eq(ks.v[i].origin, pos[i], "api event %zu: origin %llu, want its position %llu",
                             i, (unsigned long long)ks.v[i].origin, (unsigned long long)pos[i]);
        }
        cr_assert_eq(ks.n, API_EVENTS, "%zu records for %u api events", ks.n, API_EVENTS);
        ring_close(api);
        event_parser_destroy(ep);
        ih_sink_fini(&sink);
        kstate_fini(&ks);
}

/* ---- SIGKILL in the middle of an over-long line ---- */

#define SKIP_LINE (64u << 20)
#define SKIP_AFTER 1000u

static int short_line(char *buf, size_t cap, unsigned i)
{
        return snprintf(buf, cap, "{\"id\":\"s%07u\",\"type\":\"t\",\"source\":\"s\"}\n", i);
}

Test(ingest_kill, sigkill_while_skipping_an_overlong_line_resumes_the_skip)
{
        static const char head[] = "{\"type\":\"a\",\"source\":\"b\",\"data\":{\"s\":\"";
        static const char *const args[] = { "--exit-on-eof", NULL };
        static struct ih_proc p;
        struct ih_recs recs = { 0 };
        struct ih_sink sink;
        size_t tail_len, len, L = (size_t)short_line(NULL, 0, 0), events = 0, rejects = 0;
        uint64_t want;
        char *tail = ih_lines(short_line, SKIP_AFTER, &tail_len), *buf;
        uint64_t bytes;
        int data[2], gate[2];

        /* A line of SKIP_LINE bytes, its newline, then short events. */
        len = SKIP_LINE + 1 + tail_len;
        buf = malloc(len);
        cr_assert(buf != NULL);
        memcpy(buf, head, sizeof(head) - 1);
        memset(buf + sizeof(head) - 1, 'x', SKIP_LINE - (sizeof(head) - 1) - 3);
        memcpy(buf + SKIP_LINE - 3, "\"}}\n", 4);
        memcpy(buf + SKIP_LINE + 1, tail, tail_len);

        ih_ring_create("ingest", "process", OUT_RING);
        ih_sink_init(&sink, ih_collect, &recs);
        cr_assert(pipe2(data, O_CLOEXEC) == 0 && pipe2(gate, O_CLOEXEC) == 0);
        /* Half the long line, then the writer waits for the test. */
        ih_spawn_writer_gated(data[1], buf, len, SKIP_LINE / 2, gate[0]);
        close(data[1]);
        close(gate[0]);
        ih_startv(&p, data[0], args);
        ih_wait_stat("stdin.bytes", SKIP_LINE / 4, &p, IH_TIMEOUT_NS);
        bytes = ih_wait_stat_settles("stdin.bytes", 100, &p);
        cr_log_info("killed while skipping: stdin.bytes %llu of a %u-byte line, %zu records out",
                    (unsigned long long)bytes, SKIP_LINE, (size_t)ih_take(&sink, SIZE_MAX));
        ih_signal(&p, SIGKILL);
        ih_proc_fini(&p);
        ih_startv(&p, data[0], args);
        cr_assert_eq(write(gate[1], "g", 1), 1);
        close(gate[1]);
        ih_take_count(&sink, 1 + SKIP_AFTER, &p, IH_TIMEOUT_NS);
        cr_assert_eq(ih_exit_at_eof(&sink, &p), 0, "stderr:\n%s", ih_stderr(&p));

        for (size_t i = 0; i < recs.n; i++) {
                const struct ih_rec *r = &recs.v[i];
                char desc[512], id[32];

                ih_rec_describe(r, desc, sizeof(desc));
                if (r->type == EVENT_REC_REJECT) {
                        cr_assert_eq(events, 0, "a reject after the events: %s", desc);
                        cr_assert_eq(r->reason, EVENT_ERR_LINE_TOO_LONG,
                                     "the rest of the long line became a record of its own: %s", desc);
                        cr_assert_eq(r->origin, 0, "%s", desc);
                        cr_expect_eq(r->raw_total, SKIP_LINE, "raw_total %u, want the line's %u bytes",
                                     r->raw_total, SKIP_LINE);
                        rejects++;
                        continue;
                }
                snprintf(id, sizeof(id), "s%07zu", events);
                cr_assert_str_eq(r->id, id, "%s", desc);
                /* The origins after the kill are the stream offsets: the restart resumed exactly. */
                want = SKIP_LINE + 1 + events * L;
                cr_assert_eq(r->origin, want, "origin %llu, want the stream offset %llu: %s",
                             (unsigned long long)r->origin, (unsigned long long)want, desc);
                events++;
        }
        cr_assert_geq(rejects, 1, "the long line left no reject");
        cr_assert_eq(events, SKIP_AFTER, "%zu of %u events after the long line", events, SKIP_AFTER);
        cr_log_info("long line killed mid-skip: %zu line_too_long rejects", rejects);
        close(data[0]);
        ih_sink_fini(&sink);
        ih_recs_free(&recs);
        free(buf);
        free(tail);
}

/*
 * Feeds input (two lines) through a pipe whose writer stops after pause_at
 * bytes, in the middle of the second line; SIGKILLs ingest (run with args)
 * while it looks at the half line, restarts it on the same pipe, lets the
 * writer finish, and checks that the second line arrived whole, with id2.
 */
static void half_line_survives_kill(const char *input, size_t len, size_t pause_at,
                                    const char *const *args, const char *id2)
{
        static struct ih_proc p;
        struct ih_recs recs = { 0 };
        struct ih_sink sink;
        int data[2], gate[2];

        ih_ring_create("ingest", "process", OUT_RING);
        ih_sink_init(&sink, ih_collect, &recs);
        cr_assert(pipe2(data, O_CLOEXEC) == 0 && pipe2(gate, O_CLOEXEC) == 0);
        ih_spawn_writer_gated(data[1], input, len, pause_at, gate[0]);
        close(data[1]);
        close(gate[0]);
        ih_startv(&p, data[0], args);
        ih_take_count(&sink, 1, &p, IH_TIMEOUT_NS);
        /*
         * The pause itself is the scenario: the stage keeps looking at the
         * half line (its byte counter stops moving) for well over the
         * 64 ms its polling backs off to, then dies.
         */
        ih_wait_stat_settles("stdin.bytes", 200, &p);
        ih_signal(&p, SIGKILL);
        ih_proc_fini(&p);

        ih_startv(&p, data[0], args);
        cr_assert_eq(write(gate[1], "g", 1), 1);
        close(gate[1]);
        cr_assert_eq(ih_take_until_exit(&sink, &p, IH_TIMEOUT_NS), 0, "stderr:\n%s", ih_stderr(&p));
        cr_assert_eq(recs.n, 2u, "two events, no reject of a torn line: got %zu records", recs.n);
        cr_assert_eq(recs.v[1].type, EVENT_REC_EVENT, "the half line was torn: %s",
                     recs.v[1].type == EVENT_REC_REJECT ? recs.v[1].message : "");
        cr_assert_str_eq(recs.v[1].id, id2);
        cr_assert_eq(recs.v[1].seq, recs.v[0].seq + 1);
        ih_recs_free(&recs);
        ih_sink_fini(&sink);
        close(data[0]);
}

/*
 * A writer that stops in the middle of a line (a producer flushing a 4 KiB
 * block, a slow network peer) must not expose that half line to a SIGKILL:
 * it stays in the pipe until its newline comes, however long the pause.
 */
Test(ingest_kill, a_half_written_line_survives_a_sigkill_during_the_pause)
{
        static const char input[] = "{\"id\":\"h1\",\"type\":\"first\",\"source\":\"s\"}\n"
                                    "{\"id\":\"h2\",\"type\":\"second\",\"source\":\"s\"}\n";
        static const char *const args[] = { "--exit-on-eof", NULL };
        size_t first = strchr(input, '\n') + 1 - input;

        half_line_survives_kill(input, sizeof(input) - 1, first + 20, args, "h2");
}

/*
 * The same with a read size far below the longest line: tee(2) must still
 * look at a whole line in one go, or the half line fills the round's tee,
 * is consumed into the buffer ("carry") and dies with the stage.
 */
Test(ingest_kill, a_half_written_line_longer_than_the_read_size_survives_a_sigkill)
{
        static const char first[] = "{\"id\":\"r1\",\"type\":\"first\",\"source\":\"s\"}\n";
        static const char head[] = "{\"id\":\"r2\",\"type\":\"second\",\"source\":\"s\",\"data\":{\"s\":\"";
        static const char *const args[] = { "--exit-on-eof", "--ingest-read-size", "4096", NULL };
        size_t fill = 10000, len = sizeof(first) - 1 + sizeof(head) - 1 + fill + 4;
        char *input = malloc(len), *w = input;

        cr_assert(input != NULL);
        memcpy(w, first, sizeof(first) - 1);
        w += sizeof(first) - 1;
        memcpy(w, head, sizeof(head) - 1);
        w += sizeof(head) - 1;
        memset(w, 'x', fill);
        memcpy(w + fill, "\"}}\n", 4);
        /* The first line and 6000 bytes of the second (more than a read), then a pause. */
        half_line_survives_kill(input, len, sizeof(first) - 1 + 6000, args, "r2");
        free(input);
}

/* ---- a pipe of lines without ids and of invalid lines: exactly once across many kills ---- */

#define NOID_LINES 60000u
#define NOID_KILLS 30
#define NOID_BAD_EVERY 7u       /* line i is invalid when i % NOID_BAD_EVERY == 3 */
#define NOID_FMT "{\"type\":\"noid\",\"source\":\"pipe\",\"data\":{\"n\":\"%07u\"}}\n"

/* Line i: an event without an id, or the same bytes made invalid JSON by its first byte. */
static int noid_line(char *buf, size_t cap, unsigned i)
{
        int n = snprintf(buf, cap, NOID_FMT, i);

        if (buf != NULL && cap > 0 && i % NOID_BAD_EVERY == 3)
                buf[0] = '[';
        return n;
}

struct noid_rec {
        uint32_t line;
        uint16_t type;
        uint64_t seq;
        uint64_t origin;
};

struct noid_state {
        struct noid_rec *v;
        size_t n, cap;
};

/* The line number in the bytes "n":"0000123" of a record's data or raw input. */
static uint32_t noid_number(const char *p, size_t len, uint64_t index)
{
        static const char key[] = "\"n\":\"";
        const char *end = p + len;

        for (; p + sizeof(key) - 1 + 7 <= end; p++)
                if (memcmp(p, key, sizeof(key) - 1) == 0)
                        return (uint32_t)strtoul(p + sizeof(key) - 1, NULL, 10);
        cr_assert_fail("record #%llu holds no line number: %.*s", (unsigned long long)index, (int)len,
                       end - len);
        return 0;
}

static void noid_collect(const struct ih_view *v, void *ctx)
{
        struct noid_state *ns = ctx;
        struct noid_rec r = { .type = v->type };

        if (v->type == EVENT_REC_EVENT) {
                r.line = noid_number(v->ev.data, v->ev.data_len, v->index);
                r.seq = v->ev.seq;
                r.origin = v->ev.origin;
        } else {
                r.line = noid_number(v->rj.raw, v->rj.raw_len, v->index);
                r.seq = v->rj.seq;
                r.origin = v->rj.origin;
        }
        if (ns->n == ns->cap) {
                ns->cap = ns->cap ? 2 * ns->cap : 4096;
                ns->v = realloc(ns->v, ns->cap * sizeof(*ns->v));
                cr_assert(ns->v != NULL);
        }
        ns->v[ns->n++] = r;
}

/*
 * Takes records until the producer publishes again (its write_count moves
 * past what it was), so a kill right after lands between a publish and
 * the consume of its bytes, the instant that used to repeat lines.
 */
static void wait_next_publish(struct ih_sink *sink, struct ih_proc *p)
{
        int64_t deadline = clock_mono_ns() + IH_TIMEOUT_NS;
        struct ring_stats st;
        uint64_t was;

        cr_assert_eq(ring_stats(sink->ring, &st), 0);
        was = st.write_count;
        for (;;) {
                ih_take(sink, SIZE_MAX);
                cr_assert_eq(ring_stats(sink->ring, &st), 0);
                if (st.write_count != was)
                        return;
                cr_assert(!ih_exited(p), "exited (%d): %s", p->status, ih_stderr(p));
                cr_assert(clock_mono_ns() < deadline, "nothing was published for %lld s",
                          (long long)(IH_TIMEOUT_NS / NSEC_PER_SEC));
        }
}

/*
 * The store deduplicates by id, so a line read twice after a kill is
 * harmless only when it has one. Lines without an id (ingest gives each
 * read a new one) and invalid lines (a reject has none) must come out of
 * ingest exactly once: each line once, in order, with its stream offset as
 * origin, however often and wherever the stage is killed on its pipe.
 */
Test(ingest_kill, sigkill_on_a_pipe_emits_lines_without_ids_and_rejects_exactly_once)
{
        static const char *const args[] = { "--exit-on-eof", NULL };
        static struct ih_proc p;
        struct noid_state ns = { 0 };
        struct ih_sink sink;
        uint64_t targets[NOID_KILLS], skipped;
        unsigned seed = ih_seed(), aimed = 0;
        size_t len, L = (size_t)noid_line(NULL, 0, 0), bad = 0;
        size_t dup_events = 0, dup_rejects = 0, lost = 0, shifted = 0;
        char *buf = ih_lines(noid_line, NOID_LINES, &len);
        unsigned char *seen = calloc(NOID_LINES, 1);
        int fd;

        cr_assert(seen != NULL);
        cr_assert_eq(len, L * NOID_LINES, "lines are of one length");
        ih_ring_create("ingest", "process", OUT_RING);
        ih_sink_init(&sink, noid_collect, &ns);
        /* The test holds the read end across restarts, as the supervisor does. */
        fd = ih_pipe_feed(buf, len);
        pick_targets(targets, NOID_KILLS, NOID_LINES / 100, NOID_LINES * 90 / 100, &seed);
        ih_startv(&p, fd, args);
        for (unsigned j = 0; j < NOID_KILLS; j++) {
                ih_take_count(&sink, targets[j], &p, IH_TIMEOUT_NS);
                /* Two kills in three right after a publish, the others anywhere in the loop. */
                if (j % 3 != 2) {
                        wait_next_publish(&sink, &p);
                        aimed++;
                } else {
                        jitter(&seed, 500);
                }
                cr_assert(!ih_exited(&p), "ringflow-ingest exited (%d) before kill %u: %s", p.status, j,
                          ih_stderr(&p));
                ih_signal(&p, SIGKILL);
                ih_proc_fini(&p);
                ih_startv(&p, fd, args);
        }
        cr_assert_eq(ih_take_until_exit(&sink, &p, IH_TIMEOUT_NS), 0, "last run: exit %d; stderr:\n%s",
                     p.status, ih_stderr(&p));
        ih_reap_writers();

        /* First what went wrong, if anything, in numbers; then record by record. */
        for (size_t i = 0; i < ns.n; i++) {
                const struct noid_rec *r = &ns.v[i];

                cr_assert_lt(r->line, NOID_LINES, "record #%zu: line %u", i, r->line);
                if (seen[r->line]++ && r->type == EVENT_REC_REJECT)
                        dup_rejects++;
                else if (seen[r->line] > 1)
                        dup_events++;
                if (r->origin != (uint64_t)r->line * L)
                        shifted++;
        }
        for (unsigned i = 0; i < NOID_LINES; i++)
                lost += seen[i] == 0;
        cr_log_info("%zu records for %u lines: %zu events and %zu rejects emitted twice or more, %zu "
                    "lines lost, %zu origins not the line's stream offset", ns.n, NOID_LINES, dup_events,
                    dup_rejects, lost, shifted);
        cr_expect_eq(dup_events + dup_rejects, 0, "lines without an id or invalid were emitted twice");
        for (size_t i = 0; i < ns.n && i < NOID_LINES; i++) {
                const struct noid_rec *r = &ns.v[i];
                int invalid = i % NOID_BAD_EVERY == 3;

                cr_assert_eq(r->line, i, "record #%zu is line %u, want line %zu: a line %s", i, r->line, i,
                             r->line < i ? "was emitted twice" : "was lost");
                cr_assert_eq(r->type, invalid ? EVENT_REC_REJECT : EVENT_REC_EVENT,
                             "line %zu: record type %u", i, r->type);
                cr_assert_eq(r->origin, i * L, "line %zu: origin %llu, want its stream offset %zu", i,
                             (unsigned long long)r->origin, i * L);
                cr_assert_eq(r->seq, i + 1, "line %zu: seq %llu", i, (unsigned long long)r->seq);
                bad += (size_t)invalid;
        }
        cr_assert_eq(ns.n, NOID_LINES, "%zu records for %u lines", ns.n, NOID_LINES);
        skipped = ih_stat_now("stdin.resume_skipped_bytes");
        cr_log_info("pipe, %u lines (%zu invalid), %d SIGKILLs (%u right after a publish): each line "
                    "once; restarts skipped %llu published bytes still in the pipe", NOID_LINES, bad,
                    NOID_KILLS, aimed, (unsigned long long)skipped);
        close(fd);
        ih_sink_fini(&sink);
        free(seen);
        free(ns.v);
        free(buf);
}
