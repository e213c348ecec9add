/* SPDX-License-Identifier: MIT */
/* source_api.c: events the api stage received over HTTP, from the api->ingest ring. */
#include "autoconf.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest_priv.h"
#include "log.h"
#include "why.h"

/* Records per round: bounded like every other source's batch. */
#define API_BATCH 4096

/*
 * Delivery (DESIGN.md): an api record is released (ring_done) only after
 * its output record is published together with the api mark in our
 * producer state. A restart attaches with read = commit and skips forward
 * to the saved mark, so nothing is published twice and nothing is lost.
 */
int api_open(struct ingest *st, const struct ingest_pstate *old, char *why, size_t whylen)
{
        struct ring_mark saved;
        int err;

        err = ring_attach(&st->api, st->dirfd, "api", "ingest", RING_CONSUMER, why, whylen);
        if (err == -ENOENT) {
                log_info("api-ingest.ring does not exist: the api source is off");
                st->api = NULL;
                return 0;
        }
        if (err < 0)
                return err;
        /*
         * The api could rewrite a JSON record while we parse it, and the
         * parser reads bytes more than once: it parses a private copy. A
         * longer record than max_event_size and its line ending is refused
         * by its length alone, so that is all the copy needs.
         */
        st->api_copy_cap = (size_t)st->cfg.max_event_size + 2;
        st->api_copy = malloc(st->api_copy_cap);
        if (st->api_copy == NULL)
                return why_set(why, whylen, -ENOMEM, "api-ingest.ring: cannot allocate %zu bytes",
                               st->api_copy_cap);
        st->api_mark = st->api_done = ring_cursor(st->api);
        if (old == NULL || old->api_pos <= st->api_mark.pos)
                return 0;
        saved.pos = old->api_pos;
        saved.count = old->api_count;
        err = ring_skip_to(st->api, saved);
        if (err == -EBADMSG)
                return why_set(why, whylen, err, "%s", ring_why(st->api));
        if (err < 0) {
                log_warnx("api-ingest.ring: the saved position %llu (record %llu) is not in the ring "
                          "(recreated?): reading from its commit position %llu",
                          (unsigned long long)saved.pos, (unsigned long long)saved.count,
                          (unsigned long long)st->api_mark.pos);
                return 0;
        }
        log_info("api-ingest.ring: %llu records were published before a restart; skipping them",
                 (unsigned long long)(saved.count - st->api_mark.count));
        /* Their output is published: the first flush releases them. */
        st->api_mark = saved;
        return 0;
}

int api_wants(struct ingest *st)
{
        int err;

        if (st->api_have)
                return 1;
        /* Peeking only reads shared memory: no syscall, so it is cheap to ask every round. */
        err = ring_peek(st->api, &st->api_rec);
        if (err == -EAGAIN)
                return 0;
        if (err < 0) {
                st->fatal = err;
                snprintf(st->fatal_why, sizeof(st->fatal_why), "%s", ring_why(st->api));
                return err;
        }
        st->api_have = 1;
        return 1;
}

int api_round(struct ingest *st, uint64_t *budget)
{
        int n = 0, err;

        while (*budget > 0 && n < API_BATCH) {
                err = api_wants(st);
                if (err <= 0)
                        return err < 0 ? err : n;
                /* A full output keeps the peeked record for the next round: a ring cannot unpeek. */
                err = publish_api(st, &st->api_rec);
                if (err == -EAGAIN)
                        break;
                if (err < 0)
                        return err;
                st->pend.bytes[EVENT_SRC_API] += st->api_rec.len;
                st->api_mark = st->api_rec.next;
                st->api_seq = st->seq;  /* publish_api gave the record (event or reject) the last seq */
                st->api_have = 0;
                st->dirty = 1;
                n++;
                if (*budget != BUCKET_UNLIMITED)
                        (*budget)--;
        }
        return n;
}

void api_release(struct ingest *st)
{
        int err;

        if (st->api == NULL || st->api_mark.pos == st->api_done.pos)
                return;
        err = ring_done(st->api, st->api_mark);
        if (err < 0)
                log_warnx("api-ingest.ring: ring_done at %llu: %s", (unsigned long long)st->api_mark.pos,
                          strerror(-err));
        else
                st->api_done = st->api_mark;
}

void api_published(struct ingest *st)
{
        if (st->api == NULL || st->api_mark.pos == st->api_shown)
                return;
        /*
         * seq first: whoever sees the new origin must see a seq at least this
         * new. Records skipped after a restart have no seq of this run: the
         * last seq published is then an upper bound, which only makes an ack wait longer.
         */
        atomic_store_explicit(st->slot[ST_API_SEQ], st->api_seq != 0 ? st->api_seq : st->seq,
                              memory_order_release);
        atomic_store_explicit(st->slot[ST_API_ORIGIN], st->api_mark.pos, memory_order_release);
        st->api_shown = st->api_mark.pos;
}
