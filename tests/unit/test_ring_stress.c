/* SPDX-License-Identifier: MIT */
/* test_ring_stress.c: tens of millions of checked records between a forked producer and consumer. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "ring.h"
#include "test_instance.h"
#include "why.h"

#define PROD "prod"
#define CONS "cons"
/* Small enough that the ring wraps and fills all the time. */
#define STRESS_CAPACITY (64u * 1024u)
#define STRESS_RECORDS_DEFAULT 50000000ull
#define STRESS_ENV "RINGFLOW_STRESS_RECORDS"
#define STRESS_SEED 0x9e3779b97f4a7c15ull
#define BODY_MAX 200u
/* Publish batches: 1..4, 1..64 or 1..4096 records (the ring fills first: publish on -EAGAIN only). */
#define PUBLISH_SMALL 4u
#define PUBLISH_MID 64u
#define PUBLISH_HUGE 4096u
#define PEEK_BATCH 64u
/* ring_done after 1..256 records, or only when the ring runs empty. */
#define DONE_MAX 256u
/*
 * Waits spin for 0..SPIN_MAX_NS, chosen per wait: a spin of 0 parks at once,
 * so a publish or done often lands right as the other end goes to sleep,
 * the moment a lost wake-up needs.
 */
#define SPIN_MAX_NS (20 * NSEC_PER_USEC)
/* A lost wake-up shows up as a wait that runs into this. */
#define WAIT_TIMEOUT_NS (5 * NSEC_PER_SEC)

static struct test_instance ti;

static void setup(void)
{
        test_instance_init(&ti);
}

static void teardown(void)
{
        test_instance_fini(&ti);
}

TestSuite(ring_stress, .init = setup, .fini = teardown, .timeout = 300);

/*
 * Every record's payload: this header, then body_len bytes both sides can
 * derive from the sequence number alone.
 */
struct stress_head {
        uint64_t seq;
        uint32_t sum;           /* stress_sum of the body */
        uint32_t body_len;
};

/* What each child reports through its pipe. */
struct stress_result {
        uint64_t records;
        uint64_t bytes;
        uint64_t waits;
        uint64_t timeouts;
        int failed;
        char msg[200];
};

/* splitmix64's finaliser: a good 64-bit mix, the same on both sides. */
static uint64_t mix64(uint64_t x)
{
        x ^= x >> 30;
        x *= 0xbf58476d1ce4e5b9ull;
        x ^= x >> 27;
        x *= 0x94d049bb133111ebull;
        x ^= x >> 31;
        return x;
}

static uint32_t stress_body_len(uint64_t seq)
{
        return (uint32_t)(mix64(STRESS_SEED ^ (seq * 0xd1b54a32d192ed03ull)) % (BODY_MAX + 1));
}

static uint16_t stress_type(uint64_t seq)
{
        return (uint16_t)(RING_TYPE_MIN + (seq & 0xff));
}

/* Fills the body with an xorshift stream seeded by seq. */
static void stress_fill(uint8_t *body, uint32_t len, uint64_t seq)
{
        uint64_t x = mix64(seq + STRESS_SEED) | 1;
        uint32_t i = 0;

        for (; i + 8 <= len; i += 8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                memcpy(body + i, &x, 8);
        }
        for (; i < len; i++)
                body[i] = (uint8_t)(x >> (8 * (i & 7))) ^ (uint8_t)i;
}

/* A word-at-a-time FNV-style checksum; any changed byte changes it. */
static uint32_t stress_sum(const uint8_t *body, uint32_t len)
{
        uint64_t h = 0xcbf29ce484222325ull ^ len;
        uint32_t i = 0;

        for (; i + 8 <= len; i += 8) {
                uint64_t w;

                memcpy(&w, body + i, 8);
                h = (h ^ w) * 0x100000001b3ull;
                h ^= h >> 29;
        }
        for (; i < len; i++)
                h = (h ^ body[i]) * 0x100000001b3ull;
        h ^= h >> 32;
        return (uint32_t)h;
}

/*
 * A lost wake-up stalls the run only when both ends wait at once, so the
 * batch sizes (and the consumer's done intervals below) mix often-publishing
 * stretches with ones where the producer publishes only when the ring is
 * full and then sleeps right as the consumer runs dry and sleeps too.
 */
static unsigned stress_batch(uint64_t seq)
{
        static const unsigned sizes[4] = { PUBLISH_SMALL, PUBLISH_MID, PUBLISH_HUGE, PUBLISH_MID };
        uint64_t x = mix64(seq ^ 0x6a09e667f3bcc908ull);

        return 1 + (unsigned)((x >> 2) % sizes[x & 3]);
}

static unsigned stress_done_every(uint64_t seq)
{
        uint64_t x = mix64(seq ^ 0x3c6ef372fe94f82bull);

        return (x & 3) == 0 ? UINT32_MAX : 1 + (unsigned)((x >> 2) % DONE_MAX);
}

static int64_t stress_spin(uint64_t seq)
{
        uint64_t x = mix64(seq ^ 0xbb67ae8584caa73bull);

        return (x & 1) ? 0 : (int64_t)((x >> 1) % (uint64_t)SPIN_MAX_NS);
}

static uint64_t stress_records(void)
{
        const char *s = getenv(STRESS_ENV);
        char *end;
        unsigned long long n;

        if (s == NULL || *s == '\0')
                return STRESS_RECORDS_DEFAULT;
        errno = 0;
        n = strtoull(s, &end, 10);
        cr_assert(errno == 0 && *end == '\0' && n > 0, "%s=%s is not a positive count", STRESS_ENV, s);
        return n;
}

static __attribute__((format(printf, 2, 3))) void fail(struct stress_result *res, const char *fmt, ...)
{
        va_list ap;

        if (res->failed)
                return;
        res->failed = 1;
        va_start(ap, fmt);
        vsnprintf(res->msg, sizeof(res->msg), fmt, ap);
        va_end(ap);
}

/*
 * A wait that ran into its timeout fails the run at once: with a live peer
 * it is a lost wake-up, with a dead one the peer has already failed. A wait
 * that lasted the whole timeout and then found its condition on the final
 * check counts too: nobody woke it. Returns -ETIMEDOUT.
 */
static int timed_out(struct ring *r, struct stress_result *res, uint64_t seq, int peer_is_producer)
{
        struct ring_stats st;
        int alive = -1;

        res->timeouts++;
        if (ring_stats(r, &st) == 0)
                alive = peer_is_producer ? st.prod.alive : st.cons.alive;
        fail(res, "wait timed out at seq %" PRIu64 "; the %s is %s", seq,
             peer_is_producer ? "producer" : "consumer",
             alive == 1 ? "alive: a lost wake-up" : alive == 0 ? "gone" : "unknown");
        return -ETIMEDOUT;
}

static struct ring *stress_attach(enum ring_role role, struct stress_result *res)
{
        char why[WHY_MAX];
        struct ring *r = NULL;
        int rc = ring_attach(&r, ti.dirfd, PROD, CONS, role, why, sizeof(why));

        if (rc != 0) {
                fail(res, "ring_attach: %s (%s)", strerror(-rc), why);
                return NULL;
        }
        return r;
}

static void stress_produce(uint64_t n, struct stress_result *res)
{
        struct ring *p = stress_attach(RING_PRODUCER, res);
        unsigned pending = 0, batch = stress_batch(0);
        struct ring_stats st;

        if (p == NULL)
                return;
        for (uint64_t seq = 0; seq < n && !res->failed; seq++) {
                uint32_t body_len = stress_body_len(seq);
                uint32_t len = (uint32_t)sizeof(struct stress_head) + body_len;
                /* Every other record is written into a larger reservation and shrunk. */
                uint32_t want = (seq & 1) ? (uint32_t)sizeof(struct stress_head) + BODY_MAX : len;
                struct stress_head head;
                void *slot = NULL;
                int64_t t;
                uint8_t *payload;
                int rc;

                for (;;) {
                        rc = ring_reserve(p, stress_type(seq), want, &slot);
                        if (rc != -EAGAIN)
                                break;
                        /* wait_space publishes the pending batch before it waits. */
                        pending = 0;
                        t = clock_mono_ns();
                        rc = ring_wait_space(p, want, stress_spin(seq), WAIT_TIMEOUT_NS);
                        if (rc == -ETIMEDOUT || clock_mono_ns() - t >= WAIT_TIMEOUT_NS)
                                rc = timed_out(p, res, seq, 0);
                        if (rc != 0)
                                break;
                }
                if (rc != 0) {
                        fail(res, "seq %" PRIu64 ": %s (%s)", seq, strerror(-rc), ring_why(p));
                        break;
                }
                payload = slot;
                stress_fill(payload + sizeof(head), body_len, seq);
                head.seq = seq;
                head.sum = stress_sum(payload + sizeof(head), body_len);
                head.body_len = body_len;
                memcpy(payload, &head, sizeof(head));
                rc = ring_commit(p, len);
                if (rc != 0) {
                        fail(res, "ring_commit(seq %" PRIu64 "): %s", seq, strerror(-rc));
                        break;
                }
                res->records++;
                res->bytes += len;
                if (++pending >= batch) {
                        ring_publish(p);
                        pending = 0;
                        batch = stress_batch(seq);
                }
        }
        ring_publish(p);
        if (ring_stats(p, &st) == 0)
                res->waits = st.prod.waits;
        ring_close(p);
}

static void stress_check(const struct ring_rec *rec, uint64_t expected, struct stress_result *res)
{
        uint32_t body_len = stress_body_len(expected);
        struct stress_head head;
        const uint8_t *body;

        if (rec->len != sizeof(head) + body_len) {
                fail(res, "seq %" PRIu64 ": len %u, expected %zu", expected, rec->len,
                     sizeof(head) + body_len);
                return;
        }
        memcpy(&head, rec->data, sizeof(head));
        body = (const uint8_t *)rec->data + sizeof(head);
        if (head.seq != expected)
                fail(res, "out of order: seq %" PRIu64 " where %" PRIu64 " was expected",
                     head.seq, expected);
        else if (rec->type != stress_type(expected))
                fail(res, "seq %" PRIu64 ": type %u, expected %u", expected, rec->type,
                     stress_type(expected));
        else if (head.body_len != body_len)
                fail(res, "seq %" PRIu64 ": body_len %u, expected %u", expected, head.body_len, body_len);
        else if (stress_sum(body, body_len) != head.sum)
                fail(res, "seq %" PRIu64 ": checksum mismatch", expected);
        else if (rec->next.count != expected + 1)
                fail(res, "seq %" PRIu64 ": mark count %" PRIu64, expected, rec->next.count);
}

static void stress_consume(uint64_t n, struct stress_result *res)
{
        struct ring *c = stress_attach(RING_CONSUMER, res);
        struct ring_rec recs[PEEK_BATCH];
        unsigned undone = 0, done_every = stress_done_every(0);
        struct ring_stats st;
        uint64_t expected = 0;
        int64_t t;
        int rc;

        if (c == NULL)
                return;
        while (expected < n && !res->failed) {
                int got = ring_peek_batch(c, recs, PEEK_BATCH);

                if (got < 0) {
                        fail(res, "ring_peek_batch: %s (%s)", strerror(-got), ring_why(c));
                        break;
                }
                if (got == 0) {
                        /* Give the producer its room back before sleeping, or both wait. */
                        if (undone > 0) {
                                rc = ring_done(c, ring_cursor(c));
                                if (rc != 0) {
                                        fail(res, "ring_done: %s", strerror(-rc));
                                        break;
                                }
                                undone = 0;
                                done_every = stress_done_every(expected);
                        }
                        t = clock_mono_ns();
                        rc = ring_wait_data(c, stress_spin(expected), WAIT_TIMEOUT_NS);
                        if (rc == -ETIMEDOUT || clock_mono_ns() - t >= WAIT_TIMEOUT_NS)
                                rc = timed_out(c, res, expected, 1);
                        if (rc != 0) {
                                fail(res, "ring_wait_data: %s (%s)", strerror(-rc), ring_why(c));
                                break;
                        }
                        continue;
                }
                for (int i = 0; i < got && !res->failed; i++) {
                        stress_check(&recs[i], expected, res);
                        res->bytes += recs[i].len;
                        expected++;
                }
                ring_release(c);
                undone += (unsigned)got;
                if (undone >= done_every) {
                        rc = ring_done(c, ring_cursor(c));
                        if (rc != 0)
                                fail(res, "ring_done: %s", strerror(-rc));
                        undone = 0;
                        done_every = stress_done_every(expected);
                }
        }
        if (!res->failed && ring_done(c, ring_cursor(c)) != 0)
                fail(res, "final ring_done failed");
        res->records = expected;
        if (ring_stats(c, &st) == 0)
                res->waits = st.cons.waits;
        ring_close(c);
}

struct stress_child {
        pid_t pid;
        int result_rd;
};

/* Forks one side; it reports a stress_result on a pipe and exits 0 or 1. */
static struct stress_child stress_start(int producer, uint64_t n)
{
        struct stress_child sc;
        int fds[2];

        cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
        sc.pid = fork();
        cr_assert_geq(sc.pid, 0, "fork: %s", strerror(errno));
        if (sc.pid == 0) {
                struct stress_result res;

                memset(&res, 0, sizeof(res));
                close(fds[0]);
                if (producer)
                        stress_produce(n, &res);
                else
                        stress_consume(n, &res);
                if (write(fds[1], &res, sizeof(res)) != (ssize_t)sizeof(res))
                        _exit(2);
                _exit(res.failed ? 1 : 0);
        }
        close(fds[1]);
        sc.result_rd = fds[0];
        return sc;
}

/* Reads the side's report and reaps it; status is its exit status or -signal. */
static void stress_finish(struct stress_child *sc, struct stress_result *res, int *status)
{
        ssize_t got = read(sc->result_rd, res, sizeof(*res));
        int ws = 0;

        close(sc->result_rd);
        cr_assert_eq(waitpid(sc->pid, &ws, 0), sc->pid);
        *status = WIFEXITED(ws) ? WEXITSTATUS(ws) : -WTERMSIG(ws);
        if (got != (ssize_t)sizeof(*res)) {
                memset(res, 0, sizeof(*res));
                res->failed = 1;
                snprintf(res->msg, sizeof(res->msg), "died without a report (status %d)", *status);
        }
}

Test(ring_stress, variable_records_cross_a_small_ring_in_order_and_intact, .timeout = 300)
{
        struct stress_result pres, cres;
        struct stress_child prod, cons;
        struct ring_stats st;
        struct ring *o = NULL;
        char why[WHY_MAX] = "";
        uint64_t n = stress_records();
        int64_t t0;
        double secs;
        int rc, pstatus, cstatus;

        rc = ring_create(ti.dirfd, PROD, CONS, STRESS_CAPACITY, 0, why, sizeof(why));
        cr_assert_eq(rc, 0, "ring_create: %s (%s)", strerror(-rc), why);

        t0 = clock_mono_ns();
        cons = stress_start(0, n);
        prod = stress_start(1, n);
        stress_finish(&prod, &pres, &pstatus);
        stress_finish(&cons, &cres, &cstatus);
        secs = (double)(clock_mono_ns() - t0) / (double)NSEC_PER_SEC;
        /* Both reports at once: the first side to fail is usually the cause. */
        cr_assert(!pres.failed && !cres.failed, "producer: %s; consumer: %s",
                  pres.failed ? pres.msg : "ok", cres.failed ? cres.msg : "ok");
        cr_assert_eq(pstatus, 0, "producer exit status %d", pstatus);
        cr_assert_eq(cstatus, 0, "consumer exit status %d", cstatus);

        rc = ring_attach(&o, ti.dirfd, PROD, CONS, RING_OBSERVER, why, sizeof(why));
        cr_assert_eq(rc, 0, "ring_attach: %s (%s)", strerror(-rc), why);
        cr_assert_eq(ring_stats(o, &st), 0);
        ring_close(o);

        fprintf(stderr,
                "ring_stress: %" PRIu64 " records, %.1f MB in %.2f s: %.2f M records/s, %.0f MB/s; "
                "waits: producer %" PRIu64 ", consumer %" PRIu64 "; wakeups sent: producer %" PRIu64
                ", consumer %" PRIu64 "\n",
                cres.records, (double)cres.bytes / 1e6, secs, (double)cres.records / secs / 1e6,
                (double)cres.bytes / secs / 1e6, pres.waits, cres.waits, st.prod.wakeups,
                st.cons.wakeups);

        cr_assert_eq(pres.timeouts, 0u, "the producer's wait timed out %" PRIu64 " times: a lost wake-up",
                     pres.timeouts);
        cr_assert_eq(cres.timeouts, 0u, "the consumer's wait timed out %" PRIu64 " times: a lost wake-up",
                     cres.timeouts);
        cr_assert_eq(pres.records, n);
        cr_assert_eq(cres.records, n);
        cr_assert_eq(cres.bytes, pres.bytes);
        cr_assert_eq(st.write_count, n);
        cr_assert_eq(st.commit_count, n);
        cr_assert_eq(st.commit, st.write, "everything was made durable");
        cr_assert_eq(st.drops, 0u);
        cr_assert_gt(st.write, (uint64_t)STRESS_CAPACITY, "the ring wrapped");
}
