/* SPDX-License-Identifier: MIT */
/* test_api_query.c: GETs against the real ringflow-api: store queries with pagination, health, metrics, keep-alive. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <ctype.h>
#include <errno.h>
#include <json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api_harness.h"
#include "event.h"
#include "partition.h"
#include "query.h"
#include "stats.h"
#include "why.h"
#include "writer.h"

TestSuite(api_query, .init = ah_setup, .fini = ah_teardown, .timeout = 60);

#define D0 1640995200000LL              /* 2022-01-01T00:00:00Z */
#define NEVENTS 25

static struct json_object *parse_body(const struct http_resp *r)
{
        struct json_object *o = json_tokener_parse(r->body);

        cr_assert(o != NULL, "the body is not JSON: %s", r->body);
        return o;
}

static struct json_object *jget(struct json_object *o, const char *key)
{
        struct json_object *v;

        cr_assert(json_object_object_get_ex(o, key, &v), "no \"%s\" in %s", key,
                  json_object_to_json_string(o));
        return v;
}

/* Writes the fixture through the store's own writer: events ev000..ev024 a minute apart, rejects, windows. */
static void write_partition(void)
{
        struct store_writer_opts o = {
                .data_dir = ah_data_dir, .unit = PARTITION_DAY, .durability = STORE_DURABILITY_NORMAL,
        };
        struct store_writer *w = NULL;
        struct ring_mark m = { 0, 0 };
        char why[256] = "", id[16], data[32];

        cr_assert_eq(writer_create(&w, &o, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(writer_begin(w), 0);
        for (int k = 0; k < NEVENTS; k++) {
                struct event_view v;

                snprintf(id, sizeof(id), "ev%03d", k);
                snprintf(data, sizeof(data), "{\"k\":%d}", k);
                memset(&v, 0, sizeof(v));
                v.seq = (uint64_t)k + 1;
                v.timestamp_ms = D0 + k * 60000LL;
                v.received_ns = v.timestamp_ms * 1000000;
                v.id = id;
                v.id_len = (uint32_t)strlen(id);
                v.type = k % 2 ? "odd" : "even";
                v.type_len = (uint32_t)strlen(v.type);
                v.source = "web";
                v.source_len = 3;
                v.data = data;
                v.data_len = (uint32_t)strlen(data);
                m.pos += 64;
                m.count++;
                cr_assert_eq(writer_put_event(w, m, &v), WRITER_STORED, "%s", writer_why(w));
        }
        for (uint64_t s = 1; s <= 3; s++) {
                struct event_reject_view rv = {
                        .seq = 100 + s, .received_ns = (D0 + (int64_t)s) * 1000000, .origin = s,
                        .source_kind = EVENT_SRC_STDIN, .reason = EVENT_ERR_SYNTAX, .error_offset = 1,
                        .raw = "{x\"\xff", .raw_len = 4, .raw_total = 4, .message = "bad", .message_len = 3,
                };

                m.pos += 64;
                m.count++;
                cr_assert_eq(writer_put_reject(w, m, &rv), WRITER_STORED, "%s", writer_why(w));
        }
        for (int i = 0; i < 2; i++) {
                struct store_window win = {
                        .name = "cpm", .key = i ? "[\"b\"]" : "[\"a\"]", .start_ms = D0, .end_ms = D0 + 60000,
                        .count = 3 + (uint64_t)i, .aggregates_json = "{\"count\":3}",
                };

                m.pos += 64;
                m.count++;
                cr_assert_eq(writer_put_window(w, m, &win), WRITER_STORED, "%s", writer_why(w));
        }
        cr_assert_eq(writer_commit(w, m), 0, "%s", writer_why(w));
        writer_destroy(w);
}

static struct json_object *get_json(int port, const char *path, int want_status)
{
        struct http_resp r;
        struct json_object *o;

        ah_request(port, "GET", path, NULL, NULL, 0, &r);
        cr_assert_eq(r.status, want_status, "GET %s: %d %s", path, r.status, r.body);
        o = parse_body(&r);
        http_resp_free(&r);
        return o;
}

Test(api_query, events_paginate_by_cursor_newest_first)
{
        int port, seen = 0, pages = 0;
        char path[256];
        const char *cursor = NULL;
        struct json_object *o = NULL;

        write_partition();
        port = ah_start_api(NULL);
        for (;;) {
                struct json_object *evs, *next;
                char cur[128];

                snprintf(cur, sizeof(cur), "%s", cursor != NULL ? cursor : "");
                if (o != NULL)
                        json_object_put(o);
                snprintf(path, sizeof(path), "/api/events?limit=10%s%s", cur[0] ? "&cursor=" : "", cur);
                o = get_json(port, path, 200);
                evs = jget(o, "events");
                for (size_t i = 0; i < json_object_array_length(evs); i++) {
                        struct json_object *e = json_object_array_get_idx(evs, i);
                        char want[16];

                        snprintf(want, sizeof(want), "ev%03d", NEVENTS - 1 - seen);
                        cr_assert_str_eq(json_object_get_string(jget(e, "id")), want);
                        cr_assert_eq(json_object_get_int64(jget(e, "timestamp")), D0 + (NEVENTS - 1 - seen) * 60000LL);
                        cr_assert_eq(json_object_get_int(jget(jget(e, "data"), "k")), NEVENTS - 1 - seen);
                        cr_assert_eq(json_object_get_int64(jget(e, "seq")), NEVENTS - seen);
                        jget(e, "received");
                        jget(e, "source");
                        seen++;
                }
                pages++;
                next = jget(o, "next_cursor");
                if (json_object_get_type(next) == json_type_null)
                        break;
                cursor = json_object_get_string(next);
                cr_assert(pages < 10);
        }
        cr_assert_eq(seen, NEVENTS);
        cr_assert_eq(pages, 3);
        json_object_put(o);

        o = get_json(port, "/api/events?order=asc&limit=1&type=odd", 200);
        cr_assert_str_eq(json_object_get_string(jget(json_object_array_get_idx(jget(o, "events"), 0), "id")), "ev001");
        json_object_put(o);
        o = get_json(port, "/api/events/ev003", 200);
        cr_assert_str_eq(json_object_get_string(jget(o, "id")), "ev003");
        json_object_put(o);
        o = get_json(port, "/api/events/nope", 404);
        json_object_put(o);
        o = get_json(port, "/api/events?limit=0", 400);
        cr_assert_str_eq(json_object_get_string(jget(o, "field")), "limit");
        json_object_put(o);
        o = get_json(port, "/api/events?cursor=garbage", 400);
        json_object_put(o);
        o = get_json(port, "/api/events?from=abc", 400);
        cr_assert_str_eq(json_object_get_string(jget(o, "field")), "from");
        json_object_put(o);
}

Test(api_query, windows_and_rejects)
{
        int port;
        struct json_object *o, *w, *rj;

        write_partition();
        port = ah_start_api(NULL);
        o = get_json(port, "/api/windows?name=cpm", 200);
        w = jget(o, "windows");
        cr_assert_eq(json_object_array_length(w), 2);
        cr_assert_eq(json_object_get_type(jget(json_object_array_get_idx(w, 0), "key")), json_type_array);
        cr_assert_eq(json_object_get_int(jget(jget(json_object_array_get_idx(w, 0), "aggregates"), "count")), 3);
        jget(json_object_array_get_idx(w, 0), "final");
        json_object_put(o);
        /* Without name: the names the partitions hold. */
        o = get_json(port, "/api/windows", 200);
        cr_assert_eq(json_object_array_length(jget(o, "names")), 1);
        cr_assert_str_eq(json_object_get_string(json_object_array_get_idx(jget(o, "names"), 0)), "cpm");
        cr_assert(!json_object_get_boolean(jget(o, "more")));
        json_object_put(o);
        o = get_json(port, "/api/windows?key=%5B%22a%22%5D", 400);
        cr_assert_str_eq(json_object_get_string(jget(o, "field")), "key");
        json_object_put(o);
        o = get_json(port, "/api/rejects?limit=2", 200);
        rj = jget(o, "rejects");
        cr_assert_eq(json_object_array_length(rj), 2);
        cr_assert_eq(json_object_get_int64(jget(json_object_array_get_idx(rj, 0), "seq")), 103);
        /* Raw bytes that are not UTF-8 still come out as valid JSON. */
        cr_assert_str_eq(json_object_get_string(jget(json_object_array_get_idx(rj, 0), "raw")), "{x\"\xef\xbf\xbd");
        cr_assert_str_eq(json_object_get_string(jget(json_object_array_get_idx(rj, 0), "reason")), "syntax");
        cr_assert_eq(json_object_get_type(jget(o, "next_cursor")), json_type_string);
        json_object_put(o);
}

/* Window results of "hits" in a second partition: keys x and y on starts 3 minutes apart, and one z: 7 rows. */
static void write_more_windows(void)
{
        struct store_writer_opts o = {
                .data_dir = ah_data_dir, .unit = PARTITION_DAY, .durability = STORE_DURABILITY_NORMAL,
        };
        struct store_writer *w = NULL;
        struct ring_mark m = { 1 << 20, 1000 };
        char why[256] = "";

        cr_assert_eq(writer_create(&w, &o, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(writer_begin(w), 0);
        for (int i = 0; i < 7; i++) {
                struct store_window win = {
                        .name = "hits", .key = i == 6 ? "[\"z\"]" : i % 2 ? "[\"y\"]" : "[\"x\"]",
                        .start_ms = D0 + 86400000LL + (i / 2) * 180000LL, .count = (uint64_t)i,
                        .aggregates_json = "{}", .final = 1,
                };

                win.end_ms = win.start_ms + 180000;
                m.pos += 64;
                m.count++;
                cr_assert_eq(writer_put_window(w, m, &win), WRITER_STORED, "%s", writer_why(w));
        }
        cr_assert_eq(writer_commit(w, m), 0, "%s", writer_why(w));
        writer_destroy(w);
}

/* Walks /api/windows?name=hits 3 at a time in one order: the counts in the order they came. */
static int walk_hit_windows(int port, const char *order, int *counts, int max)
{
        char path[256], cur[QUERY_CURSOR_MAX] = "";
        int n = 0, pages = 0;

        for (;;) {
                struct json_object *o, *rows, *next;

                snprintf(path, sizeof(path), "/api/windows?name=hits&limit=3&order=%s%s%s", order,
                         cur[0] ? "&cursor=" : "", cur);
                o = get_json(port, path, 200);
                rows = jget(o, "windows");
                for (size_t i = 0; i < json_object_array_length(rows); i++) {
                        cr_assert_lt(n, max);
                        counts[n++] = json_object_get_int(jget(json_object_array_get_idx(rows, i), "count"));
                }
                pages++;
                next = jget(o, "next_cursor");
                cr_assert_eq(json_object_get_boolean(jget(o, "more")), json_object_get_type(next) != json_type_null);
                if (json_object_get_type(next) == json_type_null) {
                        json_object_put(o);
                        break;
                }
                snprintf(cur, sizeof(cur), "%s", json_object_get_string(next));
                json_object_put(o);
                cr_assert_lt(pages, 10);
        }
        return pages;
}

Test(api_query, windows_paginate_by_cursor_and_list_their_names)
{
        /* Newest start first, keys ascending in a start: starts 3, 2, 1, 0 hold (z), (x, y), (x, y), (x, y). */
        static const int desc[] = { 6, 4, 5, 2, 3, 0, 1 }, asc[] = { 0, 1, 2, 3, 4, 5, 6 };
        int port, counts[16];
        struct json_object *o, *names;

        write_partition();
        write_more_windows();
        port = ah_start_api(NULL);
        cr_assert_eq(walk_hit_windows(port, "desc", counts, 16), 3);
        for (int i = 0; i < 7; i++)
                cr_assert_eq(counts[i], desc[i], "row %d newest first", i);
        cr_assert_eq(walk_hit_windows(port, "asc", counts, 16), 3);
        for (int i = 0; i < 7; i++)
                cr_assert_eq(counts[i], asc[i], "row %d oldest first", i);

        o = get_json(port, "/api/windows", 200);
        names = jget(o, "names");
        cr_assert_eq(json_object_array_length(names), 2, "%s", json_object_to_json_string(o));
        cr_assert_str_eq(json_object_get_string(json_object_array_get_idx(names, 0)), "cpm");
        cr_assert_str_eq(json_object_get_string(json_object_array_get_idx(names, 1)), "hits");
        json_object_put(o);
        /* from/to narrow the names to the partitions of the range: the first day has cpm alone. */
        o = get_json(port, "/api/windows?to=1641081600000", 200);
        cr_assert_eq(json_object_array_length(jget(o, "names")), 1, "%s", json_object_to_json_string(o));
        json_object_put(o);

        /* Bad cursors are the client's: 400 naming the cursor. */
        o = get_json(port, "/api/windows?name=hits&cursor=garbage", 400);
        cr_assert_str_eq(json_object_get_string(jget(o, "field")), "cursor");
        json_object_put(o);
        o = get_json(port, "/api/windows?name=hits&cursor=e1d.1.2.3.4", 400);
        cr_assert_str_eq(json_object_get_string(jget(o, "field")), "cursor");
        json_object_put(o);
        o = get_json(port, "/api/windows?name=hits&order=asc&cursor=w1d.1.2.3.4", 400);
        cr_assert_str_eq(json_object_get_string(jget(o, "field")), "cursor");
        json_object_put(o);
        o = get_json(port, "/api/windows?cursor=w1d.1.2.3.4", 400);
        cr_assert_str_eq(json_object_get_string(jget(o, "field")), "cursor");
        json_object_put(o);
        o = get_json(port, "/api/windows?name=hits&order=sideways", 400);
        cr_assert_str_eq(json_object_get_string(jget(o, "field")), "order");
        json_object_put(o);
}

Test(api_query, queries_before_anything_is_stored_are_empty)
{
        int port = ah_start_api("--data-dir", "/nonexistent/ringflow-api-test", NULL);
        struct json_object *o = get_json(port, "/api/events", 200);

        cr_assert_eq(json_object_array_length(jget(o, "events")), 0);
        json_object_put(o);
}

static struct stats *fake_stage(const char *name)
{
        static const struct stats_def defs[] = { { "lines", STATS_COUNTER } };
        struct stats *s = NULL;
        char why[WHY_MAX];

        cr_assert(stats_create(&s, ah_ti.dirfd, name, defs, 1, why, sizeof(why)) == 0, "%s", why);
        stats_heartbeat(s);
        return s;
}

static int health_status(int port, char **body)
{
        struct http_resp r;

        ah_request(port, "GET", "/api/health", NULL, NULL, 0, &r);
        *body = r.body;
        return r.status;
}

Test(api_query, health_is_503_until_every_stage_heartbeats)
{
        int port = ah_start_api("--health-stale", "300ms", NULL);
        int64_t deadline;
        struct stats *ingest, *store;
        struct json_object *o;
        char *body;

        /* The api alone: no pipeline. */
        cr_assert_eq(health_status(port, &body), 503, "%s", body);
        o = json_tokener_parse(body);
        cr_assert_str_eq(json_object_get_string(jget(o, "status")), "down");
        json_object_put(o);
        free(body);

        ingest = fake_stage("ingest");
        cr_assert_eq(health_status(port, &body), 200, "%s", body);
        o = json_tokener_parse(body);
        cr_assert_str_eq(json_object_get_string(jget(o, "status")), "ok");
        cr_assert(json_object_get_boolean(jget(jget(jget(o, "stages"), "ingest"), "up")));
        json_object_put(o);
        free(body);

        /* A stage that ran and is gone. */
        store = fake_stage("store");
        stats_close(store);
        cr_assert_eq(health_status(port, &body), 503, "%s", body);
        cr_assert(strstr(body, "store: not running") != NULL, "%s", body);
        cr_assert(strstr(body, "\"degraded\"") != NULL, "%s", body);
        free(body);
        cr_assert(unlinkat(ah_ti.dirfd, "store.stats", 0) == 0);

        /* A stage that is there but stopped heartbeating (hung). */
        deadline = clock_mono_ns() + 10 * NSEC_PER_SEC;
        for (;;) {
                int st = health_status(port, &body);

                if (st == 503 && strstr(body, "ingest: no heartbeat for") != NULL)
                        break;
                cr_assert(clock_mono_ns() < deadline, "never stale: %d %s", st, body);
                free(body);
                ah_pause();
        }
        free(body);
        stats_heartbeat(ingest);
        cr_assert_eq(health_status(port, &body), 200, "%s", body);
        free(body);
        stats_close(ingest);
}

Test(api_query, metrics_json_has_every_section)
{
        int port = ah_start_api(NULL);
        static const char *const keys[] = { "instance", "version", "uptime_s", "time_ms", "stages", "rings",
                                            "rates", "latency_ms", "conservation", "live" };
        struct stats *ingest = fake_stage("ingest");
        struct json_object *o = get_json(port, "/api/metrics", 200), *ring, *st;

        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
                jget(o, keys[i]);
        st = jget(jget(o, "stages"), "ingest");
        cr_assert_str_eq(json_object_get_string(jget(st, "state")), "up");
        jget(st, "pid");
        jget(st, "restarts");
        jget(st, "heartbeat_age_ms");
        jget(jget(st, "counters"), "lines");
        ring = jget(jget(o, "rings"), "api-ingest");
        jget(ring, "fill");
        jget(ring, "lag_bytes");
        jget(ring, "waits_producer");
        jget(ring, "drops");
        jget(jget(o, "conservation"), "in_flight");
        jget(jget(o, "rates"), "ingested");
        jget(jget(o, "latency_ms"), "commit_p99");
        jget(jget(o, "live"), "sse_clients");
        cr_assert_str_eq(json_object_get_string(jget(o, "instance")), ah_ti.name);
        json_object_put(o);
        stats_close(ingest);
}

/* name{label="value",...} value: the Prometheus text format's sample line. */
static bool prom_sample_ok(const char *l, char *family, size_t cap)
{
        const char *p = l;
        size_t n = 0;
        char *end;

        if (!(isalpha((unsigned char)*p) || *p == '_' || *p == ':'))
                return false;
        while (isalnum((unsigned char)*p) || *p == '_' || *p == ':') {
                if (n + 1 < cap)
                        family[n++] = *p;
                p++;
        }
        family[n] = '\0';
        if (*p == '{') {
                p++;
                while (*p != '}') {
                        if (!(isalpha((unsigned char)*p) || *p == '_'))
                                return false;
                        while (isalnum((unsigned char)*p) || *p == '_')
                                p++;
                        if (*p++ != '=' || *p++ != '"')
                                return false;
                        while (*p != '"') {
                                if (*p == '\0' || *p == '\n')
                                        return false;
                                if (*p == '\\') {
                                        p++;
                                        if (*p != '\\' && *p != '"' && *p != 'n')
                                                return false;
                                }
                                p++;
                        }
                        p++;
                        if (*p == ',')
                                p++;
                        else if (*p != '}')
                                return false;
                }
                p++;
        }
        if (*p++ != ' ')
                return false;
        strtod(p, &end);
        return end != p && *end == '\0';
}

/* promtool from $PROMTOOL, else from PATH, into out; false when there is none. */
static bool find_promtool(char *out, size_t len)
{
        const char *env = getenv("PROMTOOL"), *path = getenv("PATH");

        if (env != NULL && env[0] != '\0') {
                snprintf(out, len, "%s", env);
                return access(out, X_OK) == 0;
        }
        while (path != NULL && *path != '\0') {
                size_t n = strcspn(path, ":");

                snprintf(out, len, "%.*s/promtool", (int)n, path);
                if (n > 0 && access(out, X_OK) == 0)
                        return true;
                path += n + (path[n] == ':');
        }
        return false;
}

/*
 * Runs `promtool check metrics` with text on its stdin. Returns its exit
 * status; what it printed goes into out (NUL-terminated, cut at len).
 */
static int promtool_check(const char *tool, const char *text, char *out, size_t len)
{
        int in[2], res[2], st;
        size_t got = 0, tl = strlen(text);
        pid_t pid;

        cr_assert(pipe(in) == 0 && pipe(res) == 0);
        pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
                dup2(in[0], 0);
                dup2(res[1], 1);
                dup2(res[1], 2);
                close(in[1]);
                close(res[0]);
                execl(tool, tool, "check", "metrics", (char *)NULL);
                _exit(127);
        }
        close(in[0]);
        close(res[1]);
        /* The text is far below a pipe's buffer plus what promtool reads before answering. */
        for (size_t off = 0; off < tl;) {
                ssize_t w = write(in[1], text + off, tl - off);

                cr_assert(w > 0, "writing to promtool");
                off += (size_t)w;
        }
        close(in[1]);
        for (;;) {
                ssize_t n = read(res[0], out + got, len - 1 - got);

                if (n <= 0)
                        break;
                got += (size_t)n;
                if (got == len - 1)
                        break;
        }
        out[got] = '\0';
        close(res[0]);
        cr_assert(waitpid(pid, &st, 0) == pid);
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

/* A store.stats with a latency.commit_ns histogram: /metrics then has a summary family. */
static struct stats *fake_store_with_commits(void)
{
        static const struct stats_def defs[] = { { "events.stored", STATS_COUNTER },
                                                  { "latency.commit_ns", STATS_HISTOGRAM } };
        struct stats *s = NULL;
        char why[WHY_MAX];

        cr_assert(stats_create(&s, ah_ti.dirfd, "store", defs, 2, why, sizeof(why)) == 0, "%s", why);
        stats_add(stats_slot(s, 0), 3);
        stats_hist_add(s, 1, 1500000);
        stats_hist_add(s, 1, 2500000);
        stats_hist_add(s, 1, 40000000);
        stats_heartbeat(s);
        return s;
}

/* 1 when sample family fam belongs to the declared family typed of type: a summary's _sum and _count do. */
static bool prom_in_family(const char *fam, const char *typed, const char *type)
{
        size_t n = strlen(typed);

        if (strcmp(fam, typed) == 0)
                return true;
        return strcmp(type, "summary") == 0 && strncmp(fam, typed, n) == 0 &&
               (strcmp(fam + n, "_sum") == 0 || strcmp(fam + n, "_count") == 0);
}

Test(api_query, prometheus_text_parses)
{
        int port = ah_start_api(NULL);
        struct stats *ingest = fake_stage("ingest"), *store = fake_store_with_commits();
        struct http_resp r;
        char typed[64][96], types[64][32], tool[4096], *text, *out;
        unsigned ntyped = 0, samples = 0, summaries = 0;
        char *save = NULL, *line;

        ah_request(port, "GET", "/metrics", NULL, NULL, 0, &r);
        cr_assert_eq(r.status, 200);
        text = strdup(r.body);
        cr_assert(text != NULL);
        for (line = strtok_r(r.body, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
                char fam[96], type[32];
                bool found = false;

                if (strncmp(line, "# HELP ", 7) == 0)
                        continue;
                if (sscanf(line, "# TYPE %95s %31s", fam, type) == 2) {
                        cr_assert(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
                                  strcmp(type, "summary") == 0, "%s", line);
                        summaries += strcmp(type, "summary") == 0;
                        if (strcmp(type, "counter") == 0)
                                cr_assert(strlen(fam) > 6 && strcmp(fam + strlen(fam) - 6, "_total") == 0,
                                          "a counter must end in _total: %s", line);
                        for (unsigned i = 0; i < ntyped; i++)
                                cr_assert(strcmp(typed[i], fam) != 0, "family declared twice: %s", fam);
                        cr_assert(ntyped < 64);
                        snprintf(types[ntyped], sizeof(types[0]), "%s", type);
                        snprintf(typed[ntyped++], sizeof(typed[0]), "%s", fam);
                        continue;
                }
                cr_assert(line[0] != '#', "a comment that is neither HELP nor TYPE: %s", line);
                cr_assert(prom_sample_ok(line, fam, sizeof(fam)), "not a sample line: \"%s\"", line);
                /* Samples follow their own family's TYPE line. */
                cr_assert(ntyped > 0 && prom_in_family(fam, typed[ntyped - 1], types[ntyped - 1]),
                          "sample outside its family: %s", line);
                for (unsigned i = 0; i < ntyped; i++)
                        found |= prom_in_family(fam, typed[i], types[i]);
                cr_assert(found);
                samples++;
        }
        cr_assert(samples > 20, "%u samples", samples);
        cr_assert_eq(summaries, 1, "the store's latency.commit_ns is one summary family");
        cr_assert(strstr(text, "ringflow_commit_latency_seconds_count 3\n") != NULL, "%s", text);
        /* The real checker when this machine has it (Debian: the prometheus package); this check only is skipped. */
        if (find_promtool(tool, sizeof(tool))) {
                out = malloc(64 * 1024);
                cr_assert(out != NULL);
                cr_assert_eq(promtool_check(tool, text, out, 64 * 1024), 0, "%s check metrics:\n%s", tool, out);
                cr_log_info("%s check metrics: passed", tool);
                free(out);
        } else {
                cr_log_info("promtool not found (PATH, $PROMTOOL): the promtool check of /metrics is skipped");
        }
        free(text);
        http_resp_free(&r);
        stats_close(store);
        stats_close(ingest);
}

/* A stage's .stats with these counters set: the stages' own counter names, fake values. */
static struct stats *fake_counters(const char *stage, const char *const *names, const uint64_t *vals, unsigned n)
{
        struct stats_def defs[16];
        struct stats *s = NULL;
        char why[WHY_MAX];

        cr_assert_leq(n, 16u);
        for (unsigned i = 0; i < n; i++) {
                defs[i].name = names[i];
                defs[i].kind = STATS_COUNTER;
        }
        cr_assert(stats_create(&s, ah_ti.dirfd, stage, defs, n, why, sizeof(why)) == 0, "%s", why);
        for (unsigned i = 0; i < n; i++)
                stats_add(stats_slot(s, i), vals[i]);
        stats_heartbeat(s);
        return s;
}

static uint64_t jnum(struct json_object *o, const char *key)
{
        return (uint64_t)json_object_get_int64(jget(o, key));
}

Test(api_query, conservation_is_per_source_and_balances)
{
        static const char *const in_names[] = { "stdin.lines", "stdin.rejected", "api.lines", "api.rejected",
                                                "tcp.lines", "unix.lines" };
        static const uint64_t in_vals[] = { 10, 2, 5, 0, 0, 0 };
        static const char *const pr_names[] = { "events.dropped", "dropped.stdin", "dropped.api" };
        static const uint64_t pr_vals[] = { 1, 1, 0 };
        static const char *const st_names[] = { "events.stored", "events.duplicate", "stored.stdin",
                                                "duplicate.stdin", "stored.api", "duplicate.api", "stored.tcp" };
        static const uint64_t st_vals[] = { 9, 1, 6, 1, 3, 0, 0 };
        int port = ah_start_api(NULL);
        struct stats *ingest = fake_counters("ingest", in_names, in_vals, 6);
        struct stats *process = fake_counters("process", pr_names, pr_vals, 3);
        struct stats *store = fake_counters("store", st_names, st_vals, 7);
        struct json_object *o = get_json(port, "/api/metrics", 200), *cons, *by, *src;
        struct http_resp r;

        cons = jget(o, "conservation");
        /* Totals: 15 received = 9 stored + 2 rejected + 1 duplicate + 1 dropped + 2 in flight. */
        cr_assert_eq(jnum(cons, "received"), 15u);
        cr_assert_eq(jnum(cons, "stored"), 9u);
        cr_assert_eq(jnum(cons, "rejected"), 2u);
        cr_assert_eq(jnum(cons, "duplicates"), 1u);
        cr_assert_eq(jnum(cons, "dropped"), 1u);
        cr_assert_eq(jnum(cons, "in_flight"), 2u);
        by = jget(cons, "by_source");
        cr_assert_eq(json_object_object_length(by), 2, "only sources with traffic: %s",
                     json_object_to_json_string(by));
        src = jget(by, "stdin");
        cr_assert_eq(jnum(src, "received"), 10u);
        cr_assert_eq(jnum(src, "stored"), 6u);
        cr_assert_eq(jnum(src, "rejected"), 2u);
        cr_assert_eq(jnum(src, "duplicates"), 1u);
        cr_assert_eq(jnum(src, "dropped"), 1u);
        cr_assert_eq(jnum(src, "in_flight"), 0u);
        src = jget(by, "api");
        cr_assert_eq(jnum(src, "received"), 5u);
        cr_assert_eq(jnum(src, "stored"), 3u);
        cr_assert_eq(jnum(src, "in_flight"), 2u, "the api's 2 are the ones on their way");
        json_object_put(o);

        ah_request(port, "GET", "/metrics", NULL, NULL, 0, &r);
        cr_assert_eq(r.status, 200);
        cr_assert(strstr(r.body, "ringflow_events_total{account=\"received\",source=\"stdin\"} 10\n") != NULL,
                  "%s", r.body);
        cr_assert(strstr(r.body, "ringflow_events_total{account=\"dropped\",source=\"stdin\"} 1\n") != NULL,
                  "%s", r.body);
        cr_assert(strstr(r.body, "ringflow_events_total{account=\"stored\",source=\"api\"} 3\n") != NULL,
                  "%s", r.body);
        cr_assert(strstr(r.body, "ringflow_events_in_flight{source=\"api\"} 2\n") != NULL, "%s", r.body);
        cr_assert(strstr(r.body, "ringflow_events_in_flight{source=\"stdin\"} 0\n") != NULL, "%s", r.body);
        cr_assert(strstr(r.body, "source=\"tcp\"") == NULL, "no samples of a source without traffic");
        /* Every sample of the family has both labels. */
        for (const char *p = r.body; (p = strstr(p, "\nringflow_events_total")) != NULL; p++) {
                const char *nl = strchr(p + 1, '\n'), *sl = strstr(p + 1, ",source=\"");

                cr_assert(strncmp(p, "\nringflow_events_total{account=\"", 32) == 0, "%.80s", p + 1);
                cr_assert(nl != NULL && sl != NULL && sl < nl, "%.80s", p + 1);
        }
        http_resp_free(&r);
        stats_close(store);
        stats_close(process);
        stats_close(ingest);
}

Test(api_query, keep_alive_1000_gets_on_one_connection)
{
        int port = ah_start_api(NULL);
        struct http_conn c;
        struct http_resp r;
        uint64_t before = 0, after = 0;

        ah_connect(&c, port);
        for (int i = 0; i < 1000; i++) {
                int err = http_do(&c, "GET", "/api/events?limit=1", NULL, NULL, 0, &r, AH_TIMEOUT_MS);

                cr_assert(err == 0, "request %d: %s", i, strerror(-err));
                cr_assert_eq(r.status, 200, "request %d: %d", i, r.status);
                cr_assert(!r.close, "request %d: the server closed the connection", i);
                http_resp_free(&r);
                if (i == 0)
                        cr_assert(ah_stat("api", "requests", &before));
        }
        cr_assert(ah_stat("api", "requests", &after));
        cr_assert_eq(after - before, 999);
        http_close(&c);
}

Test(api_query, supervisor_states_and_restarts_are_shown)
{
        static const struct stats_def defs[] = {
                { "ingest.state", STATS_GAUGE }, { "ingest.pid", STATS_GAUGE },
                { "ingest.restarts", STATS_COUNTER },
        };
        int port = ah_start_api(NULL);
        struct stats *ingest = fake_stage("ingest"), *sup = NULL;
        struct json_object *o, *st;
        char why[WHY_MAX], *body;

        cr_assert(stats_create(&sup, ah_ti.dirfd, "supervise", defs, 3, why, sizeof(why)) == 0, "%s", why);
        stats_heartbeat(sup);
        stats_set(stats_slot(sup, 0), 2);       /* up */
        stats_set(stats_slot(sup, 1), 4242);
        stats_set(stats_slot(sup, 2), 3);
        o = get_json(port, "/api/metrics", 200);
        st = jget(jget(o, "stages"), "ingest");
        cr_assert_str_eq(json_object_get_string(jget(st, "state")), "up");
        cr_assert_eq(json_object_get_int(jget(st, "restarts")), 3);
        cr_assert_eq(json_object_get_int(jget(st, "pid")), 4242);
        cr_assert(json_object_get_boolean(jget(o, "supervised")));
        json_object_put(o);
        cr_assert_eq(health_status(port, &body), 200, "%s", body);
        free(body);
        /* The supervisor says the stage is waiting to be restarted: not up, whatever its file says. */
        stats_set(stats_slot(sup, 0), 3);
        cr_assert_eq(health_status(port, &body), 503, "%s", body);
        cr_assert(strstr(body, "ingest: backoff") != NULL, "%s", body);
        free(body);
        stats_close(sup);
        stats_close(ingest);
}

Test(api_query, latency_ms_is_receive_to_commit_not_transaction_time)
{
        static const struct stats_def defs[] = { { "commit_ns", STATS_HISTOGRAM },
                                                 { "latency.commit_ns", STATS_HISTOGRAM } };
        int port = ah_start_api(NULL);
        struct stats *store = NULL;
        struct json_object *o, *lat;
        char why[WHY_MAX];

        cr_assert(stats_create(&store, ah_ti.dirfd, "store", defs, 2, why, sizeof(why)) == 0, "%s", why);
        stats_heartbeat(store);
        /* Transactions of 1 us; events that waited 50 ms from receipt to commit. */
        for (unsigned i = 0; i < 100; i++) {
                stats_hist_add(store, 0, 1000);
                stats_hist_add(store, 1, 50 * NSEC_PER_MSEC);
        }
        o = get_json(port, "/api/metrics", 200);
        lat = jget(o, "latency_ms");
        /* 50 ms lies in the log2 bucket [2^25, 2^26) ns: its upper bound is 67.1 ms. */
        cr_assert_float_eq(json_object_get_double(jget(lat, "commit_p50")), 67.108863, 1e-3, "%s",
                           json_object_to_json_string(lat));
        cr_assert_float_eq(json_object_get_double(jget(lat, "commit_p99")), 67.108863, 1e-3, "%s",
                           json_object_to_json_string(lat));
        json_object_put(o);
        stats_close(store);
}
