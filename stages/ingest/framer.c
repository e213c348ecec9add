/* SPDX-License-Identifier: MIT */
/* framer.c: NDJSON line framing over caller buffers (see framer.h). */
#include "autoconf.h"

#include <string.h>

#include "framer.h"

void framer_init(struct framer *f, uint64_t max_line)
{
        memset(f, 0, sizeof(*f));
        f->max_line = max_line;
}

void framer_resume_skip(struct framer *f, uint64_t origin, uint64_t seen, int last_cr)
{
        f->skipping = 1;
        f->skip_origin = origin;
        f->skip_seen = seen;
        f->last_cr = last_cr != 0;
}

/* 1 when the line holds only spaces, tabs and \r. The first byte decides almost always. */
static int framer_blank(const char *s, size_t len)
{
        for (size_t i = 0; i < len; i++)
                if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r')
                        return 0;
        return 1;
}

/* Reports the first bytes of an over-long line at buf[p] and starts stepping over it. */
static enum framer_kind framer_long_head(struct framer *f, const char *buf, size_t p, size_t head,
                                         size_t end, uint64_t base, size_t *pos,
                                         struct framer_item *it)
{
        it->data = buf + p;
        it->len = head;
        it->origin = base + p;
        it->total = 0;
        f->skipping = 1;
        f->skip_origin = base + p;
        f->skip_seen = end - p;
        f->last_cr = end > p && buf[end - 1] == '\r';
        *pos = end;
        return FRAMER_LONG_HEAD;
}

/* Steps over the rest of an over-long line in buf[*pos, len). */
static enum framer_kind framer_skip(struct framer *f, const char *buf, size_t len, int eof,
                                    size_t *pos, struct framer_item *it)
{
        size_t p = *pos;
        const char *nl = p < len ? memchr(buf + p, '\n', len - p) : NULL;
        size_t end = nl != NULL ? (size_t)(nl - buf) : len;
        uint64_t seen = f->skip_seen + (end - p);
        int cr = end > p ? buf[end - 1] == '\r' : f->last_cr;

        if (nl == NULL && !eof) {
                f->skip_seen = seen;
                f->last_cr = cr;
                *pos = len;
                return FRAMER_NEED_MORE;
        }
        /* The line ends here: at its \n, or at the end of input (a last \r dropped the same way). */
        it->data = NULL;
        it->len = 0;
        it->origin = f->skip_origin;
        it->total = seen - (uint64_t)cr;
        f->skipping = 0;
        f->skip_seen = 0;
        f->last_cr = 0;
        *pos = nl != NULL ? end + 1 : len;
        return FRAMER_LONG_END;
}

enum framer_kind framer_next(struct framer *f, const char *buf, size_t len, uint64_t base, int eof,
                             size_t *pos, struct framer_item *it)
{
        size_t p = *pos;

        if (f->skipping)
                return framer_skip(f, buf, len, eof, pos, it);
        while (p < len) {
                size_t avail = len - p, clen, end;
                /* The \n of the longest line is at most max_line + 1 bytes in (after a \r). */
                size_t lim = (uint64_t)avail > f->max_line + 2 ? (size_t)(f->max_line + 2) : avail;
                const char *nl = memchr(buf + p, '\n', lim);

                if (nl == NULL) {
                        /*
                         * No \n within max_line + 2 bytes: over-long. The head is
                         * what the buffer holds of it, up to its \n if that is
                         * here too, and never a \r that may start the line ending.
                         */
                        if ((uint64_t)avail >= f->max_line + 2) {
                                nl = memchr(buf + p + lim, '\n', len - p - lim);
                                end = nl != NULL ? (size_t)(nl - buf) : len;
                                clen = end - p - (buf[end - 1] == '\r');
                                return framer_long_head(f, buf, p, clen, end, base, pos, it);
                        }
                        if (!eof) {
                                *pos = p;
                                return FRAMER_NEED_MORE;
                        }
                        end = len;              /* the final line, without a newline */
                } else {
                        end = (size_t)(nl - buf);
                }
                clen = end - p;
                if (clen > 0 && buf[end - 1] == '\r')
                        clen--;
                if (clen > f->max_line)
                        return framer_long_head(f, buf, p, clen, end, base, pos, it);
                if ((buf[p] == ' ' || buf[p] == '\t' || buf[p] == '\r' || clen == 0) &&
                    framer_blank(buf + p, clen)) {
                        p = nl != NULL ? end + 1 : len;
                        continue;
                }
                it->data = buf + p;
                it->len = clen;
                it->origin = base + p;
                it->total = clen;
                *pos = nl != NULL ? end + 1 : len;
                return FRAMER_LINE;
        }
        *pos = p;
        return FRAMER_NEED_MORE;
}
