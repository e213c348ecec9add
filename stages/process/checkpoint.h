/* SPDX-License-Identifier: MIT */
/* checkpoint.h: the process stage's state file, written atomically and checked by a CRC32C. */
#ifndef RINGFLOW_CHECKPOINT_H
#define RINGFLOW_CHECKPOINT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/*
 * A checkpoint is one file, DATA_DIR/<name> (process.ckpt): a 32-byte
 * header (magic, version, payload length, CRC32C of the payload, CRC32C of
 * the header) and the payload. It is written as <name>.tmp, fsync'd,
 * renamed over <name>, and the directory fsync'd, so a crash at any instant
 * leaves either the old file or the new one, never a mixture. A file that
 * does not check out is corrupt: the caller sets it aside
 * (checkpoint_set_aside) and starts over.
 *
 * The payload is built with struct ckpt_buf and read back with struct
 * ckpt_reader: fixed-width integers in host byte order (the file never
 * leaves the host), doubles as their bits, byte strings with a length.
 */

#define CHECKPOINT_MAGIC "RFPCKPT\0"
#define CHECKPOINT_VERSION 1u
#define CHECKPOINT_HEADER 32u
#define CHECKPOINT_MAX_BYTES (1ull << 32)       /* the largest payload we write or read */

/* CRC32C (Castagnoli) of n bytes at p, continuing from crc (start with 0). */
uint32_t checkpoint_crc32c(uint32_t crc, const void *p, size_t n);

/* ---- building a payload ---- */

/* A growing buffer; err becomes -ENOMEM (and stays) when growing fails. */
struct ckpt_buf {
        unsigned char *p;
        size_t len, cap;
        int err;
};

void ckpt_buf_init(struct ckpt_buf *b);
void ckpt_buf_fini(struct ckpt_buf *b);
void ckpt_put(struct ckpt_buf *b, const void *data, size_t n);

/*
 * Fixed-width values, inline: a checkpoint of 10,000 keys is hundreds of
 * thousands of them, and a call each was a tenth of the serializing.
 * A value that does not fit goes through ckpt_put, which grows b.
 */
static inline void ckpt_put_fixed(struct ckpt_buf *b, const void *v, size_t n)
{
        if (b->err == 0 && b->cap - b->len >= n) {
                memcpy(b->p + b->len, v, n);
                b->len += n;
                return;
        }
        ckpt_put(b, v, n);
}

static inline void ckpt_put_u8(struct ckpt_buf *b, uint8_t v)
{
        ckpt_put_fixed(b, &v, sizeof(v));
}

static inline void ckpt_put_u32(struct ckpt_buf *b, uint32_t v)
{
        ckpt_put_fixed(b, &v, sizeof(v));
}

static inline void ckpt_put_u64(struct ckpt_buf *b, uint64_t v)
{
        ckpt_put_fixed(b, &v, sizeof(v));
}

static inline void ckpt_put_i64(struct ckpt_buf *b, int64_t v)
{
        ckpt_put_fixed(b, &v, sizeof(v));
}

static inline void ckpt_put_f64(struct ckpt_buf *b, double v)
{
        ckpt_put_fixed(b, &v, sizeof(v));
}

/* A u32 length, then the bytes. */
void ckpt_put_blob(struct ckpt_buf *b, const void *data, size_t n);
/* Room for n bytes at the end, to be written in place; NULL (err set) when it cannot grow. */
void *ckpt_put_space(struct ckpt_buf *b, size_t n);
/*
 * A blob written in place: begin returns the offset of its length, which
 * end fills in with the bytes appended since.
 */
size_t ckpt_blob_begin(struct ckpt_buf *b);
void ckpt_blob_end(struct ckpt_buf *b, size_t at);
/* Empties b for reuse, keeping its memory. */
void ckpt_buf_reset(struct ckpt_buf *b);

/* ---- reading a payload ---- */

/*
 * A cursor over a payload; err becomes -EBADMSG (and stays) at the first
 * read past the end, and every later read returns zeros, so a reader can
 * read a whole structure and check err once.
 */
struct ckpt_reader {
        const unsigned char *p;
        size_t len, off;
        int err;
};

void ckpt_reader_init(struct ckpt_reader *r, const void *data, size_t len);
/* A pointer to the next n bytes (NULL and err set when there are fewer). */
const void *ckpt_get(struct ckpt_reader *r, size_t n);
uint8_t ckpt_get_u8(struct ckpt_reader *r);
uint32_t ckpt_get_u32(struct ckpt_reader *r);
uint64_t ckpt_get_u64(struct ckpt_reader *r);
int64_t ckpt_get_i64(struct ckpt_reader *r);
double ckpt_get_f64(struct ckpt_reader *r);
/* A blob of at most max bytes: its bytes (borrowed) and *n; NULL with err set when bad. */
const void *ckpt_get_blob(struct ckpt_reader *r, size_t max, size_t *n);

/* ---- the file ---- */

/*
 * Writes data (len bytes) as dirfd/<name> atomically and durably (see
 * above). Returns 0, or -errno with a reason in why naming the file; on
 * failure the previous checkpoint is still in place.
 */
int checkpoint_save(int dirfd, const char *name, const void *data, size_t len,
                    char *why, size_t whylen);

/*
 * Reads and checks dirfd/<name>. Returns 0 with *data (malloc'd, the
 * caller frees) and *len; -ENOENT when there is none; -EBADMSG with a
 * reason in why when it is corrupt (bad magic, version, length, CRC);
 * -ENOMEM or another -errno from reading.
 */
int checkpoint_load(int dirfd, const char *name, void **data, size_t *len, char *why,
                    size_t whylen);

/*
 * Renames dirfd/<name> to <name>.corrupt-<unix time> (aside, for a person
 * to look at) and writes the new name into aside (asidelen bytes).
 * Returns 0 or -errno with why.
 */
int checkpoint_set_aside(int dirfd, const char *name, char *aside, size_t asidelen,
                         char *why, size_t whylen);

#endif
