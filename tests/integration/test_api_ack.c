/* SPDX-License-Identifier: MIT */
/* test_api_ack.c: ?ack=stored through the real ringflow-api, ringflow-ingest and ringflow-store. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_harness.h"
#include "event.h"
#include "ring.h"
#include "why.h"

TestSuite(api_ack, .init = ah_setup, .fini = ah_teardown, .timeout = 60);

#define JSON_CT "Content-Type: application/json\r\n"

static struct ring *attach_when_there(const char *prod, const char *cons, enum ring_role role)
{
        int64_t deadline = clock_mono_ns() + AH_WAIT_NS;
        struct ring *r = NULL;
        char why[WHY_MAX];
        int err;

        while ((err = ring_attach(&r, ah_ti.dirfd, prod, cons, role, why, sizeof(why))) == -ENOENT) {
                cr_assert(clock_mono_ns() < deadline, "%s-%s.ring never appeared", prod, cons);
                ah_pause();
        }
        cr_assert(err == 0, "%s", why);
        return r;
}

static void wait_stat(const char *stage, const char *name)
{
        int64_t deadline = clock_mono_ns() + AH_WAIT_NS;
        uint64_t v;

        while (!ah_stat(stage, name, &v)) {
                cr_assert(clock_mono_ns() < deadline, "%s.stats never showed %s", stage, name);
                ah_pause();
        }
}

/* The test stands in for the process stage: ingest->process records go on to process->store as they are. */
static unsigned relay(struct ring *in, struct ring *out)
{
        struct ring_rec rec;
        unsigned n = 0;

        while (ring_peek(in, &rec) == 0) {
                void *p;

                cr_assert(ring_reserve(out, rec.type, rec.len, &p) == 0);
                memcpy(p, rec.data, rec.len);
                cr_assert(ring_commit(out, rec.len) == 0);
                n++;
        }
        if (n > 0) {
                ring_publish(out);
                cr_assert(ring_done(in, ring_cursor(in)) == 0);
        }
        return n;
}

Test(api_ack, ack_stored_answers_after_the_store_commits)
{
        int port = ah_start_api(NULL);
        static const char body[] = "[{\"id\":\"ack-1\",\"type\":\"a\",\"source\":\"s\"},"
                                   "{\"id\":\"ack-2\",\"type\":\"a\",\"source\":\"s\"}]";
        struct ring *in, *out;
        struct http_conn c;
        struct http_resp r;
        int64_t deadline;
        uint64_t committed = 0, api_seq = 0;
        int err;

        /* ingest attaches api->ingest at its start, so the api (which made the ring) comes first. */
        ah_start("stages/ingest/ringflow-ingest", "--create", "--ingest-stdin", "no", NULL);
        ah_start("stages/store/ringflow-store", "--create", "--durability", "normal", NULL);
        wait_stat("ingest", "api.origin");
        wait_stat("store", "committed.seq");
        in = attach_when_there("ingest", "process", RING_CONSUMER);
        out = attach_when_there("process", "store", RING_PRODUCER);

        ah_connect(&c, port);
        cr_assert(http_send(&c, "POST", "/api/events/batch?ack=stored", JSON_CT, body, strlen(body)) == 0);
        /* Until something carries the events on to the store, there is no answer. */
        deadline = clock_mono_ns() + AH_WAIT_NS;
        while (relay(in, out) == 0) {
                cr_assert(clock_mono_ns() < deadline, "ingest never passed the events on");
                err = http_recv(&c, &r, 1);
                cr_assert(err == -ETIMEDOUT, "answered before the events were stored: %d %s", r.status,
                          r.body != NULL ? r.body : "");
        }
        /* Relayed: the store commits, and the answer comes. */
        for (;;) {
                err = http_recv(&c, &r, 5);
                if (err == 0)
                        break;
                cr_assert(err == -ETIMEDOUT, "%s", strerror(-err));
                cr_assert(clock_mono_ns() < deadline, "no answer after the store had the events");
                relay(in, out);
        }
        cr_assert_eq(r.status, 202, "%d %s", r.status, r.body);
        cr_assert(strstr(r.body, "\"accepted\":2") != NULL, "%s", r.body);
        http_resp_free(&r);
        cr_assert(ah_stat("store", "committed.seq", &committed));
        cr_assert(ah_stat("ingest", "api.seq", &api_seq));
        cr_assert(committed >= api_seq && api_seq >= 2, "committed.seq %llu, api.seq %llu",
                  (unsigned long long)committed, (unsigned long long)api_seq);
        /* The answer promised the events are stored: they are readable now. */
        cr_assert(http_do(&c, "GET", "/api/events/ack-2", NULL, NULL, 0, &r, AH_TIMEOUT_MS) == 0);
        cr_assert_eq(r.status, 200, "%d %s", r.status, r.body);
        http_resp_free(&r);
        /* The conservation account of the api source from the real stages' counters: all stored, none on the way. */
        cr_assert(http_do(&c, "GET", "/api/metrics", NULL, NULL, 0, &r, AH_TIMEOUT_MS) == 0);
        cr_assert_eq(r.status, 200, "%d %s", r.status, r.body);
        cr_assert(strstr(r.body, "\"by_source\":{\"api\":{\"received\":2,\"stored\":2,\"rejected\":0,"
                             "\"duplicates\":0,\"dropped\":0,\"in_flight\":0}}") != NULL, "%s", r.body);
        http_resp_free(&r);
        cr_assert(http_do(&c, "GET", "/metrics", NULL, NULL, 0, &r, AH_TIMEOUT_MS) == 0);
        cr_assert(strstr(r.body, "ringflow_events_total{account=\"stored\",source=\"api\"} 2\n") != NULL, "%s",
                  r.body);
        http_resp_free(&r);
        http_close(&c);
        ring_close(in);
        ring_close(out);
}

Test(api_ack, ack_stored_times_out_with_504)
{
        int port = ah_start_api("--ack-timeout", "200ms", NULL);
        static const char body[] = "{\"type\":\"a\",\"source\":\"s\"}";
        struct http_resp r;
        uint64_t timeouts = 0;

        /* No ingest runs: the events stay in api->ingest and the store never commits them. */
        ah_request(port, "POST", "/api/events?ack=stored", JSON_CT, body, strlen(body), &r);
        cr_assert_eq(r.status, 504, "%d %s", r.status, r.body);
        http_resp_free(&r);
        cr_assert(ah_stat("api", "acks.timeout", &timeouts));
        cr_assert_eq(timeouts, 1);
        ah_request(port, "POST", "/api/events?ack=never", JSON_CT, body, strlen(body), &r);
        cr_assert_eq(r.status, 400, "%d %s", r.status, r.body);
        http_resp_free(&r);
}
