/* SPDX-License-Identifier: MIT */
/* checkpoint.c: the process stage's state file: atomic replace, CRC32C, a bounds-checked reader. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checkpoint.h"
#include "why.h"

/* The header as it lies at the start of the file. */
struct ckpt_header {
        char magic[8];
        uint32_t version;
        uint32_t header_crc;            /* CRC32C of the header with this field zero */
        uint64_t length;                /* payload bytes */
        uint32_t payload_crc;
        uint32_t reserved;              /* zero */
};

_Static_assert(sizeof(struct ckpt_header) == CHECKPOINT_HEADER, "the header is 32 bytes");

/* ---- CRC32C, reflected polynomial 0x82F63B78, one table lookup per byte ---- */

static uint32_t crc_table[256];
static int crc_ready;

static void crc_init(void)
{
        for (uint32_t i = 0; i < 256; i++) {
                uint32_t c = i;

                for (int k = 0; k < 8; k++)
                        c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
                crc_table[i] = c;
        }
        crc_ready = 1;
}

#if defined(__x86_64__)
/*
 * SSE 4.2 has the CRC32C instruction: 8 bytes a cycle or so, against one
 * byte per table lookup, and checkpoints of a large window state are
 * megabytes. Chosen once at run time; the table stays for other CPUs.
 */
__attribute__((target("sse4.2")))
static uint32_t crc_hw(uint32_t crc, const unsigned char *b, size_t n)
{
        uint64_t c = crc;

        while (n >= 8) {
                uint64_t w;

                memcpy(&w, b, 8);
                c = __builtin_ia32_crc32di(c, w);
                b += 8;
                n -= 8;
        }
        crc = (uint32_t)c;
        while (n-- > 0)
                crc = __builtin_ia32_crc32qi(crc, *b++);
        return crc;
}

static int crc_use_hw(void)
{
        static int hw = -1;

        if (hw < 0) {
                __builtin_cpu_init();
                hw = __builtin_cpu_supports("sse4.2") ? 1 : 0;
        }
        return hw;
}
#endif

uint32_t checkpoint_crc32c(uint32_t crc, const void *p, size_t n)
{
        const unsigned char *b = p;

#if defined(__x86_64__)
        if (crc_use_hw())
                return ~crc_hw(~crc, b, n);
#endif
        if (!crc_ready)
                crc_init();
        crc = ~crc;
        while (n-- > 0)
                crc = crc_table[(crc ^ *b++) & 0xff] ^ (crc >> 8);
        return ~crc;
}

/* ---- the payload buffer ---- */

void ckpt_buf_init(struct ckpt_buf *b)
{
        memset(b, 0, sizeof(*b));
}

void ckpt_buf_fini(struct ckpt_buf *b)
{
        free(b->p);
        memset(b, 0, sizeof(*b));
}

void ckpt_put(struct ckpt_buf *b, const void *data, size_t n)
{
        if (b->err != 0)
                return;
        if (b->len + n > b->cap) {
                size_t cap = b->cap ? b->cap : 4096;
                unsigned char *p;

                while (cap < b->len + n)
                        cap *= 2;
                p = realloc(b->p, cap);
                if (p == NULL) {
                        b->err = -ENOMEM;
                        return;
                }
                b->p = p;
                b->cap = cap;
        }
        if (n > 0)
                memcpy(b->p + b->len, data, n);
        b->len += n;
}

void *ckpt_put_space(struct ckpt_buf *b, size_t n)
{
        size_t at = b->len;

        if (b->err == 0 && b->len + n > b->cap) {
                /* Grown like ckpt_put, but the bytes are the caller's to write. */
                size_t cap = b->cap ? b->cap : 4096;
                unsigned char *p;

                while (cap < b->len + n)
                        cap *= 2;
                p = realloc(b->p, cap);
                if (p == NULL) {
                        b->err = -ENOMEM;
                        return NULL;
                }
                b->p = p;
                b->cap = cap;
        }
        if (b->err != 0)
                return NULL;
        b->len = at + n;
        return b->p + at;
}

size_t ckpt_blob_begin(struct ckpt_buf *b)
{
        size_t at = b->len;

        ckpt_put_u32(b, 0);
        return at;
}

void ckpt_blob_end(struct ckpt_buf *b, size_t at)
{
        size_t n = b->len - at - sizeof(uint32_t);
        uint32_t v = (uint32_t)n;

        if (b->err != 0)
                return;
        if (n > UINT32_MAX) {
                b->err = -EOVERFLOW;
                return;
        }
        memcpy(b->p + at, &v, sizeof(v));
}

void ckpt_buf_reset(struct ckpt_buf *b)
{
        b->len = 0;
        b->err = 0;
}

void ckpt_put_blob(struct ckpt_buf *b, const void *data, size_t n)
{
        if (n > UINT32_MAX) {
                b->err = -EOVERFLOW;
                return;
        }
        ckpt_put_u32(b, (uint32_t)n);
        ckpt_put(b, data, n);
}

/* ---- the reader ---- */

void ckpt_reader_init(struct ckpt_reader *r, const void *data, size_t len)
{
        r->p = data;
        r->len = len;
        r->off = 0;
        r->err = 0;
}

const void *ckpt_get(struct ckpt_reader *r, size_t n)
{
        const void *p;

        if (r->err != 0 || n > r->len - r->off) {
                r->err = -EBADMSG;
                return NULL;
        }
        p = r->p + r->off;
        r->off += n;
        return p;
}

/* Copies n bytes out, or zeros once the reader failed. */
static void ckpt_copy(struct ckpt_reader *r, void *out, size_t n)
{
        const void *p = ckpt_get(r, n);

        if (p != NULL)
                memcpy(out, p, n);
        else
                memset(out, 0, n);
}

uint8_t ckpt_get_u8(struct ckpt_reader *r)
{
        uint8_t v;

        ckpt_copy(r, &v, sizeof(v));
        return v;
}

uint32_t ckpt_get_u32(struct ckpt_reader *r)
{
        uint32_t v;

        ckpt_copy(r, &v, sizeof(v));
        return v;
}

uint64_t ckpt_get_u64(struct ckpt_reader *r)
{
        uint64_t v;

        ckpt_copy(r, &v, sizeof(v));
        return v;
}

int64_t ckpt_get_i64(struct ckpt_reader *r)
{
        int64_t v;

        ckpt_copy(r, &v, sizeof(v));
        return v;
}

double ckpt_get_f64(struct ckpt_reader *r)
{
        double v;

        ckpt_copy(r, &v, sizeof(v));
        return v;
}

const void *ckpt_get_blob(struct ckpt_reader *r, size_t max, size_t *n)
{
        uint32_t len = ckpt_get_u32(r);

        *n = 0;
        if (r->err != 0 || len > max) {
                r->err = -EBADMSG;
                return NULL;
        }
        *n = len;
        return ckpt_get(r, len);
}

/* ---- the file ---- */

static int write_all(int fd, const void *p, size_t n)
{
        const char *c = p;

        while (n > 0) {
                ssize_t w = write(fd, c, n);

                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                c += w;
                n -= (size_t)w;
        }
        return 0;
}

int checkpoint_save(int dirfd, const char *name, const void *data, size_t len,
                    char *why, size_t whylen)
{
        struct ckpt_header h;
        char tmp[256];
        int fd = -1, err;

        if ((uint64_t)len > CHECKPOINT_MAX_BYTES)
                return why_set(why, whylen, -EFBIG, "%s: %zu bytes of state, more than the %llu a "
                               "checkpoint holds", name, len, (unsigned long long)CHECKPOINT_MAX_BYTES);
        if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", name) >= sizeof(tmp))
                return why_set(why, whylen, -ENAMETOOLONG, "%s: name too long", name);
        memset(&h, 0, sizeof(h));
        memcpy(h.magic, CHECKPOINT_MAGIC, sizeof(h.magic));
        h.version = CHECKPOINT_VERSION;
        h.length = len;
        h.payload_crc = checkpoint_crc32c(0, data, len);
        h.header_crc = checkpoint_crc32c(0, &h, sizeof(h));

        fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return why_set(why, whylen, -errno, "%s: %s", tmp, strerror(errno));
        if ((err = write_all(fd, &h, sizeof(h))) < 0 || (err = write_all(fd, data, len)) < 0) {
                why_set(why, whylen, err, "%s: write: %s", tmp, strerror(-err));
                goto err;
        }
        /* The bytes must be on disk before the name points at them. */
        if (fsync(fd) < 0) {
                err = why_set(why, whylen, -errno, "%s: fsync: %s", tmp, strerror(errno));
                goto err;
        }
        close(fd);
        fd = -1;
        if (renameat(dirfd, tmp, dirfd, name) < 0) {
                err = why_set(why, whylen, -errno, "rename %s to %s: %s", tmp, name, strerror(errno));
                goto err;
        }
        /* And the rename itself must survive a power loss. */
        if (fsync(dirfd) < 0)
                return why_set(why, whylen, -errno, "%s: fsync of its directory: %s", name,
                               strerror(errno));
        return 0;
err:
        if (fd >= 0)
                close(fd);
        unlinkat(dirfd, tmp, 0);
        return err;
}

int checkpoint_load(int dirfd, const char *name, void **data, size_t *len, char *why,
                    size_t whylen)
{
        struct ckpt_header h;
        struct stat sb;
        unsigned char *buf = NULL;
        uint32_t crc;
        size_t got = 0;
        int fd, err;

        *data = NULL;
        *len = 0;
        fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return why_set(why, whylen, -errno, "%s: %s", name, strerror(errno));
        if (fstat(fd, &sb) < 0) {
                err = why_set(why, whylen, -errno, "%s: fstat: %s", name, strerror(errno));
                goto err;
        }
        if (!S_ISREG(sb.st_mode) || (uint64_t)sb.st_size < CHECKPOINT_HEADER ||
            (uint64_t)sb.st_size > CHECKPOINT_HEADER + CHECKPOINT_MAX_BYTES) {
                err = why_set(why, whylen, -EBADMSG, "%s: not a checkpoint (%lld bytes)", name,
                              (long long)sb.st_size);
                goto err;
        }
        buf = malloc((size_t)sb.st_size);
        if (buf == NULL) {
                err = why_set(why, whylen, -ENOMEM, "%s: out of memory for %lld bytes", name,
                              (long long)sb.st_size);
                goto err;
        }
        while (got < (size_t)sb.st_size) {
                ssize_t r = pread(fd, buf + got, (size_t)sb.st_size - got, (off_t)got);

                if (r < 0 && errno == EINTR)
                        continue;
                if (r <= 0) {
                        err = why_set(why, whylen, r < 0 ? -errno : -EBADMSG, "%s: read: %s", name,
                                      r < 0 ? strerror(errno) : "shorter than it was");
                        goto err;
                }
                got += (size_t)r;
        }
        memcpy(&h, buf, sizeof(h));
        crc = h.header_crc;
        h.header_crc = 0;
        if (memcmp(h.magic, CHECKPOINT_MAGIC, sizeof(h.magic)) != 0) {
                err = why_set(why, whylen, -EBADMSG, "%s: bad magic: not a process checkpoint", name);
                goto err;
        }
        if (checkpoint_crc32c(0, &h, sizeof(h)) != crc) {
                err = why_set(why, whylen, -EBADMSG, "%s: header checksum mismatch", name);
                goto err;
        }
        if (h.version != CHECKPOINT_VERSION) {
                err = why_set(why, whylen, -EBADMSG, "%s: version %u, this program reads %u", name,
                              h.version, CHECKPOINT_VERSION);
                goto err;
        }
        if (h.length != (uint64_t)sb.st_size - CHECKPOINT_HEADER) {
                err = why_set(why, whylen, -EBADMSG, "%s: header says %llu bytes of state, the file "
                              "holds %llu", name, (unsigned long long)h.length,
                              (unsigned long long)((uint64_t)sb.st_size - CHECKPOINT_HEADER));
                goto err;
        }
        if (checkpoint_crc32c(0, buf + CHECKPOINT_HEADER, (size_t)h.length) != h.payload_crc) {
                err = why_set(why, whylen, -EBADMSG, "%s: state checksum mismatch", name);
                goto err;
        }
        close(fd);
        memmove(buf, buf + CHECKPOINT_HEADER, (size_t)h.length);
        *data = buf;
        *len = (size_t)h.length;
        return 0;
err:
        free(buf);
        close(fd);
        return err;
}

int checkpoint_set_aside(int dirfd, const char *name, char *aside, size_t asidelen,
                         char *why, size_t whylen)
{
        if ((size_t)snprintf(aside, asidelen, "%s.corrupt-%lld", name, (long long)time(NULL)) >=
            asidelen)
                return why_set(why, whylen, -ENAMETOOLONG, "%s: name too long", name);
        if (renameat(dirfd, name, dirfd, aside) < 0)
                return why_set(why, whylen, -errno, "rename %s to %s: %s", name, aside,
                               strerror(errno));
        fsync(dirfd);
        return 0;
}
