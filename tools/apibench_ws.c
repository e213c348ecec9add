/* SPDX-License-Identifier: MIT */
/* apibench_ws.c: receive-to-WebSocket-client latency through the whole pipeline (ringflow-gen | ringflowd). */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "apibench_ws.h"
#include "bench.h"
#include "clock.h"
#include "log.h"
#include "ring.h"
#include "stats.h"
#include "why.h"

#define WS_BUF (4u << 20)               /* bytes of frames read ahead; a frame larger than this is an error */
#define START_NS (30 * NSEC_PER_SEC)    /* ringflowd's api must listen within this */
#define STALL_NS (5 * NSEC_PER_SEC)     /* no frame for this long: the stream stopped */
#define GEN_EXTRA_S 5                   /* ringflow-gen runs this much past the measurement */
#define LAT_INITIAL (1u << 20)          /* latency samples allocated at first */
/* RFC 6455's sample key: any 16 bytes in base64 will do for a benchmark. */
#define WS_KEY "dGhlIHNhbXBsZSBub25jZQ=="
#define RFD_ARGS_MAX 64                 /* ringflowd's argv, ours and the caller's */

static pid_t gen_pid, rfd_pid;
static char data_dir[PATH_MAX];
static char rfd_path[PATH_MAX], rfd_instance[PATH_MAX];
static char f_instance[] = "--instance", f_data_dir[] = "--data-dir", f_listen[] = "--listen",
            v_listen[] = "127.0.0.1:0", f_log_level[] = "--log-level", v_log_level[] = "warning";

/* Stops ringflowd (it drains and exits on SIGTERM) and the generator; removes the data directory. */
static void stop_children(void)
{
        if (gen_pid > 0) {
                kill(gen_pid, SIGTERM);
                waitpid(gen_pid, NULL, 0);
                gen_pid = 0;
        }
        if (rfd_pid > 0) {
                kill(rfd_pid, SIGTERM);
                waitpid(rfd_pid, NULL, 0);
                rfd_pid = 0;
        }
        if (data_dir[0] != '\0') {
                bench_remove_tree(data_dir);
                data_dir[0] = '\0';
        }
}

static void start_pipeline(const struct ws_lat_opts *o)
{
        char rate[32], dur[32];
        char *argv[RFD_ARGS_MAX];
        int p[2], n = 0;

        snprintf(data_dir, sizeof(data_dir), "/tmp/apibench-ws-XXXXXX");
        if (mkdtemp(data_dir) == NULL)
                fatal(EXIT_TEMPORARY, "mkdtemp");
        snprintf(rate, sizeof(rate), "%u", o->rate);
        snprintf(dur, sizeof(dur), "%.1f", o->warmup + o->seconds + GEN_EXTRA_S);
        if (o->nextra > RFD_ARGS_MAX - 10)
                fatalx(EXIT_PERMANENT, "more than %d ringflowd flags", RFD_ARGS_MAX - 10);
        /* execv takes char *const []: writable copies of the fixed words. */
        snprintf(rfd_path, sizeof(rfd_path), "%s", o->ringflowd);
        snprintf(rfd_instance, sizeof(rfd_instance), "%s", bench_instance_name());
        argv[n++] = rfd_path;
        argv[n++] = f_instance;
        argv[n++] = rfd_instance;
        argv[n++] = f_data_dir;
        argv[n++] = data_dir;
        argv[n++] = f_listen;
        argv[n++] = v_listen;
        argv[n++] = f_log_level;
        argv[n++] = v_log_level;
        for (int i = 0; i < o->nextra; i++)
                argv[n++] = o->extra[i];
        argv[n] = NULL;
        if (pipe2(p, O_CLOEXEC) < 0)
                fatal(EXIT_TEMPORARY, "pipe2");
        gen_pid = fork();
        if (gen_pid < 0)
                fatal(EXIT_TEMPORARY, "fork");
        if (gen_pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                dup2(p[1], STDOUT_FILENO);
                execl(o->gen, o->gen, "--rate", rate, "--now", "--duration", dur, (char *)NULL);
                _exit(127);
        }
        rfd_pid = fork();
        if (rfd_pid < 0)
                fatal(EXIT_TEMPORARY, "fork");
        if (rfd_pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                dup2(p[0], STDIN_FILENO);
                execv(o->ringflowd, argv);
                _exit(127);
        }
        close(p[0]);
        close(p[1]);
}

/* The api's port once ringflowd's api listens. */
static int wait_port(int dirfd)
{
        int64_t deadline = clock_mono_ns() + START_NS;
        struct stats_snapshot snap;

        for (;;) {
                int st;

                if (stats_read(dirfd, "api", &snap, NULL, 0) == 0) {
                        const struct stats_value *v = stats_find(&snap, "listen.port");
                        int port = v != NULL && snap.alive ? (int)v->value : 0;

                        stats_snapshot_free(&snap);
                        if (port > 0)
                                return port;
                }
                if (waitpid(rfd_pid, &st, WNOHANG) == rfd_pid) {
                        rfd_pid = 0;
                        fatalx(EXIT_TEMPORARY, "ringflowd exited before its api listened");
                }
                if (clock_mono_ns() > deadline)
                        fatalx(EXIT_TEMPORARY, "ringflowd's api did not listen within %d s",
                               (int)(START_NS / NSEC_PER_SEC));
                usleep(10000);
        }
}

struct wsc {
        int fd;
        char *buf;
        size_t len;                     /* bytes in buf */
};

static void send_all(int fd, const void *p, size_t n)
{
        while (n > 0) {
                ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

                if (w < 0 && errno == EINTR)
                        continue;
                if (w <= 0)
                        fatal(EXIT_TEMPORARY, "WebSocket send");
                p = (const char *)p + w;
                n -= (size_t)w;
        }
}

/* Reads more into c->buf. Returns bytes read; exits when the stream closed or stalled. */
static size_t ws_fill(struct wsc *c)
{
        struct pollfd pfd = { .fd = c->fd, .events = POLLIN };
        ssize_t n;

        if (c->len == WS_BUF)
                fatalx(EXIT_TEMPORARY, "a WebSocket frame larger than %u bytes", WS_BUF);
        for (;;) {
                int rc = poll(&pfd, 1, (int)(STALL_NS / NSEC_PER_MSEC));

                if (rc < 0 && errno == EINTR) {
                        if (bench_stopping())
                                return 0;
                        continue;
                }
                if (rc <= 0)
                        fatalx(EXIT_TEMPORARY, "the WebSocket stream stalled for %d s",
                               (int)(STALL_NS / NSEC_PER_SEC));
                n = recv(c->fd, c->buf + c->len, WS_BUF - c->len, 0);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        fatalx(EXIT_TEMPORARY, "the api closed the WebSocket");
                c->len += (size_t)n;
                return (size_t)n;
        }
}

static void ws_connect(struct wsc *c, int port)
{
        static const char req[] = "GET /ws/events?kinds=events HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                  "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                  "Sec-WebSocket-Key: " WS_KEY "\r\nSec-WebSocket-Version: 13\r\n\r\n";
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        char *end;
        size_t hl;

        c->buf = malloc(WS_BUF);
        c->len = 0;
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c->buf == NULL || c->fd < 0)
                fatal(EXIT_TEMPORARY, "socket");
        if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                fatal(EXIT_TEMPORARY, "connect 127.0.0.1:%d", port);
        send_all(c->fd, req, sizeof(req) - 1);
        while ((end = memmem(c->buf, c->len, "\r\n\r\n", 4)) == NULL)
                ws_fill(c);
        if (c->len < 12 || memcmp(c->buf + 8, " 101", 4) != 0)
                fatalx(EXIT_TEMPORARY, "the WebSocket upgrade was refused: %.*s", (int)(c->len > 80 ? 80 : c->len),
                       c->buf);
        hl = (size_t)(end - c->buf) + 4;
        memmove(c->buf, c->buf + hl, c->len - hl);
        c->len -= hl;
}

/* Answers a ping with a masked pong (a client's frames are masked; a zero mask is a mask). */
static void ws_pong(struct wsc *c, const char *payload, size_t n)
{
        unsigned char f[2 + 4 + 125];

        if (n > 125)
                return;
        f[0] = 0x8a;
        f[1] = (unsigned char)(0x80 | n);
        memset(f + 2, 0, 4);
        memcpy(f + 6, payload, n);
        send_all(c->fd, f, 6 + n);
}

/* The integer after the last "key": in s[0, n), or -1. The api appends "received" after "data". */
static long long last_int(const char *s, size_t n, const char *key)
{
        size_t kl = strlen(key);
        const char *p = NULL, *q = s;

        while ((q = memmem(q, n - (size_t)(q - s), key, kl)) != NULL) {
                p = q;
                q += kl;
        }
        return p != NULL ? strtoll(p + kl, NULL, 10) : -1;
}

struct lat {
        int64_t *v;                     /* ns */
        size_t n, cap;
        uint64_t skipped, frames;
};

static void lat_add(struct lat *l, int64_t ns)
{
        if (l->n == l->cap) {
                size_t cap = l->cap ? l->cap * 2 : LAT_INITIAL;
                int64_t *p = realloc(l->v, cap * sizeof(*p));

                if (p == NULL)
                        fatalx(EXIT_TEMPORARY, "out of memory for %zu samples", cap);
                l->v = p;
                l->cap = cap;
        }
        l->v[l->n++] = ns;
}

/*
 * Takes the whole frames in c->buf; events arriving at or after count_from
 * (monotonic) are counted. arrival_real: CLOCK_REALTIME of the read that
 * completed them.
 */
static void ws_frames(struct wsc *c, struct lat *l, int64_t arrival_real, int counting)
{
        size_t off = 0;

        for (;;) {
                const unsigned char *h = (const unsigned char *)c->buf + off;
                size_t avail = c->len - off, hl = 2;
                uint64_t pl;
                const char *p;

                if (avail < 2)
                        break;
                if (h[1] & 0x80)
                        fatalx(EXIT_TEMPORARY, "the api sent a masked frame");
                pl = h[1] & 0x7f;
                if (pl == 126) {
                        hl = 4;
                        if (avail < hl)
                                break;
                        pl = (uint64_t)h[2] << 8 | h[3];
                } else if (pl == 127) {
                        hl = 10;
                        if (avail < hl)
                                break;
                        pl = 0;
                        for (int i = 0; i < 8; i++)
                                pl = pl << 8 | h[2 + i];
                }
                if (pl > WS_BUF - hl)
                        fatalx(EXIT_TEMPORARY, "a WebSocket frame of %" PRIu64 " bytes", pl);
                if (avail < hl + pl)
                        break;
                p = (const char *)h + hl;
                switch (h[0] & 0x0f) {
                case 0x1:
                        l->frames++;
                        if (pl > 16 && memcmp(p, "{\"kind\":\"event\"", 15) == 0) {
                                long long ms = last_int(p, (size_t)pl, "\"received\":");

                                if (ms > 0 && counting)
                                        lat_add(l, arrival_real - ms * NSEC_PER_MSEC);
                        } else if (pl > 16 && memcmp(p, "{\"kind\":\"lagged\"", 16) == 0 && counting) {
                                long long k = last_int(p, (size_t)pl, "\"skipped\":");

                                l->skipped += k > 0 ? (uint64_t)k : 0;
                        }
                        break;
                case 0x8:
                        fatalx(EXIT_TEMPORARY, "the api closed the WebSocket (close frame)");
                case 0x9:
                        ws_pong(c, p, (size_t)pl);
                        break;
                default:
                        break;
                }
                off += hl + (size_t)pl;
        }
        memmove(c->buf, c->buf + off, c->len - off);
        c->len -= off;
}

static int cmp_i64(const void *a, const void *b)
{
        int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

        return (x > y) - (x < y);
}

static double q_ms(const struct lat *l, double q)
{
        size_t i = (size_t)(q * (double)(l->n - 1) + 0.5);

        return (double)l->v[i] / 1e6;
}

static void load_avg(char *buf, size_t len)
{
        FILE *f = fopen("/proc/loadavg", "r");

        buf[0] = '\0';
        if (f != NULL) {
                if (fgets(buf, (int)len, f) != NULL)
                        buf[strcspn(buf, " ")] = '\0';
                fclose(f);
        }
}

int ws_latency_run(const struct ws_lat_opts *o)
{
        struct lat l = { 0 };
        struct wsc c;
        struct stats_snapshot snap;
        struct ring *ring = NULL;
        struct ring_stats rs = { 0 };
        char why[WHY_MAX], load0[32], load1[32];
        uint64_t deliver_n = 0, deliver_p50 = 0, deliver_p99 = 0, drops = 0;
        int64_t t0, count_from, until;
        int dirfd, port;

        dirfd = bench_instance_open("apibench-ws", stop_children, why, sizeof(why));
        if (dirfd < 0)
                fatalx(EXIT_TEMPORARY, "%s", why);
        load_avg(load0, sizeof(load0));
        start_pipeline(o);
        port = wait_port(dirfd);
        ws_connect(&c, port);
        t0 = clock_mono_ns();
        count_from = t0 + (int64_t)(o->warmup * 1e9);
        until = count_from + (int64_t)(o->seconds * 1e9);
        for (;;) {
                int64_t now;

                if (ws_fill(&c) == 0 || bench_stopping())
                        break;
                now = clock_mono_ns();
                ws_frames(&c, &l, clock_real_ns(), now >= count_from);
                if (now >= until)
                        break;
        }
        load_avg(load1, sizeof(load1));
        if (stats_read(dirfd, "api", &snap, NULL, 0) == 0) {
                const struct stats_value *v = stats_find(&snap, "deliver_ns");

                if (v != NULL && v->kind == STATS_HISTOGRAM) {
                        deliver_n = v->value;
                        deliver_p50 = stats_hist_quantile(v, 0.5);
                        deliver_p99 = stats_hist_quantile(v, 0.99);
                }
                stats_snapshot_free(&snap);
        }
        if (ring_attach(&ring, dirfd, "store", "api", RING_OBSERVER, why, sizeof(why)) == 0) {
                if (ring_stats(ring, &rs) == 0)
                        drops = rs.drops;
                ring_close(ring);
        }
        close(c.fd);
        free(c.buf);
        stop_children();
        if (l.n == 0)
                fatalx(EXIT_TEMPORARY, "no event reached the WebSocket client in %.1f s", o->seconds);
        qsort(l.v, l.n, sizeof(*l.v), cmp_i64);
        if (o->json) {
                bench_json_head(stdout, "apibench");
                printf("\"mode\":\"ws_latency\",\"rate\":%u,\"seconds\":%.1f,\"events\":%zu,\"events_per_s\":%.0f,"
                       "\"p50_ms\":%.2f,\"p99_ms\":%.2f,\"p999_ms\":%.2f,\"max_ms\":%.2f,\"skipped\":%" PRIu64
                       ",\"store_api_drops\":%" PRIu64 ",\"api_deliver_p50_ms\":%.3f,\"api_deliver_p99_ms\":%.3f,"
                       "\"load_before\":\"%s\",\"load_after\":\"%s\",\"ringflowd_flags\":%d}\n",
                       o->rate, o->seconds, l.n, (double)l.n / o->seconds, q_ms(&l, 0.5), q_ms(&l, 0.99),
                       q_ms(&l, 0.999), q_ms(&l, 1.0), l.skipped, drops, (double)deliver_p50 / 1e6,
                       (double)deliver_p99 / 1e6, load0, load1, o->nextra);
        } else {
                printf("ringflow-gen --rate %u --now | ringflowd", o->rate);
                for (int i = 0; i < o->nextra; i++)
                        printf(" %s", o->extra[i]);
                printf(", WebSocket /ws/events, %.1f s after %.1f s warm-up (load %s -> %s)\n", o->seconds,
                       o->warmup, load0, load1);
                printf("  events received: %zu (%.0f/s), lagged-skipped: %" PRIu64 ", store-api ring drops: %" PRIu64
                       "\n", l.n, (double)l.n / o->seconds, l.skipped, drops);
                printf("  receive -> WebSocket client (\"received\" is epoch ms: figures are 0-1 ms high): "
                       "p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms\n",
                       q_ms(&l, 0.5), q_ms(&l, 0.99), q_ms(&l, 0.999), q_ms(&l, 1.0));
                printf("  api deliver_ns histogram (receive -> client queue, log2 buckets, %" PRIu64
                       " samples incl. warm-up): p50 <= %.3f ms, p99 <= %.3f ms\n", deliver_n,
                       (double)deliver_p50 / 1e6, (double)deliver_p99 / 1e6);
        }
        free(l.v);
        return 0;
}
