/* SPDX-License-Identifier: MIT */
/* test_chaos.c: a million generated events through ringflowd while stages and ringflowd itself are SIGKILLed at random. */
#include "autoconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "gen_events.h"
#include "instance.h"
#include "stats.h"
#include "why.h"

/*
 * The chaos test. A writer child pipes --events generated NDJSON
 * lines (--invalid-ratio of them invalid) into ringflowd --exit-on-eof
 * running ingest, process and store, while this program SIGKILLs a random
 * stage at random moments, --kills times, one of them ringflowd itself
 * (restarted here on the same pipe: its stages die with it and the new one
 * adopts the rings). Then, from the SQLite files:
 *   - every valid line's id is stored exactly once, and no other id
 *     (the sets are compared, not only the counts);
 *   - the rejects are the generator's invalid lines, each stored once (the
 *     multisets are compared byte for byte: a line without an id has
 *     nothing for the store to deduplicate it by);
 *   - the window results equal those of the same input run without kills.
 * Exit 0 pass, 1 fail, 77 skipped (a stage binary is not built: until the
 * process stage lands, --stand-in-process runs a pass-through stand-in,
 * which makes no windows, so that part is then skipped).
 */

#define PIPE_BYTES (1 << 20)
#define KILL_GAP_MIN_MS 20
#define KILL_GAP_MAX_MS 200
#define RUN_TIMEOUT_NS (600 * NSEC_PER_SEC)     /* one pipeline run, kills included */
#define DEATH_WAIT_NS (10 * NSEC_PER_SEC)       /* stages of a killed ringflowd to die */
#define ARGS_MAX 40
#define WINDOW_CONF \
        "[window chaos_per_minute]\n" \
        "kind = tumbling\n" \
        "size = 60s\n" \
        "group_by = type\n" \
        "aggregates = count, sum(data.amount)\n"

struct opts {
        uint64_t events;
        unsigned kills;
        uint64_t seed;
        double invalid_ratio;
        int stand_in;
        int keep;
};

struct run {
        char instance[INSTANCE_NAME_MAX + 1];
        char data_dir[PATH_MAX];
        char stage_dir[PATH_MAX + 16];
        char conf[PATH_MAX + 16];
        unsigned kills[4];              /* ingest, process, store, ringflowd */
};

/* Strings collected from the store or the generator, sorted to compare as sets. */
struct strs {
        char **v;
        size_t *len;
        size_t n, cap;
};

static char builddir[PATH_MAX];
static uint64_t rng_state;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die(const char *fmt, ...)
{
        va_list ap;

        fprintf(stderr, "test_chaos: FAIL: ");
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        exit(1);
}

static uint64_t rnd(void)
{
        /* xorshift64*: reproducible from --seed. */
        rng_state ^= rng_state >> 12;
        rng_state ^= rng_state << 25;
        rng_state ^= rng_state >> 27;
        return rng_state * 2685821657736338717ULL;
}

static void strs_add(struct strs *s, const void *p, size_t len)
{
        if (s->n == s->cap) {
                s->cap = s->cap ? s->cap * 2 : 4096;
                s->v = realloc(s->v, s->cap * sizeof(*s->v));
                s->len = realloc(s->len, s->cap * sizeof(*s->len));
                if (s->v == NULL || s->len == NULL)
                        die("out of memory");
        }
        s->v[s->n] = malloc(len + 1);
        if (s->v[s->n] == NULL)
                die("out of memory");
        memcpy(s->v[s->n], p, len);
        s->v[s->n][len] = '\0';
        s->len[s->n] = len;
        s->n++;
}

static int cmp_idx(const void *a, const void *b, void *ctx)
{
        const struct strs *s = ctx;
        size_t i = *(const size_t *)a, j = *(const size_t *)b;
        size_t li = s->len[i], lj = s->len[j];
        int c = memcmp(s->v[i], s->v[j], li < lj ? li : lj);

        return c != 0 ? c : (li > lj) - (li < lj);
}

/* Sorts s by bytes (binary-safe: rejects may hold NULs). */
static void strs_sort(struct strs *s)
{
        size_t *idx = malloc((s->n ? s->n : 1) * sizeof(*idx));
        char **v = malloc((s->n ? s->n : 1) * sizeof(*v));
        size_t *len = malloc((s->n ? s->n : 1) * sizeof(*len));

        if (idx == NULL || v == NULL || len == NULL)
                die("out of memory");
        for (size_t i = 0; i < s->n; i++)
                idx[i] = i;
        qsort_r(idx, s->n, sizeof(*idx), cmp_idx, s);
        for (size_t i = 0; i < s->n; i++) {
                v[i] = s->v[idx[i]];
                len[i] = s->len[idx[i]];
        }
        free(s->v);
        free(s->len);
        free(idx);
        s->v = v;
        s->len = len;
}

static int strs_cmp(const struct strs *a, size_t i, const struct strs *b, size_t j)
{
        size_t la = a->len[i], lb = b->len[j];
        int c = memcmp(a->v[i], b->v[j], la < lb ? la : lb);

        return c != 0 ? c : (la > lb) - (la < lb);
}

static void strs_free(struct strs *s)
{
        for (size_t i = 0; i < s->n; i++)
                free(s->v[i]);
        free(s->v);
        free(s->len);
        memset(s, 0, sizeof(*s));
}

/* ---- the input ---- */

static void gen_start(struct gen *g, const struct opts *o)
{
        struct gen_opts go;

        gen_opts_default(&go);
        go.seed = o->seed;
        go.invalid_ratio = o->invalid_ratio;
        if (gen_init(g, &go) != 0)
                die("gen_init: bad options");
}

/* Line i's event time: one millisecond apart, as ringflow-gen unpaced. */
static int64_t line_ts(uint64_t i)
{
        return GEN_START_MS_DEFAULT + (int64_t)i;
}

/* What the store must hold: the valid lines' ids and the invalid lines (without their newline). */
static void expected(const struct opts *o, struct strs *ids, struct strs *bad)
{
        char line[GEN_LINE_MAX];
        struct gen g;

        gen_start(&g, o);
        for (uint64_t i = 0; i < o->events; i++) {
                enum gen_kind kind;
                uint64_t number = g.lines;
                size_t len = gen_line(&g, line_ts(i), line, &kind);
                char id[64];
                int n;

                while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                        len--;
                if (kind != GEN_VALID) {
                        strs_add(bad, line, len);
                        continue;
                }
                /* gen_events.h: "<prefix>-<12 hex digits of the line number>". */
                n = snprintf(id, sizeof(id), "%s%012llx", g.id_prefix, (unsigned long long)number);
                if (memmem(line, len, id, (size_t)n) == NULL)
                        die("generated line %llu does not hold the id %s", (unsigned long long)i, id);
                strs_add(ids, id, (size_t)n);
        }
}

/* A child that writes the generated lines into fd and exits 0. */
static pid_t writer_start(int fd, const struct opts *o)
{
        pid_t pid = fork();

        if (pid < 0)
                die("fork: %s", strerror(errno));
        if (pid == 0) {
                static char buf[1 << 20];
                size_t used = 0;
                struct gen g;

                prctl(PR_SET_PDEATHSIG, SIGKILL);
                gen_start(&g, o);
                for (uint64_t i = 0; i < o->events; i++) {
                        used += gen_line(&g, line_ts(i), buf + used, NULL);
                        if (used + GEN_LINE_MAX > sizeof(buf) || i + 1 == o->events) {
                                for (size_t off = 0; off < used;) {
                                        ssize_t w = write(fd, buf + off, used - off);

                                        if (w < 0 && errno == EINTR)
                                                continue;
                                        if (w <= 0)
                                                _exit(2);
                                        off += (size_t)w;
                                }
                                used = 0;
                        }
                }
                _exit(0);
        }
        return pid;
}

/* ---- ringflowd ---- */

static pid_t ringflowd_start(const struct run *r, int in, const struct opts *o)
{
        char bin[PATH_MAX + 64];
        const char *argv[ARGS_MAX];
        int argc = 0;
        pid_t pid;

        snprintf(bin, sizeof(bin), "%s/stages/supervise/ringflowd", builddir);
        argv[argc++] = bin;
        argv[argc++] = "--instance";
        argv[argc++] = r->instance;
        argv[argc++] = "--data-dir";
        argv[argc++] = r->data_dir;
        argv[argc++] = "--stages";
        argv[argc++] = "ingest, process, store";
        argv[argc++] = "--exit-on-eof";
        /* The events are of 2022: the default retention would delete them as they land. */
        argv[argc++] = "--retention";
        argv[argc++] = "0";
        /* Twenty kills must not add up to minutes of backoff. */
        argv[argc++] = "--restart-max";
        argv[argc++] = "1s";
        argv[argc++] = "--log-level";
        argv[argc++] = "warning";
        if (o->stand_in) {
                argv[argc++] = "--stage-dir";
                argv[argc++] = r->stage_dir;
        } else {
                argv[argc++] = "--config";
                argv[argc++] = r->conf;
        }
        argv[argc] = NULL;
        pid = fork();
        if (pid < 0)
                die("fork: %s", strerror(errno));
        if (pid == 0) {
                if (dup2(in, STDIN_FILENO) < 0)
                        _exit(126);
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                signal(SIGPIPE, SIG_DFL);
                if (o->stand_in)
                        setenv("STUB_MODE", "process=pass", 1);
                execv(bin, (char *const *)(uintptr_t)argv);
                _exit(127);
        }
        return pid;
}

static int wait_status(pid_t pid, int64_t timeout_ns)
{
        int64_t dl = clock_mono_ns() + timeout_ns;
        struct timespec ms = { 0, 5 * NSEC_PER_MSEC };
        int ws;

        for (;;) {
                pid_t got = waitpid(pid, &ws, WNOHANG);

                if (got == pid)
                        return WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
                if (got < 0)
                        die("waitpid: %s", strerror(errno));
                if (clock_mono_ns() > dl) {
                        kill(pid, SIGKILL);
                        waitpid(pid, NULL, 0);
                        return -1;
                }
                nanosleep(&ms, NULL);
        }
}

static uint64_t sv_value(int dirfd, const char *name)
{
        struct stats_snapshot snap;
        const struct stats_value *v;
        char why[WHY_MAX];
        uint64_t x = 0;

        if (stats_read(dirfd, "supervise", &snap, why, sizeof(why)) != 0)
                return 0;
        v = stats_find(&snap, name);
        if (v != NULL)
                x = v->value;
        stats_snapshot_free(&snap);
        return x;
}

static bool pid_dead(pid_t pid)
{
        char path[64], buf[512];
        ssize_t n;
        char *rp;
        int fd;

        snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return true;
        n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return true;
        buf[n] = '\0';
        rp = strrchr(buf, ')');
        return rp != NULL && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

static void sleep_ms(unsigned ms)
{
        struct timespec ts = { ms / 1000, (long)(ms % 1000) * NSEC_PER_MSEC };

        nanosleep(&ts, NULL);
}

/*
 * One pipeline run over the whole input, with kills SIGKILLs spread at
 * random gaps. Returns once ringflowd exited 0 at the end of input.
 */
static void run_pipeline(struct run *r, const struct opts *o, unsigned kills)
{
        static const char *const stages[3] = { "ingest", "process", "store" };
        char why[WHY_MAX];
        int64_t t0 = clock_mono_ns();
        int fds[2], dirfd, status;
        unsigned done = 0, sv_kill_at = kills / 2;
        pid_t sv, writer;

        dirfd = instance_open(r->instance, 1, why, sizeof(why));
        if (dirfd < 0)
                die("%s", why);
        if (pipe2(fds, O_CLOEXEC) != 0)
                die("pipe: %s", strerror(errno));
        fcntl(fds[1], F_SETPIPE_SZ, PIPE_BYTES);
        writer = writer_start(fds[1], o);
        close(fds[1]);
        /* The read end stays open here: a restarted ringflowd is handed the same pipe. */
        sv = ringflowd_start(r, fds[0], o);

        while (done < kills) {
                pid_t victim = 0;
                int which;

                sleep_ms(KILL_GAP_MIN_MS + (unsigned)(rnd() % (KILL_GAP_MAX_MS - KILL_GAP_MIN_MS)));
                if (waitpid(sv, &status, WNOHANG) == sv)
                        die("ringflowd exited (wait status %#x) after %u of %u kills: the input ran out "
                            "first (raise --events) or it failed", (unsigned)status, done, kills);
                if (done == sv_kill_at) {
                        pid_t pids[3];

                        for (int i = 0; i < 3; i++) {
                                char name[64];

                                snprintf(name, sizeof(name), "%s.pid", stages[i]);
                                pids[i] = (pid_t)sv_value(dirfd, name);
                        }
                        kill(sv, SIGKILL);
                        if (wait_status(sv, DEATH_WAIT_NS) != 128 + SIGKILL)
                                die("ringflowd did not die of SIGKILL");
                        for (int i = 0; i < 3; i++) {
                                int64_t dl = clock_mono_ns() + DEATH_WAIT_NS;

                                while (pids[i] > 0 && !pid_dead(pids[i])) {
                                        if (clock_mono_ns() > dl)
                                                die("%s (pid %ld) outlived its supervisor", stages[i],
                                                    (long)pids[i]);
                                        sleep_ms(1);
                                }
                        }
                        r->kills[3]++;
                        done++;
                        sv = ringflowd_start(r, fds[0], o);
                        continue;
                }
                which = (int)(rnd() % 3);
                for (int tries = 0; tries < 3; tries++) {
                        char name[64];

                        snprintf(name, sizeof(name), "%s.pid", stages[which]);
                        victim = (pid_t)sv_value(dirfd, name);
                        if (victim != 0)
                                break;
                        which = (which + 1) % 3;        /* that one is restarting: another */
                }
                if (victim == 0)
                        continue;       /* all three restarting: try again after the next gap */
                if (kill(victim, SIGKILL) == 0) {
                        r->kills[which]++;
                        done++;
                }
        }
        status = wait_status(sv, RUN_TIMEOUT_NS);
        if (status != 0)
                die("ringflowd exited %d at the end of input (want 0)", status);
        status = wait_status(writer, DEATH_WAIT_NS);
        if (status != 0)
                die("the writer exited %d: not all input was read", status);
        close(fds[0]);
        close(dirfd);
        printf("test_chaos: %s: %llu lines in %.1f s with %u kills (ingest %u, process %u, store %u, "
               "ringflowd %u)\n", r->instance, (unsigned long long)o->events,
               (double)(clock_mono_ns() - t0) / NSEC_PER_SEC, done, r->kills[0], r->kills[1],
               r->kills[2], r->kills[3]);
}

/* ---- what the store holds ---- */

static void query_all(const struct run *r, const char *sql, struct strs *out)
{
        struct dirent *de;
        DIR *d = opendir(r->data_dir);

        if (d == NULL)
                die("%s: %s", r->data_dir, strerror(errno));
        while ((de = readdir(d)) != NULL) {
                char path[PATH_MAX * 2];
                sqlite3_stmt *st = NULL;
                sqlite3 *db = NULL;
                size_t l = strlen(de->d_name);
                int rc;

                if (strncmp(de->d_name, "events-", 7) != 0 || l < 3 || strcmp(de->d_name + l - 3, ".db") != 0)
                        continue;
                snprintf(path, sizeof(path), "%s/%s", r->data_dir, de->d_name);
                if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
                        die("%s: %s", path, sqlite3_errmsg(db));
                if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
                        die("%s: %s: %s", path, sql, sqlite3_errmsg(db));
                while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                        const void *p = sqlite3_column_blob(st, 0);
                        size_t len = (size_t)sqlite3_column_bytes(st, 0);

                        strs_add(out, p != NULL ? p : "", len);
                }
                if (rc != SQLITE_DONE)
                        die("%s: %s: %s", path, sql, sqlite3_errmsg(db));
                sqlite3_finalize(st);
                sqlite3_close(db);
        }
        closedir(d);
}

/*
 * Fails unless got holds exactly want (both sorted), naming the first
 * difference. Compared as multisets: what want holds twice, got must hold
 * twice; unique also fails on an entry got holds twice.
 */
static void compare_sets(const char *what, const struct strs *want, const struct strs *got, int unique)
{
        size_t i = 0, j = 0;

        for (size_t k = 1; unique && k < got->n; k++)
                if (strs_cmp(got, k - 1, got, k) == 0)
                        die("%s: \"%.80s\" is stored twice", what, got->v[k]);
        while (i < want->n && j < got->n) {
                int c = strs_cmp(want, i, got, j);

                if (c < 0)
                        die("%s: \"%.80s\" is missing (%zu wanted, %zu stored)", what, want->v[i],
                            want->n, got->n);
                if (c > 0)
                        die("%s: \"%.80s\" is stored %s (%zu wanted, %zu stored)", what, got->v[j],
                            j > 0 && strs_cmp(got, j - 1, got, j) == 0 ? "more often than it was sent"
                                                                     : "but was never sent",
                            want->n, got->n);
                i++;
                j++;
        }
        if (i < want->n)
                die("%s: \"%.80s\" is missing (%zu wanted, %zu stored)", what, want->v[i], want->n, got->n);
        if (j < got->n)
                die("%s: \"%.80s\" is stored %s (%zu wanted, %zu stored)", what, got->v[j],
                    j > 0 && strs_cmp(got, j - 1, got, j) == 0 ? "more often than it was sent"
                                                             : "but was never sent",
                    want->n, got->n);
}

/* The runs made so far: removed at exit, also after a failure (--keep keeps them to look at). */
static struct run *runs_made[2];
static const struct opts *runs_opts;

static void run_fini(struct run *r, const struct opts *o);

static void runs_remove(void)
{
        for (size_t i = 0; i < sizeof(runs_made) / sizeof(runs_made[0]); i++)
                if (runs_made[i] != NULL)
                        run_fini(runs_made[i], runs_opts);
}

static void run_init(struct run *r, const struct opts *o, const char *tag)
{
        const char *tmp = getenv("TMPDIR");
        FILE *f;

        memset(r, 0, sizeof(*r));
        snprintf(r->instance, sizeof(r->instance), "chaos-%ld-%s", (long)getpid(), tag);
        instance_remove(r->instance);
        snprintf(r->data_dir, sizeof(r->data_dir), "%s/ringflow-chaos-%s-XXXXXX", tmp ? tmp : "/tmp", tag);
        if (mkdtemp(r->data_dir) == NULL)
                die("mkdtemp: %s", strerror(errno));
        for (size_t i = 0; i < sizeof(runs_made) / sizeof(runs_made[0]); i++)
                if (runs_made[i] == NULL || runs_made[i] == r) {
                        runs_made[i] = r;
                        break;
                }
        runs_opts = o;
        snprintf(r->conf, sizeof(r->conf), "%s/ringflow.conf", r->data_dir);
        f = fopen(r->conf, "we");
        if (f == NULL || fputs(WINDOW_CONF, f) < 0 || fclose(f) != 0)
                die("%s: cannot write", r->conf);
        if (o->stand_in) {
                static const char *const real[] = { "ingest", "store" };
                char target[PATH_MAX * 2], link[PATH_MAX * 2];

                snprintf(r->stage_dir, sizeof(r->stage_dir), "%s/stages", r->data_dir);
                if (mkdir(r->stage_dir, 0700) != 0)
                        die("mkdir %s: %s", r->stage_dir, strerror(errno));
                for (int i = 0; i < 2; i++) {
                        snprintf(target, sizeof(target), "%s/stages/%s/ringflow-%s", builddir, real[i],
                                 real[i]);
                        snprintf(link, sizeof(link), "%s/ringflow-%s", r->stage_dir, real[i]);
                        if (symlink(target, link) != 0)
                                die("symlink %s: %s", link, strerror(errno));
                }
                snprintf(target, sizeof(target), "%s/tests/integration/stage-stub", builddir);
                snprintf(link, sizeof(link), "%s/ringflow-process", r->stage_dir);
                if (symlink(target, link) != 0)
                        die("symlink %s: %s", link, strerror(errno));
        }
}

static void rm_tree(const char *dir)
{
        struct dirent *de;
        DIR *d = opendir(dir);

        if (d == NULL)
                return;
        while ((de = readdir(d)) != NULL) {
                char path[PATH_MAX * 2];
                struct stat sb;

                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
                        continue;
                snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
                if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
                        rm_tree(path);
                else
                        unlink(path);
        }
        closedir(d);
        rmdir(dir);
}

static void run_fini(struct run *r, const struct opts *o)
{
        if (r->data_dir[0] == '\0')
                return;         /* removed (or reported kept) already */
        if (o->keep) {
                printf("test_chaos: kept instance %s and %s\n", r->instance, r->data_dir);
                r->data_dir[0] = '\0';
                return;
        }
        instance_remove(r->instance);
        rm_tree(r->data_dir);
        r->data_dir[0] = '\0';
}

static void usage(FILE *f)
{
        fprintf(f, "usage: test_chaos [--events N] [--kills K] [--seed S] [--invalid-ratio F]\n"
                   "                  [--stand-in-process] [--keep]\n"
                   "Pipes N generated events (default 1000000) through ringflowd while SIGKILLing a\n"
                   "random stage K times (default 20, one of them ringflowd itself), then checks the\n"
                   "store. Needs RINGFLOW_BUILDDIR; exits 77 when a stage is not built.\n");
}

static void parse(int argc, char **argv, struct opts *o)
{
        static const struct option lo[] = {
                { "events", required_argument, NULL, 'n' }, { "kills", required_argument, NULL, 'k' },
                { "seed", required_argument, NULL, 's' }, { "invalid-ratio", required_argument, NULL, 'i' },
                { "stand-in-process", no_argument, NULL, 'p' }, { "keep", no_argument, NULL, 'K' },
                { "help", no_argument, NULL, 'h' }, { NULL, 0, NULL, 0 },
        };
        int c;

        *o = (struct opts){ .events = 1000000, .kills = 20, .seed = 42, .invalid_ratio = 0.01 };
        while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
                switch (c) {
                case 'n': o->events = strtoull(optarg, NULL, 10); break;
                case 'k': o->kills = (unsigned)strtoul(optarg, NULL, 10); break;
                case 's': o->seed = strtoull(optarg, NULL, 10); break;
                case 'i': o->invalid_ratio = strtod(optarg, NULL); break;
                case 'p': o->stand_in = 1; break;
                case 'K': o->keep = 1; break;
                case 'h': usage(stdout); exit(0);
                default: usage(stderr); exit(1);
                }
        }
        if (o->events == 0 || o->kills == 0)
                die("--events and --kills must be above 0");
}

int main(int argc, char **argv)
{
        static const char *const bins[] = { "supervise/ringflowd", "ingest/ringflow-ingest",
                                            "store/ringflow-store", "process/ringflow-process" };
        struct strs want_ids = { 0 }, want_bad = { 0 }, ids = { 0 }, bad = { 0 };
        const char *dir = getenv("RINGFLOW_BUILDDIR");
        static struct run a, b;        /* static: runs_remove reaches them after main returns */
        struct opts o;

        parse(argc, argv, &o);
        if (dir == NULL || dir[0] == '\0') {
                printf("test_chaos: SKIP: RINGFLOW_BUILDDIR is not set: run through `make check`\n");
                return 77;
        }
        snprintf(builddir, sizeof(builddir), "%s", dir);
        for (size_t i = 0; i < sizeof(bins) / sizeof(bins[0]); i++) {
                char path[PATH_MAX * 2];

                snprintf(path, sizeof(path), "%s/stages/%s", builddir, bins[i]);
                if (access(path, X_OK) == 0)
                        continue;
                if (i == 3 && o.stand_in)
                        continue;
                printf("test_chaos: SKIP: %s is not built (the whole pipeline is needed; "
                       "--stand-in-process runs a pass-through in place of the process stage)\n", path);
                return 77;
        }
        signal(SIGPIPE, SIG_IGN);
        atexit(runs_remove);
        rng_state = o.seed * 0x9E3779B97F4A7C15ULL + 1;

        expected(&o, &want_ids, &want_bad);
        strs_sort(&want_ids);
        strs_sort(&want_bad);

        run_init(&a, &o, "kills");
        run_pipeline(&a, &o, o.kills);
        query_all(&a, "SELECT id FROM events", &ids);
        strs_sort(&ids);
        compare_sets("events", &want_ids, &ids, 1);
        query_all(&a, "SELECT raw FROM rejects", &bad);
        for (size_t i = 0; i < bad.n; i++)
                while (bad.len[i] > 0 && (bad.v[i][bad.len[i] - 1] == '\n' || bad.v[i][bad.len[i] - 1] == '\r'))
                        bad.len[i]--;
        strs_sort(&bad);
        compare_sets("rejects", &want_bad, &bad, 0);
        printf("test_chaos: %zu events stored exactly once; %zu rejects are the invalid lines, "
               "each stored once\n", ids.n, bad.n);

        if (o.stand_in) {
                printf("test_chaos: window results not compared: the stand-in process makes none\n");
        } else {
                struct strs wa = { 0 }, wb = { 0 };
                static const char wsql[] = "SELECT name || '|' || key || '|' || start || '|' || \"end\" "
                                           "|| '|' || count || '|' || aggregates FROM windows";

                run_init(&b, &o, "calm");
                run_pipeline(&b, &o, 0);
                query_all(&a, wsql, &wa);
                query_all(&b, wsql, &wb);
                strs_sort(&wa);
                strs_sort(&wb);
                if (wb.n == 0)
                        die("the run without kills stored no window results");
                compare_sets("window results (with kills, against without)", &wb, &wa, 1);
                printf("test_chaos: %zu window results equal those of a run without kills\n", wa.n);
                strs_free(&wa);
                strs_free(&wb);
                run_fini(&b, &o);
        }
        run_fini(&a, &o);
        strs_free(&want_ids);
        strs_free(&want_bad);
        strs_free(&ids);
        strs_free(&bad);
        printf("test_chaos: PASS\n");
        return 0;
}
