/* SPDX-License-Identifier: MIT */
/* test_process_checkpoint.c: the checkpoint file, and the process stage restarted between checkpoints. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "checkpoint.h"
#include "ckpt_writer.h"
#include "clock.h"
#include "config.h"
#include "event.h"
#include "log.h"
#include "process.h"
#include "ring.h"
#include "stats.h"
#include "test_instance.h"
#include "test_tmpdir.h"
#include "why.h"

static char dir[PATH_MAX];
static int dirfd_ = -1;
static struct test_instance ti = { .dirfd = -1 };

static void setup(void)
{
        snprintf(dir, sizeof(dir), "%s/test_process_checkpoint-XXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        cr_assert(mkdtemp(dir) != NULL);
        dirfd_ = open(dir, O_RDONLY | O_DIRECTORY);
        cr_assert(dirfd_ >= 0);
        /* The stage's restart lines would drown the test's own output. */
        log_set_level(LOG_LEVEL_WARNING);
}

static void teardown(void)
{
        test_rmdir_flat(dir);
        close(dirfd_);
        if (ti.dirfd >= 0)
                test_instance_fini(&ti);
}

TestSuite(checkpoint, .init = setup, .fini = teardown, .timeout = 60);

Test(checkpoint, crc32c_known_answer)
{
        cr_assert_eq(checkpoint_crc32c(0, "123456789", 9), 0xE3069283u);
        cr_assert_eq(checkpoint_crc32c(checkpoint_crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
        cr_assert_eq(checkpoint_crc32c(0, "", 0), 0);
}

Test(checkpoint, save_and_load_round_trip_leaves_no_temp_file)
{
        char payload[10000], why[WHY_MAX];
        void *data = NULL;
        size_t len = 0;

        for (size_t i = 0; i < sizeof(payload); i++)
                payload[i] = (char)(i * 7);
        cr_assert_eq(checkpoint_save(dirfd_, "x.ckpt", payload, sizeof(payload), why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(checkpoint_load(dirfd_, "x.ckpt", &data, &len, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(len, sizeof(payload));
        cr_assert(memcmp(data, payload, len) == 0);
        free(data);
        cr_assert(faccessat(dirfd_, "x.ckpt.tmp", F_OK, 0) < 0, "the temp file is left behind");
        /* A second save replaces the first. */
        cr_assert_eq(checkpoint_save(dirfd_, "x.ckpt", "ab", 2, why, sizeof(why)), 0);
        cr_assert_eq(checkpoint_load(dirfd_, "x.ckpt", &data, &len, why, sizeof(why)), 0);
        cr_assert_eq(len, 2);
        free(data);
        cr_assert_eq(checkpoint_load(dirfd_, "none.ckpt", &data, &len, why, sizeof(why)), -ENOENT);
}

Test(checkpoint, writer_saves_on_its_thread_one_at_a_time_and_swaps_buffers)
{
        struct ckpt_writer *w;
        struct ckpt_buf b, other;
        char why[WHY_MAX];
        void *data = NULL;
        size_t len = 0;
        int64_t ns = -1;
        int result = 1;
        unsigned char *mine;

        cr_assert_eq(ckpt_writer_create(&w, dirfd_, "w.ckpt"), 0);
        cr_assert_eq(ckpt_writer_poll(w, 1, &result, &ns, why, sizeof(why)), 0, "nothing was handed over");
        ckpt_buf_init(&b);
        for (uint32_t i = 0; i < 50000; i++)
                ckpt_put_u32(&b, i * 2654435761u);
        mine = b.p;
        cr_assert_eq(ckpt_writer_start(w, &b), 0);
        /* b now holds the writer's spare buffer, empty; ours is the writer's until collected. */
        cr_assert_eq(b.len, 0);
        cr_assert(b.p != mine);
        ckpt_buf_init(&other);
        ckpt_put_u32(&other, 7);
        cr_assert_eq(ckpt_writer_start(w, &other), -EBUSY, "a second write while one is in progress");
        cr_assert_eq(ckpt_writer_poll(w, 1, &result, &ns, why, sizeof(why)), 1);
        cr_assert_eq(result, 0, "%s", why);
        cr_assert_geq(ns, 0);
        cr_assert_eq(checkpoint_load(dirfd_, "w.ckpt", &data, &len, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(len, 50000 * 4);
        for (uint32_t i = 0; i < 50000; i++) {
                uint32_t v;

                memcpy(&v, (unsigned char *)data + i * 4, 4);
                cr_assert_eq(v, i * 2654435761u);
        }
        free(data);
        /* Collected: the next one goes, and gets our first buffer back in exchange. */
        cr_assert_eq(ckpt_writer_start(w, &other), 0);
        cr_assert_eq(other.p, mine);
        cr_assert_eq(other.len, 0);
        cr_assert_eq(ckpt_writer_poll(w, 1, &result, &ns, why, sizeof(why)), 1);
        cr_assert_eq(result, 0, "%s", why);
        cr_assert_eq(checkpoint_load(dirfd_, "w.ckpt", &data, &len, why, sizeof(why)), 0, "%s", why);
        cr_assert_eq(len, 4);
        free(data);
        ckpt_writer_destroy(w);
        ckpt_buf_fini(&b);
        ckpt_buf_fini(&other);
}

Test(checkpoint, writer_reports_a_failed_save_with_its_reason)
{
        struct ckpt_writer *w;
        struct ckpt_buf b;
        char sub[PATH_MAX + 8], why[WHY_MAX];
        int64_t ns;
        int fd, result = 0;

        /* A directory removed under the writer: the save fails, and says why. */
        snprintf(sub, sizeof(sub), "%s/gone", dir);
        cr_assert_eq(mkdir(sub, 0700), 0);
        fd = open(sub, O_RDONLY | O_DIRECTORY);
        cr_assert(fd >= 0);
        cr_assert_eq(rmdir(sub), 0);
        cr_assert_eq(ckpt_writer_create(&w, fd, "x.ckpt"), 0);
        ckpt_buf_init(&b);
        ckpt_put_u64(&b, 42);
        cr_assert_eq(ckpt_writer_start(w, &b), 0);
        cr_assert_eq(ckpt_writer_poll(w, 1, &result, &ns, why, sizeof(why)), 1);
        cr_assert_lt(result, 0);
        cr_assert(strstr(why, "x.ckpt.tmp") != NULL, "%s", why);
        ckpt_writer_destroy(w);
        ckpt_buf_fini(&b);
        close(fd);
}

/* Writes a good checkpoint, damages byte at of it (or truncates to at when truncate). */
static void damage(off_t at, int truncate_it, const char *expect)
{
        char why[WHY_MAX], path[PATH_MAX * 2];
        void *data = NULL;
        size_t len = 0;
        unsigned char c;
        int fd;

        cr_assert_eq(checkpoint_save(dirfd_, "d.ckpt", "some window state", 17, why, sizeof(why)), 0);
        snprintf(path, sizeof(path), "%s/d.ckpt", dir);
        if (truncate_it) {
                cr_assert(truncate(path, at) == 0);
        } else {
                fd = open(path, O_RDWR);
                cr_assert(fd >= 0);
                cr_assert(pread(fd, &c, 1, at) == 1);
                c ^= 0x40;
                cr_assert(pwrite(fd, &c, 1, at) == 1);
                close(fd);
        }
        cr_assert_eq(checkpoint_load(dirfd_, "d.ckpt", &data, &len, why, sizeof(why)), -EBADMSG,
                     "damage at %lld was not detected", (long long)at);
        cr_assert(strstr(why, expect) != NULL, "damage at %lld: \"%s\" does not say %s", (long long)at,
                  why, expect);
        cr_assert(data == NULL);
}

Test(checkpoint, corruption_is_detected_wherever_it_is)
{
        damage(0, 0, "magic");
        damage(9, 0, "header checksum");
        damage(16, 0, "header checksum");
        damage(CHECKPOINT_HEADER + 3, 0, "state checksum");
        damage(CHECKPOINT_HEADER + 16, 0, "state checksum");
        damage(CHECKPOINT_HEADER + 5, 1, "holds");
        damage(10, 1, "not a checkpoint");
}

Test(checkpoint, set_aside_renames_the_file)
{
        char why[WHY_MAX], aside[300];

        cr_assert_eq(checkpoint_save(dirfd_, "p.ckpt", "x", 1, why, sizeof(why)), 0);
        cr_assert_eq(checkpoint_set_aside(dirfd_, "p.ckpt", aside, sizeof(aside), why, sizeof(why)), 0);
        cr_assert(strncmp(aside, "p.ckpt.corrupt-", 15) == 0, "%s", aside);
        cr_assert(faccessat(dirfd_, aside, F_OK, 0) == 0);
        cr_assert(faccessat(dirfd_, "p.ckpt", F_OK, 0) < 0);
}

Test(checkpoint, reader_stops_at_the_end_and_stays_failed)
{
        struct ckpt_buf b;
        struct ckpt_reader r;
        size_t n;

        ckpt_buf_init(&b);
        ckpt_put_u64(&b, 42);
        ckpt_put_blob(&b, "abc", 3);
        ckpt_put_u32(&b, 7);
        ckpt_reader_init(&r, b.p, b.len);
        cr_assert_eq(ckpt_get_u64(&r), 42);
        cr_assert(memcmp(ckpt_get_blob(&r, 10, &n), "abc", 3) == 0);
        cr_assert_eq(n, 3);
        cr_assert_eq(ckpt_get_u32(&r), 7);
        cr_assert_eq(r.err, 0);
        cr_assert_eq(ckpt_get_u64(&r), 0);
        cr_assert_eq(r.err, -EBADMSG);
        ckpt_reader_init(&r, b.p, b.len);
        ckpt_get_u64(&r);
        cr_assert(ckpt_get_blob(&r, 2, &n) == NULL, "a blob over its bound is refused");
        cr_assert_eq(r.err, -EBADMSG);
        ckpt_buf_fini(&b);
}

/* ---- the stage, restarted between checkpoints ---- */

#define N_EVENTS 6000
#define TYPES 3
#define STEP_MS 7
#define SIZE_MS 1000
#define BASE_MS 1700000000000LL

struct result {
        char key[64];
        int64_t start;
        uint64_t count;
};

struct sink {
        struct ring *ring;
        struct result *res;             /* the last result per (key, start), as the store keeps */
        unsigned nres;
        uint64_t events, late, records;
        char seen[N_EVENTS];            /* forwarded ids */
};

static void sink_take(struct sink *s)
{
        struct ring_rec rec;
        char why[WHY_MAX];

        while (ring_peek(s->ring, &rec) == 0) {
                s->records++;
                if (rec.type == EVENT_REC_EVENT) {
                        struct event_view ev;
                        unsigned id;

                        cr_assert(event_decode(rec.data, rec.len, &ev, why, sizeof(why)) == 0);
                        cr_assert(sscanf(ev.id, "e%u", &id) == 1 && id < N_EVENTS);
                        cr_assert_eq(s->seen[id], 0, "event %u forwarded twice", id);
                        s->seen[id] = 1;
                        s->events++;
                } else if (rec.type == EVENT_REC_WINDOW) {
                        struct event_window_view w;
                        unsigned i;

                        cr_assert(event_window_decode(rec.data, rec.len, &w, why, sizeof(why)) == 0);
                        for (i = 0; i < s->nres; i++)
                                if (strcmp(s->res[i].key, w.key) == 0 && s->res[i].start == w.start_ms)
                                        break;
                        if (i == s->nres) {
                                s->nres++;
                                snprintf(s->res[i].key, sizeof(s->res[i].key), "%s", w.key);
                                s->res[i].start = w.start_ms;
                        }
                        s->res[i].count = w.count;
                } else if (rec.type == EVENT_REC_LATE) {
                        s->late++;
                }
                cr_assert(ring_done(s->ring, rec.next) == 0);
        }
}

static void put_event(struct ring *r, struct event_parser *ps, unsigned i)
{
        char json[256];
        struct event_error e;
        void *p;
        long n;

        snprintf(json, sizeof(json), "{\"id\":\"e%u\",\"timestamp\":%lld,\"type\":\"t%u\",\"source\":\"s\"}",
                 i, (long long)(BASE_MS + (int64_t)i * STEP_MS), i % TYPES);
        cr_assert(ring_reserve(r, EVENT_REC_EVENT, 1024, &p) == 0);
        n = event_parse(ps, json, strlen(json), 1, EVENT_SRC_STDIN, 0, p, 1024, &e);
        cr_assert(n > 0);
        event_set_seq(p, i + 1);
        cr_assert(ring_commit(r, (uint32_t)n) == 0);
}

/* Handles everything in the input ring. */
static void run(struct process *p, struct sink *s)
{
        for (;;) {
                int n = process_do_work(p);

                cr_assert(n >= 0, "%s", process_why(p));
                sink_take(s);
                if (n == 0)
                        break;
        }
}

static struct process *open_stage(struct config *cfg)
{
        struct process *p = NULL;
        char why[WHY_MAX];

        cr_assert_eq(process_open(&p, cfg, PROCESS_EXIT_ON_EOF, why, sizeof(why)), 0, "%s", why);
        return p;
}

static void stage_restarts(unsigned crash_every, int corrupt)
{
        char conf[PATH_MAX * 2], why[WHY_MAX], path[PATH_MAX * 2];
        struct event_limits lim;
        struct event_parser *ps;
        struct config cfg;
        struct ring *in;
        struct sink s = { 0 };
        struct process *p;
        unsigned crashes = 0;
        FILE *f;
        int fin = 0;

        test_instance_init(&ti);
        cr_assert(ring_create(ti.dirfd, "ingest", "process", 1u << 20, 0, why, sizeof(why)) == 0, "%s", why);
        cr_assert(ring_create(ti.dirfd, "process", "store", 4u << 20, 0, why, sizeof(why)) == 0, "%s", why);
        cr_assert(ring_attach(&in, ti.dirfd, "ingest", "process", RING_PRODUCER, why, sizeof(why)) == 0);
        cr_assert(ring_attach(&s.ring, ti.dirfd, "process", "store", RING_CONSUMER, why, sizeof(why)) == 0);
        s.res = calloc(10000, sizeof(*s.res));
        event_limits_default(&lim);
        cr_assert(event_parser_create(&ps, &lim) == 0);

        snprintf(conf, sizeof(conf), "%s/ringflow.conf", dir);
        f = fopen(conf, "w");
        cr_assert(f != NULL);
        fprintf(f, "[window w]\nkind = tumbling\nsize = 1s\ngroup_by = type\n");
        fclose(f);
        config_init(&cfg);
        cr_assert(config_load_file(&cfg, conf, why, sizeof(why)) == 0, "%s", why);
        snprintf(cfg.instance, sizeof(cfg.instance), "%s", ti.name);
        snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s", dir);
        cfg.checkpoint_interval = INT64_MAX / 4;        /* only when the test says so */

        p = open_stage(&cfg);
        for (unsigned i = 0; i < N_EVENTS; i++) {
                put_event(in, ps, i);
                if (i % 100 != 99)
                        continue;
                ring_publish(in);
                run(p, &s);
                if (i % 700 == 699)
                        cr_assert_eq(process_flush(p, 1), 1, "%s", process_why(p));
                if (crash_every > 0 && i % crash_every == crash_every - 1) {
                        /* A kill: no checkpoint, the input since the last one replays. */
                        process_close(p);
                        crashes++;
                        if (corrupt && crashes == 2) {
                                snprintf(path, sizeof(path), "%s/%s", dir, PROCESS_CKPT_NAME);
                                f = fopen(path, "r+");
                                cr_assert(f != NULL);
                                fseek(f, CHECKPOINT_HEADER + 8, SEEK_SET);
                                fputc('!', f);
                                fclose(f);
                        }
                        p = open_stage(&cfg);
                }
        }
        ring_publish(in);
        ring_close(in);         /* the producer is gone: the end of the input */
        while (!fin) {
                run(p, &s);
                fin = process_finished(p);
                cr_assert(fin >= 0, "%s", process_why(p));
        }
        cr_assert_eq(process_flush(p, 1), 1);
        sink_take(&s);
        process_close(p);

        ring_close(s.ring);
        event_parser_destroy(ps);
        config_fini(&cfg);
        cr_assert_eq(s.events, N_EVENTS, "%llu events forwarded", (unsigned long long)s.events);
        cr_assert_eq(s.late, 0);
        if (corrupt) {
                struct dirent *de;
                DIR *d = opendir(dir);
                int found = 0;

                while ((de = readdir(d)) != NULL)
                        found |= strncmp(de->d_name, PROCESS_CKPT_NAME ".corrupt-", 18) == 0;
                closedir(d);
                free(s.res);
                /* The windows lost what they held; forwarding stayed exact (checked above). */
                cr_assert(found, "the corrupt checkpoint was not set aside");
                return;
        }
        /* Every window of every type, counted exactly once. */
        for (unsigned t = 0; t < TYPES; t++) {
                int64_t first = BASE_MS - BASE_MS % SIZE_MS;

                for (int64_t start = first; start <= BASE_MS + (N_EVENTS - 1) * STEP_MS; start += SIZE_MS) {
                        uint64_t want = 0;
                        char key[16];
                        unsigned i;

                        for (unsigned e = t; e < N_EVENTS; e += TYPES) {
                                int64_t ts = BASE_MS + (int64_t)e * STEP_MS;

                                want += ts >= start && ts < start + SIZE_MS;
                        }
                        snprintf(key, sizeof(key), "[\"t%u\"]", t);
                        for (i = 0; i < s.nres; i++)
                                if (strcmp(s.res[i].key, key) == 0 && s.res[i].start == start)
                                        break;
                        if (want == 0)
                                continue;
                        cr_assert(i < s.nres, "no result for %s at %lld", key, (long long)start);
                        cr_assert_eq(s.res[i].count, want, "%s at %lld: %llu, want %llu (%u crashes)", key,
                                     (long long)start, (unsigned long long)s.res[i].count,
                                     (unsigned long long)want, crashes);
                }
        }
        free(s.res);
}

Test(checkpoint, stage_without_crashes_counts_each_event_once)
{
        stage_restarts(0, 0);
}

Test(checkpoint, stage_killed_between_checkpoints_counts_each_event_once)
{
        stage_restarts(300, 0);
}

Test(checkpoint, corrupt_checkpoint_is_set_aside_and_the_stage_goes_on)
{
        stage_restarts(1100, 1);
}

/* ---- the stage's forwarding: drop filters, late flags ---- */

TestSuite(stage, .init = setup, .fini = teardown, .timeout = 60);

/* Parses json into the ring as an event record. */
static void put_json(struct ring *r, struct event_parser *ps, const char *json)
{
        struct event_error e;
        void *p;
        long n;

        cr_assert(ring_reserve(r, EVENT_REC_EVENT, 1024, &p) == 0);
        n = event_parse(ps, json, strlen(json), 1, EVENT_SRC_STDIN, 0, p, 1024, &e);
        cr_assert(n > 0, "%s: %s", json, e.message);
        cr_assert(ring_commit(r, (uint32_t)n) == 0);
}

Test(stage, drop_filter_drops_and_a_late_event_is_flagged_and_reported)
{
        static const char *const events[] = {
                "{\"id\":\"a\",\"timestamp\":10000,\"type\":\"t\",\"source\":\"web\"}",
                "{\"id\":\"b\",\"timestamp\":20000,\"type\":\"t\",\"source\":\"web\"}",
                "{\"id\":\"late\",\"timestamp\":10500,\"type\":\"t\",\"source\":\"web\"}",
                "{\"id\":\"bot\",\"timestamp\":20001,\"type\":\"t\",\"source\":\"bot\"}",
                "{\"id\":\"c\",\"timestamp\":20002,\"type\":\"t\",\"source\":\"web\"}",
        };
        char conf[PATH_MAX * 2], why[WHY_MAX], ids[256] = "";
        struct event_limits lim;
        struct event_parser *ps;
        struct stats_snapshot snap;
        struct config cfg;
        struct ring *in, *out;
        struct ring_rec rec;
        struct process *p = NULL;
        unsigned late_recs = 0, results = 0, flagged = 0;
        FILE *f;

        test_instance_init(&ti);
        cr_assert(ring_create(ti.dirfd, "ingest", "process", 1u << 16, 0, why, sizeof(why)) == 0);
        cr_assert(ring_create(ti.dirfd, "process", "store", 1u << 16, 0, why, sizeof(why)) == 0);
        cr_assert(ring_attach(&in, ti.dirfd, "ingest", "process", RING_PRODUCER, why, sizeof(why)) == 0);
        cr_assert(ring_attach(&out, ti.dirfd, "process", "store", RING_CONSUMER, why, sizeof(why)) == 0);
        event_limits_default(&lim);
        cr_assert(event_parser_create(&ps, &lim) == 0);
        snprintf(conf, sizeof(conf), "%s/ringflow.conf", dir);
        f = fopen(conf, "w");
        cr_assert(f != NULL);
        fprintf(f, "[process]\nmax_keys = 1\n[filter bots]\nexpr = source == \"bot\"\naction = drop\n"
                   "[window w]\nkind = tumbling\nsize = 1s\ngroup_by = id\n");
        fclose(f);
        config_init(&cfg);
        cr_assert(config_load_file(&cfg, conf, why, sizeof(why)) == 0, "%s", why);
        snprintf(cfg.instance, sizeof(cfg.instance), "%s", ti.name);
        snprintf(cfg.data_dir, sizeof(cfg.data_dir), "%s", dir);
        cr_assert_eq(process_open(&p, &cfg, 0, why, sizeof(why)), 0, "%s", why);
        for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
                put_json(in, ps, events[i]);
        ring_publish(in);
        while (process_do_work(p) > 0)
                ;
        process_heartbeat(p);
        while (ring_peek(out, &rec) == 0) {
                if (rec.type == EVENT_REC_EVENT) {
                        struct event_view ev;

                        cr_assert(event_decode(rec.data, rec.len, &ev, why, sizeof(why)) == 0);
                        strcat(ids, ev.id);
                        strcat(ids, " ");
                        if (ev.flags & EVENT_F_LATE) {
                                cr_assert_str_eq(ev.id, "late");
                                flagged++;
                        }
                } else if (rec.type == EVENT_REC_LATE) {
                        struct event_late_view l;

                        cr_assert(event_late_decode(rec.data, rec.len, &l, why, sizeof(why)) == 0);
                        cr_assert_eq(l.window_len, 1);
                        cr_assert_str_eq(l.window, "w");
                        cr_assert_str_eq(l.id, "late");
                        cr_assert_eq(l.timestamp_ms, 10500);
                        cr_assert_eq(l.watermark_ms, 20000);
                        late_recs++;
                } else {
                        cr_assert_eq(rec.type, EVENT_REC_WINDOW);
                        results++;
                }
        }
        cr_assert_str_eq(ids, "a b late c ", "forwarded: %s", ids);
        cr_assert_eq(flagged, 1);
        cr_assert_eq(late_recs, 1);
        cr_assert_eq(results, 1, "[10s,11s) closed when 20 s came");
        cr_assert(stats_read(ti.dirfd, "process", &snap, why, sizeof(why)) == 0, "%s", why);
        cr_assert_eq(stats_find(&snap, "events.dropped")->value, 1);
        cr_assert_eq(stats_find(&snap, "events.late")->value, 1);
        cr_assert_eq(stats_find(&snap, "late.records")->value, 1);
        cr_assert_eq(stats_find(&snap, "events.out")->value, 4);
        cr_assert_eq(stats_find(&snap, "windows.open")->value, 1);
        cr_assert_eq(stats_find(&snap, "keys")->value, 2, "b and the overflow key");
        cr_assert_eq(stats_find(&snap, "caps.keys")->value, 1, "c went to the overflow key");
        cr_assert_eq(stats_find(&snap, "caps.windows")->value, 0);
        stats_snapshot_free(&snap);
        process_close(p);
        ring_close(in);
        ring_close(out);
        event_parser_destroy(ps);
        config_fini(&cfg);
}
