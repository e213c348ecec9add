/* SPDX-License-Identifier: MIT */
/* test_ring.c: behaviour of the shared-memory SPSC ring, including crashes of either end. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "ring.h"
#include "ring_layout.h"
#include "test_instance.h"
#include "why.h"

#define PROD "prod"
#define CONS "cons"
#define RING_FILE PROD "-" CONS ".ring"
#define SMALL_CAP 4096u         /* RING_MIN_CAPACITY: max_record 2040 */
#define BIG_LEN 1000u           /* four of these fill a SMALL_CAP ring (4 * 1008) */
#define SYNC_TIMEOUT_MS 10000   /* bound on every wait for a child */

static struct test_instance ti;

static void setup(void)
{
        test_instance_init(&ti);
}

static void teardown(void)
{
        test_instance_fini(&ti);
}

/* A hang (a lost wake-up, a loop that never sees a full ring) fails instead of blocking the run. */
TestSuite(ring, .init = setup, .fini = teardown, .timeout = 60);

/* ---- helpers ---- */

/* Bytes a record of len payload bytes takes in the data area. */
static uint64_t rec_size(uint32_t len)
{
        return ((uint64_t)RING_RECORD_HEADER + len + RING_ALIGN - 1) & ~(uint64_t)(RING_ALIGN - 1);
}

static uint8_t pattern_byte(uint64_t seq, uint32_t i)
{
        return (uint8_t)(seq * 31u + i * 7u + 1u);
}

/* A payload that names its record: the sequence number first, then a pattern. */
static void fill_payload(void *payload, uint64_t seq, uint32_t len)
{
        uint8_t *p = payload;

        for (uint32_t i = 0; i < len; i++)
                p[i] = pattern_byte(seq, i);
        if (len >= sizeof(seq))
                memcpy(p, &seq, sizeof(seq));
}

/* 1 when the payload is exactly what fill_payload wrote for seq. */
static int payload_ok(const void *payload, uint64_t seq, uint32_t len)
{
        const uint8_t *p = payload;
        uint32_t i = 0;

        if (len >= sizeof(seq)) {
                uint64_t got;

                memcpy(&got, p, sizeof(got));
                if (got != seq)
                        return 0;
                i = sizeof(seq);
        }
        for (; i < len; i++)
                if (p[i] != pattern_byte(seq, i))
                        return 0;
        return 1;
}

static uint64_t payload_seq(const struct ring_rec *rec)
{
        uint64_t seq;

        cr_assert_geq(rec->len, sizeof(seq));
        memcpy(&seq, rec->data, sizeof(seq));
        return seq;
}

static void make_ring(uint64_t capacity, unsigned flags)
{
        char why[WHY_MAX] = "";
        int rc = ring_create(ti.dirfd, PROD, CONS, capacity, flags, why, sizeof(why));

        cr_assert_eq(rc, 0, "ring_create: %s (%s)", strerror(-rc), why);
}

static struct ring *attach(enum ring_role role)
{
        char why[WHY_MAX] = "";
        struct ring *r = NULL;
        int rc = ring_attach(&r, ti.dirfd, PROD, CONS, role, why, sizeof(why));

        cr_assert_eq(rc, 0, "ring_attach(role %d): %s (%s)", (int)role, strerror(-rc), why);
        cr_assert_not_null(r);
        return r;
}

/* Reserves, fills and commits one record (not yet published). */
static void put(struct ring *r, uint16_t type, uint64_t seq, uint32_t len)
{
        void *payload = NULL;
        int rc = ring_reserve(r, type, len, &payload);

        cr_assert_eq(rc, 0, "ring_reserve(len %u) for seq %llu: %s (%s)", len,
                     (unsigned long long)seq, strerror(-rc), ring_why(r));
        cr_assert_not_null(payload);
        fill_payload(payload, seq, len);
        cr_assert_eq(ring_commit(r, len), 0);
}

static void put_publish(struct ring *r, uint64_t seq, uint32_t len)
{
        put(r, 1, seq, len);
        cr_assert_eq(ring_publish(r), 1u);
}

/* Peeks one record and checks it is seq with len bytes. */
static struct ring_rec get(struct ring *r, uint64_t seq, uint32_t len)
{
        struct ring_rec rec;
        int rc = ring_peek(r, &rec);

        cr_assert_eq(rc, 0, "ring_peek for seq %llu: %s (%s)", (unsigned long long)seq,
                     strerror(-rc), ring_why(r));
        cr_assert_eq(rec.len, len, "seq %llu: len %u, expected %u", (unsigned long long)seq,
                     rec.len, len);
        cr_assert(payload_ok(rec.data, seq, len), "seq %llu: payload differs",
                  (unsigned long long)seq);
        cr_assert_eq(rec.pos % RING_ALIGN, 0u);
        cr_assert_eq(rec.next.pos - rec.pos, rec_size(len));
        return rec;
}

static struct ring_stats stats(struct ring *r)
{
        struct ring_stats st;
        int rc;

        memset(&st, 0xa5, sizeof(st));
        rc = ring_stats(r, &st);
        cr_assert_eq(rc, 0, "ring_stats: %s (%s)", strerror(-rc), ring_why(r));
        return st;
}

/* Fills an empty SMALL_CAP ring with four published BIG_LEN records, seq 0..3. */
static void fill_small_ring(struct ring *p)
{
        for (uint64_t seq = 0; seq < 4; seq++)
                put(p, 1, seq, BIG_LEN);
        cr_assert_eq(ring_publish(p), 4u);
}

/*
 * A forked child that runs fn, then tells the parent it is ready (one byte
 * on a pipe) and blocks until the parent kills it or goes away (the hold
 * pipe's write end closes with the parent, so no child outlives a test).
 * fn returns 0 or a non-zero exit status; children leave with _exit so
 * nothing of Criterion's runs twice, and never close a ring they inherited
 * (that would drop the parent's lock).
 */
struct child {
        pid_t pid;
        int ready_rd;
        int hold_wr;
};

typedef int (*child_fn)(void *arg);

static struct child child_start(child_fn fn, void *arg, int block)
{
        struct child c;
        int ready[2], hold[2];

        cr_assert_eq(pipe2(ready, O_CLOEXEC), 0);
        cr_assert_eq(pipe2(hold, O_CLOEXEC), 0);
        c.pid = fork();
        cr_assert_geq(c.pid, 0, "fork: %s", strerror(errno));
        if (c.pid == 0) {
                char b = 'r';
                int status;

                close(ready[0]);
                close(hold[1]);
                status = fn(arg);
                if (status != 0)
                        _exit(status);
                if (write(ready[1], &b, 1) != 1)
                        _exit(90);
                if (block)
                        while (read(hold[0], &b, 1) > 0)
                                ;
                _exit(0);
        }
        close(ready[1]);
        close(hold[0]);
        c.ready_rd = ready[0];
        c.hold_wr = hold[1];
        return c;
}

/* Waits (bounded) for the child's ready byte; fails the test if it exited instead. */
static void child_wait_ready(const struct child *c)
{
        struct pollfd pfd = { .fd = c->ready_rd, .events = POLLIN };
        char b;
        int n;

        n = poll(&pfd, 1, SYNC_TIMEOUT_MS);
        cr_assert_eq(n, 1, "child %d not ready within %d ms", (int)c->pid, SYNC_TIMEOUT_MS);
        n = (int)read(c->ready_rd, &b, 1);
        if (n != 1) {
                int status = 0;

                waitpid(c->pid, &status, 0);
                cr_assert_fail("child %d exited before it was ready: status %d", (int)c->pid,
                               WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status));
        }
}

/* Returns the child's exit status (or -signal), reaped. */
static int child_reap(struct child *c)
{
        int status = 0;

        cr_assert_eq(waitpid(c->pid, &status, 0), c->pid);
        close(c->ready_rd);
        close(c->hold_wr);
        return WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status);
}

static void child_kill(struct child *c)
{
        cr_assert_eq(kill(c->pid, SIGKILL), 0);
        cr_assert_eq(child_reap(c), -SIGKILL);
}

/* Attaches in a child; on failure it says why on stderr and exits 80. */
static struct ring *child_attach(enum ring_role role)
{
        char why[WHY_MAX];
        struct ring *r = NULL;
        int rc = ring_attach(&r, ti.dirfd, PROD, CONS, role, why, sizeof(why));

        if (rc != 0) {
                fprintf(stderr, "child attach: %s (%s)\n", strerror(-rc), why);
                _exit(80);
        }
        return r;
}

static int file_exists(const char *fname)
{
        return faccessat(ti.dirfd, fname, F_OK, AT_SYMLINK_NOFOLLOW) == 0;
}

/* ---- creation ---- */

Test(ring, create_makes_a_0600_file_sized_for_header_and_capacity)
{
        struct stat sb;
        int fd;

        make_ring(SMALL_CAP * 4, 0);
        fd = openat(ti.dirfd, RING_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        cr_assert_geq(fd, 0);
        cr_assert_eq(fstat(fd, &sb), 0);
        close(fd);
        cr_assert(S_ISREG(sb.st_mode));
        cr_assert_eq(sb.st_mode & 07777, 0600);
        cr_assert_geq((uint64_t)sb.st_size, RING_HEADER_SIZE + SMALL_CAP * 4);
}

Test(ring, create_refuses_an_existing_ring_with_eexist)
{
        char why[WHY_MAX] = "";

        make_ring(SMALL_CAP, 0);
        cr_assert_eq(ring_create(ti.dirfd, PROD, CONS, SMALL_CAP, 0, why, sizeof(why)), -EEXIST);
        cr_assert_neq(why[0], '\0', "an error comes with a reason");
        /* The existing ring is untouched and still attaches. */
        ring_close(attach(RING_PRODUCER));
}

Test(ring, create_refuses_bad_names_with_einval)
{
        static const char *const bad[] = {
                "", "Upper", "a-b", "dot.name", "sl/ash", "sp ace",
                "abcdefghijklmnopqrstuvwxyz0123456", /* 33 characters */
        };
        char why[WHY_MAX];

        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                why[0] = '\0';
                cr_assert_eq(ring_create(ti.dirfd, bad[i], CONS, SMALL_CAP, 0, why, sizeof(why)),
                             -EINVAL, "producer name \"%s\"", bad[i]);
                cr_assert_neq(why[0], '\0');
                cr_assert_eq(ring_create(ti.dirfd, PROD, bad[i], SMALL_CAP, 0, why, sizeof(why)),
                             -EINVAL, "consumer name \"%s\"", bad[i]);
        }
        cr_assert_eq(ring_name_check("abcdefghijklmnopqrstuvwxyz01234"), 0, "31 characters is the limit");
        cr_assert_eq(ring_name_check("store_2"), 0);
}

Test(ring, create_refuses_bad_capacity_and_unknown_flags_with_einval)
{
        static const uint64_t bad_caps[] = {
                0, 1, RING_MIN_CAPACITY / 2, RING_MIN_CAPACITY - 1, RING_MIN_CAPACITY + 8,
                3 * RING_MIN_CAPACITY, (uint64_t)RING_MAX_CAPACITY * 2, UINT64_MAX,
                (uint64_t)1 << 63,
        };
        char why[WHY_MAX];

        for (size_t i = 0; i < sizeof(bad_caps) / sizeof(bad_caps[0]); i++) {
                why[0] = '\0';
                cr_assert_eq(ring_create(ti.dirfd, PROD, CONS, bad_caps[i], 0, why, sizeof(why)),
                             -EINVAL, "capacity %llu", (unsigned long long)bad_caps[i]);
                cr_assert_neq(why[0], '\0');
        }
        cr_assert_eq(ring_create(ti.dirfd, PROD, CONS, SMALL_CAP, 0x2u, why, sizeof(why)), -EINVAL);
        cr_assert_eq(ring_create(ti.dirfd, PROD, CONS, SMALL_CAP, RING_LOSSY | 0x80000000u, why,
                                 sizeof(why)), -EINVAL);
        cr_assert_not(file_exists(RING_FILE), "a refused create leaves no file behind");
}

Test(ring, attach_to_a_missing_ring_gives_enoent)
{
        char why[WHY_MAX] = "";
        struct ring *r = NULL;

        cr_assert_eq(ring_attach(&r, ti.dirfd, PROD, CONS, RING_CONSUMER, why, sizeof(why)), -ENOENT);
        cr_assert_neq(why[0], '\0');
}

Test(ring, parse_filename_splits_producer_and_consumer)
{
        char p[RING_NAME_MAX + 1], c[RING_NAME_MAX + 1];

        cr_assert_eq(ring_parse_filename("ingest-process.ring", p, c), 0);
        cr_assert_str_eq(p, "ingest");
        cr_assert_str_eq(c, "process");
        cr_assert_eq(ring_parse_filename("ingest.stats", p, c), -EINVAL);
        cr_assert_eq(ring_parse_filename("ingest-process.ringx", p, c), -EINVAL);
        cr_assert_eq(ring_parse_filename("-process.ring", p, c), -EINVAL);
        cr_assert_eq(ring_parse_filename("ingest-.ring", p, c), -EINVAL);
}

Test(ring, geometry_is_what_create_was_given)
{
        struct ring *p;

        make_ring(SMALL_CAP * 16, RING_LOSSY);
        p = attach(RING_PRODUCER);
        cr_assert_eq(ring_capacity(p), SMALL_CAP * 16);
        cr_assert_eq(ring_max_record(p), SMALL_CAP * 8 - RING_RECORD_HEADER);
        cr_assert_str_eq(ring_producer_name(p), PROD);
        cr_assert_str_eq(ring_consumer_name(p), CONS);
        ring_close(p);
}

/* ---- records ---- */

Test(ring, a_record_round_trips_with_type_len_and_bytes)
{
        struct ring *p, *c;
        struct ring_rec rec;
        struct ring_stats st;
        void *payload;
        uint64_t start;

        make_ring(SMALL_CAP, 0);
        p = attach(RING_PRODUCER);
        c = attach(RING_CONSUMER);
        start = stats(p).write;

        cr_assert_eq(ring_reserve(p, 4242, 13, &payload), 0);
        fill_payload(payload, 77, 13);
        cr_assert_eq(ring_commit(p, 13), 0);
        cr_assert_eq(ring_publish(p), 1u);

        cr_assert_eq(ring_peek(c, &rec), 0);
        cr_assert_eq(rec.type, 4242);
        cr_assert_eq(rec.len, 13u);
        cr_assert(payload_ok(rec.data, 77, 13));
        cr_assert_eq(rec.pos, start);
        cr_assert_eq(rec.pos % RING_ALIGN, 0u);
        cr_assert_eq(rec.next.pos, start + rec_size(13));
        cr_assert_eq(rec.next.count, 1u);
        cr_assert_eq(((uintptr_t)rec.data) % RING_ALIGN, 0u, "payloads are 8-byte aligned in memory");
        cr_assert_eq(ring_peek(c, &rec), -EAGAIN, "one record was written, one is read");

        st = stats(c);
        cr_assert_eq(st.write, start + rec_size(13));
        cr_assert_eq(st.write_count, 1u);
        ring_close(c);
        ring_close(p);
}

Test(ring, records_of_every_small_length_are_aligned_and_back_to_back)
{
        struct ring *p, *c;
        uint64_t pos;

        make_ring(SMALL_CAP * 4, 0);
        p = attach(RING_PRODUCER);
        c = attach(RING_CONSUMER);
        pos = stats(p).write;
        for (uint32_t len = 0; len <= 40; len++)
                put(p, (uint16_t)(len + 1), len, len);
        cr_assert_eq(ring_publish(p), 41u);
        for (uint32_t len = 0; len <= 40; len++) {
                struct ring_rec rec = get(c, len, len);

                cr_assert_eq(rec.type, len + 1);
                cr_assert_eq(rec.pos, pos, "len %u: record at %llu, expected %llu", len,
                             (unsigned long long)rec.pos, (unsigned long long)pos);
                cr_assert_eq(rec.next.count, (uint64_t)len + 1);
                pos = rec.next.pos;
        }
        ring_close(c);
        ring_close(p);
}

Test(ring, wrap_inserts_padding_the_consumer_never_sees)
{
        struct ring *p, *c;
        struct ring_rec r0, r1, wrapped, after;
        struct ring_stats st;
        uint64_t start, tail;

        make_ring(SMALL_CAP, 0);
        p = attach(RING_PRODUCER);
        c = attach(RING_CONSUMER);
        start = stats(p).write;
        cr_assert_eq(start % SMALL_CAP, 0u, "a new ring starts at the beginning of its data area");

        fill_small_ring(p);
        r0 = get(c, 0, BIG_LEN);
        r1 = get(c, 1, BIG_LEN);
        /* Free the first two records so the wrapped ones have room at the start. */
        cr_assert_eq(ring_done(c, r1.next), 0);

        tail = SMALL_CAP - 4 * rec_size(BIG_LEN);       /* 64 bytes: too few for 112 */
        cr_assert_lt(tail, rec_size(100));
        put(p, 9, 4, 100);
        put(p, 10, 5, 200);
        cr_assert_eq(ring_publish(p), 2u, "the padding record is not counted as published");

        st = stats(p);
        cr_assert_eq(st.write, start + 4 * rec_size(BIG_LEN) + tail + rec_size(100) + rec_size(200),
                     "write advanced by the pad: %llu", (unsigned long long)st.write);
        cr_assert_eq(st.write_count, 6u);

        /* Records 2 and 3, still in the old lap, come first and intact. */
        get(c, 2, BIG_LEN);
        get(c, 3, BIG_LEN);
        wrapped = get(c, 4, 100);
        cr_assert_eq(wrapped.type, 9, "the padding record is never returned");
        cr_assert_eq(wrapped.pos, start + SMALL_CAP, "the record starts at the top of the next lap");
        cr_assert_eq(wrapped.data, r0.data, "contiguous at the base of the data area");
        cr_assert_eq(wrapped.next.count, 5u, "marks count records, not padding");
        after = get(c, 5, 200);
        cr_assert_eq(after.type, 10);
        cr_assert_eq(after.pos, wrapped.next.pos);
        cr_assert_eq(after.next.pos, st.write);
        cr_assert_eq(ring_peek(c, &after), -EAGAIN);

        cr_assert_eq(ring_done(c, ring_cursor(c)), 0);
        st = stats(c);
        cr_assert_eq(st.commit, st.write);
        cr_assert_eq(st.commit_count, 6u);
        ring_close(c);
        ring_close(p);
}

Test(ring, many_laps_keep_order_and_payloads)
{
        struct ring *p, *c;
        uint64_t seq_in = 0, seq_out = 0;

        make_ring(SMALL_CAP, 0);
        p = attach(RING_PRODUCER);
        c = attach(RING_CONSUMER);
        /* Lengths coprime with the capacity move the wrap point on every lap. */
        while (seq_out < 2000) {
                uint32_t len = (uint32_t)((seq_in * 37) % 301);
                void *payload;
                int rc = ring_reserve(p, 1, len, &payload);

                if (rc == 0) {
                        cr_assert_lt(seq_in - seq_out, SMALL_CAP / RING_RECORD_HEADER,
                                     "more records reserved than a full ring can hold");
                        fill_payload(payload, seq_in, len);
                        cr_assert_eq(ring_commit(p, len), 0);
                        seq_in++;
                        continue;
                }
                cr_assert_eq(rc, -EAGAIN);
                ring_publish(p);
                for (;;) {
                        struct ring_rec rec;
                        uint32_t want = (uint32_t)((seq_out * 37) % 301);

                        rc = ring_peek(c, &rec);
                        if (rc == -EAGAIN)
                                break;
                        cr_assert_eq(rc, 0);
                        cr_assert_neq(rec.type, 0);
                        cr_assert_eq(rec.len, want, "seq %llu", (unsigned long long)seq_out);
                        cr_assert(payload_ok(rec.data, seq_out, want), "seq %llu",
                                  (unsigned long long)seq_out);
                        cr_assert_eq(rec.next.count, seq_out + 1);
                        seq_out++;
                }
                cr_assert_eq(ring_done(c, ring_cursor(c)), 0);
        }
        cr_assert_eq(stats(c).drops, 0u);
        ring_close(c);
        ring_close(p);
}

Test(ring, max_record_fits_an_empty_ring_wherever_the_tail_falls)
{
        struct ring *p, *c;
        uint32_t max;

        make_ring(SMALL_CAP, 0);
        p = attach(RING_PRODUCER);
        c = attach(RING_CONSUMER);
        max = ring_max_record(p);
        cr_assert_eq(max, SMALL_CAP / 2 - RING_RECORD_HEADER);
        for (uint32_t shift = 0; shift < 64; shift++) {
                struct ring_rec rec;

                /* A small record moves the empty ring's start by 8 more bytes each time. */
                put_publish(p, shift, shift * 8 + 40);
                rec = get(c, shift, shift * 8 + 40);
                cr_assert_eq(ring_done(c, rec.next), 0);

                put(p, 2, shift, max);
                cr_assert_eq(ring_publish(p), 1u);
                rec = get(c, shift, max);
                cr_assert_eq(rec.type, 2);
                cr_assert_eq(ring_done(c, rec.next), 0);
        }
        ring_close(c);
        ring_close(p);
}

Test(ring, reserve_over_max_record_gives_emsgsize)
{
        struct ring *p;
        void *payload = NULL;

        make_ring(SMALL_CAP, 0);
        p = attach(RING_PRODUCER);
        cr_assert_eq(ring_reserve(p, 1, ring_max_record(p) + 1, &payload), -EMSGSIZE);
        cr_assert_eq(ring_reserve(p, 1, UINT32_MAX, &payload), -EMSGSIZE);
        cr_assert_eq(ring_reserve(p, 1, ring_max_record(p), &payload), 0);
        ring_abort(p);
        ring_close(p);
}

Test(ring, reserve_with_a_bad_type_gives_einval)
{
        struct ring *p;
        void *payload = NULL;

        make_ring(SMALL_CAP, 0);
        p = attach(RING_PRODUCER);
        cr_assert_eq(ring_reserve(p, 0, 8, &payload), -EINVAL, "type 0 is the ring's padding");
        cr_assert_eq(ring_reserve(p, RING_TYPE_MAX, 8, &payload), 0);
        ring_abort(p);
        ring_close(p);
}

Test(ring, commit_with_a_shorter_len_shrinks_the_record)
{
        struct ring *p, *c;
        struct ring_rec rec;
        void *payload;
        uint64_t start;

        make_ring(SMALL_CAP, 0);
        p = attach(RING_PRODUCER);
        c = attach(RING_CONSUMER);
        start = stats(p).write;
        cr_assert_eq(ring_reserve(p, 3, 500, &payload), 0);
        fill_payload(payload, 5, 10);
        cr_assert_eq(ring_commit(p, 10), 0);
        put(p, 1, 6, 16);
        cr_assert_eq(ring_publish(p), 2u);

        rec = get(c, 5, 10);
        cr_assert_eq(rec.pos, start);
        cr_assert_eq(rec.next.pos, start + rec_size(10), "the unused reservation is given back");
        rec = get(c, 6, 16);
        cr_assert_eq(rec.pos, start + rec_size(10));
        cr_assert_eq(stats(p).write, start + rec_size(10) + rec_size(16));
        ring_close(c);
        ring_close(p);
}

Test(ring, abort_leaves_nothing_visible)
{
        struct ring *p, *c;
        struct ring_rec rec;
        void *payload;
        uint64_t start;

        make_ring(SMALL_CAP, 0);
        p = attach(RING_PRODUCER);
        c = attach(RING_CONSUMER);
        start = stats(p).write;
        cr_assert_eq(ring_reserve(p, 1, 64, &payload), 0);
        memset(payload, 0xee, 64);
        ring_abort(p);
        cr_assert_eq(ring_publish(p), 0u);
        cr_assert_eq(ring_peek(c, &rec), -EAGAIN);
        cr_assert_eq(stats(c).write, start);

        /* The next record takes the aborted one's place. */
        put_publish(p, 1, 24);
        rec = get(c, 1, 24);
        cr_assert_eq(rec.pos, start);
        cr_assert_eq(rec.next.count, 1u);
        ring_abort(p);  /* nothing open: harmless */
        ring_close(c);
        ring_close(p);
}

Test(ring, a_second_reserve_while_one_is_open_gives_einval)
{
        struct ring *p, *c;
        void *payload, *again = NULL;

        make_ring(SMALL_CAP, 0);
        p = attach(RING_PRODUCER);
        c = attach(RING_CONSUMER);
        cr_assert_eq(ring_reserve(p, 1, 32, &payload), 0);
        fill_payload(payload, 0, 32);
        cr_assert_eq(ring_reserve(p, 1, 32, &again), -EINVAL);
        /* The open reservation survives the refused one. */
        cr_assert_eq(ring_commit(p, 32), 0);
        cr_assert_eq(ring_publish(p), 1u);
        get(c, 0, 32);
        ring_close(c);
        ring_close(p);
}

Test(ring, commit_without_a_reservation_or_longer_than_it_gives_einval)
{
        struct ring *p, *c;
        void *payload;

        make_ring(SMALL_CAP, 0);
        p = attach(RING_PRODUCER);
        c = attach(RING_CONSUMER);
        cr_assert_eq(ring_commit(p, 0), -EINVAL, "nothing reserved");
        cr_assert_eq(ring_reserve(p, 1, 32, &payload), 0);
        fill_payload(payload, 0, 32);
        cr_assert_eq(ring_commit(p, 33), -EINVAL, "longer than reserved");
        cr_assert_eq(ring_commit(p, 32), 0, "the reservation is still open");
        cr_assert_eq(ring_commit(p, 32), -EINVAL, "already committed");
        cr_assert_eq(ring_publish(p), 1u);
        get(c, 0, 32);
        ring_close(c);
        ring_close(p);
}

Test(ring, producer_verbs_on_a_consumer_handle_give_einval_and_write_nothing)
{
        struct ring *p, *c;
        void *payload = NULL;

        make_ring(SMALL_CAP, 0);
        p = attach(RING_PRODUCER);
        c = attach(RING_CONSUMER);
        put_publish(p, 0, 32);
        cr_assert_eq(ring_reserve(c, 1, 8, &payload), -EINVAL);
        cr_assert_eq(ring_commit(c, 0), -EINVAL, "a consumer has no reservation to commit");
        ring_abort(c);
        cr_assert_eq(ring_publish(c), 0u);
        cr_assert_eq(ring_wait_space(c, 8, 0, NSEC_PER_MSEC), -EINVAL);
        /* The published record is intact. */
        get(c, 0, 32);
        ring_close(c);
        ring_close(p);
}

Test(ring, consumer_verbs_on_a_producer_handle_give_einval)
{
        struct ring *p, *c;
        struct ring_rec rec;
        struct ring_mark mark = { 0, 0 };

        make_ring(SMALL_CAP, 0);
        p = attach(RING_PRODUCER);
        c = attach(RING_CONSUMER);
        put_publish(p, 0, 32);
        cr_assert_eq(ring_peek(p, &rec), -EINVAL);
        cr_assert_eq(ring_peek_batch(p, &rec, 1), -EINVAL);
        cr_assert_eq(ring_done(p, mark), -EINVAL);
        cr_assert_eq(ring_skip_to(p, mark), -EINVAL);
        cr_assert_eq(ring_wait_data(p, 0, NSEC_PER_MSEC), -EINVAL);
        ring_release(p);
        get(c, 0, 32);
        ring_close(c);
        ring_close(p);
}

Test(ring, an_observer_refuses_every_verb_that_would_write)
{
        struct ring *p, *o;
        struct ring_rec rec;
        struct ring_stats before, after;
        struct ring_mark mark = { 0, 0 };
        void *payload = NULL;

        make_ring(SMALL_CAP, 0);
        p = attach(RING_PRODUCER);
        put_publish(p, 0, 32);
        o = attach(RING_OBSERVER);
        before = stats(o);
        cr_assert_eq(ring_reserve(o, 1, 8, &payload), -EINVAL);
        cr_assert_eq(ring_commit(o, 0), -EINVAL);
        ring_abort(o);
        cr_assert_eq(ring_publish(o), 0u);
        cr_assert_eq(ring_peek(o, &rec), -EINVAL);
        cr_assert_eq(ring_done(o, mark), -EINVAL);
        ring_release(o);
        ring_heartbeat(o);
        after = stats(o);
        cr_assert_eq(after.write, before.write);
        cr_assert_eq(after.read, before.read);
        cr_assert_eq(after.prod.heartbeat_ns, before.prod.heartbeat_ns);
        cr_assert_eq(after.cons.heartbeat_ns, before.cons.heartbeat_ns);
        ring_close(o);
        ring_close(p);
}

Test(ring, records_are_invisible_until_publish)
{
        struct ring *p, *c;
        struct ring_rec rec;

        make_ring(SMALL_CAP, 0);
        p = attach(RING_PRODUCER);
        c = attach(RING_CONSUMER);
        put(p, 1, 0, 40);
        put(p, 1, 1, 40);
        cr_assert_eq(ring_peek(c, &rec), -EAGAIN, "committed is not published");
        cr_assert_eq(stats(c).write_count, 0u);
        cr_assert_eq(ring_publish(p), 2u);
        cr_assert_eq(ring_publish(p), 0u, "nothing left to publish");
        get(c, 0, 40);
        get(c, 1, 40);
        cr_assert_eq(ring_peek(c, &rec), -EAGAIN);
        ring_close(c);
        ring_close(p);
}

Test(ring, close_discards_unpublished_records)
{
        struct ring *p, *c;
        struct ring_rec rec;

        make_ring(SMALL_CAP, 0);
        p = attach(RING_PRODUCER);
        put_publish(p, 0, 40);
        put(p, 1, 1, 40);
        ring_close(p);
        c = attach(RING_CONSUMER);
        get(c, 0, 40);
        cr_assert_eq(ring_peek(c, &rec), -EAGAIN);
        p = attach(RING_PRODUCER);
        put_publish(p, 2, 40);
        get(c, 2, 40);
        ring_close(c);
        ring_close(p);
}

Test(ring, a_batch_published_at_once_is_peeked_at_once)
{
        struct ring *p, *c;
        struct ring_rec recs[128];
        struct ring_stats st;
        uint64_t start;
        int n;

        make_ring(SMALL_CAP * 4, 0);
        p = attach(RING_PRODUCER);
        c = attach(RING_CONSUMER);
        start = stats(p).write;
        for (uint64_t seq = 0; seq < 100; seq++)
                put(p, 1, seq, 24);
        cr_assert_eq(ring_publish(p), 100u);

        n = ring_peek_batch(c, recs, 128);
        cr_assert_eq(n, 100);
        for (int i = 0; i < n; i++) {
                cr_assert_eq(recs[i].len, 24u);
                cr_assert(payload_ok(recs[i].data, (uint64_t)i, 24), "record %d", i);
                cr_assert_eq(recs[i].pos, start + (uint64_t)i * rec_size(24));
                cr_assert_eq(recs[i].next.count, (uint64_t)i + 1);
        }
        cr_assert_eq(ring_peek_batch(c, recs, 128), 0, "an empty ring peeks 0");

        st = stats(c);
        cr_assert_eq(st.write_count, 100u);
        cr_assert_eq(st.read, start, "peeking alone does not publish read");
        ring_release(c);
        st = stats(c);
        cr_assert_eq(st.read, start + 100 * rec_size(24));
        cr_assert_eq(st.read_count, 100u);
        cr_assert_eq(st.commit, start, "release does not commit");
        ring_close(c);
        ring_close(p);
}

Test(ring, peek_batch_stops_at_max)
{
        struct ring *p, *c;
        struct ring_rec recs[10];

        make_ring(SMALL_CAP, 0);
        p = attach(RING_PRODUCER);
        c = attach(RING_CONSUMER);
        for (uint64_t seq = 0; seq < 25; seq++)
                put(p, 1, seq, 16);
        cr_assert_eq(ring_publish(p), 25u);
        cr_assert_eq(ring_peek_batch(c, recs, 10), 10);
        cr_assert_eq(payload_seq(&recs[9]), 9u);
        cr_assert_eq(ring_peek_batch(c, recs, 10), 10);
        cr_assert_eq(payload_seq(&recs[0]), 10u);
        cr_assert_eq(ring_peek_batch(c, recs, 10), 5);
        cr_assert_eq(payload_seq(&recs[4]), 24u);
        ring_close(c);
        ring_close(p);
}

/* ---- full and lossy rings ---- */

Test(ring, reserve_returns_eagain_when_a_lossless_ring_is_full)
{
        struct ring *p, *c;
        struct ring_rec rec[4];
        void *payload;

        make_ring(SMALL_CAP, 0);
        p = attach(RING_PRODUCER);
        c = attach(RING_CONSUMER);
        fill_small_ring(p);
        cr_assert_eq(ring_reserve(p, 1, BIG_LEN, &payload), -EAGAIN);
        cr_assert_eq(ring_reserve(p, 1, BIG_LEN, &payload), -EAGAIN);
        cr_assert_eq(stats(p).drops, 0u, "a lossless ring never drops");

        for (int i = 0; i < 4; i++)
                rec[i] = get(c, (uint64_t)i, BIG_LEN);
        ring_release(c);
        cr_assert_eq(ring_reserve(p, 1, BIG_LEN, &payload), -EAGAIN,
                     "release alone does not free space: the bytes are not yet durable downstream");

        cr_assert_eq(ring_done(c, rec[0].next), 0);
        put(p, 1, 4, BIG_LEN);
        cr_assert_eq(ring_publish(p), 1u);
        get(c, 4, BIG_LEN);
        /* The records peeked before still read back intact: only done bytes were reused. */
        for (int i = 1; i < 4; i++)
                cr_assert(payload_ok(rec[i].data, (uint64_t)i, BIG_LEN), "record %d overwritten", i);
        cr_assert_eq(stats(c).drops, 0u);
        ring_close(c);
        ring_close(p);
}

Test(ring, a_record_that_fills_the_tail_exactly_does_not_wrap)
{
        struct ring *p;
        void *payload;

        make_ring(SMALL_CAP, 0);
        p = attach(RING_PRODUCER);
        fill_small_ring(p);
        /* 64 bytes are left in the tail: a 56-byte payload fits exactly, no wrap. */
        put(p, 1, 9, 56);
        cr_assert_eq(ring_reserve(p, 1, 0, &payload), -EAGAIN, "now the ring is exactly full");
        cr_assert_eq(ring_publish(p), 1u);
        cr_assert_eq(stats(p).write, stats(p).commit + SMALL_CAP);
        ring_close(p);
}

Test(ring, lossy_ring_counts_each_drop_when_full)
{
        struct ring *p, *c;
        struct ring_rec rec;
        void *payload;

        make_ring(SMALL_CAP, RING_LOSSY);
        p = attach(RING_PRODUCER);
        c = attach(RING_CONSUMER);
        cr_assert_eq(stats(p).flags & RING_LOSSY, RING_LOSSY);
        fill_small_ring(p);
        cr_assert_eq(stats(p).drops, 0u);
        cr_assert_eq(ring_reserve(p, 1, BIG_LEN, &payload), -EAGAIN);
        cr_assert_eq(stats(p).drops, 1u);
        cr_assert_eq(ring_reserve(p, 1, BIG_LEN, &payload), -EAGAIN);
        cr_assert_eq(ring_reserve(p, 1, BIG_LEN, &payload), -EAGAIN);
        cr_assert_eq(stats(c).drops, 3u, "both ends see the same count");

        rec = get(c, 0, BIG_LEN);
        cr_assert_eq(ring_done(c, rec.next), 0);
        put(p, 1, 4, BIG_LEN);
        cr_assert_eq(ring_publish(p), 1u);
        cr_assert_eq(stats(p).drops, 3u, "a record that fits is not a drop");
        for (uint64_t seq = 1; seq < 5; seq++)
                get(c, seq, BIG_LEN);
        ring_close(c);
        ring_close(p);
}

/* ---- done, release, skip ---- */

Test(ring, done_with_a_mark_before_commit_after_the_cursor_or_unaligned_gives_einval)
{
        struct ring *p, *c;
        struct ring_rec r0, r1, r2;
        struct ring_mark beyond;
        struct ring_stats st;

        make_ring(SMALL_CAP, 0);
        p = attach(RING_PRODUCER);
        c = attach(RING_CONSUMER);
        for (uint64_t seq = 0; seq < 3; seq++)
                put(p, 1, seq, 32);
        cr_assert_eq(ring_publish(p), 3u);
        r0 = get(c, 0, 32);
        r1 = get(c, 1, 32);

        beyond = r1.next;
        beyond.pos += rec_size(32);
        beyond.count++;
        cr_assert_eq(ring_done(c, beyond), -EINVAL, "record 2 is published but not peeked");
        cr_assert_eq(ring_done(c, r1.next), 0);
        cr_assert_eq(ring_done(c, r0.next), -EINVAL, "commit never moves back");
        st = stats(c);
        cr_assert_eq(st.commit, r1.next.pos);
        cr_assert_eq(st.commit_count, 2u);

        r2 = get(c, 2, 32);
        beyond = r2.next;
        beyond.pos -= 4;
        cr_assert_eq(ring_done(c, beyond), -EINVAL, "a mark inside a record, unaligned");
        cr_assert_eq(ring_done(c, r2.next), 0);
        cr_assert_eq(stats(c).commit, r2.next.pos);
        ring_close(c);
        ring_close(p);
}

Test(ring, done_releases_first_when_needed)
{
        struct ring *p, *c;
        struct ring_rec r1;
        struct ring_stats st;

        make_ring(SMALL_CAP, 0);
        p = attach(RING_PRODUCER);
        c = attach(RING_CONSUMER);
        for (uint64_t seq = 0; seq < 3; seq++)
                put(p, 1, seq, 32);
        cr_assert_eq(ring_publish(p), 3u);
        get(c, 0, 32);
        r1 = get(c, 1, 32);
        get(c, 2, 32);
        /* No ring_release: done must not leave commit ahead of read. */
        cr_assert_eq(ring_done(c, r1.next), 0);
        st = stats(c);
        cr_assert_eq(st.commit, r1.next.pos);
        cr_assert_geq(st.read, st.commit);
        cr_assert_leq(st.read, st.write);
        ring_close(c);
        ring_close(p);
}

Test(ring, skip_to_a_record_boundary_moves_the_cursor_there)
{
        struct ring *p, *c;
        struct ring_rec recs[6], rec;
        struct ring_mark odd, past;

        make_ring(SMALL_CAP, 0);
        p = attach(RING_PRODUCER);
        for (uint64_t seq = 0; seq < 6; seq++)
                put(p, 1, seq, 20 + (uint32_t)seq * 8);
        cr_assert_eq(ring_publish(p), 6u);

        /* A first consumer learns the marks, then goes away without done. */
        c = attach(RING_CONSUMER);
        cr_assert_eq(ring_peek_batch(c, recs, 6), 6);
        ring_close(c);

        c = attach(RING_CONSUMER);
        odd = recs[2].next;
        odd.pos += RING_ALIGN;
        cr_assert_eq(ring_skip_to(c, odd), -EINVAL, "inside record 3, not a boundary");
        past = recs[5].next;
        past.pos += RING_ALIGN * 4;
        past.count++;
        cr_assert_eq(ring_skip_to(c, past), -EINVAL, "beyond write");

        cr_assert_eq(ring_skip_to(c, recs[2].next), 0);
        cr_assert_eq(ring_cursor(c).pos, recs[2].next.pos);
        cr_assert_eq(ring_cursor(c).count, 3u);
        rec = get(c, 3, 20 + 3 * 8);
        cr_assert_eq(rec.pos, recs[3].pos);
        cr_assert_eq(ring_skip_to(c, recs[5].next), 0, "skipping to the end is allowed");
        cr_assert_eq(ring_peek(c, &rec), -EAGAIN);
        cr_assert_eq(ring_done(c, ring_cursor(c)), 0);
        cr_assert_eq(stats(c).commit_count, 6u);
        ring_close(c);
        ring_close(p);
}

/* ---- crashes and exclusive ends ---- */

struct consumer_crash {
        unsigned n, k;
};

/* Peeks n records, makes the first k durable, releases all, then waits to die. */
static int consumer_crash_child(void *arg)
{
        const struct consumer_crash *cc = arg;
        struct ring *c = child_attach(RING_CONSUMER);
        struct ring_rec rec, kth = { 0 };

        for (unsigned i = 0; i < cc->n; i++) {
                if (ring_peek(c, &rec) != 0)
                        return 81;
                if (!payload_ok(rec.data, i, rec.len))
                        return 82;
                if (i + 1 == cc->k)
                        kth = rec;
        }
        if (ring_done(c, kth.next) != 0)
                return 83;
        ring_release(c);
        return 0;
}

Test(ring, a_killed_consumer_reattaches_and_replays_from_commit)
{
        struct consumer_crash cc = { .n = 10, .k = 4 };
        struct ring *p, *c, *o;
        struct ring_stats st;
        struct ring_rec rec;
        struct child child;
        uint64_t start;

        make_ring(SMALL_CAP, 0);
        p = attach(RING_PRODUCER);
        start = stats(p).write;
        for (uint64_t seq = 0; seq < cc.n; seq++)
                put(p, 1, seq, 40);
        cr_assert_eq(ring_publish(p), cc.n);

        child = child_start(consumer_crash_child, &cc, 1);
        child_wait_ready(&child);
        st = stats(p);
        cr_assert_eq(st.cons.pid, child.pid);
        cr_assert_eq(st.cons.alive, 1);
        cr_assert_eq(st.commit, start + cc.k * rec_size(40));
        cr_assert_eq(st.read, start + cc.n * rec_size(40));
        child_kill(&child);

        o = attach(RING_OBSERVER);
        st = stats(o);
        cr_assert_eq(st.cons.alive, 0, "the dead consumer's lock is gone");
        cr_assert_eq(st.cons.pid, child.pid);
        cr_assert_eq(st.cons.attaches, 1u);

        c = attach(RING_CONSUMER);
        cr_assert_eq(ring_peek(c, &rec), 0);
        cr_assert_eq(payload_seq(&rec), cc.k, "replay starts at the first record not done");
        cr_assert_eq(rec.pos, start + cc.k * rec_size(40));
        cr_assert_eq(rec.next.count, cc.k + 1u);
        for (uint64_t seq = cc.k + 1; seq < cc.n; seq++)
                get(c, seq, 40);
        cr_assert_eq(ring_peek(c, &rec), -EAGAIN);

        st = stats(o);
        cr_assert_gt(st.replayed, 0u);
        cr_assert_eq(st.replayed, (cc.n - cc.k) * rec_size(40), "replayed the released, not done bytes");
        cr_assert_eq(st.cons.pid, getpid());
        cr_assert_eq(st.cons.alive, 1);
        cr_assert_eq(st.cons.attaches, 2u);
        ring_close(o);
        ring_close(c);
        ring_close(p);
}

struct producer_crash {
        unsigned m;
};

/* Publishes m records, commits one more without publishing, half-writes another. */
static int producer_crash_child(void *arg)
{
        const struct producer_crash *pc = arg;
        struct ring *p = child_attach(RING_PRODUCER);
        void *payload;

        for (unsigned i = 0; i < pc->m; i++) {
                if (ring_reserve(p, 1, 48, &payload) != 0)
                        return 81;
                fill_payload(payload, i, 48);
                if (ring_commit(p, 48) != 0)
                        return 85;
        }
        if (ring_publish(p) != pc->m)
                return 82;
        if (ring_reserve(p, 1, 48, &payload) != 0)
                return 83;
        fill_payload(payload, 1000, 48);
        if (ring_commit(p, 48) != 0)
                return 86;
        if (ring_reserve(p, 1, 200, &payload) != 0)
                return 84;
        fill_payload(payload, 2000, 100);
        return 0;
}

Test(ring, a_producer_killed_mid_record_leaves_nothing_visible)
{
        struct producer_crash pc = { .m = 7 };
        struct ring *p, *c;
        struct ring_rec rec, last = { 0 };
        struct ring_stats st;
        struct child child;

        make_ring(SMALL_CAP, 0);
        c = attach(RING_CONSUMER);
        child = child_start(producer_crash_child, &pc, 1);
        child_wait_ready(&child);
        /* While the producer lives mid-record, the consumer sees the published records only. */
        for (uint64_t seq = 0; seq < pc.m; seq++)
                last = get(c, seq, 48);
        cr_assert_eq(ring_peek(c, &rec), -EAGAIN, "neither the committed nor the half record shows");
        child_kill(&child);

        cr_assert_eq(ring_peek(c, &rec), -EAGAIN, "nor do they after the producer died");
        st = stats(c);
        cr_assert_eq(st.prod.alive, 0);
        cr_assert_eq(st.prod.pid, child.pid);
        cr_assert_eq(st.write_count, pc.m);
        cr_assert_eq(st.write, last.next.pos);

        p = attach(RING_PRODUCER);
        put_publish(p, pc.m, 64);
        rec = get(c, pc.m, 64);
        cr_assert_eq(rec.type, 1);
        cr_assert_eq(rec.pos, last.next.pos, "the new producer continues at the published end");
        cr_assert_eq(rec.next.count, pc.m + 1u);
        cr_assert_eq(ring_peek(c, &rec), -EAGAIN);
        st = stats(c);
        cr_assert_eq(st.prod.attaches, 2u);
        cr_assert_eq(st.prod.pid, getpid());
        ring_close(c);
        ring_close(p);
}

static void assert_second_attach_busy(enum ring_role role)
{
        char why[WHY_MAX] = "";
        struct ring *r = NULL;

        cr_assert_eq(ring_attach(&r, ti.dirfd, PROD, CONS, role, why, sizeof(why)), -EBUSY,
                     "role %d attached twice", (int)role);
        cr_assert_neq(why[0], '\0');
}

Test(ring, a_second_live_producer_or_consumer_gets_ebusy_until_the_first_closes)
{
        struct ring *p, *c, *o1, *o2;

        make_ring(SMALL_CAP, 0);
        p = attach(RING_PRODUCER);
        c = attach(RING_CONSUMER);
        assert_second_attach_busy(RING_PRODUCER);
        assert_second_attach_busy(RING_CONSUMER);
        /* Observers never take a lock, so any number can look. */
        o1 = attach(RING_OBSERVER);
        o2 = attach(RING_OBSERVER);
        ring_close(o1);
        ring_close(o2);

        ring_close(p);
        p = attach(RING_PRODUCER);
        assert_second_attach_busy(RING_CONSUMER);
        ring_close(c);
        c = attach(RING_CONSUMER);
        cr_assert_eq(stats(c).prod.attaches, 2u);
        cr_assert_eq(stats(c).cons.attaches, 2u);
        ring_close(c);
        ring_close(p);
}

static int attach_producer_child(void *arg)
{
        (void)arg;
        child_attach(RING_PRODUCER);
        return 0;
}

static int attach_consumer_child(void *arg)
{
        (void)arg;
        child_attach(RING_CONSUMER);
        return 0;
}

Test(ring, an_end_held_by_a_live_process_gets_ebusy_until_it_dies)
{
        struct child child;
        struct ring *r;

        make_ring(SMALL_CAP, 0);

        child = child_start(attach_producer_child, NULL, 1);
        child_wait_ready(&child);
        assert_second_attach_busy(RING_PRODUCER);
        child_kill(&child);
        r = attach(RING_PRODUCER);
        ring_close(r);

        child = child_start(attach_consumer_child, NULL, 1);
        child_wait_ready(&child);
        assert_second_attach_busy(RING_CONSUMER);
        child_kill(&child);
        r = attach(RING_CONSUMER);
        ring_close(r);
}

/* ---- waiting ---- */

Test(ring, wait_data_times_out_on_an_empty_ring_and_counts_a_wait)
{
        const int64_t timeout = 150 * NSEC_PER_MSEC;
        struct ring *c;
        int64_t t0, elapsed;

        make_ring(SMALL_CAP, 0);
        c = attach(RING_CONSUMER);
        cr_assert_eq(stats(c).cons.waits, 0u);
        t0 = clock_mono_ns();
        cr_assert_eq(ring_wait_data(c, 20 * NSEC_PER_USEC, timeout), -ETIMEDOUT);
        elapsed = clock_mono_ns() - t0;
        cr_assert_geq(elapsed, timeout - NSEC_PER_MSEC, "returned after %lld ns", (long long)elapsed);
        cr_assert_lt(elapsed, timeout + 2 * NSEC_PER_SEC, "returned after %lld ns", (long long)elapsed);
        cr_assert_eq(stats(c).cons.waits, 1u);
        cr_assert_eq(stats(c).cons.sleeping, 0, "not sleeping once it returned");
        ring_close(c);
}

Test(ring, wait_data_returns_at_once_when_data_is_there)
{
        struct ring *p, *c;
        int64_t t0;

        make_ring(SMALL_CAP, 0);
        p = attach(RING_PRODUCER);
        c = attach(RING_CONSUMER);
        put_publish(p, 0, 8);
        t0 = clock_mono_ns();
        cr_assert_eq(ring_wait_data(c, 0, 5 * NSEC_PER_SEC), 0);
        cr_assert_lt(clock_mono_ns() - t0, NSEC_PER_SEC);
        cr_assert_eq(stats(c).cons.waits, 0u, "no wait was needed");
        ring_close(c);
        ring_close(p);
}

/* Polls the ring's stats (bounded) until the given end says it sleeps. */
static int poll_until_sleeping(struct ring *r, int producer_end)
{
        int64_t deadline = clock_mono_ns() + SYNC_TIMEOUT_MS * NSEC_PER_MSEC;
        struct ring_stats st;

        while (clock_mono_ns() < deadline) {
                if (ring_stats(r, &st) != 0)
                        return -1;
                if ((producer_end ? st.prod.sleeping : st.cons.sleeping) == 1)
                        return 0;
                sched_yield();
        }
        return -1;
}

/* Waits for the consumer to sleep, then publishes one record to wake it. */
static int waking_producer_child(void *arg)
{
        struct ring *p = child_attach(RING_PRODUCER);
        void *payload;

        (void)arg;
        if (poll_until_sleeping(p, 0) != 0)
                return 81;
        if (ring_reserve(p, 1, 16, &payload) != 0)
                return 82;
        fill_payload(payload, 0, 16);
        if (ring_commit(p, 16) != 0)
                return 84;
        if (ring_publish(p) != 1)
                return 83;
        return 0;
}

Test(ring, a_publish_wakes_a_sleeping_consumer)
{
        struct ring *c;
        struct ring_stats st;
        struct child child;
        int64_t t0, elapsed;
        int rc;

        make_ring(SMALL_CAP, 0);
        c = attach(RING_CONSUMER);
        child = child_start(waking_producer_child, NULL, 0);
        t0 = clock_mono_ns();
        rc = ring_wait_data(c, 0, 5 * NSEC_PER_SEC);
        elapsed = clock_mono_ns() - t0;
        child_wait_ready(&child);
        cr_assert_eq(child_reap(&child), 0);
        cr_assert_eq(rc, 0, "ring_wait_data: %s", strerror(-rc));
        cr_assert_lt(elapsed, 4 * NSEC_PER_SEC, "woken, not timed out: %lld ns", (long long)elapsed);

        get(c, 0, 16);
        st = stats(c);
        cr_assert_eq(st.prod.wakeups, 1u);
        cr_assert_eq(st.cons.waits, 1u);
        cr_assert_eq(st.cons.sleeping, 0);
        ring_close(c);
}

/* Waits for the producer to sleep, then makes the first record done to wake it. */
static int waking_consumer_child(void *arg)
{
        struct ring *c = child_attach(RING_CONSUMER);
        struct ring_rec rec;

        (void)arg;
        if (poll_until_sleeping(c, 1) != 0)
                return 81;
        if (ring_peek(c, &rec) != 0 || !payload_ok(rec.data, 0, rec.len))
                return 82;
        if (ring_done(c, rec.next) != 0)
                return 83;
        return 0;
}

Test(ring, a_done_wakes_a_producer_sleeping_on_a_full_ring)
{
        struct ring *p;
        struct ring_stats st;
        struct child child;
        void *payload;
        int64_t t0, elapsed;
        int rc;

        make_ring(SMALL_CAP, 0);
        p = attach(RING_PRODUCER);
        fill_small_ring(p);
        cr_assert_eq(ring_reserve(p, 1, BIG_LEN, &payload), -EAGAIN);

        child = child_start(waking_consumer_child, NULL, 0);
        t0 = clock_mono_ns();
        rc = ring_wait_space(p, BIG_LEN, 0, 5 * NSEC_PER_SEC);
        elapsed = clock_mono_ns() - t0;
        child_wait_ready(&child);
        cr_assert_eq(child_reap(&child), 0);
        cr_assert_eq(rc, 0, "ring_wait_space: %s", strerror(-rc));
        cr_assert_lt(elapsed, 4 * NSEC_PER_SEC, "woken, not timed out: %lld ns", (long long)elapsed);

        put_publish(p, 4, BIG_LEN);
        st = stats(p);
        cr_assert_eq(st.cons.wakeups, 1u);
        cr_assert_eq(st.prod.waits, 1u);
        cr_assert_eq(st.prod.sleeping, 0);
        ring_close(p);
}

Test(ring, wait_space_publishes_pending_records_and_times_out_on_a_full_ring)
{
        struct ring *p, *c;
        struct ring_rec rec;
        void *payload;
        int64_t t0, elapsed;

        make_ring(SMALL_CAP, 0);
        p = attach(RING_PRODUCER);
        c = attach(RING_CONSUMER);
        for (uint64_t seq = 0; seq < 4; seq++)
                put(p, 1, seq, BIG_LEN);
        cr_assert_eq(ring_reserve(p, 1, BIG_LEN, &payload), -EAGAIN);
        t0 = clock_mono_ns();
        cr_assert_eq(ring_wait_space(p, BIG_LEN, 10 * NSEC_PER_USEC, 100 * NSEC_PER_MSEC), -ETIMEDOUT);
        elapsed = clock_mono_ns() - t0;
        cr_assert_geq(elapsed, 99 * NSEC_PER_MSEC);
        cr_assert_lt(elapsed, 100 * NSEC_PER_MSEC + 2 * NSEC_PER_SEC);
        cr_assert_eq(stats(p).prod.waits, 1u);
        cr_assert_eq(ring_publish(p), 0u, "wait_space published the batch");
        cr_assert_eq(ring_peek(c, &rec), 0);
        cr_assert_eq(ring_wait_space(p, ring_max_record(p) + 1, 0, NSEC_PER_MSEC), -EMSGSIZE);
        ring_close(c);
        ring_close(p);
}

/* ---- stats, heartbeats, observers ---- */

Test(ring, heartbeat_moves_each_end_forward)
{
        struct ring *p, *c;
        struct ring_stats st;
        int64_t before;

        make_ring(SMALL_CAP, 0);
        p = attach(RING_PRODUCER);
        c = attach(RING_CONSUMER);
        st = stats(p);
        cr_assert_leq(st.prod.heartbeat_ns, clock_mono_ns());
        cr_assert_leq(st.cons.heartbeat_ns, clock_mono_ns());

        before = clock_mono_ns();
        ring_heartbeat(p);
        st = stats(c);
        cr_assert_geq(st.prod.heartbeat_ns, before);
        cr_assert_leq(st.prod.heartbeat_ns, clock_mono_ns());
        cr_assert_lt(st.cons.heartbeat_ns, before, "only the producer's heartbeat moved");

        before = clock_mono_ns();
        ring_heartbeat(c);
        st = stats(p);
        cr_assert_geq(st.cons.heartbeat_ns, before);
        cr_assert_lt(st.prod.heartbeat_ns, before);
        ring_close(c);
        ring_close(p);
}

Test(ring, stats_show_names_pids_liveness_and_positions)
{
        struct ring *p, *c, *o;
        struct ring_rec rec;
        struct ring_stats st;
        int64_t t0, t1;
        uint64_t start;

        t0 = clock_real_ns();
        make_ring(SMALL_CAP * 2, 0);
        t1 = clock_real_ns();
        o = attach(RING_OBSERVER);
        st = stats(o);
        cr_assert_str_eq(st.producer, PROD);
        cr_assert_str_eq(st.consumer, CONS);
        cr_assert_eq(st.capacity, SMALL_CAP * 2);
        cr_assert_eq(st.max_record, SMALL_CAP - RING_RECORD_HEADER);
        cr_assert_eq(st.flags, 0u);
        cr_assert_geq(st.created_ns, t0 - NSEC_PER_SEC);
        cr_assert_leq(st.created_ns, t1 + NSEC_PER_SEC);
        cr_assert_eq(st.prod.pid, 0, "nobody attached yet");
        cr_assert_eq(st.cons.pid, 0);
        cr_assert_eq(st.prod.alive, 0);
        cr_assert_eq(st.cons.alive, 0);
        cr_assert_eq(st.prod.attaches, 0u);
        cr_assert_eq(st.write, st.commit);
        cr_assert_eq(st.write_count, 0u);
        start = st.write;

        p = attach(RING_PRODUCER);
        c = attach(RING_CONSUMER);
        for (uint64_t seq = 0; seq < 5; seq++)
                put(p, 1, seq, 100);
        cr_assert_eq(ring_publish(p), 5u);
        get(c, 0, 100);
        rec = get(c, 1, 100);
        get(c, 2, 100);
        ring_release(c);
        cr_assert_eq(ring_done(c, rec.next), 0);

        /* Every handle sees the same header, including its own end alive. */
        struct ring *views[] = { p, c, o };
        for (size_t i = 0; i < 3; i++) {
                st = stats(views[i]);
                cr_assert_eq(st.prod.pid, getpid(), "view %zu", i);
                cr_assert_eq(st.cons.pid, getpid(), "view %zu", i);
                cr_assert_eq(st.prod.alive, 1, "view %zu", i);
                cr_assert_eq(st.cons.alive, 1, "view %zu", i);
                cr_assert_eq(st.prod.attaches, 1u);
                cr_assert_eq(st.cons.attaches, 1u);
                cr_assert_eq(st.write, start + 5 * rec_size(100));
                cr_assert_eq(st.write_count, 5u);
                cr_assert_eq(st.read, start + 3 * rec_size(100));
                cr_assert_eq(st.read_count, 3u);
                cr_assert_eq(st.commit, start + 2 * rec_size(100));
                cr_assert_eq(st.commit_count, 2u);
                cr_assert_eq(st.drops, 0u);
                cr_assert_eq(st.replayed, 0u);
                cr_assert_eq(st.prod.sleeping, 0);
                cr_assert_eq(st.cons.sleeping, 0);
        }

        ring_close(p);
        st = stats(o);
        cr_assert_eq(st.prod.alive, 0, "closed");
        cr_assert_eq(st.prod.pid, getpid(), "the last holder is remembered");
        cr_assert_eq(st.cons.alive, 1);
        ring_close(c);
        cr_assert_eq(stats(o).cons.alive, 0);
        ring_close(o);
}

/* Copies the /proc/self/maps lines that map path (their first 63 bytes) into lines; returns how many. */
static size_t maps_of(const char *path, char lines[][64], size_t max)
{
        FILE *f = fopen("/proc/self/maps", "r");
        char line[1024];
        size_t n = 0;

        cr_assert_not_null(f);
        while (fgets(line, sizeof(line), f) != NULL && n < max) {
                char *nl = strchr(line, '\n');

                if (nl != NULL)
                        *nl = '\0';
                if (strstr(line, path) == NULL)
                        continue;
                snprintf(lines[n], sizeof(lines[n]), "%.63s", line);
                n++;
        }
        fclose(f);
        return n;
}

Test(ring, an_observer_sees_the_same_stats_through_a_read_only_mapping)
{
        char before[16][64], after[16][64], path[512];
        struct ring *p, *c, *o;
        struct ring_stats sc, so;
        size_t nb, na, fresh = 0;

        make_ring(SMALL_CAP, 0);
        p = attach(RING_PRODUCER);
        c = attach(RING_CONSUMER);
        for (uint64_t seq = 0; seq < 3; seq++)
                put(p, 1, seq, 64);
        cr_assert_eq(ring_publish(p), 3u);
        get(c, 0, 64);
        ring_release(c);

        test_instance_path(&ti, RING_FILE, path, sizeof(path));
        nb = maps_of(path, before, 16);
        o = attach(RING_OBSERVER);
        na = maps_of(path, after, 16);
        cr_assert_gt(na, nb, "the observer maps the ring");
        for (size_t i = 0; i < na; i++) {
                int seen = 0;
                const char *perms;

                for (size_t j = 0; j < nb; j++)
                        seen |= strcmp(after[i], before[j]) == 0;
                if (seen)
                        continue;
                fresh++;
                perms = strchr(after[i], ' ');
                cr_assert_not_null(perms);
                cr_assert_eq(perms[1], 'r', "%s", after[i]);
                cr_assert_eq(perms[2], '-', "the observer's mapping is read-only: %s", after[i]);
        }
        cr_assert_gt(fresh, 0u);

        sc = stats(c);
        so = stats(o);
        cr_assert_eq(so.write, sc.write);
        cr_assert_eq(so.read, sc.read);
        cr_assert_eq(so.commit, sc.commit);
        cr_assert_eq(so.write_count, sc.write_count);
        cr_assert_eq(so.read_count, sc.read_count);
        cr_assert_eq(so.commit_count, sc.commit_count);
        cr_assert_eq(so.capacity, sc.capacity);
        cr_assert_eq(so.created_ns, sc.created_ns);
        cr_assert_eq(so.prod.pid, sc.prod.pid);
        cr_assert_eq(so.cons.pid, sc.cons.pid);
        cr_assert_eq(so.prod.alive, 1);
        cr_assert_eq(so.cons.alive, 1);
        cr_assert_eq(so.prod.attaches, 1u, "an observer is not an attach of either end");
        cr_assert_eq(so.cons.attaches, 1u);
        cr_assert_str_eq(so.producer, sc.producer);

        /* Looking changes nothing: the ends carry on as before. */
        for (int i = 0; i < 100; i++)
                stats(o);
        sc = stats(c);
        cr_assert_eq(sc.read, so.read);
        cr_assert_eq(sc.commit, so.commit);
        get(c, 1, 64);
        get(c, 2, 64);
        ring_close(o);
        ring_close(c);
        ring_close(p);
}

/* ---- producer state ---- */

struct pstate_example {
        uint64_t next_seq;
        uint64_t input_offset;
};

static struct pstate_example pstate_of(struct ring *p, struct ring_pstate *st)
{
        struct pstate_example ex = { 0 };

        cr_assert_eq(ring_pstate(p, st), 0);
        if (st->len > 0) {
                cr_assert_eq(st->len, sizeof(ex));
                memcpy(&ex, st->data, sizeof(ex));
        }
        return ex;
}

Test(ring, a_restarted_producer_reads_back_the_state_published_with_its_records)
{
        struct pstate_example ex = { 0 }, back;
        struct ring_pstate st;
        struct ring_stats rs;
        struct ring *p;

        make_ring(SMALL_CAP, 0);
        p = attach(RING_PRODUCER);
        back = pstate_of(p, &st);
        cr_assert_eq(st.len, 0u, "a fresh ring has no state");
        for (uint64_t seq = 0; seq < 6; seq++) {
                put(p, 1, seq, 40);
                if (seq % 2 == 1) {
                        ex = (struct pstate_example){ seq + 1, 1000 * (seq + 1) };
                        cr_assert_eq(ring_publish_state(p, &ex, sizeof(ex)), 2);
                }
        }
        /* Only the state moves (blank input consumed): no record, still a new state. */
        ex.input_offset += 17;
        cr_assert_eq(ring_publish_state(p, &ex, sizeof(ex)), 0);
        ring_close(p);

        p = attach(RING_PRODUCER);
        back = pstate_of(p, &st);
        rs = stats(p);
        cr_assert_eq(back.next_seq, 6u);
        cr_assert_eq(back.input_offset, 6017u);
        cr_assert_eq(st.write, rs.write, "the state describes every published record");
        cr_assert_eq(st.write_count, 6u);
        ring_close(p);
}

Test(ring, records_committed_after_the_state_but_never_published_leave_the_old_state)
{
        struct pstate_example ex = { 3, 300 }, back;
        struct ring_pstate st;
        struct ring *p;

        make_ring(SMALL_CAP, 0);
        p = attach(RING_PRODUCER);
        put(p, 1, 0, 40);
        cr_assert_eq(ring_publish_state(p, &ex, sizeof(ex)), 1);
        put(p, 1, 1, 40);       /* committed, then the producer "dies": close discards it */
        ring_close(p);

        p = attach(RING_PRODUCER);
        back = pstate_of(p, &st);
        cr_assert_eq(back.next_seq, 3u);
        cr_assert_eq(st.write_count, 1u);
        ring_close(p);
}

Test(ring, a_plain_publish_after_the_state_shows_as_records_the_state_does_not_cover)
{
        struct pstate_example ex = { 1, 10 };
        struct ring_pstate st;
        struct ring_stats rs;
        struct ring *p;

        make_ring(SMALL_CAP, 0);
        p = attach(RING_PRODUCER);
        put(p, 1, 0, 40);
        cr_assert_eq(ring_publish_state(p, &ex, sizeof(ex)), 1);
        put(p, 1, 1, 40);
        cr_assert_eq(ring_publish(p), 1u);
        pstate_of(p, &st);
        rs = stats(p);
        cr_assert_lt(st.write, rs.write);
        cr_assert_eq(st.write_count, 1u);
        cr_assert_eq(rs.write_count, 2u);
        cr_assert_eq(ring_publish_state(p, &ex, RING_PSTATE_MAX + 1), -EINVAL);
        ring_close(p);
}

/*
 * A producer killed inside ring_publish_state leaves the slot it was
 * writing with gen 0 (torn) or describing records beyond `write`
 * (unpublished): both are ignored in favour of the other slot.
 */
Test(ring, a_torn_or_unpublished_state_slot_is_ignored)
{
        struct pstate_example ex = { 5, 50 }, newer = { 9, 90 }, back;
        struct ring_pstate st;
        struct ring_shm *h;
        struct ring *p;
        void *map;
        int fd;
        char path[512];

        make_ring(SMALL_CAP, 0);
        p = attach(RING_PRODUCER);
        put(p, 1, 0, 40);
        cr_assert_eq(ring_publish_state(p, &ex, sizeof(ex)), 1);
        ring_close(p);

        fd = open(test_instance_path(&ti, RING_FILE, path, sizeof(path)), O_RDWR);
        cr_assert_geq(fd, 0);
        map = mmap(NULL, RING_HEADER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        cr_assert_neq(map, MAP_FAILED);
        h = map;
        for (int i = 0; i < 2; i++) {
                struct ring_shm_pstate *ps;
                int cur = atomic_load(&h->pstate[0].gen) > atomic_load(&h->pstate[1].gen) ? 0 : 1;

                ps = &h->pstate[1 - cur];
                memcpy(ps->data, &newer, sizeof(newer));
                ps->len = sizeof(newer);
                if (i == 0) {
                        /* Torn: the generation was cleared and never set again. */
                        ps->write = atomic_load(&h->write);
                        atomic_store(&ps->gen, 0);
                } else {
                        /* Written, but `write` never moved over its records. */
                        ps->write = atomic_load(&h->write) + 64;
                        atomic_store(&ps->gen, atomic_load(&h->pstate[cur].gen) + 1);
                }
                p = attach(RING_PRODUCER);
                back = pstate_of(p, &st);
                cr_assert_eq(back.next_seq, 5u, "case %d: the older, complete state wins", i);
                ring_close(p);
        }
        munmap(map, RING_HEADER_SIZE);
        close(fd);
}
