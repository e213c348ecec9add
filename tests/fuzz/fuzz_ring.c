/* SPDX-License-Identifier: MIT */
/* fuzz_ring.c: libFuzzer target that attaches every role to a ring file made of fuzzed bytes and walks it. */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "instance.h"
#include "ring.h"
#include "ring_layout.h"        /* private to ring.c: where a hostile peer pokes */
#include "why.h"

/*
 * Input layout:
 *   byte 0      mode: bit 0 clear = overlay the template, set = the input
 *               is the whole file; bit 1 = then cut the file to a length
 *               taken from the control bytes; bit 2 = make the template
 *               lossy
 *   bytes 1-15  control: where the consumer marks done, the skip_to target,
 *               the lengths the producer reserves, the cut length, and
 *               what a hostile peer does while we are attached (move
 *               `write` under the consumer, `commit` under the producer)
 *   the rest    mode 1: the file; mode 0: chunks of (offset lo, offset hi,
 *               n, n bytes) written over a valid ring image, so the fuzzer
 *               gets past the header checks and into the record walker
 */
#define FUZZ_PROD "p"
#define FUZZ_CONS "c"
#define FUZZ_FILE FUZZ_PROD "-" FUZZ_CONS ".ring"
#define FUZZ_CAP 4096u
#define TEMPLATE_SIZE (RING_HEADER_SIZE + FUZZ_CAP)
#define CTL_SIZE 15
#define FILE_MAX (1u << 20)     /* a longer input is cut to this (make fuzz uses -max_len=65536) */
#define PEEK_MAX (FILE_MAX / RING_ALIGN)     /* more than a lap of the smallest records */
#define PRODUCE_MAX 4
#define BATCH_MAX 8

/* Hostile peer actions, control byte 10. */
#define HOSTILE_WRITE 0x1       /* moves write by the delta once the consumer has caught up */
#define HOSTILE_COMMIT 0x2      /* moves commit by the delta after the producer's first reserve */
#define HOSTILE_WAIT 0x4        /* after the move, the consumer first waits (zero timeout), then peeks */

struct fuzz_ctl {
        unsigned done_at;       /* the consumer marks done after this many records */
        uint32_t skip_delta;    /* skip_to target: commit + 8 * skip_delta */
        uint32_t skip_count;    /* ... with commit_count + skip_count records */
        uint32_t lens[PRODUCE_MAX];
        size_t cut;             /* file length when mode bit 1 is set */
        unsigned hostile;       /* HOSTILE_* */
        int64_t delta;          /* bytes the hostile peer moves a position by */
};

static char fuzz_instance[INSTANCE_NAME_MAX + 1];
static int fuzz_dirfd = -1;
static int fuzz_fd = -1;        /* the ring file, rewritten for every input */
static unsigned char template_image[TEMPLATE_SIZE];
static unsigned char *file_buf;

/* A broken invariant is a bug in ring.c even when nothing crashed: make libFuzzer keep the input. */
#define FUZZ_CHECK(cond)                                                                \
        do {                                                                            \
                if (!(cond)) {                                                          \
                        fprintf(stderr, "fuzz_ring: %s:%d: invariant broken: %s\n",     \
                                __FILE__, __LINE__, #cond);                             \
                        abort();                                                        \
                }                                                                       \
        } while (0)

static void fuzz_die(const char *what, const char *why)
{
        fprintf(stderr, "fuzz_ring: %s: %s\n", what, why);
        exit(1);
}

static void fuzz_cleanup(void)
{
        if (fuzz_fd >= 0)
                close(fuzz_fd);
        if (fuzz_dirfd >= 0)
                close(fuzz_dirfd);
        fuzz_fd = fuzz_dirfd = -1;
        instance_remove(fuzz_instance);
        free(file_buf);
        file_buf = NULL;
}

/*
 * Removes the fuzz-<pid> instances of fuzzers that are gone: one stopped
 * by a signal or a crash exits without running its atexit cleanup.
 */
static void remove_stale_instances(void)
{
        DIR *dir = opendir(INSTANCE_ROOT);
        struct dirent *de;
        char *end;
        long pid;

        if (dir == NULL)
                return;
        while ((de = readdir(dir)) != NULL) {
                if (strncmp(de->d_name, "fuzz-", 5) != 0)
                        continue;
                pid = strtol(de->d_name + 5, &end, 10);
                if (*end == '\0' && pid > 0 && kill((pid_t)pid, 0) != 0 && errno == ESRCH)
                        instance_remove(de->d_name);
        }
        closedir(dir);
}

/* Publishes records of the given lengths; stops at the first that does not fit. */
static void template_produce(struct ring *r, const uint32_t *lens, unsigned n)
{
        unsigned i;
        void *p;

        for (i = 0; i < n; i++) {
                if (ring_reserve(r, (uint16_t)(1 + i), lens[i], &p) != 0)
                        break;
                memset(p, 0x40 + (int)i, lens[i]);
                ring_commit(r, lens[i]);
        }
        ring_publish(r);
}

/*
 * A valid ring worth mutating: records of many lengths, a padding record at
 * the wrap, and commit < read < write, so every check has something to see.
 */
static void template_build(void)
{
        static const uint32_t first[] = { 0, 1, 7, 8, 9, 63, 200, 500, 1000, 24, 16, 300, 2, 40 };
        static const uint32_t second[] = { 700, 900, 33, 5, 600, 17 };
        char why[WHY_MAX] = "";
        struct ring_stats st;
        struct ring_rec rec;
        struct ring *prod = NULL, *cons = NULL;
        unsigned i;
        int err;

        err = ring_create(fuzz_dirfd, FUZZ_PROD, FUZZ_CONS, FUZZ_CAP, 0, why, sizeof(why));
        if (err == 0)
                err = ring_attach(&prod, fuzz_dirfd, FUZZ_PROD, FUZZ_CONS, RING_PRODUCER, why, sizeof(why));
        if (err == 0)
                err = ring_attach(&cons, fuzz_dirfd, FUZZ_PROD, FUZZ_CONS, RING_CONSUMER, why, sizeof(why));
        if (err != 0)
                fuzz_die("template", why);
        template_produce(prod, first, sizeof(first) / sizeof(first[0]));
        /* Eight records durable, three more looked at: commit < read. */
        for (i = 0; i < 11 && ring_peek(cons, &rec) == 0; i++)
                if (i == 7 && ring_done(cons, rec.next) != 0)
                        fuzz_die("template", "ring_done failed");
        ring_release(cons);
        /* Enough to wrap past the end of the data area behind a padding record. */
        template_produce(prod, second, sizeof(second) / sizeof(second[0]));
        if (ring_stats(cons, &st) != 0 || !(st.commit < st.read && st.read < st.write) ||
            st.write <= FUZZ_CAP)
                fuzz_die("template", "the image is not the wrapped, part-consumed ring it should be");
        ring_close(cons);
        ring_close(prod);
        fuzz_fd = openat(fuzz_dirfd, FUZZ_FILE, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
        if (fuzz_fd < 0 ||
            pread(fuzz_fd, template_image, sizeof(template_image), 0) != (ssize_t)sizeof(template_image))
                fuzz_die("template", "cannot read the ring image back");
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
        char why[WHY_MAX] = "";

        (void)argc;
        (void)argv;
        remove_stale_instances();
        snprintf(fuzz_instance, sizeof(fuzz_instance), "fuzz-%ld", (long)getpid());
        instance_remove(fuzz_instance);
        fuzz_dirfd = instance_open(fuzz_instance, 1, why, sizeof(why));
        if (fuzz_dirfd < 0)
                fuzz_die(fuzz_instance, why);
        atexit(fuzz_cleanup);
        file_buf = malloc(FILE_MAX);
        if (file_buf == NULL)
                fuzz_die("malloc", "out of memory");
        template_build();
        return 0;
}

static uint32_t get_u16(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static void ctl_parse(const uint8_t *c, struct fuzz_ctl *ctl)
{
        unsigned i;

        ctl->done_at = c[0];
        ctl->skip_delta = get_u16(c + 1) & 0x1fff;
        ctl->skip_count = c[3];
        /* Up to a little past max_record, so -EMSGSIZE is reached too. */
        for (i = 0; i < PRODUCE_MAX; i++)
                ctl->lens[i] = (uint32_t)c[4 + i] * 9u;
        ctl->cut = get_u16(c + 8) * 2u;
        ctl->hostile = c[10];
        ctl->delta = (int32_t)((uint32_t)get_u16(c + 11) | (uint32_t)get_u16(c + 13) << 16);
}

/* Builds the file image for this input into file_buf; returns its length. */
static size_t image_build(unsigned mode, const uint8_t *data, size_t size, const struct fuzz_ctl *ctl)
{
        size_t len, off, n;

        if (mode & 1) {
                len = size < FILE_MAX ? size : FILE_MAX;
                memcpy(file_buf, data, len);
        } else {
                len = TEMPLATE_SIZE;
                memcpy(file_buf, template_image, len);
                while (size >= 3) {
                        off = get_u16(data) % TEMPLATE_SIZE;
                        n = data[2];
                        data += 3;
                        size -= 3;
                        n = n < size ? n : size;
                        n = n < TEMPLATE_SIZE - off ? n : TEMPLATE_SIZE - off;
                        memcpy(file_buf + off, data, n);
                        data += n;
                        size -= n;
                }
                if (mode & 4) {
                        uint32_t flags;

                        memcpy(&flags, file_buf + offsetof(struct ring_shm, flags), sizeof(flags));
                        flags |= RING_LOSSY;
                        memcpy(file_buf + offsetof(struct ring_shm, flags), &flags, sizeof(flags));
                }
        }
        if ((mode & 2) && ctl->cut < len)
                len = ctl->cut;
        return len;
}

static void image_write(size_t len)
{
        if (ftruncate(fuzz_fd, (off_t)len) != 0 ||
            (len > 0 && pwrite(fuzz_fd, file_buf, len, 0) != (ssize_t)len))
                fuzz_die("writing the ring file", strerror(errno));
}

/* Moves a shared position behind the attached end's back, as a buggy or hostile peer would. */
static void hostile_move(size_t off, int64_t delta)
{
        uint64_t pos;

        if (pread(fuzz_fd, &pos, sizeof(pos), (off_t)off) != (ssize_t)sizeof(pos))
                return;         /* a cut file may not reach the positions */
        pos += (uint64_t)delta;
        if (pwrite(fuzz_fd, &pos, sizeof(pos), (off_t)off) != (ssize_t)sizeof(pos))
                fuzz_die("hostile write", strerror(errno));
}

static int attach(struct ring **r, enum ring_role role)
{
        char why[WHY_MAX];
        int err;

        why[0] = '\0';
        err = ring_attach(r, fuzz_dirfd, FUZZ_PROD, FUZZ_CONS, role, why, sizeof(why));
        FUZZ_CHECK(err <= 0);
        FUZZ_CHECK(err == 0 ? *r != NULL : *r == NULL && why[0] != '\0');
        return err;
}

static void check_stats(struct ring *r)
{
        struct ring_stats st;

        if (ring_stats(r, &st) == 0) {
                FUZZ_CHECK(st.commit <= st.read && st.read <= st.write);
                FUZZ_CHECK(st.write - st.commit <= st.capacity);
                FUZZ_CHECK(st.capacity == ring_capacity(r));
        } else {
                FUZZ_CHECK(ring_why(r)[0] != '\0');
        }
        FUZZ_CHECK(memchr(st.producer, '\0', sizeof(st.producer)) != NULL);
        FUZZ_CHECK(memchr(st.consumer, '\0', sizeof(st.consumer)) != NULL);
}

/* Reads every byte of a record: a payload outside the mapping faults here. */
static void check_record(struct ring *r, const struct ring_rec *rec)
{
        const volatile unsigned char *p = rec->data;
        unsigned char sum = 0;
        uint32_t i;

        FUZZ_CHECK(rec->type >= RING_TYPE_MIN);
        FUZZ_CHECK(rec->len <= ring_max_record(r));
        FUZZ_CHECK(rec->pos % RING_ALIGN == 0 && rec->next.pos % RING_ALIGN == 0);
        FUZZ_CHECK(rec->next.pos > rec->pos && rec->next.pos - rec->pos <= ring_capacity(r));
        FUZZ_CHECK((uintptr_t)rec->data % RING_ALIGN == 0);
        for (i = 0; i < rec->len; i++)
                sum ^= p[i];
        (void)sum;
}

/*
 * Peeks until the ring is empty or bad, checking each record; *mark
 * becomes the mark after record done_at. Returns the last peek's result.
 */
static int peek_all(struct ring *r, unsigned done_at, struct ring_mark *mark)
{
        struct ring_rec rec;
        unsigned n;
        int err = 0;

        for (n = 0; n < PEEK_MAX; n++) {
                err = ring_peek(r, &rec);
                if (err != 0) {
                        FUZZ_CHECK(err == -EAGAIN || err == -EBADMSG);
                        if (err == -EBADMSG)
                                FUZZ_CHECK(ring_peek(r, &rec) == -EBADMSG && ring_why(r)[0] != '\0');
                        return err;
                }
                check_record(r, &rec);
                if (n == done_at)
                        *mark = rec.next;
        }
        /* A lap holds fewer than PEEK_MAX records: getting here means the walk never ends. */
        FUZZ_CHECK(n < PEEK_MAX);
        return err;
}

static void walk_consumer(const struct fuzz_ctl *ctl)
{
        struct ring_rec batch[BATCH_MAX];
        struct ring_mark start, mark;
        struct ring *r;
        int err, n, i;

        if (attach(&r, RING_CONSUMER) != 0)
                return;
        start = mark = ring_cursor(r);
        FUZZ_CHECK(start.pos % RING_ALIGN == 0);
        err = peek_all(r, ctl->done_at, &mark);
        if (err == -EAGAIN && (ctl->hostile & HOSTILE_WRITE)) {
                hostile_move(offsetof(struct ring_shm, write), ctl->delta);
                if (ctl->hostile & HOSTILE_WAIT) {
                        err = ring_wait_data(r, 0, 0);
                        FUZZ_CHECK(err == 0 || err == -ETIMEDOUT || err == -EBADMSG);
                }
                peek_all(r, ctl->done_at, &mark);
        }
        ring_release(r);
        FUZZ_CHECK(ring_done(r, mark) == 0);
        check_stats(r);
        ring_close(r);

        /* A consumer whose durable state claims some mark beyond commit. */
        if (attach(&r, RING_CONSUMER) != 0)
                return;
        start = ring_cursor(r);
        mark.pos = start.pos + (uint64_t)ctl->skip_delta * RING_ALIGN;
        mark.count = start.count + ctl->skip_count;
        err = ring_skip_to(r, mark);
        FUZZ_CHECK(err == 0 || err == -EINVAL || err == -EBADMSG);
        if (err == 0)
                FUZZ_CHECK(ring_cursor(r).pos == mark.pos && ring_cursor(r).count == mark.count);
        else if (err == -EINVAL)
                FUZZ_CHECK(ring_cursor(r).pos == start.pos && ring_cursor(r).count == start.count);
        n = ring_peek_batch(r, batch, BATCH_MAX);
        FUZZ_CHECK(n == -EBADMSG || (n >= 0 && n <= BATCH_MAX));
        for (i = 0; i < n; i++)
                check_record(r, &batch[i]);
        FUZZ_CHECK(ring_done(r, ring_cursor(r)) == 0);
        ring_close(r);
}

static void walk_producer(const struct fuzz_ctl *ctl)
{
        struct ring *r;
        unsigned i, published = 0;
        void *p;
        int err;

        if (attach(&r, RING_PRODUCER) != 0)
                return;
        for (i = 0; i < PRODUCE_MAX; i++) {
                err = ring_reserve(r, (uint16_t)(RING_TYPE_MIN + i), ctl->lens[i], &p);
                if (err == 0) {
                        FUZZ_CHECK((uintptr_t)p % RING_ALIGN == 0);
                        memset(p, 0x5a, ctl->lens[i]);
                        /* Odd records shrink on commit, as one written into a larger reservation does. */
                        FUZZ_CHECK(ring_commit(r, ctl->lens[i] / (1 + (i & 1))) == 0);
                        published++;
                } else {
                        FUZZ_CHECK(err == -EAGAIN || err == -EMSGSIZE || err == -EBADMSG);
                        FUZZ_CHECK((err == -EMSGSIZE) == (ctl->lens[i] > ring_max_record(r)) ||
                                   err == -EBADMSG);
                }
                if (i == 0 && (ctl->hostile & HOSTILE_COMMIT))
                        hostile_move(offsetof(struct ring_shm, commit), ctl->delta);
        }
        FUZZ_CHECK(ring_publish(r) == published);
        err = ring_wait_space(r, ctl->lens[0], 0, 0);
        FUZZ_CHECK(err == 0 || err == -ETIMEDOUT || err == -EMSGSIZE || err == -EBADMSG);
        check_stats(r);
        ring_close(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        uint8_t ctl_bytes[CTL_SIZE] = { 0 };
        struct fuzz_ctl ctl;
        struct ring *r;
        unsigned mode;
        size_t n;

        if (size == 0)
                return 0;
        mode = data[0];
        data++;
        size--;
        n = size < CTL_SIZE ? size : CTL_SIZE;
        memcpy(ctl_bytes, data, n);
        data += n;
        size -= n;
        ctl_parse(ctl_bytes, &ctl);

        image_write(image_build(mode, data, size, &ctl));
        if (attach(&r, RING_OBSERVER) == 0) {
                check_stats(r);
                ring_close(r);
        }
        walk_consumer(&ctl);
        walk_producer(&ctl);
        /* What the producer left behind must still be walkable. */
        walk_consumer(&ctl);
        return 0;
}
