/* SPDX-License-Identifier: MIT */
/* framer.h: cuts an NDJSON byte stream into lines, over buffers the caller owns. */
#ifndef RINGFLOW_FRAMER_H
#define RINGFLOW_FRAMER_H

#include <stddef.h>
#include <stdint.h>

/*
 * The framer never copies and never allocates: the caller keeps the bytes
 * of a stream in a buffer of its own, hands the framer the unhandled part
 * (buf[0] being at stream offset base) and gets back one item at a time,
 * with pointers into that buffer. Bytes the framer has stepped over are
 * handled: the caller may drop them, or (reading a pipe with tee) consume
 * them from the source. A partial line at the end of the buffer is left
 * where it is; the caller presents it again, with more bytes after it.
 *
 * Rules:
 *   - a line ends with \n; a \r just before it is not part of the line;
 *     at end of input the rest is the final line (a trailing \r is dropped
 *     the same way);
 *   - a line of only spaces, tabs and \r is blank: skipped, no item;
 *   - a line longer than max_line bytes is over-long. The framer reports
 *     its first bytes (FRAMER_LONG_HEAD), steps over the rest as it arrives,
 *     up to the next \n, without ever needing the whole line in the buffer,
 *     and then reports its full length (FRAMER_LONG_END). So a buffer of
 *     max_line + 2 bytes (the longest line, \r, \n) always makes progress.
 *
 * The framer's state changes only together with the bytes it steps over,
 * so a caller that cannot use an item (its output is full) restores a
 * copy of the struct and its position taken before framer_next, and the
 * stream is framed the same way the next time.
 */

enum framer_kind {
        FRAMER_NEED_MORE = 0,   /* nothing more in this buffer: bring more bytes (or end of input) */
        FRAMER_LINE,            /* a complete, non-blank line of at most max_line bytes */
        FRAMER_LONG_HEAD,       /* an over-long line starts: the first bytes of it */
        FRAMER_LONG_END,        /* the over-long line ended: its origin and full length */
};

struct framer {
        uint64_t max_line;      /* longest line accepted, in bytes without the line ending */
        int skipping;           /* inside an over-long line, stepping over it */
        int last_cr;            /* skipping: the last byte stepped over was \r */
        uint64_t skip_origin;   /* skipping: stream offset of the over-long line's first byte */
        uint64_t skip_seen;     /* skipping: bytes of it stepped over so far (\r included) */
};

struct framer_item {
        const char *data;       /* LINE: the line; LONG_HEAD: as much of it as buf holds, > max_line */
        size_t len;             /* bytes at data */
        uint64_t origin;        /* stream offset of the line's first byte */
        uint64_t total;         /* LINE: len; LONG_END: the line's length without its ending */
};

/* Starts at a line boundary, accepting lines of up to max_line (>= 1) bytes. */
void framer_init(struct framer *f, uint64_t max_line);

/*
 * Starts inside an over-long line that began at stream offset origin, of
 * which seen bytes were stepped over already (last_cr: the last of them
 * was \r). For a restart in the middle of such a line: the framer skips the
 * rest and reports FRAMER_LONG_END with the full length, no head.
 */
void framer_resume_skip(struct framer *f, uint64_t origin, uint64_t seen, int last_cr);

/*
 * Finds the next item in buf[*pos, len), where buf[0] is at stream offset
 * base and eof says no byte follows buf[len - 1] in the stream. Moves *pos
 * past what the item covers (a line and its ending, blank lines before it,
 * the stepped-over part of an over-long line) and fills *it.
 * Returns the item's kind; FRAMER_NEED_MORE when the rest is a partial line
 * (then *pos stays at its start, unless an over-long line was being skipped:
 * those bytes are stepped over and *pos moves to len). With eof set,
 * FRAMER_NEED_MORE means everything up to len is handled.
 * Never fails; never reads outside buf[*pos, len).
 */
enum framer_kind framer_next(struct framer *f, const char *buf, size_t len, uint64_t base, int eof,
                             size_t *pos, struct framer_item *it);

#endif
