/* SPDX-License-Identifier: MIT */
/* test_api.c: POSTs against the real ringflow-api: what lands in api->ingest, and every refusal with its status. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <zlib.h>

#include "api_harness.h"
#include "event.h"
#include "ring.h"
#include "why.h"

TestSuite(api, .init = ah_setup, .fini = ah_teardown, .timeout = 60);

#define JSON_CT "Content-Type: application/json\r\n"
#define NDJSON_CT "Content-Type: application/x-ndjson\r\n"

static struct json_object *parse_body(const struct http_resp *r)
{
        struct json_object *o = json_tokener_parse(r->body);

        cr_assert(o != NULL, "the body is not JSON: %s", r->body);
        return o;
}

static int64_t jint(struct json_object *o, const char *key)
{
        struct json_object *v;

        cr_assert(json_object_object_get_ex(o, key, &v), "no \"%s\" in %s", key,
                  json_object_to_json_string(o));
        return json_object_get_int64(v);
}

static const char *jstr(struct json_object *o, const char *key)
{
        struct json_object *v;

        cr_assert(json_object_object_get_ex(o, key, &v), "no \"%s\" in %s", key,
                  json_object_to_json_string(o));
        return json_object_get_string(v);
}

static struct ring *attach_consumer(void)
{
        struct ring *r = NULL;
        char why[WHY_MAX];

        cr_assert(ring_attach(&r, ah_ti.dirfd, "api", "ingest", RING_CONSUMER, why, sizeof(why)) == 0,
                  "%s", why);
        return r;
}

/* Takes the next record of api->ingest, which must be there now (the 202 came after the publish). */
static void take_event(struct ring *r, struct event_view *ev, struct ring_rec *rec)
{
        char why[WHY_MAX];

        cr_assert(ring_peek(r, rec) == 0, "no record in api-ingest.ring");
        cr_assert_eq(rec->type, EVENT_REC_EVENT);
        cr_assert(event_decode(rec->data, rec->len, ev, why, sizeof(why)) == 0, "%s", why);
}

Test(api, post_one_event_lands_in_the_ring)
{
        int port = ah_start_api(NULL);
        static const char body[] = "{\"id\":\"e-1\",\"timestamp\":1640995200000,\"type\":\"click\","
                                   "\"source\":\"web\",\"data\":{ \"a\" : [1, 2] }}";
        struct ring *ring = attach_consumer();
        struct http_resp r;
        struct json_object *o, *ids;
        struct event_view ev;
        struct ring_rec rec;

        ah_request(port, "POST", "/api/events", JSON_CT, body, strlen(body), &r);
        cr_assert_eq(r.status, 202, "%d %s", r.status, r.body);
        o = parse_body(&r);
        cr_assert_eq(jint(o, "accepted"), 1);
        cr_assert(json_object_object_get_ex(o, "ids", &ids));
        cr_assert_str_eq(json_object_get_string(json_object_array_get_idx(ids, 0)), "e-1");
        take_event(ring, &ev, &rec);
        cr_assert_str_eq(ev.id, "e-1");
        cr_assert_str_eq(ev.type, "click");
        cr_assert_str_eq(ev.source, "web");
        cr_assert_str_eq(ev.data, "{\"a\":[1,2]}");
        cr_assert_eq(ev.timestamp_ms, 1640995200000LL);
        cr_assert_eq(ev.source_kind, EVENT_SRC_API);
        cr_assert_eq(ev.origin, rec.pos, "origin %llu is not the ring position %llu",
                     (unsigned long long)ev.origin, (unsigned long long)rec.pos);
        cr_assert(ring_peek(ring, &rec) == -EAGAIN, "one POST, one record");
        json_object_put(o);
        http_resp_free(&r);
        ring_close(ring);
}

static void check_batch(int port, const char *ct, const char *extra, const void *body, size_t len,
                        unsigned accepted, int bad_index, const char *bad_field)
{
        char headers[256];
        struct ring *ring = attach_consumer();
        struct http_resp r;
        struct json_object *o, *rej, *ids;
        struct event_view ev;
        struct ring_rec rec;

        snprintf(headers, sizeof(headers), "%s%s", ct, extra != NULL ? extra : "");
        ah_request(port, "POST", "/api/events/batch", headers, body, len, &r);
        cr_assert_eq(r.status, 202, "%d %s", r.status, r.body);
        o = parse_body(&r);
        cr_assert_eq(jint(o, "accepted"), accepted, "%s", r.body);
        cr_assert(json_object_object_get_ex(o, "rejected", &rej));
        cr_assert(json_object_object_get_ex(o, "ids", &ids));
        cr_assert_eq(json_object_array_length(ids), accepted);
        if (bad_index >= 0) {
                struct json_object *e = json_object_array_get_idx(rej, 0);

                cr_assert_eq(json_object_array_length(rej), 1, "%s", r.body);
                cr_assert_eq(jint(e, "index"), bad_index);
                cr_assert_str_eq(jstr(e, "field"), bad_field);
        }
        for (unsigned i = 0; i < accepted; i++) {
                take_event(ring, &ev, &rec);
                cr_assert_str_eq(ev.id, json_object_get_string(json_object_array_get_idx(ids, i)));
                cr_assert_eq(ev.origin, rec.pos);
        }
        cr_assert(ring_peek(ring, &rec) == -EAGAIN);
        json_object_put(o);
        http_resp_free(&r);
        ring_close(ring);
}

Test(api, batch_json_array_reports_bad_items_by_index)
{
        int port = ah_start_api(NULL);
        static const char body[] = "[{\"type\":\"a\",\"source\":\"s\"}, {\"type\":\"b\",\"source\":\"s\"},"
                                   " {\"type\":\"c\",\"source\":7}, {\"type\":\"d\",\"source\":\"s\"}]";

        check_batch(port, JSON_CT, NULL, body, strlen(body), 3, 2, "source");
}

Test(api, batch_ndjson)
{
        int port = ah_start_api(NULL);
        static const char body[] = "{\"type\":\"a\",\"source\":\"s\"}\n\n{\"type\":\"b\",\"source\":\"s\"}\r\n"
                                   "{\"type\":\"c\",\"source\":\"s\",\"bogus\":1}\n{\"type\":\"d\",\"source\":\"s\"}";

        check_batch(port, NDJSON_CT, NULL, body, strlen(body), 3, 2, "bogus");
}

static unsigned char *gzip_buf(const void *in, size_t len, size_t *outlen)
{
        z_stream z;
        size_t cap = compressBound((uLong)len) + 64;
        unsigned char *out = malloc(cap);

        cr_assert(out != NULL);
        memset(&z, 0, sizeof(z));
        cr_assert(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) == Z_OK);
        z.next_in = (unsigned char *)(uintptr_t)in;
        z.avail_in = (uInt)len;
        z.next_out = out;
        z.avail_out = (uInt)cap;
        cr_assert(deflate(&z, Z_FINISH) == Z_STREAM_END);
        *outlen = cap - z.avail_out;
        deflateEnd(&z);
        return out;
}

Test(api, batch_gzip_body)
{
        int port = ah_start_api(NULL);
        static const char body[] = "[{\"type\":\"a\",\"source\":\"s\"},{\"type\":\"b\",\"source\":\"s\"}]";
        size_t zl;
        unsigned char *z = gzip_buf(body, strlen(body), &zl);

        check_batch(port, JSON_CT, "Content-Encoding: gzip\r\n", z, zl, 2, -1, NULL);
        free(z);
}

Test(api, gzip_bomb_is_stopped_at_the_limit)
{
        int port = ah_start_api("--api-max-body", "64K", NULL);
        size_t n = 8u << 20, zl;
        char *big = malloc(n);
        unsigned char *z;
        struct http_resp r;

        cr_assert(big != NULL);
        memset(big, ' ', n);
        big[0] = '[';
        z = gzip_buf(big, n, &zl);
        cr_assert(zl < 64 * 1024, "the bomb itself must fit the limit (%zu bytes)", zl);
        ah_request(port, "POST", "/api/events/batch", JSON_CT "Content-Encoding: gzip\r\n", z, zl, &r);
        cr_assert_eq(r.status, 413, "%d %s", r.status, r.body);
        cr_assert(strstr(r.body, "decoded") != NULL, "%s", r.body);
        http_resp_free(&r);
        /* Not gzip at all. */
        ah_request(port, "POST", "/api/events/batch", JSON_CT "Content-Encoding: gzip\r\n", "[]", 2, &r);
        cr_assert_eq(r.status, 400, "%d %s", r.status, r.body);
        http_resp_free(&r);
        free(z);
        free(big);
}

Test(api, malformed_json_gets_400_with_offset)
{
        int port = ah_start_api(NULL);
        static const char one[] = "{\"type\":\"a\",\"source\":}";
        static const char arr[] = "[{\"type\":\"a\",\"source\":\"s\"} {\"type\":\"b\"}]";
        struct http_resp r;
        struct json_object *o;

        ah_request(port, "POST", "/api/events", JSON_CT, one, strlen(one), &r);
        cr_assert_eq(r.status, 400, "%d %s", r.status, r.body);
        o = parse_body(&r);
        cr_assert_eq(jint(o, "offset"), 21, "%s", r.body);
        cr_assert_str_eq(jstr(o, "reason"), "syntax");
        json_object_put(o);
        http_resp_free(&r);

        ah_request(port, "POST", "/api/events/batch", JSON_CT, arr, strlen(arr), &r);
        cr_assert_eq(r.status, 400, "%d %s", r.status, r.body);
        o = parse_body(&r);
        cr_assert_eq(jint(o, "offset"), 27, "%s", r.body);
        json_object_put(o);
        http_resp_free(&r);
}

Test(api, wrong_type_gets_400_naming_the_field)
{
        int port = ah_start_api(NULL);
        static const char body[] = "{\"type\":\"a\",\"source\":\"s\",\"timestamp\":\"yesterday\"}";
        static const char none[] = "[{\"type\":1,\"source\":\"s\"}]";
        struct http_resp r;
        struct json_object *o;

        ah_request(port, "POST", "/api/events", JSON_CT, body, strlen(body), &r);
        cr_assert_eq(r.status, 400, "%d %s", r.status, r.body);
        o = parse_body(&r);
        cr_assert_str_eq(jstr(o, "field"), "timestamp");
        cr_assert(strstr(jstr(o, "error"), "timestamp") != NULL);
        json_object_put(o);
        http_resp_free(&r);
        /* A batch with nothing valid is a 400 too, with the per-index reasons. */
        ah_request(port, "POST", "/api/events/batch", JSON_CT, none, strlen(none), &r);
        cr_assert_eq(r.status, 400, "%d %s", r.status, r.body);
        cr_assert(strstr(r.body, "\"index\":0") != NULL && strstr(r.body, "\"field\":\"type\"") != NULL,
                  "%s", r.body);
        http_resp_free(&r);
}

Test(api, oversized_bodies_get_413)
{
        int port = ah_start_api(NULL);
        struct http_conn c;
        struct http_resp r;
        size_t n = 70 * 1024;
        char *big = malloc(n);

        cr_assert(big != NULL);
        /* Content-Length over the single-event limit: answered before any body byte is sent. */
        ah_connect(&c, port);
        cr_assert(http_send(&c, "POST", "/api/events", JSON_CT "Content-Length: 70000\r\n", NULL, 0) == 0);
        cr_assert(http_recv(&c, &r, AH_TIMEOUT_MS) == 0);
        cr_assert_eq(r.status, 413, "%d %s", r.status, r.body);
        http_resp_free(&r);
        http_close(&c);
        /* Chunked past the limit: read, dropped, answered 413 at the end. */
        memset(big, ' ', n);
        ah_connect(&c, port);
        cr_assert(http_send(&c, "POST", "/api/events", JSON_CT "Transfer-Encoding: chunked\r\n", NULL, 0) == 0);
        {
                char head[32];
                int hl = snprintf(head, sizeof(head), "%zx\r\n", n);

                cr_assert(send(c.fd, head, (size_t)hl, MSG_NOSIGNAL) == hl);
                for (size_t off = 0; off < n;) {
                        ssize_t w = send(c.fd, big + off, n - off, MSG_NOSIGNAL);

                        cr_assert(w > 0);
                        off += (size_t)w;
                }
                cr_assert(send(c.fd, "\r\n0\r\n\r\n", 7, MSG_NOSIGNAL) == 7);
        }
        cr_assert(http_recv(&c, &r, AH_TIMEOUT_MS) == 0);
        cr_assert_eq(r.status, 413, "%d %s", r.status, r.body);
        http_resp_free(&r);
        http_close(&c);
        free(big);
}

Test(api, tokens_are_required_when_set)
{
        int port = ah_start_api("--ingest-token", "in-secret", "--read-token", "rd-secret", NULL);
        static const char body[] = "{\"type\":\"a\",\"source\":\"s\"}";
        char v[128];
        struct http_resp r;

        ah_request(port, "POST", "/api/events", JSON_CT, body, strlen(body), &r);
        cr_assert_eq(r.status, 401, "%d %s", r.status, r.body);
        cr_assert_str_eq(r.body, "{\"error\":\"unauthorized\"}");
        cr_assert(http_header(&r, "WWW-Authenticate", v, sizeof(v)) != NULL);
        http_resp_free(&r);
        ah_request(port, "POST", "/api/events", JSON_CT "Authorization: Bearer in-secreT\r\n", body,
                   strlen(body), &r);
        cr_assert_eq(r.status, 401);
        http_resp_free(&r);
        /* The read token does not open the write side. */
        ah_request(port, "POST", "/api/events", JSON_CT "Authorization: Bearer rd-secret\r\n", body,
                   strlen(body), &r);
        cr_assert_eq(r.status, 401);
        http_resp_free(&r);
        ah_request(port, "POST", "/api/events", JSON_CT "Authorization: Bearer in-secret\r\n", body,
                   strlen(body), &r);
        cr_assert_eq(r.status, 202, "%d %s", r.status, r.body);
        http_resp_free(&r);
        ah_request(port, "GET", "/api/events", NULL, NULL, 0, &r);
        cr_assert_eq(r.status, 401);
        http_resp_free(&r);
        ah_request(port, "GET", "/api/events", "Authorization: Bearer rd-secret\r\n", NULL, 0, &r);
        cr_assert_eq(r.status, 200, "%d %s", r.status, r.body);
        http_resp_free(&r);
}

Test(api, rate_limit_gives_429_with_retry_after)
{
        int port = ah_start_api("--api-rate", "1", "--api-burst", "3", NULL);
        static const char body[] = "[{\"type\":\"a\",\"source\":\"s\"},{\"type\":\"a\",\"source\":\"s\"},"
                                   "{\"type\":\"a\",\"source\":\"s\"}]";
        struct http_conn c;
        struct http_resp r;
        char v[32];

        ah_connect(&c, port);
        cr_assert(http_do(&c, "POST", "/api/events/batch", JSON_CT, body, strlen(body), &r, AH_TIMEOUT_MS) == 0);
        cr_assert_eq(r.status, 202, "%d %s", r.status, r.body);
        http_resp_free(&r);
        /* The bucket is empty now (1/s refills one token in a second: the next request comes sooner). */
        cr_assert(http_do(&c, "POST", "/api/events", JSON_CT, body + 1, 25, &r, AH_TIMEOUT_MS) == 0);
        cr_assert_eq(r.status, 429, "%d %s", r.status, r.body);
        cr_assert(http_header(&r, "Retry-After", v, sizeof(v)) != NULL);
        cr_assert(atoi(v) >= 1, "Retry-After: %s", v);
        cr_assert(!r.close, "a 429 keeps the connection");
        http_resp_free(&r);
        http_close(&c);
}

Test(api, full_ring_gives_503_with_retry_after)
{
        int port = ah_start_api("--ring-capacity", "4096", NULL);
        static const char body[] = "{\"type\":\"a\",\"source\":\"s\",\"data\":{\"pad\":\"xxxxxxxxxxxxxxxxxxxxxxxx\"}}";
        struct http_conn c;
        struct http_resp r;
        char v[32];
        int i, accepted = 0;

        ah_connect(&c, port);
        /* Nobody consumes api->ingest: it fills, and then every POST is refused, never blocked. */
        for (i = 0; i < 200; i++) {
                cr_assert(http_do(&c, "POST", "/api/events", JSON_CT, body, strlen(body), &r, AH_TIMEOUT_MS) == 0);
                if (r.status != 202)
                        break;
                accepted++;
                http_resp_free(&r);
        }
        cr_assert(accepted > 5 && accepted < 100, "accepted %d", accepted);
        cr_assert_eq(r.status, 503, "%d %s", r.status, r.body);
        cr_assert(http_header(&r, "Retry-After", v, sizeof(v)) != NULL);
        http_resp_free(&r);
        /* Draining the ring makes room again. */
        {
                struct ring *ring = attach_consumer();
                struct ring_rec rec;
                int n = 0;

                while (ring_peek(ring, &rec) == 0)
                        n++;
                cr_assert_eq(n, accepted);
                cr_assert(ring_done(ring, ring_cursor(ring)) == 0);
                ring_close(ring);
        }
        cr_assert(http_do(&c, "POST", "/api/events", JSON_CT, body, strlen(body), &r, AH_TIMEOUT_MS) == 0);
        cr_assert_eq(r.status, 202, "%d %s", r.status, r.body);
        http_resp_free(&r);
        http_close(&c);
}

Test(api, unknown_paths_and_methods)
{
        int port = ah_start_api(NULL);
        struct http_resp r;
        char v[64];

        ah_request(port, "GET", "/api/nothing", NULL, NULL, 0, &r);
        cr_assert_eq(r.status, 404, "%d %s", r.status, r.body);
        http_resp_free(&r);
        ah_request(port, "DELETE", "/api/events", NULL, NULL, 0, &r);
        cr_assert_eq(r.status, 405, "%d %s", r.status, r.body);
        cr_assert(http_header(&r, "Allow", v, sizeof(v)) != NULL && strstr(v, "POST") != NULL);
        http_resp_free(&r);
        ah_request(port, "POST", "/api/events", "Content-Type: text/plain\r\n", "x", 1, &r);
        cr_assert_eq(r.status, 415, "%d %s", r.status, r.body);
        http_resp_free(&r);
}

Test(api, sigterm_stops_cleanly_after_traffic)
{
        int port = ah_start_api("--api-rate", "100", NULL);
        static const char body[] = "[{\"type\":\"a\",\"source\":\"s\"},{\"type\":2}]";
        struct http_conn idle;
        struct http_resp r;
        char *out;
        int st;

        /* An idle keep-alive connection is open while the api stops. */
        ah_connect(&idle, port);
        ah_request(port, "POST", "/api/events/batch", JSON_CT, body, strlen(body), &r);
        cr_assert_eq(r.status, 202, "%d %s", r.status, r.body);
        http_resp_free(&r);
        ah_request(port, "GET", "/api/metrics", NULL, NULL, 0, &r);
        cr_assert_eq(r.status, 200);
        http_resp_free(&r);
        ah_request(port, "GET", "/metrics", NULL, NULL, 0, &r);
        http_resp_free(&r);
        ah_request(port, "GET", "/api/health", NULL, NULL, 0, &r);
        http_resp_free(&r);
        ah_request(port, "GET", "/api/events", NULL, NULL, 0, &r);
        http_resp_free(&r);
        /* A request held for ?ack=stored (nothing consumes the ring) when the stop comes. */
        {
                int64_t deadline = clock_mono_ns() + AH_WAIT_NS;
                uint64_t posts = 0;

                cr_assert(http_send(&idle, "POST", "/api/events?ack=stored", JSON_CT, body + 1, 25) == 0);
                while (!ah_stat("api", "posts", &posts) || posts < 2) {
                        cr_assert(clock_mono_ns() < deadline, "the ack request never arrived");
                        ah_pause();
                }
        }
        st = ah_stop(0);
        out = ah_output(0);
        cr_assert_eq(st, 0, "exit status %d:\n%s", st, out);
        /* Under --enable-asan a leak or a memory error shows here. */
        cr_assert(strstr(out, "Sanitizer") == NULL && strstr(out, "runtime error") == NULL, "%s", out);
        free(out);
        /* The held request was answered 503 or its connection closed: never left hanging. */
        st = http_recv(&idle, &r, AH_TIMEOUT_MS);
        cr_assert(st == -ECONNRESET || (st == 0 && r.status == 503), "%d %d", st, r.status);
        if (st == 0)
                http_resp_free(&r);
        http_close(&idle);
}

Test(api, cli_contract_help_version_and_bad_flags)
{
        int st;

        /* A bad value is a permanent error: exit 100 (DESIGN.md's command-line contract). */
        ah_start("stages/api/ringflow-api", "--listen", "no-port-here", NULL);
        st = ah_wait_exit(0);
        cr_assert_eq(st, 100, "exit status %d:\n%s", st, ah_output(0));
        ah_start("stages/api/ringflow-api", "--api-max-body", "12", NULL);
        st = ah_wait_exit(1);
        cr_assert_eq(st, 100, "exit status %d:\n%s", st, ah_output(1));
        ah_start("stages/api/ringflow-api", "--version", NULL);
        st = ah_wait_exit(2);
        cr_assert_eq(st, 0, "exit status %d:\n%s", st, ah_output(2));
}

/* Whether the server closed c within timeout_ms (a read sees the end, or a reset). */
static bool closed_by_server(struct http_conn *c, int timeout_ms)
{
        struct http_resp r;
        int err = http_recv(c, &r, timeout_ms);

        if (err == 0)
                http_resp_free(&r);
        return err == -ECONNRESET;
}

Test(api, connections_over_the_per_address_limit_are_closed)
{
        int port = ah_start_api("--api-max-per-ip", "2", NULL);
        struct http_conn c[3];
        struct http_resp r;

        for (int i = 0; i < 2; i++) {
                ah_connect(&c[i], port);
                cr_assert(http_do(&c[i], "GET", "/api/events", NULL, NULL, 0, &r, AH_TIMEOUT_MS) == 0);
                cr_assert_eq(r.status, 200);
                http_resp_free(&r);
        }
        ah_connect(&c[2], port);
        http_send(&c[2], "GET", "/api/events", NULL, NULL, 0);
        cr_assert(closed_by_server(&c[2], AH_TIMEOUT_MS), "a third connection from one address was served");
        http_close(&c[2]);
        /* The first two still work; one closing makes room. */
        cr_assert(http_do(&c[1], "GET", "/api/events", NULL, NULL, 0, &r, AH_TIMEOUT_MS) == 0);
        http_resp_free(&r);
        http_close(&c[0]);
        {
                int64_t deadline = clock_mono_ns() + AH_WAIT_NS;

                for (;;) {
                        int err;

                        ah_connect(&c[2], port);
                        err = http_do(&c[2], "GET", "/api/events", NULL, NULL, 0, &r, AH_TIMEOUT_MS);
                        http_close(&c[2]);
                        if (err == 0) {
                                cr_assert_eq(r.status, 200);
                                http_resp_free(&r);
                                break;
                        }
                        /* The server may not have seen the close yet. */
                        cr_assert(clock_mono_ns() < deadline, "no room after a connection closed");
                        ah_pause();
                }
        }
        http_close(&c[1]);
}

Test(api, a_client_that_never_finishes_its_request_is_timed_out)
{
        int port = ah_start_api("--api-connection-timeout", "1s", NULL);
        struct http_conn c;
        int64_t t0;

        ah_connect(&c, port);
        cr_assert(send(c.fd, "GET /api/events HTTP/1.1\r\nHost: x\r\n", 35, MSG_NOSIGNAL) == 35);
        t0 = clock_mono_ns();
        cr_assert(closed_by_server(&c, 10000), "a half-sent request kept its connection for 10 s");
        cr_assert(clock_mono_ns() - t0 >= 500 * NSEC_PER_MSEC, "closed before its timeout");
        http_close(&c);
}

Test(api, posts_get_503_until_the_ring_exists)
{
        int port = ah_start_api("--no-create", NULL);
        static const char body[] = "{\"type\":\"a\",\"source\":\"s\"}";
        struct http_resp r;
        char why[WHY_MAX], v[32];
        int64_t deadline;

        ah_request(port, "POST", "/api/events", JSON_CT, body, strlen(body), &r);
        cr_assert_eq(r.status, 503, "%d %s", r.status, r.body);
        cr_assert(http_header(&r, "Retry-After", v, sizeof(v)) != NULL);
        http_resp_free(&r);
        /* ringflowd (here: the test) creates the ring; the api attaches within its retry interval. */
        cr_assert(ring_create(ah_ti.dirfd, "api", "ingest", 1 << 16, 0, why, sizeof(why)) == 0, "%s", why);
        deadline = clock_mono_ns() + AH_WAIT_NS;
        for (;;) {
                ah_request(port, "POST", "/api/events", JSON_CT, body, strlen(body), &r);
                if (r.status == 202)
                        break;
                cr_assert_eq(r.status, 503, "%d %s", r.status, r.body);
                cr_assert(clock_mono_ns() < deadline, "the api never attached the new ring");
                http_resp_free(&r);
                ah_pause();
        }
        http_resp_free(&r);
}
