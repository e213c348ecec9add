/* SPDX-License-Identifier: MIT */
/* blocks.c: the writer's open runs of events per (kind, code) (see blocks.h). */
#include "autoconf.h"

#include <string.h>

#include "blocks.h"
#include "schema.h"

void blocks_reset(struct blocks *b)
{
        for (unsigned i = 0; i < BLOCKS_SLOTS; i++)
                b->slot[i].kind = -1;
        b->open = 0;
}

static unsigned slot_of(int kind, int64_t code)
{
        uint64_t h = ((uint64_t)code * 4u + (uint64_t)kind) * 0x9e3779b97f4a7c15ull;

        return (unsigned)(h >> 32) & (BLOCKS_SLOTS - 1);
}

int blocks_close_all(struct blocks *b, blocks_emit_fn emit, void *arg)
{
        int rc = 0;

        for (unsigned i = 0; i < BLOCKS_SLOTS && b->open > 0; i++) {
                struct blocks_run *r = &b->slot[i];

                if (r->kind < 0)
                        continue;
                if (rc == 0)
                        rc = emit(arg, r);
                r->kind = -1;
                b->open--;
        }
        return rc;
}

static int extends(const struct blocks_run *r, int64_t rid, int64_t ts)
{
        int64_t lo = ts < r->ts_lo ? ts : r->ts_lo;
        int64_t hi = ts > r->ts_hi ? ts : r->ts_hi;

        return rid > r->rid_hi && rid - r->rid_hi <= BLOCKS_GAP &&
               hi - lo <= SCHEMA_BLOCK_SPAN_MS && r->rows < BLOCKS_ROWS_MAX;
}

static void start(struct blocks_run *r, int kind, int64_t code, int64_t rid, int64_t ts)
{
        r->kind = kind;
        r->code = code;
        r->ts_lo = r->ts_hi = ts;
        r->rid_lo = r->rid_hi = rid;
        r->rows = 1;
}

int blocks_add(struct blocks *b, int kind, int64_t code, int64_t rid, int64_t ts,
               blocks_emit_fn emit, void *arg)
{
        unsigned i = slot_of(kind, code);
        struct blocks_run *r;
        int rc;

        for (; (r = &b->slot[i])->kind >= 0; i = (i + 1) & (BLOCKS_SLOTS - 1)) {
                if (r->kind != kind || r->code != code)
                        continue;
                if (extends(r, rid, ts)) {
                        if (ts < r->ts_lo)
                                r->ts_lo = ts;
                        if (ts > r->ts_hi)
                                r->ts_hi = ts;
                        r->rid_hi = rid;
                        r->rows++;
                        return 0;
                }
                rc = emit(arg, r);
                start(r, kind, code, rid, ts);
                return rc;
        }
        if (b->open >= BLOCKS_OPEN_MAX) {
                if ((rc = blocks_close_all(b, emit, arg)) < 0)
                        return rc;
                i = slot_of(kind, code);
                r = &b->slot[i];
        }
        start(r, kind, code, rid, ts);
        b->open++;
        return 0;
}
