/* SPDX-License-Identifier: MIT */
/* stats.c: the shared counters file of a stage: one writer, many read-only readers. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "instance.h"
#include "stats.h"
#include "why.h"

/* "RFLWSTAT" as the file's first 8 bytes, read little-endian. */
#define STATS_MAGIC 0x54415453574c4652ULL
#define STATS_VERSION 1u
#define STATS_HDR_SIZE 128u
#define STATS_FNAME_MAX (STATS_STAGE_MAX + sizeof(".stats"))

struct stats_shm_hdr {
        uint64_t magic;
        uint32_t version;
        uint32_t nslots;
        uint32_t nhist;
        uint32_t reserved;
        char stage[STATS_STAGE_MAX + 1];
        _Atomic int32_t pid;
        uint32_t pad;
        _Atomic int64_t started_ns;
        _Atomic int64_t heartbeat_ns;
};

struct stats_shm_slot {
        char name[STATS_NAME_MAX + 1];
        uint32_t kind;
        uint32_t hist;                  /* histograms: index into the histogram area */
        _Atomic uint64_t value;
};

struct stats_shm_hist {
        _Atomic uint64_t count;
        _Atomic uint64_t sum;
        _Atomic uint64_t buckets[STATS_HIST_BUCKETS];
};

_Static_assert(sizeof(struct stats_shm_hdr) <= STATS_HDR_SIZE, "stats header fits");
_Static_assert(sizeof(struct stats_shm_slot) == 64, "one slot per cache line");

struct stats {
        int fd;
        void *map;
        size_t size;
        struct stats_shm_hdr *hdr;
        struct stats_shm_slot *slots;
        struct stats_shm_hist *hists;
        unsigned n;
};

static size_t stats_file_size(uint32_t nslots, uint32_t nhist)
{
        return STATS_HDR_SIZE + (size_t)nslots * sizeof(struct stats_shm_slot) +
               (size_t)nhist * sizeof(struct stats_shm_hist);
}

static int stats_stage_ok(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > STATS_STAGE_MAX)
                return 0;
        for (; *s != '\0'; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_'))
                        return 0;
        return 1;
}

static int stats_name_ok(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > STATS_NAME_MAX)
                return 0;
        for (; *s != '\0'; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '.'))
                        return 0;
        return 1;
}

int stats_parse_filename(const char *fname, char *stage)
{
        const char *dot = strrchr(fname, '.');
        char buf[STATS_STAGE_MAX + 1];
        size_t n;

        if (dot == NULL || strcmp(dot, ".stats") != 0)
                return 0;
        n = (size_t)(dot - fname);
        if (n == 0 || n > STATS_STAGE_MAX)
                return 0;
        memcpy(buf, fname, n);
        buf[n] = '\0';
        if (!stats_stage_ok(buf))
                return 0;
        memcpy(stage, buf, n + 1);
        return 1;
}

/*
 * Checks a mapped file's header and table. Returns 0 and the slot and
 * histogram counts it checked (read once: use these, not the header's,
 * which a foreign writer may change), or -EBADMSG with why.
 */
static int stats_validate(const void *map, size_t size, const char *fname, uint32_t *nslotsp,
                          uint32_t *nhistp, char *why, size_t whylen)
{
        const struct stats_shm_hdr *h = map;
        const struct stats_shm_slot *slots;
        uint32_t nhist = 0, nslots, hnhist;

        if (size < STATS_HDR_SIZE)
                return why_set(why, whylen, -EBADMSG, "%s: %zu bytes, shorter than a header",
                               fname, size);
        if (h->magic != STATS_MAGIC)
                return why_set(why, whylen, -EBADMSG, "%s: not a ringflow stats file (bad magic)",
                               fname);
        if (h->version != STATS_VERSION)
                return why_set(why, whylen, -EBADMSG, "%s: layout version %u, expected %u", fname,
                               h->version, STATS_VERSION);
        nslots = h->nslots;
        hnhist = h->nhist;
        if (nslots > STATS_MAX_SLOTS || hnhist > nslots || stats_file_size(nslots, hnhist) > size)
                return why_set(why, whylen, -EBADMSG,
                               "%s: %u slots and %u histograms do not fit its %zu bytes", fname,
                               nslots, hnhist, size);
        if (memchr(h->stage, '\0', sizeof(h->stage)) == NULL || !stats_stage_ok(h->stage))
                return why_set(why, whylen, -EBADMSG, "%s: bad stage name", fname);
        slots = (const struct stats_shm_slot *)((const char *)map + STATS_HDR_SIZE);
        for (uint32_t i = 0; i < nslots; i++) {
                const struct stats_shm_slot *sl = &slots[i];

                if (memchr(sl->name, '\0', sizeof(sl->name)) == NULL)
                        return why_set(why, whylen, -EBADMSG, "%s: slot %u: name not terminated",
                                       fname, i);
                /* Names reach terminals and JSON: only the characters a writer may use. */
                if (!stats_name_ok(sl->name))
                        return why_set(why, whylen, -EBADMSG, "%s: slot %u: bad counter name",
                                       fname, i);
                if (sl->kind < STATS_COUNTER || sl->kind > STATS_HISTOGRAM)
                        return why_set(why, whylen, -EBADMSG, "%s: slot %u: unknown kind %u",
                                       fname, i, sl->kind);
                /* Histograms take their areas in slot order: nothing else is accepted. */
                if (sl->kind == STATS_HISTOGRAM && sl->hist != nhist++)
                        return why_set(why, whylen, -EBADMSG, "%s: slot %u: bad histogram index",
                                       fname, i);
        }
        if (nhist != hnhist)
                return why_set(why, whylen, -EBADMSG, "%s: %u histograms, header says %u", fname,
                               nhist, hnhist);
        *nslotsp = nslots;
        *nhistp = nhist;
        return 0;
}

static int stats_lock(int fd)
{
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };

        if (fcntl(fd, F_OFD_SETLK, &fl) == 0)
                return 0;
        return errno == EAGAIN || errno == EACCES ? -EBUSY : -errno;
}

/* 1 when the mapped file holds exactly the table defs. */
static int stats_table_matches(const void *map, const struct stats_def *defs, unsigned n)
{
        const struct stats_shm_hdr *h = map;
        const struct stats_shm_slot *slots =
                (const struct stats_shm_slot *)((const char *)map + STATS_HDR_SIZE);

        if (h->nslots != n)
                return 0;
        for (unsigned i = 0; i < n; i++)
                if (slots[i].kind != (uint32_t)defs[i].kind || strcmp(slots[i].name, defs[i].name) != 0)
                        return 0;
        return 1;
}

static void stats_bind(struct stats *s)
{
        s->hdr = s->map;
        s->slots = (struct stats_shm_slot *)((char *)s->map + STATS_HDR_SIZE);
        s->hists = (struct stats_shm_hist *)(s->slots + s->hdr->nslots);
}

/*
 * Builds a fresh file under a temporary name, locks it, and renames it over
 * <stage>.stats, so a reader never sees a half-written table.
 */
static int stats_make(struct stats *s, int dirfd, const char *stage, const char *fname,
                      const struct stats_def *defs, unsigned n, char *why, size_t whylen)
{
        char tmp[STATS_FNAME_MAX + 32];
        struct stats_shm_hdr *h;
        struct stats_shm_slot *slots;
        uint32_t nhist = 0;
        int err;

        for (unsigned i = 0; i < n; i++)
                nhist += defs[i].kind == STATS_HISTOGRAM;
        s->size = stats_file_size(n, nhist);
        snprintf(tmp, sizeof(tmp), ".%s.%ld.tmp", fname, (long)getpid());
        s->fd = openat(dirfd, tmp, O_RDWR | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (s->fd < 0)
                return why_set(why, whylen, -errno, "%s: cannot create: %s", fname, strerror(errno));
        if (fchmod(s->fd, 0600) != 0) {
                err = why_set(why, whylen, -errno, "%s: fchmod: %s", fname, strerror(errno));
                goto err;
        }
        err = posix_fallocate(s->fd, 0, (off_t)s->size);
        if (err != 0) {
                err = why_set(why, whylen, -err, "%s: cannot allocate %zu bytes: %s", fname,
                              s->size, strerror(err));
                goto err;
        }
        s->map = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
        if (s->map == MAP_FAILED) {
                s->map = NULL;
                err = why_set(why, whylen, -errno, "%s: mmap: %s", fname, strerror(errno));
                goto err;
        }
        h = s->map;
        h->magic = STATS_MAGIC;
        h->version = STATS_VERSION;
        h->nslots = n;
        h->nhist = nhist;
        snprintf(h->stage, sizeof(h->stage), "%s", stage);
        slots = (struct stats_shm_slot *)((char *)s->map + STATS_HDR_SIZE);
        nhist = 0;
        for (unsigned i = 0; i < n; i++) {
                snprintf(slots[i].name, sizeof(slots[i].name), "%s", defs[i].name);
                slots[i].kind = (uint32_t)defs[i].kind;
                slots[i].hist = defs[i].kind == STATS_HISTOGRAM ? nhist++ : 0;
        }
        err = stats_lock(s->fd);
        if (err < 0) {
                why_set(why, whylen, err, "%s: cannot lock: %s", fname, strerror(-err));
                goto err;
        }
        if (renameat(dirfd, tmp, dirfd, fname) != 0) {
                err = why_set(why, whylen, -errno, "%s: rename: %s", fname, strerror(errno));
                goto err;
        }
        return 0;
err:
        unlinkat(dirfd, tmp, 0);
        return err;
}

/* Opens an existing file with the same table and takes it over. 1 taken, 0 not usable, <0 error. */
static int stats_adopt(struct stats *s, int dirfd, const char *fname,
                       const struct stats_def *defs, unsigned n, char *why, size_t whylen)
{
        uint32_t nslots, nhist;
        uint64_t size;
        int err;

        s->fd = openat(dirfd, fname, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
        if (s->fd < 0)
                return errno == ENOENT ? 0 : why_set(why, whylen, -errno, "%s: %s", fname,
                                                      strerror(errno));
        err = instance_check_file(s->fd, fname, &size, why, whylen);
        if (err < 0)
                return err;
        err = stats_lock(s->fd);
        if (err == -EBUSY) {
                struct stats_shm_hdr h;

                if (pread(s->fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
                        h.pid = 0;
                return why_set(why, whylen, -EBUSY, "%s: already written by a live process (pid %d)",
                               fname, (int)h.pid);
        }
        if (err < 0)
                return why_set(why, whylen, err, "%s: cannot lock: %s", fname, strerror(-err));
        if (size < STATS_HDR_SIZE || size > stats_file_size(STATS_MAX_SLOTS, STATS_MAX_SLOTS))
                goto replace;
        s->size = (size_t)size;
        s->map = mmap(NULL, s->size, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd, 0);
        if (s->map == MAP_FAILED) {
                s->map = NULL;
                return why_set(why, whylen, -errno, "%s: mmap: %s", fname, strerror(errno));
        }
        if (stats_validate(s->map, s->size, fname, &nslots, &nhist, NULL, 0) == 0 &&
            stats_table_matches(s->map, defs, n))
                return 1;
        munmap(s->map, s->size);
        s->map = NULL;
replace:
        /* Another table (an upgrade) or a damaged file: start afresh. */
        close(s->fd);
        s->fd = -1;
        return 0;
}

int stats_create(struct stats **sp, int dirfd, const char *stage,
                 const struct stats_def *defs, unsigned n, char *why, size_t whylen)
{
        char fname[STATS_FNAME_MAX];
        struct stats *s;
        int err;

        if (!stats_stage_ok(stage))
                return why_set(why, whylen, -EINVAL, "bad stage name \"%s\": 1-%d of [a-z0-9_]",
                               stage, STATS_STAGE_MAX);
        if (n == 0 || n > STATS_MAX_SLOTS)
                return why_set(why, whylen, -EINVAL, "%s: %u counters, want 1-%d", stage, n,
                               STATS_MAX_SLOTS);
        for (unsigned i = 0; i < n; i++) {
                if (!stats_name_ok(defs[i].name))
                        return why_set(why, whylen, -EINVAL,
                                       "%s: bad counter name \"%s\": 1-%d of [a-z0-9_.]", stage,
                                       defs[i].name, STATS_NAME_MAX);
                if (defs[i].kind < STATS_COUNTER || defs[i].kind > STATS_HISTOGRAM)
                        return why_set(why, whylen, -EINVAL, "%s: counter %s: bad kind", stage,
                                       defs[i].name);
        }
        snprintf(fname, sizeof(fname), "%s.stats", stage);
        s = calloc(1, sizeof(*s));
        if (s == NULL)
                return why_set(why, whylen, -ENOMEM, "%s: out of memory", fname);
        s->fd = -1;
        err = stats_adopt(s, dirfd, fname, defs, n, why, whylen);
        if (err == 0)
                err = stats_make(s, dirfd, stage, fname, defs, n, why, whylen);
        if (err < 0)
                goto err;
        stats_bind(s);
        s->n = n;
        atomic_store(&s->hdr->pid, (int32_t)getpid());
        atomic_store(&s->hdr->started_ns, clock_real_ns());
        stats_heartbeat(s);
        *sp = s;
        return 0;
err:
        stats_close(s);
        return err;
}

void stats_close(struct stats *s)
{
        if (s == NULL)
                return;
        if (s->map != NULL)
                munmap(s->map, s->size);
        if (s->fd >= 0)
                close(s->fd);
        free(s);
}

_Atomic uint64_t *stats_slot(struct stats *s, unsigned idx)
{
        return &s->slots[idx].value;
}

static unsigned stats_bucket(uint64_t v)
{
        unsigned b = v == 0 ? 0 : 64u - (unsigned)__builtin_clzll(v);

        return b < STATS_HIST_BUCKETS ? b : STATS_HIST_BUCKETS - 1;
}

void stats_hist_add(struct stats *s, unsigned idx, uint64_t value)
{
        struct stats_shm_slot *sl = &s->slots[idx];
        struct stats_shm_hist *h = &s->hists[sl->hist];

        stats_add(&h->buckets[stats_bucket(value)], 1);
        stats_add(&h->sum, value);
        /* The count last: a reader that sees it sees the bucket it counts (mostly; stats are not exact). */
        stats_add(&h->count, 1);
        stats_set(&sl->value, atomic_load_explicit(&h->count, memory_order_relaxed));
}

void stats_heartbeat(struct stats *s)
{
        atomic_store_explicit(&s->hdr->heartbeat_ns, clock_mono_ns(), memory_order_relaxed);
}

/* 1 when a process holds the writer's lock on fd. */
static int stats_writer_alive(int fd)
{
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };

        if (fcntl(fd, F_OFD_GETLK, &fl) != 0)
                return 0;
        return fl.l_type != F_UNLCK;
}

int stats_read(int dirfd, const char *stage, struct stats_snapshot *snap, char *why, size_t whylen)
{
        char fname[STATS_FNAME_MAX];
        /* Not const: C11 atomic loads take non-const pointers on older compilers. */
        struct stats_shm_hdr *h;
        struct stats_shm_slot *slots;
        struct stats_shm_hist *hists;
        void *map = MAP_FAILED;
        uint64_t size = 0;
        uint32_t nslots, nhist;
        int fd, err;

        memset(snap, 0, sizeof(*snap));
        if (!stats_stage_ok(stage))
                return why_set(why, whylen, -EINVAL, "bad stage name \"%s\"", stage);
        snprintf(fname, sizeof(fname), "%s.stats", stage);
        fd = openat(dirfd, fname, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return why_set(why, whylen, -errno, "%s: %s", fname, strerror(errno));
        err = instance_check_file(fd, fname, &size, why, whylen);
        if (err < 0)
                goto out;
        if (size < STATS_HDR_SIZE || size > stats_file_size(STATS_MAX_SLOTS, STATS_MAX_SLOTS)) {
                err = why_set(why, whylen, -EBADMSG, "%s: implausible size %llu bytes", fname,
                              (unsigned long long)size);
                goto out;
        }
        map = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED) {
                err = why_set(why, whylen, -errno, "%s: mmap: %s", fname, strerror(errno));
                goto out;
        }
        /*
         * The table is written once, before the file gets its name, so
         * validating it once is enough; only values change under us. A
         * foreign writer could still change it: what the loop below indexes
         * with (the counts, each slot's kind and histogram) is read once
         * and checked again, and strings are copied with their bound.
         */
        err = stats_validate(map, (size_t)size, fname, &nslots, &nhist, why, whylen);
        if (err < 0)
                goto out;
        h = map;
        memcpy(snap->stage, h->stage, sizeof(snap->stage));
        snap->stage[sizeof(snap->stage) - 1] = '\0';
        /* A file copied or renamed by hand would show its numbers under the wrong stage. */
        if (strcmp(snap->stage, stage) != 0) {
                err = why_set(why, whylen, -EBADMSG, "%s: its header names stage \"%s\"", fname,
                              snap->stage);
                goto out;
        }
        slots = (struct stats_shm_slot *)((char *)map + STATS_HDR_SIZE);
        hists = (struct stats_shm_hist *)(slots + nslots);
        snap->values = calloc(nslots ? nslots : 1, sizeof(*snap->values));
        if (snap->values == NULL) {
                err = why_set(why, whylen, -ENOMEM, "%s: out of memory", fname);
                goto out;
        }
        snap->pid = atomic_load_explicit(&h->pid, memory_order_relaxed);
        snap->started_ns = atomic_load_explicit(&h->started_ns,
                                                memory_order_relaxed);
        snap->heartbeat_ns = atomic_load_explicit(&h->heartbeat_ns,
                                                  memory_order_relaxed);
        snap->alive = stats_writer_alive(fd);
        snap->n = nslots;
        for (unsigned i = 0; i < snap->n; i++) {
                struct stats_value *v = &snap->values[i];
                struct stats_shm_slot *sl = &slots[i];
                uint32_t hist = sl->hist;

                memcpy(v->name, sl->name, sizeof(v->name));
                v->name[sizeof(v->name) - 1] = '\0';
                v->kind = (enum stats_kind)sl->kind;
                v->value = atomic_load_explicit(&sl->value, memory_order_relaxed);
                if (v->kind == STATS_HISTOGRAM && hist < nhist) {
                        struct stats_shm_hist *hh = &hists[hist];

                        v->value = atomic_load_explicit(&hh->count, memory_order_relaxed);
                        v->sum = atomic_load_explicit(&hh->sum, memory_order_relaxed);
                        for (unsigned b = 0; b < STATS_HIST_BUCKETS; b++)
                                v->buckets[b] = atomic_load_explicit(&hh->buckets[b],
                                                                     memory_order_relaxed);
                }
        }
        err = 0;
out:
        if (map != MAP_FAILED)
                munmap(map, (size_t)size);
        close(fd);
        if (err < 0)
                stats_snapshot_free(snap);
        return err;
}

void stats_snapshot_free(struct stats_snapshot *snap)
{
        free(snap->values);
        snap->values = NULL;
        snap->n = 0;
}

const struct stats_value *stats_find(const struct stats_snapshot *snap, const char *name)
{
        for (unsigned i = 0; i < snap->n; i++)
                if (strcmp(snap->values[i].name, name) == 0)
                        return &snap->values[i];
        return NULL;
}

uint64_t stats_hist_quantile(const struct stats_value *v, double q)
{
        uint64_t total = 0, seen = 0, target;

        for (unsigned b = 0; b < STATS_HIST_BUCKETS; b++)
                total += v->buckets[b];
        if (total == 0)
                return 0;
        if (q < 0)
                q = 0;
        if (q > 1)
                q = 1;
        target = (uint64_t)(q * (double)total + 0.999999);
        if (target == 0)
                target = 1;
        for (unsigned b = 0; b < STATS_HIST_BUCKETS; b++) {
                seen += v->buckets[b];
                if (seen >= target)
                        return b == 0 ? 0 : b >= 64 ? UINT64_MAX : (UINT64_C(1) << b) - 1;
        }
        return UINT64_MAX;
}
