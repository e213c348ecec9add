/* SPDX-License-Identifier: MIT */
/* test_ring_validate.c: corrupt, hostile and misplaced ring files give an error and a reason, never a crash or a hang. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "ring.h"
#include "ring_layout.h"        /* private to ring.c: the offsets a forger needs */
#include "test_instance.h"
#include "why.h"

#define PROD "x"
#define CONS "y"
#define RING_FILE PROD "-" CONS ".ring"
#define CAP 4096u                       /* RING_MIN_CAPACITY: max_record 2040 */
#define MAX_RECORD (CAP / 2 - RING_RECORD_HEADER)
#define FILE_SIZE (RING_HEADER_SIZE + CAP)
#define SMALL_LEN 56u                   /* a 64-byte record: 64 of them fill the ring */
#define SMALL_SIZE 64u
#define RACE_NS (2 * NSEC_PER_SEC)      /* how long a race test keeps trying */
#define RACE_TRIES 20000

/* Header offsets, taken from ring.c's own layout so they follow any change to it. */
#define OFF_MAGIC offsetof(struct ring_shm, magic)
#define OFF_VERSION offsetof(struct ring_shm, version)
#define OFF_HEADER_SIZE offsetof(struct ring_shm, header_size)
#define OFF_CAPACITY offsetof(struct ring_shm, capacity)
#define OFF_MAX_RECORD offsetof(struct ring_shm, max_record)
#define OFF_FLAGS offsetof(struct ring_shm, flags)
#define OFF_PRODUCER offsetof(struct ring_shm, producer)
#define OFF_CONSUMER offsetof(struct ring_shm, consumer)
#define OFF_WRITE offsetof(struct ring_shm, write)
#define OFF_READ offsetof(struct ring_shm, read)
#define OFF_COMMIT offsetof(struct ring_shm, commit)

/* File offset of the record header at ring position pos. */
#define REC_OFF(pos) ((off_t)(RING_HEADER_SIZE + ((pos) & (CAP - 1))))

static struct test_instance ti;

static void setup(void)
{
        test_instance_init(&ti);
}

static void teardown(void)
{
        test_instance_fini(&ti);
}

/* The timeout turns a hang (a FIFO open, a wait that never ends) into a failure. */
TestSuite(ring_validate, .init = setup, .fini = teardown, .timeout = 30);

/* ---- helpers ---- */

static const char *role_name(enum ring_role role)
{
        return role == RING_PRODUCER ? "producer" : role == RING_CONSUMER ? "consumer" : "observer";
}

/* 1 when text contains one of the '|'-separated words, ignoring case. */
static int mentions(const char *text, const char *words)
{
        const char *w = words, *end, *t;
        size_t n;

        while (*w != '\0') {
                end = strchr(w, '|');
                n = end ? (size_t)(end - w) : strlen(w);
                for (t = text; *t != '\0'; t++)
                        if (strncasecmp(t, w, n) == 0)
                                return 1;
                if (end == NULL)
                        break;
                w = end + 1;
        }
        return 0;
}

static void make_ring(void)
{
        char why[WHY_MAX] = "";
        int err = ring_create(ti.dirfd, PROD, CONS, CAP, 0, why, sizeof(why));

        cr_assert_eq(err, 0, "ring_create: %d %s", err, why);
}

static struct ring *attach(enum ring_role role)
{
        char why[WHY_MAX] = "";
        struct ring *r = NULL;
        int err = ring_attach(&r, ti.dirfd, PROD, CONS, role, why, sizeof(why));

        cr_assert_eq(err, 0, "attach as %s: %d %s", role_name(role), err, why);
        cr_assert_not_null(r);
        return r;
}

static int open_ring_file(void)
{
        int fd = openat(ti.dirfd, RING_FILE, O_RDWR | O_NOFOLLOW | O_CLOEXEC);

        cr_assert(fd >= 0, "open %s: %s", RING_FILE, strerror(errno));
        return fd;
}

/* Overwrites bytes of the ring file behind the library's back, as a buggy or hostile process would. */
static void poke(off_t off, const void *buf, size_t len)
{
        int fd = open_ring_file();

        cr_assert_eq(pwrite(fd, buf, len, off), (ssize_t)len, "pwrite at %lld: %s", (long long)off,
                     strerror(errno));
        close(fd);
}

static void poke_u64(off_t off, uint64_t v)
{
        poke(off, &v, sizeof(v));
}

static void poke_u32(off_t off, uint32_t v)
{
        poke(off, &v, sizeof(v));
}

static void set_positions(uint64_t commit, uint64_t read, uint64_t write)
{
        poke_u64(OFF_COMMIT, commit);
        poke_u64(OFF_READ, read);
        poke_u64(OFF_WRITE, write);
}

static void resize(off_t len)
{
        int fd = open_ring_file();

        cr_assert_eq(ftruncate(fd, len), 0, "ftruncate: %s", strerror(errno));
        close(fd);
}

/* The whole ring file, to prove a refused attach wrote nothing; NULL when it is not a regular file. */
static unsigned char *snapshot(size_t *len)
{
        unsigned char *buf;
        struct stat st;
        int fd;

        if (fstatat(ti.dirfd, RING_FILE, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
                return NULL;
        fd = open_ring_file();
        *len = (size_t)st.st_size;
        buf = malloc(*len + 1);
        cr_assert_not_null(buf);
        cr_assert_eq(pread(fd, buf, *len, 0), (ssize_t)*len);
        close(fd);
        return buf;
}

/* Attaching as role fails with err, leaves *rp NULL, and the reason names the ring and the problem. */
static void expect_attach_fails(enum ring_role role, int err, const char *words)
{
        char why[WHY_MAX] = "";
        struct ring *r = (struct ring *)(void *)&ti;    /* any non-NULL value: attach must clear it */
        int got = ring_attach(&r, ti.dirfd, PROD, CONS, role, why, sizeof(why));

        if (got == 0)
                ring_close(r);
        cr_assert_eq(got, err, "attach as %s gave %d (%s), want %d (%s); why: \"%s\"", role_name(role),
                     got, strerror(-got), err, strerror(-err), why);
        cr_expect_null(r, "a failed attach as %s left *rp set", role_name(role));
        cr_expect(strlen(why) > 10, "attach as %s failed without a reason: \"%s\"", role_name(role), why);
        cr_expect(strstr(why, RING_FILE) != NULL, "reason \"%s\" does not name %s", why, RING_FILE);
        cr_expect(mentions(why, words), "reason \"%s\" mentions none of %s", why, words);
}

/* Every role is refused with err, and none of the attempts changed a byte of the file. */
static void expect_every_role_fails(int err, const char *words)
{
        static const enum ring_role roles[] = { RING_CONSUMER, RING_PRODUCER, RING_OBSERVER };
        unsigned char *before, *after;
        size_t len_before = 0, len_after = 0;
        size_t i;

        before = snapshot(&len_before);
        for (i = 0; i < sizeof(roles) / sizeof(roles[0]); i++)
                expect_attach_fails(roles[i], err, words);
        after = snapshot(&len_after);
        if (before != NULL) {
                cr_assert_not_null(after);
                cr_expect_eq(len_after, len_before, "a refused attach resized the file");
                cr_expect(len_after == len_before && memcmp(before, after, len_before) == 0,
                          "a refused attach wrote into the file");
        }
        free(before);
        free(after);
}

/* Publishes n records of len bytes, types 1..n, as a producer that then goes away. */
static void produce(unsigned n, uint32_t len)
{
        struct ring *r = attach(RING_PRODUCER);
        void *p;
        unsigned i;

        for (i = 0; i < n; i++) {
                cr_assert_eq(ring_reserve(r, (uint16_t)(1 + i % RING_TYPE_MAX), len, &p), 0,
                             "reserve %u: %s", i, ring_why(r));
                memset(p, 0xa0 + (int)(i & 0xf), len);
                cr_assert_eq(ring_commit(r, len), 0);
        }
        cr_assert_eq(ring_publish(r), n);
        ring_close(r);
}

/* Peeks n records and makes them durable (moves commit past them), as a consumer that then goes away. */
static void consume(unsigned n)
{
        struct ring *r = attach(RING_CONSUMER);
        struct ring_rec rec;
        unsigned i;

        for (i = 0; i < n; i++)
                cr_assert_eq(ring_peek(r, &rec), 0, "peek %u: %s", i, ring_why(r));
        cr_assert_eq(ring_done(r, ring_cursor(r)), 0);
        ring_close(r);
}

/* Overwrites the record header at ring position pos with one made of len, type and reserved bits. */
static void forge_record(uint64_t pos, uint32_t len, uint16_t type, uint16_t reserved)
{
        poke_u64(REC_OFF(pos), ring_hdr_pack(len, type) | (uint64_t)reserved << 48);
}

/*
 * A consumer attaches (records are not walked at attach), peeks `good`
 * records, then meets the bad one: -EBADMSG with a reason, and the ring
 * stays failed for every later consumer verb.
 */
static void expect_peek_fails_after(unsigned good, const char *words)
{
        struct ring *r = attach(RING_CONSUMER);
        struct ring_rec rec, batch[4];
        struct ring_mark far = { .pos = 1u << 20, .count = 1u << 20 };
        unsigned i;
        int err;

        for (i = 0; i < good; i++)
                cr_assert_eq(ring_peek(r, &rec), 0, "record %u before the bad one: %s", i, ring_why(r));
        err = ring_peek(r, &rec);
        cr_assert_eq(err, -EBADMSG, "peek of the bad record gave %d (%s)", err, strerror(-err));
        cr_expect(strstr(ring_why(r), RING_FILE) != NULL, "reason \"%s\" does not name the ring",
                  ring_why(r));
        cr_expect(mentions(ring_why(r), words), "reason \"%s\" mentions none of %s", ring_why(r), words);
        cr_expect(mentions(ring_why(r), "position"), "reason \"%s\" does not say where", ring_why(r));

        cr_expect_eq(ring_peek(r, &rec), -EBADMSG, "a second peek went past the bad record");
        cr_expect_eq(ring_peek_batch(r, batch, 4), -EBADMSG);
        cr_expect_eq(ring_wait_data(r, 0, NSEC_PER_SEC), -EBADMSG);
        cr_expect_eq(ring_skip_to(r, far), -EBADMSG);
        ring_close(r);
}

/*
 * For damaged positions: both ends refuse to attach; an observer may
 * attach (it maps the header only) but its snapshot reports the damage.
 */
static void expect_positions_refused(void)
{
        struct ring_stats st;
        struct ring *r;
        int err;

        expect_attach_fails(RING_CONSUMER, -EBADMSG, "position");
        expect_attach_fails(RING_PRODUCER, -EBADMSG, "position");
        r = attach(RING_OBSERVER);
        err = ring_stats(r, &st);
        cr_expect_eq(err, -EBADMSG, "ring_stats over bad positions gave %d", err);
        cr_expect(mentions(ring_why(r), "position"), "reason \"%s\" does not mention positions",
                  ring_why(r));
        ring_close(r);
}

/* ---- the file itself ---- */

Test(ring_validate, a_missing_ring_gives_enoent)
{
        expect_every_role_fails(-ENOENT, "exist");
}

Test(ring_validate, a_symlink_in_place_of_the_ring_gives_eloop)
{
        /* The link points at a perfectly good ring: only the link itself is wrong. */
        make_ring();
        cr_assert_eq(renameat(ti.dirfd, RING_FILE, ti.dirfd, "real.ring"), 0);
        cr_assert_eq(symlinkat("real.ring", ti.dirfd, RING_FILE), 0);
        expect_every_role_fails(-ELOOP, "symlink|link");
}

Test(ring_validate, a_dangling_symlink_gives_eloop_not_enoent)
{
        cr_assert_eq(symlinkat("/nonexistent/ring", ti.dirfd, RING_FILE), 0);
        expect_every_role_fails(-ELOOP, "symlink|link");
}

Test(ring_validate, a_group_or_world_readable_file_gives_eperm)
{
        static const mode_t modes[] = { 0644, 0640, 0604, 0660, 0666 };
        size_t i;

        make_ring();
        for (i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
                cr_assert_eq(fchmodat(ti.dirfd, RING_FILE, modes[i], 0), 0);
                expect_every_role_fails(-EPERM, "mode");
        }
}

Test(ring_validate, a_file_owned_by_another_user_gives_eperm)
{
        if (geteuid() != 0)
                cr_skip_test("chown to another user needs root");
        make_ring();
        cr_assert_eq(fchownat(ti.dirfd, RING_FILE, 65534, 65534, AT_SYMLINK_NOFOLLOW), 0);
        expect_every_role_fails(-EPERM, "owned|owner|uid");
}

Test(ring_validate, a_directory_named_like_a_ring_gives_ebadmsg)
{
        cr_assert_eq(mkdirat(ti.dirfd, RING_FILE, 0700), 0);
        expect_every_role_fails(-EBADMSG, "regular");
}

Test(ring_validate, a_fifo_named_like_a_ring_gives_ebadmsg_without_blocking)
{
        /* Opening a FIFO for reading blocks until a writer comes; the suite's timeout catches a hang. */
        cr_assert_eq(mkfifoat(ti.dirfd, RING_FILE, 0600), 0);
        expect_every_role_fails(-EBADMSG, "regular");
}

Test(ring_validate, an_empty_file_gives_ebadmsg)
{
        int fd = openat(ti.dirfd, RING_FILE, O_CREAT | O_EXCL | O_RDWR, 0600);

        cr_assert(fd >= 0);
        close(fd);
        expect_every_role_fails(-EBADMSG, "header|truncated");
}

Test(ring_validate, a_file_shorter_than_the_header_gives_ebadmsg)
{
        make_ring();
        resize(RING_HEADER_SIZE - 1);
        expect_every_role_fails(-EBADMSG, "header|truncated");
        resize(100);
        expect_every_role_fails(-EBADMSG, "header|truncated");
}

Test(ring_validate, a_file_shorter_than_its_data_area_gives_ebadmsg_not_sigbus)
{
        /* Mapped, the missing pages would SIGBUS on first touch: attach must refuse first. */
        make_ring();
        resize(RING_HEADER_SIZE + CAP / 2);
        expect_every_role_fails(-EBADMSG, "truncated|bytes");
        resize(FILE_SIZE - 8);
        expect_every_role_fails(-EBADMSG, "truncated|bytes");
        resize(RING_HEADER_SIZE);
        expect_every_role_fails(-EBADMSG, "truncated|bytes");
}

Test(ring_validate, a_file_longer_than_its_geometry_gives_ebadmsg)
{
        make_ring();
        resize(FILE_SIZE + 4096);
        expect_every_role_fails(-EBADMSG, "bytes");
}

Test(ring_validate, a_header_claiming_more_capacity_than_the_file_holds_gives_ebadmsg)
{
        /* A consistent header (capacity and max_record agree) that lies about the size. */
        make_ring();
        poke_u64(OFF_CAPACITY, 2 * CAP);
        poke_u32(OFF_MAX_RECORD, CAP - RING_RECORD_HEADER);
        expect_every_role_fails(-EBADMSG, "truncated|bytes");
        poke_u64(OFF_CAPACITY, RING_MAX_CAPACITY);
        poke_u32(OFF_MAX_RECORD, RING_MAX_CAPACITY / 2 - RING_RECORD_HEADER);
        expect_every_role_fails(-EBADMSG, "truncated|bytes");
}

/* ---- the header ---- */

Test(ring_validate, a_bad_magic_gives_ebadmsg)
{
        make_ring();
        poke_u64(OFF_MAGIC, RING_MAGIC ^ 1);
        expect_every_role_fails(-EBADMSG, "magic");
        poke_u64(OFF_MAGIC, 0);
        expect_every_role_fails(-EBADMSG, "magic");
}

Test(ring_validate, a_file_of_zeros_the_right_size_gives_ebadmsg)
{
        int fd = openat(ti.dirfd, RING_FILE, O_CREAT | O_EXCL | O_RDWR, 0600);

        cr_assert(fd >= 0);
        cr_assert_eq(ftruncate(fd, FILE_SIZE), 0);
        close(fd);
        expect_every_role_fails(-EBADMSG, "magic");
}

Test(ring_validate, another_layout_version_gives_eproto)
{
        make_ring();
        poke_u32(OFF_VERSION, RING_LAYOUT_VERSION + 1);
        expect_every_role_fails(-EPROTO, "version");
        poke_u32(OFF_VERSION, 0);
        expect_every_role_fails(-EPROTO, "version");
        poke_u32(OFF_VERSION, UINT32_MAX);
        expect_every_role_fails(-EPROTO, "version");
}

Test(ring_validate, a_wrong_header_size_gives_ebadmsg)
{
        make_ring();
        poke_u32(OFF_HEADER_SIZE, 2 * RING_HEADER_SIZE);
        expect_every_role_fails(-EBADMSG, "header size");
        poke_u32(OFF_HEADER_SIZE, 0);
        expect_every_role_fails(-EBADMSG, "header size");
}

Test(ring_validate, a_capacity_that_is_not_a_power_of_two_in_range_gives_ebadmsg)
{
        static const uint64_t bad[] = {
                0, 1, CAP + 8, CAP * 3 / 2, CAP - 8, RING_MIN_CAPACITY / 2,
                (uint64_t)RING_MAX_CAPACITY * 2, 1ull << 62, 1ull << 63, UINT64_MAX,
        };
        size_t i;

        make_ring();
        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                poke_u64(OFF_CAPACITY, bad[i]);
                /* max_record agrees with the bad capacity, so only the capacity is wrong. */
                poke_u32(OFF_MAX_RECORD, (uint32_t)(bad[i] / 2 - RING_RECORD_HEADER));
                expect_every_role_fails(-EBADMSG, "capacity");
        }
}

Test(ring_validate, a_max_record_that_does_not_match_the_capacity_gives_ebadmsg)
{
        make_ring();
        poke_u32(OFF_MAX_RECORD, MAX_RECORD + 8);
        expect_every_role_fails(-EBADMSG, "max record|max_record");
        poke_u32(OFF_MAX_RECORD, UINT32_MAX);
        expect_every_role_fails(-EBADMSG, "max record|max_record");
}

Test(ring_validate, unknown_flags_give_ebadmsg)
{
        make_ring();
        poke_u32(OFF_FLAGS, RING_LOSSY | 0x80000000u);
        expect_every_role_fails(-EBADMSG, "flags");
}

Test(ring_validate, header_names_of_another_ring_give_ebadmsg)
{
        static const char other[RING_NAME_MAX + 1] = "z";

        make_ring();
        poke(OFF_PRODUCER, other, sizeof(other));
        expect_every_role_fails(-EBADMSG, "name|different");
        poke(OFF_PRODUCER, PROD, sizeof(PROD));
        poke(OFF_CONSUMER, other, sizeof(other));
        expect_every_role_fails(-EBADMSG, "name|different");
}

Test(ring_validate, a_ring_file_renamed_to_another_rings_name_gives_ebadmsg)
{
        char why[WHY_MAX] = "";
        struct ring *r = NULL;
        int err;

        make_ring();
        cr_assert_eq(renameat(ti.dirfd, RING_FILE, ti.dirfd, "a-b.ring"), 0);
        err = ring_attach(&r, ti.dirfd, "a", "b", RING_CONSUMER, why, sizeof(why));
        cr_assert_eq(err, -EBADMSG, "attach a-b.ring holding x->y gave %d: %s", err, why);
        cr_expect_null(r);
        cr_expect(strstr(why, "a-b.ring") != NULL && mentions(why, "name|different"), "why: %s", why);
}

Test(ring_validate, header_names_without_a_terminating_nul_give_ebadmsg)
{
        char full[RING_NAME_MAX + 1];

        make_ring();
        memset(full, 'x', sizeof(full));
        poke(OFF_PRODUCER, full, sizeof(full));
        expect_every_role_fails(-EBADMSG, "name|different");
        poke(OFF_PRODUCER, PROD, sizeof(PROD));
        memset(full, 'y', sizeof(full));
        poke(OFF_CONSUMER, full, sizeof(full));
        expect_every_role_fails(-EBADMSG, "name|different");
}

/* ---- positions ---- */

/* Four 64-byte records published, two of them durable: commit 128, read 128, write 256. */
static void make_ring_with_records(void)
{
        make_ring();
        produce(4, SMALL_LEN);
        consume(2);
}

Test(ring_validate, commit_beyond_read_is_refused)
{
        make_ring_with_records();
        set_positions(192, 128, 256);
        expect_positions_refused();
}

Test(ring_validate, read_beyond_write_is_refused)
{
        make_ring_with_records();
        set_positions(128, 320, 256);
        expect_positions_refused();
}

Test(ring_validate, commit_beyond_write_is_refused)
{
        make_ring_with_records();
        set_positions(320, 320, 256);
        expect_positions_refused();
}

Test(ring_validate, write_more_than_a_capacity_ahead_of_commit_is_refused)
{
        make_ring_with_records();
        set_positions(128, 128, 128 + CAP + 8);
        expect_positions_refused();
        set_positions(0, 0, UINT64_MAX - 7);
        expect_positions_refused();
}

Test(ring_validate, misaligned_positions_are_refused)
{
        make_ring_with_records();
        set_positions(128, 128, 257);
        expect_positions_refused();
        set_positions(128, 132, 256);
        expect_positions_refused();
        set_positions(124, 128, 256);
        expect_positions_refused();
}

Test(ring_validate, positions_near_the_top_of_the_range_are_handled_without_overflow)
{
        /* Valid positions a very long-lived ring could reach: 2^64 - a few capacities. */
        const uint64_t base = UINT64_MAX - 4 * (uint64_t)CAP + 1;
        struct ring *r;

        make_ring();
        set_positions(base, base, base);
        r = attach(RING_CONSUMER);
        ring_close(r);
        set_positions(base, base, base + CAP + 8);
        expect_positions_refused();
}

/* ---- records (found when the consumer walks them) ---- */

Test(ring_validate, a_record_longer_than_max_record_fails_the_peek)
{
        make_ring();
        produce(3, SMALL_LEN);
        forge_record(SMALL_SIZE, MAX_RECORD + 1, 1, 0);
        expect_peek_fails_after(1, "maximum|max");
}

Test(ring_validate, a_record_length_near_uint32_max_fails_the_peek)
{
        /* The aligned size of such a length overflows 32 bits. */
        make_ring();
        produce(3, SMALL_LEN);
        forge_record(0, UINT32_MAX - 3, 1, 0);
        expect_peek_fails_after(0, "maximum|max");
}

Test(ring_validate, a_record_crossing_the_end_of_the_data_area_fails_the_peek)
{
        /*
         * 63 records fill 4032 bytes and are made durable; two more go at
         * 4032 (up to the end exactly) and 4096 (wrapped to offset 0). The
         * first is made long enough to reach write but not through the tail:
         * it would read past the end of the data area.
         */
        make_ring();
        produce(63, SMALL_LEN);
        consume(63);
        produce(2, SMALL_LEN);
        forge_record(63 * SMALL_SIZE, 2 * SMALL_SIZE - RING_RECORD_HEADER, 1, 0);
        expect_peek_fails_after(0, "end of the data area|end");
}

Test(ring_validate, a_record_reaching_beyond_write_fails_the_peek)
{
        make_ring();
        produce(3, SMALL_LEN);
        forge_record(2 * SMALL_SIZE, SMALL_LEN + 8, 1, 0);
        expect_peek_fails_after(2, "write");
}

/* 63 durable records, then a record too big for the 64-byte tail: a padding record at 4032. */
static void make_ring_with_padding(void)
{
        struct ring *r;
        void *p;

        make_ring();
        produce(63, SMALL_LEN);
        consume(63);
        r = attach(RING_PRODUCER);
        cr_assert_eq(ring_reserve(r, 7, 100, &p), 0);
        memset(p, 0x5a, 100);
        cr_assert_eq(ring_commit(r, 100), 0);
        cr_assert_eq(ring_publish(r), 1);
        ring_close(r);
}

Test(ring_validate, a_valid_padding_record_is_skipped)
{
        struct ring_rec rec;
        struct ring *r;

        make_ring_with_padding();
        r = attach(RING_CONSUMER);
        cr_assert_eq(ring_peek(r, &rec), 0, "%s", ring_why(r));
        cr_expect_eq(rec.type, 7);
        cr_expect_eq(rec.len, 100);
        cr_expect_eq(rec.pos, CAP, "the record after the padding starts the next lap");
        ring_close(r);
}

Test(ring_validate, a_padding_record_shorter_than_the_tail_fails_the_peek)
{
        make_ring_with_padding();
        forge_record(63 * SMALL_SIZE, 16, RING_TYPE_PAD, 0);
        expect_peek_fails_after(0, "padding");
}

Test(ring_validate, a_padding_record_longer_than_the_tail_fails_the_peek)
{
        make_ring_with_padding();
        forge_record(63 * SMALL_SIZE, SMALL_SIZE, RING_TYPE_PAD, 0);
        expect_peek_fails_after(0, "padding");
}

Test(ring_validate, a_padding_record_in_the_middle_of_the_data_fails_the_peek)
{
        make_ring();
        produce(3, SMALL_LEN);
        forge_record(SMALL_SIZE, SMALL_LEN, RING_TYPE_PAD, 0);
        expect_peek_fails_after(1, "padding");
}

Test(ring_validate, nonzero_reserved_record_header_bits_fail_the_peek)
{
        make_ring();
        produce(3, SMALL_LEN);
        forge_record(SMALL_SIZE, SMALL_LEN, 1, 0x0001);
        expect_peek_fails_after(1, "reserved");
}

Test(ring_validate, the_top_reserved_record_header_bit_fails_the_peek)
{
        make_ring();
        produce(3, SMALL_LEN);
        forge_record(0, SMALL_LEN, 1, 0x8000);
        expect_peek_fails_after(0, "reserved");
}

Test(ring_validate, skip_to_over_a_bad_record_fails_and_keeps_the_ring_failed)
{
        struct ring_mark mark = { .pos = 3 * SMALL_SIZE, .count = 3 };
        struct ring_rec rec;
        struct ring *r;

        make_ring();
        produce(3, SMALL_LEN);
        forge_record(SMALL_SIZE, MAX_RECORD + 1, 1, 0);
        r = attach(RING_CONSUMER);
        cr_expect_eq(ring_skip_to(r, mark), -EBADMSG);
        cr_expect(mentions(ring_why(r), "record"), "why: %s", ring_why(r));
        cr_expect_eq(ring_peek(r, &rec), -EBADMSG);
        ring_close(r);
}

/* ---- a hostile peer while we are attached ---- */

/* Publishes 64-byte records until the producer finds the ring full: a whole lap of them. */
static void fill(struct ring *r)
{
        unsigned n = 0;
        void *p;
        int err;

        while ((err = ring_reserve(r, 1, SMALL_LEN, &p)) == 0) {
                memset(p, 0x11, SMALL_LEN);
                cr_assert_eq(ring_commit(r, SMALL_LEN), 0);
                ring_publish(r);
                n++;
        }
        cr_assert_eq(err, -EAGAIN, "filling: %d %s", err, ring_why(r));
        cr_assert_eq(n, CAP / SMALL_SIZE);
}

/* A producer that has filled the ring and knows it is full. */
static struct ring *full_producer(void)
{
        struct ring *r = attach(RING_PRODUCER);

        fill(r);
        return r;
}

/* The producer refuses to reserve (and so to overwrite anything) once the shared commit is bad. */
static void expect_reserve_refused(struct ring *r)
{
        unsigned char *before, *after;
        size_t len_before = 0, len_after = 0;
        void *p = NULL;
        int err;

        before = snapshot(&len_before);
        err = ring_reserve(r, 1, SMALL_LEN, &p);
        cr_expect_eq(err, -EBADMSG, "reserve over a hostile commit gave %d", err);
        cr_expect(mentions(ring_why(r), "commit"), "reason \"%s\" does not name commit", ring_why(r));
        cr_expect_eq(ring_reserve(r, 1, 8, &p), -EBADMSG, "the ring did not stay failed");
        cr_expect_eq(ring_wait_space(r, 8, 0, NSEC_PER_SEC), -EBADMSG);
        cr_expect_eq(ring_publish(r), 0);
        after = snapshot(&len_after);
        cr_assert(before != NULL && after != NULL && len_before == len_after);
        cr_expect(memcmp(before + RING_HEADER_SIZE, after + RING_HEADER_SIZE, CAP) == 0,
                  "the producer overwrote the data area");
        cr_expect(memcmp(before + OFF_WRITE, after + OFF_WRITE, sizeof(uint64_t)) == 0,
                  "the producer moved write");
        free(before);
        free(after);
}

Test(ring_validate, a_commit_moved_beyond_write_stops_the_producer_instead_of_overwriting)
{
        struct ring *r;

        make_ring();
        r = full_producer();
        poke_u64(OFF_COMMIT, CAP + CAP);        /* write is CAP */
        expect_reserve_refused(r);
        ring_close(r);
}

Test(ring_validate, a_commit_moved_backwards_or_misaligned_stops_the_producer)
{
        static const uint64_t bad[] = { CAP - SMALL_SIZE, CAP + 4 };
        struct ring *r;
        size_t i;

        for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                make_ring();
                /* The producer sees commit reach CAP, then fills the ring again. */
                r = full_producer();
                consume(CAP / SMALL_SIZE);
                fill(r);
                poke_u64(OFF_COMMIT, bad[i]);
                expect_reserve_refused(r);
                ring_close(r);
                cr_assert_eq(unlinkat(ti.dirfd, RING_FILE, 0), 0);
        }
}

/* A consumer that has peeked everything of two published records, so its next peek reloads write. */
static struct ring *caught_up_consumer(void)
{
        struct ring_rec rec;
        struct ring *r;

        make_ring();
        produce(2, SMALL_LEN);
        r = attach(RING_CONSUMER);
        cr_assert_eq(ring_peek(r, &rec), 0);
        cr_assert_eq(ring_peek(r, &rec), 0);
        cr_assert_eq(ring_peek(r, &rec), -EAGAIN);
        return r;
}

static void expect_write_refused(struct ring *r)
{
        struct ring_rec rec;
        int err;

        err = ring_peek(r, &rec);
        cr_expect_eq(err, -EBADMSG, "peek over a hostile write gave %d", err);
        cr_expect(mentions(ring_why(r), "write"), "reason \"%s\" does not name write", ring_why(r));
        cr_expect_eq(ring_peek(r, &rec), -EBADMSG, "the ring did not stay failed");
        cr_expect_eq(ring_wait_data(r, 0, NSEC_PER_SEC), -EBADMSG);
}

Test(ring_validate, a_write_moved_more_than_a_capacity_ahead_fails_the_consumer)
{
        struct ring *r = caught_up_consumer();

        poke_u64(OFF_WRITE, CAP + 8);   /* commit is 0 */
        expect_write_refused(r);
        ring_close(r);
}

Test(ring_validate, a_write_moved_backwards_fails_the_consumer)
{
        struct ring *r = caught_up_consumer();

        poke_u64(OFF_WRITE, SMALL_SIZE);
        /* Nothing new is visible, so the consumer notices on its next look at write. */
        expect_write_refused(r);
        ring_close(r);
}

Test(ring_validate, a_misaligned_write_fails_the_consumer)
{
        struct ring *r = caught_up_consumer();

        poke_u64(OFF_WRITE, 2 * SMALL_SIZE + 4);
        expect_write_refused(r);
        ring_close(r);
}

Test(ring_validate, a_wait_for_data_over_a_hostile_write_ends_at_once)
{
        struct ring *r = caught_up_consumer();
        int64_t t0;

        poke_u64(OFF_WRITE, 2 * SMALL_SIZE + 4);
        t0 = clock_mono_ns();
        cr_expect_eq(ring_wait_data(r, 0, 5 * NSEC_PER_SEC), -EBADMSG);
        cr_expect_lt(clock_mono_ns() - t0, NSEC_PER_SEC, "the wait did not notice the bad write");
        ring_close(r);
}

/*
 * A child that keeps flipping one shared position between a valid and an
 * invalid value through its own mapping, until it is killed.
 */
static pid_t start_flipper(size_t off, uint64_t good, uint64_t bad)
{
        pid_t pid = fork();

        cr_assert(pid >= 0);
        if (pid == 0) {
                int fd = openat(ti.dirfd, RING_FILE, O_RDWR | O_CLOEXEC);
                unsigned char *h = fd < 0 ? MAP_FAILED
                        : mmap(NULL, RING_HEADER_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                _Atomic uint64_t *pos;

                if (h == MAP_FAILED)
                        _exit(1);
                pos = (_Atomic uint64_t *)(void *)(h + off);
                for (;;) {
                        atomic_store_explicit(pos, good, memory_order_relaxed);
                        atomic_store_explicit(pos, bad, memory_order_relaxed);
                }
        }
        return pid;
}

static void stop_flipper(pid_t pid)
{
        int status;

        kill(pid, SIGKILL);
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                  "the flipper could not map the ring (status %d)", status);
}

Test(ring_validate, a_commit_flipping_during_consumer_attach_never_gives_a_misaligned_cursor)
{
        /*
         * read = write = CAP and commit flips between 0 (valid) and CAP - 4
         * (misaligned). Whatever commit attach validated must be the one it
         * starts from: a cursor of CAP - 4 would read a record header across
         * the end of the mapping.
         */
        int64_t deadline;
        unsigned tries, attached = 0;
        pid_t pid;

        make_ring();
        set_positions(0, CAP, CAP);
        pid = start_flipper(OFF_COMMIT, 0, CAP - 4);
        deadline = clock_mono_ns() + RACE_NS;
        for (tries = 0; tries < RACE_TRIES && clock_mono_ns() < deadline; tries++) {
                struct ring *r = NULL;
                uint64_t cursor;

                poke_u64(OFF_READ, CAP);        /* each attach moves read back to its commit */
                if (ring_attach(&r, ti.dirfd, PROD, CONS, RING_CONSUMER, NULL, 0) != 0)
                        continue;
                attached++;
                cursor = ring_cursor(r).pos;
                ring_close(r);
                if (cursor % RING_ALIGN != 0) {
                        stop_flipper(pid);
                        cr_assert_fail("attach %u validated commit but started from %llu", tries,
                                       (unsigned long long)cursor);
                }
        }
        stop_flipper(pid);
        cr_log_info("%u of %u attaches got through", attached, tries);
        cr_expect_gt(attached, 0, "no attach got through in %u tries", tries);
}

Test(ring_validate, a_write_flipping_during_producer_attach_never_gives_a_misaligned_record)
{
        /* commit = read = CAP and write flips between CAP (valid) and CAP + 4 (misaligned). */
        int64_t deadline;
        unsigned tries, attached = 0;
        pid_t pid;

        make_ring();
        set_positions(CAP, CAP, CAP);
        pid = start_flipper(OFF_WRITE, CAP, CAP + 4);
        deadline = clock_mono_ns() + RACE_NS;
        for (tries = 0; tries < RACE_TRIES && clock_mono_ns() < deadline; tries++) {
                struct ring *r = NULL;
                void *p = NULL;
                int err;

                if (ring_attach(&r, ti.dirfd, PROD, CONS, RING_PRODUCER, NULL, 0) != 0)
                        continue;
                attached++;
                err = ring_reserve(r, 1, 8, &p);
                ring_close(r);
                if (err == 0 && (uintptr_t)p % RING_ALIGN != 0) {
                        stop_flipper(pid);
                        cr_assert_fail("attach %u validated write but reserved at %p", tries, p);
                }
        }
        stop_flipper(pid);
        cr_log_info("%u of %u attaches got through", attached, tries);
        cr_expect_gt(attached, 0, "no attach got through in %u tries", tries);
}

/* 1 when name is a terminated string within RING_NAME_MAX bytes equal to want; never reads past that. */
static int name_is(const char *name, const char *want)
{
        return strnlen(name, RING_NAME_MAX + 1) <= RING_NAME_MAX && strcmp(name, want) == 0;
}

Test(ring_validate, names_stay_the_validated_ones_when_a_peer_scribbles_over_the_header)
{
        /*
         * The names were checked at attach; a peer that later fills the
         * name fields leaves no terminating NUL in them, and a name read
         * from shared memory then runs on into whatever follows.
         */
        static const enum ring_role roles[] = { RING_CONSUMER, RING_PRODUCER, RING_OBSERVER };
        char junk[RING_NAME_MAX + 1], prod[RING_NAME_MAX + 1] = PROD, cons[RING_NAME_MAX + 1] = CONS;
        struct ring *r;
        size_t i;

        make_ring();
        memset(junk, 'A', sizeof(junk));
        for (i = 0; i < sizeof(roles) / sizeof(roles[0]); i++) {
                r = attach(roles[i]);
                poke(OFF_PRODUCER, junk, sizeof(junk));
                poke(OFF_CONSUMER, junk, sizeof(junk));
                cr_expect(name_is(ring_producer_name(r), PROD), "%s: producer name is no longer \"%s\"",
                          role_name(roles[i]), PROD);
                cr_expect(name_is(ring_consumer_name(r), CONS), "%s: consumer name is no longer \"%s\"",
                          role_name(roles[i]), CONS);
                poke(OFF_PRODUCER, prod, sizeof(prod));
                poke(OFF_CONSUMER, cons, sizeof(cons));
                ring_close(r);
        }
}

/* ---- verbs of the wrong role ---- */

Test(ring_validate, consumer_verbs_on_a_producer_or_observer_give_einval)
{
        struct ring_mark zero = { 0, 0 };
        struct ring *ends[2];
        struct ring_rec rec;
        size_t i;

        make_ring();
        produce(2, SMALL_LEN);
        ends[0] = attach(RING_PRODUCER);
        ends[1] = attach(RING_OBSERVER);
        for (i = 0; i < 2; i++) {
                cr_expect_eq(ring_peek(ends[i], &rec), -EINVAL);
                cr_expect_eq(ring_peek_batch(ends[i], &rec, 1), -EINVAL);
                cr_expect_eq(ring_done(ends[i], zero), -EINVAL);
                cr_expect_eq(ring_skip_to(ends[i], zero), -EINVAL);
                cr_expect_eq(ring_wait_data(ends[i], 0, NSEC_PER_MSEC), -EINVAL);
                ring_release(ends[i]);
        }
        ring_close(ends[0]);
        ring_close(ends[1]);
}

Test(ring_validate, producer_verbs_on_a_consumer_or_observer_give_einval)
{
        struct ring *ends[2];
        unsigned char *before, *after;
        size_t len_before = 0, len_after = 0;
        void *p;
        size_t i;

        make_ring();
        produce(2, SMALL_LEN);
        ends[0] = attach(RING_CONSUMER);
        ends[1] = attach(RING_OBSERVER);
        before = snapshot(&len_before);
        for (i = 0; i < 2; i++) {
                cr_expect_eq(ring_reserve(ends[i], 1, 8, &p), -EINVAL);
                /* No reservation is open on an end that cannot reserve. */
                cr_expect_eq(ring_commit(ends[i], 0), -EINVAL);
                ring_abort(ends[i]);
                cr_expect_eq(ring_publish(ends[i]), 0);
                cr_expect_eq(ring_wait_space(ends[i], 8, 0, NSEC_PER_MSEC), -EINVAL);
        }
        after = snapshot(&len_after);
        cr_assert(before != NULL && after != NULL && len_before == len_after);
        cr_expect(memcmp(before + RING_HEADER_SIZE, after + RING_HEADER_SIZE, CAP) == 0,
                  "a producer verb on another role wrote into the data area");
        free(before);
        free(after);
        ring_close(ends[0]);
        ring_close(ends[1]);
}
