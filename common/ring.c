/* SPDX-License-Identifier: MIT */
/* ring.c: single-producer single-consumer record rings over shared memory files (see ring.h). */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "cpu.h"
#include "futex.h"
#include "instance.h"
#include "ring.h"
#include "ring_layout.h"
#include "why.h"

#define RING_FNAME_MAX (2 * RING_NAME_MAX + sizeof("-.ring"))
#define RESV_NONE UINT64_MAX

/* Lock bytes in the ring file: holding one means "this end is alive". */
#define RING_LOCK_PRODUCER 0
#define RING_LOCK_CONSUMER 1

struct ring {
        struct ring_shm *shm;
        unsigned char *data;            /* the data area, capacity bytes */
        size_t map_len;
        int fd;
        enum ring_role role;
        int failed;                     /* a shared position or record was invalid */
        uint64_t capacity;              /* local copies: never re-read from shm */
        uint64_t mask;
        uint32_t max_record;
        unsigned flags;
        char producer[RING_NAME_MAX + 1];       /* as validated at attach */
        char consumer[RING_NAME_MAX + 1];
        char fname[RING_FNAME_MAX];

        /* Producer side. */
        uint64_t published, published_count;    /* last values stored to write */
        uint64_t pend, pend_count;              /* end of committed, unpublished records */
        uint64_t resv;                          /* header position of the open reservation */
        uint32_t resv_len;
        uint16_t resv_type;
        uint64_t commit_seen;                   /* last validated consumer commit */

        /* Consumer side. */
        uint64_t cursor, cursor_count;          /* after the last peeked record */
        uint64_t released;                      /* last value stored to read */
        uint64_t committed, committed_count;    /* last values stored to commit */
        uint64_t write_seen;                    /* last validated producer write */

        char why[WHY_MAX];
};

/*
 * Counters in the header have one writer each, so a relaxed load and store
 * is enough: no locked instruction on the hot path.
 */
static inline void counter_add(_Atomic uint64_t *c, uint64_t n)
{
        atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
                              memory_order_relaxed);
}

/* Records the reason, marks the ring failed for -EBADMSG, and returns err. */
__attribute__((format(printf, 3, 4)))
static int ring_fail(struct ring *r, int err, const char *fmt, ...)
{
        char msg[WHY_MAX - RING_FNAME_MAX - 4];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        snprintf(r->why, sizeof(r->why), "%s: %s", r->fname, msg);
        if (err == -EBADMSG)
                r->failed = 1;
        return err;
}

int ring_name_check(const char *name)
{
        size_t i, len = strlen(name);

        if (len == 0 || len > RING_NAME_MAX)
                return -EINVAL;
        for (i = 0; i < len; i++)
                if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
                      name[i] == '_'))
                        return -EINVAL;
        return 0;
}

int ring_parse_filename(const char *fname, char *producer, char *consumer)
{
        const char *dash = strchr(fname, '-');
        size_t len = strlen(fname), plen, clen;

        if (dash == NULL || len < sizeof(".ring") || strcmp(fname + len - 5, ".ring") != 0)
                return -EINVAL;
        plen = (size_t)(dash - fname);
        clen = len - 5 - plen - 1;
        if (plen == 0 || plen > RING_NAME_MAX || clen == 0 || clen > RING_NAME_MAX)
                return -EINVAL;
        memcpy(producer, fname, plen);
        producer[plen] = '\0';
        memcpy(consumer, dash + 1, clen);
        consumer[clen] = '\0';
        if (ring_name_check(producer) != 0 || ring_name_check(consumer) != 0)
                return -EINVAL;
        return 0;
}

static int ring_filename(char *buf, const char *producer, const char *consumer,
                         char *why, size_t whylen)
{
        if (ring_name_check(producer) != 0 || ring_name_check(consumer) != 0)
                return why_set(why, whylen, -EINVAL,
                               "bad ring name \"%.40s-%.40s\": each end is 1-%d of a-z 0-9 _",
                               producer, consumer, RING_NAME_MAX);
        snprintf(buf, RING_FNAME_MAX, "%s-%s.ring", producer, consumer);
        return 0;
}

static int ring_capacity_ok(uint64_t capacity)
{
        return capacity >= RING_MIN_CAPACITY && capacity <= RING_MAX_CAPACITY &&
               (capacity & (capacity - 1)) == 0;
}

/* The header page, as a local copy, aligned for the atomics in it. */
union ring_page {
        struct ring_shm h;
        unsigned char bytes[RING_HEADER_SIZE];
};

int ring_create(int dirfd, const char *producer, const char *consumer,
                uint64_t capacity, unsigned flags, char *why, size_t whylen)
{
        char fname[RING_FNAME_MAX], tmp[RING_FNAME_MAX + 32];
        union ring_page page;
        int fd = -1, err;

        err = ring_filename(fname, producer, consumer, why, whylen);
        if (err < 0)
                return err;
        if (!ring_capacity_ok(capacity))
                return why_set(why, whylen, -EINVAL,
                               "%s: capacity %llu is not a power of two between %u and %u bytes",
                               fname, (unsigned long long)capacity, RING_MIN_CAPACITY,
                               RING_MAX_CAPACITY);
        if (flags & ~RING_LOSSY)
                return why_set(why, whylen, -EINVAL, "%s: unknown flags %#x", fname, flags);

        /*
         * Build under a temporary name and rename without replacing, so
         * nobody ever attaches to a half-written header and an existing ring
         * (with data in it) is never clobbered.
         */
        snprintf(tmp, sizeof(tmp), ".%s.%ld.tmp", fname, (long)getpid());
        fd = openat(dirfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
                return why_set(why, whylen, -errno, "%s: cannot create: %s", fname, strerror(errno));
        /* The umask may have taken bits off 0600; the contract is exactly 0600. */
        if (fchmod(fd, 0600) != 0) {
                err = why_set(why, whylen, -errno, "%s: fchmod: %s", fname, strerror(errno));
                goto err;
        }
        /* Allocate every page now: a full tmpfs must fail here, not SIGBUS a stage later. */
        err = posix_fallocate(fd, 0, (off_t)(RING_HEADER_SIZE + capacity));
        if (err != 0) {
                err = why_set(why, whylen, -err, "%s: cannot allocate %llu bytes in %s: %s", fname,
                              (unsigned long long)(RING_HEADER_SIZE + capacity), INSTANCE_ROOT,
                              strerror(err));
                goto err;
        }

        memset(&page, 0, sizeof(page));
        page.h.magic = RING_MAGIC;
        page.h.version = RING_LAYOUT_VERSION;
        page.h.header_size = RING_HEADER_SIZE;
        page.h.capacity = capacity;
        page.h.max_record = (uint32_t)(capacity / 2 - RING_RECORD_HEADER);
        page.h.flags = flags;
        page.h.created_ns = clock_real_ns();
        snprintf(page.h.producer, sizeof(page.h.producer), "%s", producer);
        snprintf(page.h.consumer, sizeof(page.h.consumer), "%s", consumer);
        if (pwrite(fd, page.bytes, sizeof(page.bytes), 0) != (ssize_t)sizeof(page.bytes)) {
                err = why_set(why, whylen, errno ? -errno : -EIO, "%s: cannot write the header: %s",
                              fname, strerror(errno ? errno : EIO));
                goto err;
        }
        if (renameat2(dirfd, tmp, dirfd, fname, RENAME_NOREPLACE) != 0) {
                err = why_set(why, whylen, -errno, "%s: %s", fname,
                              errno == EEXIST ? "ring already exists" : strerror(errno));
                goto err;
        }
        close(fd);
        return 0;
err:
        close(fd);
        unlinkat(dirfd, tmp, 0);
        return err;
}

/* Validates the header copy h of file fname (size bytes) before anything is mapped. */
static int ring_check_header(const struct ring_shm *h, const char *fname, const char *producer,
                             const char *consumer, uint64_t size, char *why, size_t whylen)
{
        if (h->magic != RING_MAGIC)
                return why_set(why, whylen, -EBADMSG, "%s: bad magic %#llx: not a ringflow ring",
                               fname, (unsigned long long)h->magic);
        if (h->version != RING_LAYOUT_VERSION)
                return why_set(why, whylen, -EPROTO,
                               "%s: ring layout version %u; this build reads version %u",
                               fname, h->version, RING_LAYOUT_VERSION);
        if (h->header_size != RING_HEADER_SIZE)
                return why_set(why, whylen, -EBADMSG, "%s: header size %u, expected %u",
                               fname, h->header_size, RING_HEADER_SIZE);
        if (!ring_capacity_ok(h->capacity))
                return why_set(why, whylen, -EBADMSG,
                               "%s: capacity %llu is not a power of two between %u and %u bytes",
                               fname, (unsigned long long)h->capacity, RING_MIN_CAPACITY,
                               RING_MAX_CAPACITY);
        if (h->max_record != h->capacity / 2 - RING_RECORD_HEADER)
                return why_set(why, whylen, -EBADMSG,
                               "%s: max record %u does not match capacity %llu", fname,
                               h->max_record, (unsigned long long)h->capacity);
        if (h->flags & ~RING_LOSSY)
                return why_set(why, whylen, -EBADMSG, "%s: unknown flags %#x", fname, h->flags);
        if (memchr(h->producer, '\0', sizeof(h->producer)) == NULL ||
            memchr(h->consumer, '\0', sizeof(h->consumer)) == NULL ||
            strcmp(h->producer, producer) != 0 || strcmp(h->consumer, consumer) != 0)
                return why_set(why, whylen, -EBADMSG,
                               "%s: the header names a different ring (%.*s->%.*s)", fname,
                               RING_NAME_MAX, h->producer, RING_NAME_MAX, h->consumer);
        if (size != RING_HEADER_SIZE + h->capacity)
                return why_set(why, whylen, -EBADMSG,
                               "%s: file is %llu bytes; header plus a %llu-byte data area is %llu (truncated?)",
                               fname, (unsigned long long)size, (unsigned long long)h->capacity,
                               (unsigned long long)(RING_HEADER_SIZE + h->capacity));
        return 0;
}

/*
 * Checks the three positions against each other and the capacity. The
 * caller loads them in an order where its own are stable and the peer's
 * can only have moved in the allowed direction, so a valid ring never fails.
 */
static int ring_check_positions(struct ring *r, uint64_t commit, uint64_t read, uint64_t write)
{
        if (((commit | read | write) & (RING_ALIGN - 1)) != 0 || commit > read || read > write ||
            write - commit > r->capacity)
                return ring_fail(r, -EBADMSG,
                                 "positions invalid: commit %llu, read %llu, write %llu, capacity %llu "
                                 "(need commit <= read <= write, write - commit <= capacity, 8-byte aligned)",
                                 (unsigned long long)commit, (unsigned long long)read,
                                 (unsigned long long)write, (unsigned long long)r->capacity);
        return 0;
}

static int ring_lock_byte(enum ring_role role)
{
        return role == RING_PRODUCER ? RING_LOCK_PRODUCER : RING_LOCK_CONSUMER;
}

/*
 * Takes the end's OFD lock. OFD locks belong to the open file description,
 * so they vanish when the process dies, however it dies: a SIGKILLed stage
 * never leaves a stale "alive" end behind.
 */
static int ring_lock(struct ring *r)
{
        struct flock fl = {
                .l_type = F_WRLCK,
                .l_whence = SEEK_SET,
                .l_start = ring_lock_byte(r->role),
                .l_len = 1,
        };

        if (fcntl(r->fd, F_OFD_SETLK, &fl) == 0)
                return 0;
        if (errno == EAGAIN || errno == EACCES) {
                struct ring_shm_end *end = r->role == RING_PRODUCER ? &r->shm->prod : &r->shm->cons;

                return ring_fail(r, -EBUSY, "already has a live %s (pid %d)",
                                 r->role == RING_PRODUCER ? "producer" : "consumer",
                                 (int)atomic_load_explicit(&end->pid, memory_order_relaxed));
        }
        return ring_fail(r, -errno, "cannot lock: %s", strerror(errno));
}

/* 1 when some process holds the lock of the end at byte, 0 when not, -errno on error. */
static int ring_end_alive(const struct ring *r, int byte)
{
        struct flock fl = {
                .l_type = F_WRLCK,
                .l_whence = SEEK_SET,
                .l_start = byte,
                .l_len = 1,
        };

        if (r->role != RING_OBSERVER && byte == ring_lock_byte(r->role))
                return 1;       /* our own lock never conflicts with us */
        if (fcntl(r->fd, F_OFD_GETLK, &fl) != 0)
                return -errno;
        return fl.l_type != F_UNLCK;
}

/* The positions an attaching end validated; it starts from these, never from a re-read. */
struct ring_positions {
        uint64_t commit, read, write;
};

/*
 * Loads the positions for an attaching end: its own first (stable, since
 * it holds the end's lock), then the peer's, which can only have moved
 * forward within the contract meanwhile.
 */
static int ring_load_attach_positions(struct ring *r, struct ring_positions *p)
{
        struct ring_shm *h = r->shm;

        if (r->role == RING_PRODUCER) {
                /* A live consumer only moves commit and read forward, never past write. */
                p->write = atomic_load_explicit(&h->write, memory_order_acquire);
                p->commit = atomic_load_explicit(&h->commit, memory_order_acquire);
                p->read = atomic_load_explicit(&h->read, memory_order_acquire);
        } else {
                p->commit = atomic_load_explicit(&h->commit, memory_order_acquire);
                p->read = atomic_load_explicit(&h->read, memory_order_acquire);
                p->write = atomic_load_explicit(&h->write, memory_order_acquire);
        }
        return ring_check_positions(r, p->commit, p->read, p->write);
}

static void ring_attach_producer(struct ring *r, const struct ring_positions *p)
{
        struct ring_shm *h = r->shm;

        /* Anything a dead producer wrote past `write` was never visible: start over it. */
        r->published = r->pend = p->write;
        r->published_count = r->pend_count =
                atomic_load_explicit(&h->write_count, memory_order_relaxed);
        r->commit_seen = p->commit;
        atomic_store_explicit(&h->producer_sleeping, 0, memory_order_relaxed);
        atomic_store_explicit(&h->prod.pid, (int32_t)getpid(), memory_order_relaxed);
        counter_add(&h->prod.attaches, 1);
}

static void ring_attach_consumer(struct ring *r, const struct ring_positions *p)
{
        struct ring_shm *h = r->shm;

        /* Replay: whatever was looked at but not made durable is looked at again. */
        r->committed = r->cursor = r->released = r->write_seen = p->commit;
        r->committed_count = r->cursor_count =
                atomic_load_explicit(&h->commit_count, memory_order_relaxed);
        counter_add(&h->replayed, p->read - p->commit);
        atomic_store_explicit(&h->read_count, r->cursor_count, memory_order_relaxed);
        atomic_store_explicit(&h->read, r->cursor, memory_order_release);
        atomic_store_explicit(&h->consumer_sleeping, 0, memory_order_relaxed);
        atomic_store_explicit(&h->cons.pid, (int32_t)getpid(), memory_order_relaxed);
        counter_add(&h->cons.attaches, 1);
}

int ring_attach(struct ring **rp, int dirfd, const char *producer,
                const char *consumer, enum ring_role role, char *why, size_t whylen)
{
        union ring_page page;
        struct ring *r = NULL;
        void *map = MAP_FAILED;
        uint64_t size;
        size_t map_len;
        ssize_t got;
        int fd = -1, err;
        char fname[RING_FNAME_MAX];

        *rp = NULL;
        err = ring_filename(fname, producer, consumer, why, whylen);
        if (err < 0)
                return err;
        /* O_NONBLOCK: a FIFO planted under a ring's name must not hang the open. */
        fd = openat(dirfd, fname,
                    (role == RING_OBSERVER ? O_RDONLY : O_RDWR) | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
        if (fd < 0) {
                err = errno;
                if (err == ELOOP)
                        return why_set(why, whylen, -ELOOP, "%s is a symlink; refusing to follow it", fname);
                if (err == ENOENT)
                        return why_set(why, whylen, -ENOENT, "%s does not exist", fname);
                if (err == EISDIR)
                        return why_set(why, whylen, -EBADMSG, "%s is not a regular file", fname);
                return why_set(why, whylen, -err, "cannot open %s: %s", fname, strerror(err));
        }
        err = instance_check_file(fd, fname, &size, why, whylen);
        if (err < 0)
                goto err;
        if (size < RING_HEADER_SIZE) {
                err = why_set(why, whylen, -EBADMSG,
                              "%s: file is %llu bytes, shorter than the %u-byte header (truncated?)",
                              fname, (unsigned long long)size, RING_HEADER_SIZE);
                goto err;
        }
        /* Validate a private copy, so nothing read from the file is trusted before it is checked. */
        got = pread(fd, page.bytes, sizeof(page.bytes), 0);
        if (got != (ssize_t)sizeof(page.bytes)) {
                err = why_set(why, whylen, got < 0 ? -errno : -EBADMSG, "%s: cannot read the header: %s",
                              fname, got < 0 ? strerror(errno) : "short read");
                goto err;
        }
        err = ring_check_header(&page.h, fname, producer, consumer, size, why, whylen);
        if (err < 0)
                goto err;

        /*
         * An observer maps the header page only, read-only: it cannot disturb
         * the ring and never touches the data area. The ends map everything,
         * populated now so no page is first touched on the hot path.
         */
        map_len = role == RING_OBSERVER ? RING_HEADER_SIZE : RING_HEADER_SIZE + page.h.capacity;
        map = mmap(NULL, map_len, role == RING_OBSERVER ? PROT_READ : PROT_READ | PROT_WRITE,
                   role == RING_OBSERVER ? MAP_SHARED : MAP_SHARED | MAP_POPULATE, fd, 0);
        if (map == MAP_FAILED) {
                err = why_set(why, whylen, -errno, "%s: mmap: %s", fname, strerror(errno));
                goto err;
        }
        /* The file may have been rewritten between pread and mmap. */
        if (memcmp(map, page.bytes, RING_IMMUTABLE_SIZE) != 0) {
                err = why_set(why, whylen, -EBADMSG, "%s: header changed while attaching", fname);
                goto err;
        }
        r = calloc(1, sizeof(*r));
        if (r == NULL) {
                err = why_set(why, whylen, -ENOMEM, "%s: out of memory", fname);
                goto err;
        }
        r->shm = map;
        r->data = (unsigned char *)map + RING_HEADER_SIZE;
        r->map_len = map_len;
        r->fd = fd;
        r->role = role;
        r->capacity = page.h.capacity;
        r->mask = page.h.capacity - 1;
        r->max_record = page.h.max_record;
        r->flags = page.h.flags;
        r->resv = RESV_NONE;
        snprintf(r->producer, sizeof(r->producer), "%s", producer);
        snprintf(r->consumer, sizeof(r->consumer), "%s", consumer);
        snprintf(r->fname, sizeof(r->fname), "%s", fname);

        if (role != RING_OBSERVER) {
                struct ring_positions pos = { 0 };

                err = ring_lock(r);
                if (err == 0)
                        err = ring_load_attach_positions(r, &pos);
                if (err < 0) {
                        why_set(why, whylen, err, "%s", r->why);
                        goto err;
                }
                if (role == RING_PRODUCER)
                        ring_attach_producer(r, &pos);
                else
                        ring_attach_consumer(r, &pos);
                ring_heartbeat(r);
        }
        *rp = r;
        return 0;
err:
        free(r);
        if (map != MAP_FAILED)
                munmap(map, map_len);
        close(fd);
        return err;
}

void ring_close(struct ring *r)
{
        if (r == NULL)
                return;
        munmap(r->shm, r->map_len);
        close(r->fd);   /* releases the end's lock */
        free(r);
}

const char *ring_why(const struct ring *r)
{
        return r->why;
}

uint64_t ring_capacity(const struct ring *r)
{
        return r->capacity;
}

uint32_t ring_max_record(const struct ring *r)
{
        return r->max_record;
}

/* The names come from the validated copy: a peer may scribble over the shared header. */
const char *ring_producer_name(const struct ring *r)
{
        return r->producer;
}

const char *ring_consumer_name(const struct ring *r)
{
        return r->consumer;
}

void ring_heartbeat(struct ring *r)
{
        if (r->role == RING_OBSERVER)
                return;
        atomic_store_explicit(r->role == RING_PRODUCER ? &r->shm->prod.heartbeat_ns
                                                       : &r->shm->cons.heartbeat_ns,
                              clock_mono_ns(), memory_order_relaxed);
}

/*
 * Wakes the other end if, and only if, it said it sleeps. The seq_cst fence
 * orders our store of a position (just before the call) before our load of
 * the peer's sleeping flag; the sleeper stores its flag, fences, then loads
 * our position. So either we see its flag or it sees our position: no lost
 * wake-up, and no syscall while the peer is awake. Clearing the flag with
 * an exchange makes it one wake per sleep, however many batches follow.
 */
static void ring_wake(_Atomic uint32_t *sleeping, uint32_t *word, _Atomic uint64_t *wakeups)
{
        atomic_thread_fence(memory_order_seq_cst);
        if (atomic_load_explicit(sleeping, memory_order_relaxed) == 0)
                return;
        if (atomic_exchange_explicit(sleeping, 0, memory_order_acq_rel) == 0)
                return;
        __atomic_fetch_add(word, 1, __ATOMIC_RELEASE);
        futex_wake(word, 1);
        counter_add(wakeups, 1);
}

/* ---- producer ---- */

/* Bytes a record of size needs at pos, counting the padding if it must wrap. */
static uint64_t ring_need(const struct ring *r, uint64_t pos, uint64_t size)
{
        uint64_t tail = r->capacity - (pos & r->mask);

        return tail < size ? tail + size : size;
}

/* Re-reads the consumer's commit position; a hostile value fails the ring. */
static int ring_load_commit(struct ring *r)
{
        /* acquire: the consumer's reads of bytes before commit happen before we overwrite them. */
        uint64_t c = atomic_load_explicit(&r->shm->commit, memory_order_acquire);

        if (c < r->commit_seen || c > r->published || (c & (RING_ALIGN - 1)))
                return ring_fail(r, -EBADMSG,
                                 "consumer commit position %llu is invalid (was %llu, write is %llu)",
                                 (unsigned long long)c, (unsigned long long)r->commit_seen,
                                 (unsigned long long)r->published);
        r->commit_seen = c;
        return 0;
}

/* 0 when size bytes fit at pend now, -EAGAIN when not, -EBADMSG. */
static int ring_space_for(struct ring *r, uint64_t size)
{
        uint64_t need = ring_need(r, r->pend, size);
        int err;

        if (r->pend + need - r->commit_seen <= r->capacity)
                return 0;
        err = ring_load_commit(r);
        if (err < 0)
                return err;
        return r->pend + need - r->commit_seen <= r->capacity ? 0 : -EAGAIN;
}

static void ring_store_header(struct ring *r, uint64_t pos, uint32_t len, uint16_t type)
{
        /* One aligned 64-bit store: the consumer reads the header as one word. */
        __atomic_store_n((uint64_t *)(void *)(r->data + (pos & r->mask)), ring_hdr_pack(len, type),
                         __ATOMIC_RELAXED);
}

int ring_reserve(struct ring *r, uint16_t type, uint32_t len, void **payload)
{
        uint64_t size, off;
        int err;

        if (r->role != RING_PRODUCER || r->resv != RESV_NONE || type < RING_TYPE_MIN)
                return -EINVAL;
        if (r->failed)
                return -EBADMSG;
        if (len > r->max_record)
                return -EMSGSIZE;
        size = ring_rec_size(len);
        err = ring_space_for(r, size);
        if (err == -EAGAIN && (r->flags & RING_LOSSY))
                counter_add(&r->shm->drops, 1);
        if (err < 0)
                return err;
        off = r->pend & r->mask;
        if (r->capacity - off < size) {
                /* Pad the tail so every record is contiguous in memory. */
                ring_store_header(r, r->pend, (uint32_t)(r->capacity - off - RING_RECORD_HEADER),
                                  RING_TYPE_PAD);
                r->pend += r->capacity - off;
                off = 0;
        }
        r->resv = r->pend;
        r->resv_len = len;
        r->resv_type = type;
        *payload = r->data + off + RING_RECORD_HEADER;
        return 0;
}

int ring_commit(struct ring *r, uint32_t len)
{
        if (r->role != RING_PRODUCER || r->resv == RESV_NONE || len > r->resv_len)
                return -EINVAL;
        ring_store_header(r, r->resv, len, r->resv_type);
        r->pend = r->resv + ring_rec_size(len);
        r->pend_count++;
        r->resv = RESV_NONE;
        return 0;
}

void ring_abort(struct ring *r)
{
        r->resv = RESV_NONE;
}

unsigned ring_publish(struct ring *r)
{
        struct ring_shm *h = r->shm;
        unsigned n;

        if (r->role != RING_PRODUCER || r->pend == r->published)
                return 0;
        n = (unsigned)(r->pend_count - r->published_count);
        atomic_store_explicit(&h->write_count, r->pend_count, memory_order_relaxed);
        /* release: the records and headers written above are visible before write covers them. */
        atomic_store_explicit(&h->write, r->pend, memory_order_release);
        r->published = r->pend;
        r->published_count = r->pend_count;
        ring_wake(&h->consumer_sleeping, &h->data_futex, &h->prod.wakeups);
        return n;
}

/* The slot holding the newest state whose records are all published, or -1. */
static int ring_pstate_slot(struct ring *r)
{
        struct ring_shm *h = r->shm;
        uint64_t best_gen = 0;
        int best = -1;

        for (int i = 0; i < 2; i++) {
                struct ring_shm_pstate *ps = &h->pstate[i];
                /* acquire: pairs with the release of gen, so the fields below are complete. */
                uint64_t gen = atomic_load_explicit(&ps->gen, memory_order_acquire);

                if (gen == 0 || gen <= best_gen || ps->len > RING_PSTATE_MAX ||
                    ps->write > r->published)
                        continue;
                best_gen = gen;
                best = i;
        }
        return best;
}

int ring_publish_state(struct ring *r, const void *state, uint32_t len)
{
        struct ring_shm *h = r->shm;
        struct ring_shm_pstate *ps;
        uint64_t gen;
        int cur;

        if (r->role != RING_PRODUCER || len > RING_PSTATE_MAX)
                return -EINVAL;
        /*
         * Write the slot that is not current: until `write` moves, the
         * current one still describes exactly what is published, and if we
         * die before `write` moves, the new slot (ps->write > write) is
         * ignored by ring_pstate.
         */
        cur = ring_pstate_slot(r);
        gen = cur < 0 ? 1 : atomic_load_explicit(&h->pstate[cur].gen, memory_order_relaxed) + 1;
        ps = &h->pstate[cur == 0 ? 1 : 0];
        atomic_store_explicit(&ps->gen, 0, memory_order_relaxed);
        /* release fence: gen = 0 is visible before any byte of the slot changes. */
        atomic_thread_fence(memory_order_release);
        ps->write = r->pend;
        ps->write_count = r->pend_count;
        ps->len = len;
        memcpy(ps->data, state, len);
        /* release: the slot is complete before it gets its generation. */
        atomic_store_explicit(&ps->gen, gen, memory_order_release);
        if (r->pend == r->published)
                return 0;
        return (int)ring_publish(r);
}

int ring_pstate(struct ring *r, struct ring_pstate *st)
{
        int slot;

        memset(st, 0, sizeof(*st));
        if (r->role != RING_PRODUCER)
                return -EINVAL;
        slot = ring_pstate_slot(r);
        if (slot < 0)
                return 0;
        st->write = r->shm->pstate[slot].write;
        st->write_count = r->shm->pstate[slot].write_count;
        st->len = r->shm->pstate[slot].len;
        memcpy(st->data, r->shm->pstate[slot].data, st->len);
        return 0;
}

/* A condition to wait for: 0 when met, -EAGAIN when not yet, another -errno to stop. */
typedef int (*ring_cond_fn)(struct ring *r, uint64_t arg);

/*
 * The idle half of every wait: spin on the condition for spin_ns (cheap,
 * no syscall), then announce that we sleep and park on the futex word until
 * the other end wakes us or timeout_ns runs out. The heartbeat moves on
 * every round, so an end that is merely waiting is never taken for hung.
 */
static int ring_wait(struct ring *r, ring_cond_fn cond, uint64_t arg, _Atomic uint32_t *sleeping,
                     uint32_t *word, _Atomic uint64_t *waits, int64_t spin_ns,
                     int64_t timeout_ns)
{
        int64_t now, deadline, spin_until;
        uint32_t seq;
        unsigned i;
        int err;

        err = cond(r, arg);
        if (err != -EAGAIN)
                return err;
        counter_add(waits, 1);
        now = clock_mono_ns();
        deadline = now + (timeout_ns > 0 ? timeout_ns : 0);
        spin_until = now + (spin_ns < timeout_ns ? spin_ns : timeout_ns);
        for (i = 1; spin_ns > 0; i++) {
                cpu_relax();
                err = cond(r, arg);
                if (err != -EAGAIN)
                        return err;
                /* Read the clock every 64 rounds: it costs more than a check. */
                if ((i & 63) == 0 && clock_mono_ns() >= spin_until)
                        break;
        }
        for (;;) {
                ring_heartbeat(r);
                /* Read the futex word before the last check: a wake after it changes the word. */
                seq = __atomic_load_n(word, __ATOMIC_ACQUIRE);
                atomic_store_explicit(sleeping, 1, memory_order_relaxed);
                atomic_thread_fence(memory_order_seq_cst);      /* pairs with ring_wake's fence */
                err = cond(r, arg);
                now = clock_mono_ns();
                if (err != -EAGAIN || now >= deadline) {
                        atomic_store_explicit(sleeping, 0, memory_order_relaxed);
                        return err != -EAGAIN ? err : -ETIMEDOUT;
                }
                err = futex_wait(word, seq, deadline - now);
                atomic_store_explicit(sleeping, 0, memory_order_relaxed);
                if (err == -EINTR)
                        return -EINTR;
        }
}

static int ring_cond_space(struct ring *r, uint64_t size)
{
        return ring_space_for(r, size);
}

int ring_wait_space(struct ring *r, uint32_t len, int64_t spin_ns, int64_t timeout_ns)
{
        if (r->role != RING_PRODUCER)
                return -EINVAL;
        if (r->failed)
                return -EBADMSG;
        if (len > r->max_record)
                return -EMSGSIZE;
        /* The consumer can only free space by consuming what we hold back. */
        ring_publish(r);
        return ring_wait(r, ring_cond_space, ring_rec_size(len), &r->shm->producer_sleeping,
                         &r->shm->space_futex, &r->shm->prod.waits, spin_ns, timeout_ns);
}

/* ---- consumer ---- */

/* Re-reads the producer's write position; a hostile value fails the ring. */
static int ring_load_write(struct ring *r)
{
        /* acquire: pairs with ring_publish's release; the records before w are visible now. */
        uint64_t w = atomic_load_explicit(&r->shm->write, memory_order_acquire);

        if (w < r->write_seen || (w & (RING_ALIGN - 1)) || w - r->committed > r->capacity)
                return ring_fail(r, -EBADMSG,
                                 "producer write position %llu is invalid (was %llu, commit %llu, capacity %llu)",
                                 (unsigned long long)w, (unsigned long long)r->write_seen,
                                 (unsigned long long)r->committed, (unsigned long long)r->capacity);
        r->write_seen = w;
        return 0;
}

int ring_peek(struct ring *r, struct ring_rec *rec)
{
        uint64_t off, hdr, size;
        uint32_t len;
        uint16_t type;
        int err;

        if (r->role != RING_CONSUMER)
                return -EINVAL;
        if (r->failed)
                return -EBADMSG;
        for (;;) {
                if (r->cursor == r->write_seen) {
                        err = ring_load_write(r);
                        if (err < 0)
                                return err;
                        if (r->cursor == r->write_seen)
                                return -EAGAIN;
                }
                off = r->cursor & r->mask;
                /* Read the header once: a hostile producer may change it under us. */
                hdr = __atomic_load_n((const uint64_t *)(const void *)(r->data + off), __ATOMIC_RELAXED);
                len = (uint32_t)hdr;
                type = (uint16_t)(hdr >> 32);
                size = ring_rec_size(len);
                if (hdr >> 48)
                        return ring_fail(r, -EBADMSG,
                                         "record at position %llu has reserved header bits set (%#llx)",
                                         (unsigned long long)r->cursor, (unsigned long long)hdr);
                if (type == RING_TYPE_PAD) {
                        if (size != r->capacity - off || size > r->write_seen - r->cursor)
                                return ring_fail(r, -EBADMSG,
                                                 "padding record at position %llu is %llu bytes; the tail is %llu",
                                                 (unsigned long long)r->cursor,
                                                 (unsigned long long)size,
                                                 (unsigned long long)(r->capacity - off));
                        r->cursor += size;
                        continue;
                }
                if (len > r->max_record || size > r->capacity - off ||
                    size > r->write_seen - r->cursor)
                        return ring_fail(r, -EBADMSG,
                                         "record at position %llu has length %u: beyond %s",
                                         (unsigned long long)r->cursor, len,
                                         len > r->max_record ? "the maximum record size"
                                         : size > r->capacity - off ? "the end of the data area"
                                         : "the write position");
                rec->data = r->data + off + RING_RECORD_HEADER;
                rec->len = len;
                rec->type = type;
                rec->pos = r->cursor;
                r->cursor += size;
                r->cursor_count++;
                rec->next.pos = r->cursor;
                rec->next.count = r->cursor_count;
                return 0;
        }
}

int ring_peek_batch(struct ring *r, struct ring_rec *recs, unsigned max)
{
        unsigned n;
        int err;

        for (n = 0; n < max; n++) {
                err = ring_peek(r, &recs[n]);
                if (err == -EAGAIN)
                        break;
                if (err < 0)
                        return n > 0 ? (int)n : err;    /* the ring stays failed: the next call says so */
        }
        return (int)n;
}

void ring_release(struct ring *r)
{
        struct ring_shm *h = r->shm;

        if (r->role != RING_CONSUMER || r->cursor == r->released)
                return;
        atomic_store_explicit(&h->read_count, r->cursor_count, memory_order_relaxed);
        atomic_store_explicit(&h->read, r->cursor, memory_order_release);
        r->released = r->cursor;
}

struct ring_mark ring_cursor(const struct ring *r)
{
        struct ring_mark m = { .pos = r->cursor, .count = r->cursor_count };

        return m;
}

int ring_done(struct ring *r, struct ring_mark mark)
{
        struct ring_shm *h = r->shm;

        /* A bad mark would hand the producer a commit it must refuse: stop it here. */
        if (r->role != RING_CONSUMER || mark.pos < r->committed || mark.pos > r->cursor ||
            (mark.pos & (RING_ALIGN - 1)) || mark.count < r->committed_count ||
            mark.count > r->cursor_count)
                return -EINVAL;
        if (mark.pos == r->committed)
                return 0;
        if (mark.pos > r->released)
                ring_release(r);
        atomic_store_explicit(&h->commit_count, mark.count, memory_order_relaxed);
        /* release: our reads of the records before mark happen before the producer reuses them. */
        atomic_store_explicit(&h->commit, mark.pos, memory_order_release);
        r->committed = mark.pos;
        r->committed_count = mark.count;
        ring_wake(&h->producer_sleeping, &h->space_futex, &h->cons.wakeups);
        return 0;
}

int ring_skip_to(struct ring *r, struct ring_mark mark)
{
        uint64_t cursor = r->cursor, count = r->cursor_count;
        struct ring_rec rec;
        int err;

        if (r->role != RING_CONSUMER || mark.pos < r->cursor)
                return -EINVAL;
        while (r->cursor < mark.pos) {
                err = ring_peek(r, &rec);
                if (err < 0) {
                        if (err == -EBADMSG)
                                return err;
                        break;
                }
        }
        if (r->cursor == mark.pos && r->cursor_count == mark.count)
                return 0;
        r->cursor = cursor;
        r->cursor_count = count;
        return ring_fail(r, -EINVAL, "mark %llu (record %llu) is not a record boundary before write",
                         (unsigned long long)mark.pos, (unsigned long long)mark.count);
}

static int ring_cond_data(struct ring *r, uint64_t unused)
{
        int err;

        (void)unused;
        if (r->cursor < r->write_seen)
                return 0;
        err = ring_load_write(r);
        if (err < 0)
                return err;
        return r->cursor < r->write_seen ? 0 : -EAGAIN;
}

int ring_wait_data(struct ring *r, int64_t spin_ns, int64_t timeout_ns)
{
        if (r->role != RING_CONSUMER)
                return -EINVAL;
        if (r->failed)
                return -EBADMSG;
        return ring_wait(r, ring_cond_data, 0, &r->shm->consumer_sleeping, &r->shm->data_futex,
                         &r->shm->cons.waits, spin_ns, timeout_ns);
}

/* ---- any role ---- */

static void ring_end_stats(const struct ring *r, const struct ring_shm_end *e, int byte,
                           const _Atomic uint32_t *sleeping, struct ring_end_stats *out)
{
        int alive = ring_end_alive(r, byte);

        out->pid = atomic_load_explicit(&e->pid, memory_order_relaxed);
        out->alive = alive > 0;
        out->sleeping = atomic_load_explicit(sleeping, memory_order_relaxed) != 0;
        out->heartbeat_ns = atomic_load_explicit(&e->heartbeat_ns, memory_order_relaxed);
        out->attaches = atomic_load_explicit(&e->attaches, memory_order_relaxed);
        out->waits = atomic_load_explicit(&e->waits, memory_order_relaxed);
        out->wakeups = atomic_load_explicit(&e->wakeups, memory_order_relaxed);
}

int ring_stats(struct ring *r, struct ring_stats *st)
{
        const struct ring_shm *h = r->shm;
        int tries, err = 0, failed = r->failed;

        memset(st, 0, sizeof(*st));
        memcpy(st->producer, r->producer, sizeof(st->producer));
        memcpy(st->consumer, r->consumer, sizeof(st->consumer));
        st->capacity = r->capacity;
        st->max_record = r->max_record;
        st->flags = r->flags;
        st->created_ns = h->created_ns;
        /*
         * commit, then read, then write: each only grows (a reattaching
         * consumer moves read back, but never below commit), so the order
         * keeps commit <= read <= write. write can still run more than a
         * capacity ahead of a stale commit, so a failed check is retried.
         */
        for (tries = 0; tries < 4; tries++) {
                st->commit_count = atomic_load_explicit(&h->commit_count, memory_order_relaxed);
                st->commit = atomic_load_explicit(&h->commit, memory_order_acquire);
                st->read_count = atomic_load_explicit(&h->read_count, memory_order_relaxed);
                st->read = atomic_load_explicit(&h->read, memory_order_acquire);
                st->write = atomic_load_explicit(&h->write, memory_order_acquire);
                st->write_count = atomic_load_explicit(&h->write_count, memory_order_relaxed);
                err = ring_check_positions(r, st->commit, st->read, st->write);
                if (err == 0)
                        break;
        }
        r->failed = failed;     /* a snapshot reports; it never fails the ring */
        st->drops = atomic_load_explicit(&h->drops, memory_order_relaxed);
        st->replayed = atomic_load_explicit(&h->replayed, memory_order_relaxed);
        ring_end_stats(r, &h->prod, RING_LOCK_PRODUCER, &h->producer_sleeping, &st->prod);
        ring_end_stats(r, &h->cons, RING_LOCK_CONSUMER, &h->consumer_sleeping, &st->cons);
        return err;
}
