/* SPDX-License-Identifier: MIT */
/* ringdemo.c: feeds a demo instance's gen->sink ring at a set rate until stopped, for ringstat to watch. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "instance.h"
#include "log.h"
#include "ring.h"
#include "units.h"
#include "why.h"

/*
 * The parent owns the instance and two children, one per end of the ring,
 * so each end shows up in ringstat as its own live pid with its own
 * heartbeat, as a real pipeline's stages would. Both children work in time
 * slices: do what the rate allows for the slice, then sleep until the next
 * one, so a demo at a modest rate costs a few percent of a CPU.
 */

#define DEMO_PRODUCER "gen"
#define DEMO_CONSUMER "sink"
#define DEMO_RING_FILE DEMO_PRODUCER "-" DEMO_CONSUMER ".ring"

#define DEFAULT_RATE 10000u
#define DEFAULT_CAPACITY (1u << 20)
#define MAX_RATE 10000000u
#define DEMO_TYPE 1u                    /* the application's first record type */
#define DEMO_RECORD_MAX 256u            /* a formatted record always fits */
#define DEMO_BATCH 256u                 /* records per publish / per ring_done */
#define SLICE_NS (10 * NSEC_PER_MSEC)
#define WAIT_SPIN_NS (20 * NSEC_PER_USEC)
#define WAIT_TIMEOUT_NS (100 * NSEC_PER_MSEC)  /* bounds how late a stop is noticed */
#define BACKLOG_MAX_NS NSEC_PER_SEC     /* a producer held up longer drops the backlog */
#define STOP_GRACE_NS (2 * NSEC_PER_SEC)

struct demo_cfg {
        const char *instance;
        uint64_t capacity;
        int capacity_set;
        unsigned rate;
        unsigned consumer_rate;         /* 0: as fast as records come */
        int remove;
        int drain;                      /* only consume an existing ring (--drain) */
        char producer[RING_NAME_MAX + 1];
        char consumer[RING_NAME_MAX + 1];
        char ring_file[2 * RING_NAME_MAX + 8];
};

static volatile sig_atomic_t demo_stop;

static void on_stop_signal(int sig)
{
        (void)sig;
        demo_stop = 1;
}

static void usage(FILE *f)
{
        fprintf(f,
"usage: ringdemo [--instance NAME] [--rate R] [--capacity BYTES]\n"
"                [--consumer-rate R] [--remove]\n"
"       ringdemo --drain PRODUCER-CONSUMER [--instance NAME] [--consumer-rate R]\n"
"Creates the instance and its ring gen->sink (or reuses a valid one), then\n"
"runs a producer that publishes synthetic JSON records at R records/s and\n"
"a consumer that drains them, optionally slower, until SIGINT or SIGTERM.\n"
"Watch it with: ringstat --instance NAME -w 1\n"
"\n"
"  --instance NAME       instance to feed (default %s)\n"
"  --rate R              records per second produced (default %u)\n"
"  --capacity BYTES      ring size for a new ring, a power of two, K/M/G\n"
"                        suffixes (default 1M; an existing ring keeps its own)\n"
"  --consumer-rate R     records per second consumed (default: all of them);\n"
"                        below --rate the ring fills, then the producer waits\n"
"  --remove              remove the ring and an emptied instance at exit\n"
"                        (default: leave them for ringstat)\n"
"  --drain P-C           only consume the existing ring P->C (any records),\n"
"                        standing in for a stage that is not running\n"
"  --help, --version\n"
"\n"
"Exit status: 0 stopped by a signal, 100 bad usage or an unusable existing\n"
"ring, 111 a temporary failure (the ring is busy, a child died).\n",
                INSTANCE_DEFAULT, DEFAULT_RATE);
}

/*
 * A token bucket in units of ns x records/s, so no fraction of a record is
 * lost between slices. cap_ns bounds the credit an idle or blocked side can
 * save up, so it never bursts far above its rate afterwards.
 */
struct pacer {
        uint64_t rate;
        int64_t last_ns;
        int64_t credit;                 /* records x NSEC_PER_SEC */
        int64_t cap;
};

static void pacer_init(struct pacer *p, uint64_t rate, int64_t cap_ns, int64_t now)
{
        p->rate = rate;
        p->last_ns = now;
        p->credit = 0;
        p->cap = cap_ns * (int64_t)rate;
        /* At very low rates a slice earns a fraction of a record: let one accumulate. */
        if (p->cap < NSEC_PER_SEC)
                p->cap = NSEC_PER_SEC;
}

/* Records the rate allows now. */
static uint64_t pacer_due(struct pacer *p, int64_t now)
{
        int64_t elapsed = now - p->last_ns;

        /* Clamp before multiplying: after a long SIGSTOP the product would overflow. */
        if (elapsed > BACKLOG_MAX_NS)
                elapsed = BACKLOG_MAX_NS;
        if (elapsed > 0)
                p->credit += elapsed * (int64_t)p->rate;
        p->last_ns = now;
        if (p->credit > p->cap)
                p->credit = p->cap;
        return p->credit > 0 ? (uint64_t)(p->credit / NSEC_PER_SEC) : 0;
}

static void pacer_take(struct pacer *p, uint64_t n)
{
        p->credit -= (int64_t)n * NSEC_PER_SEC;
}

/* Sleeps until the absolute monotonic time t; a stop signal cuts it short. */
static void sleep_until(int64_t t)
{
        struct timespec ts = { .tv_sec = t / NSEC_PER_SEC, .tv_nsec = t % NSEC_PER_SEC };

        clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
}

/* xorshift64: cheap variety for the synthetic records, no libc state. */
static uint64_t next_rand(uint64_t *s)
{
        *s ^= *s << 13;
        *s ^= *s >> 7;
        *s ^= *s << 17;
        return *s;
}

/* Writes one event-shaped JSON record into buf; returns its length. */
static uint32_t format_record(char *buf, uint64_t seq, uint64_t *rnd)
{
        static const char *const types[] = { "page_view", "click", "purchase", "login" };
        static const char *const sources[] = { "web_app", "mobile_app", "api" };
        uint64_t x = next_rand(rnd);
        int n;

        n = snprintf(buf, DEMO_RECORD_MAX,
                     "{\"id\":\"demo-%" PRIu64 "\",\"timestamp\":%" PRId64 ",\"type\":\"%s\","
                     "\"source\":\"%s\",\"data\":{\"user_id\":\"u%" PRIu64 "\","
                     "\"amount\":%" PRIu64 ".%02" PRIu64 ",\"latency_ms\":%" PRIu64 "}}",
                     seq, (int64_t)(clock_real_ns() / NSEC_PER_MSEC), types[x & 3], sources[(x >> 2) % 3],
                     (x >> 8) % 1000, (x >> 20) % 500, (x >> 32) % 100, (x >> 40) % 250);
        /* snprintf's result is the untruncated length; never commit more than was written. */
        if (n < 0)
                return 0;
        return (uint32_t)n < DEMO_RECORD_MAX ? (uint32_t)n : DEMO_RECORD_MAX - 1;
}

static struct ring *attach_or_exit(int dirfd, const struct demo_cfg *cfg, enum ring_role role,
                                   const char *who)
{
        struct ring *r;
        char why[WHY_MAX];
        int rc;

        rc = ring_attach(&r, dirfd, cfg->producer, cfg->consumer, role, why, sizeof(why));
        if (rc != 0)
                fatalx(EXIT_TEMPORARY, "%s: attaching to %s: %s", who, cfg->ring_file, why);
        return r;
}

/*
 * Producer: each slice publishes what the rate allows, in batches, then
 * sleeps. A full ring is backpressure: it waits, and a backlog older than
 * BACKLOG_MAX_NS is dropped from the schedule rather than burst out later.
 */
static int run_producer(int dirfd, const struct demo_cfg *cfg)
{
        struct ring *r = attach_or_exit(dirfd, cfg, RING_PRODUCER, "producer");
        uint64_t seq = 0, waits = 0, rnd = (uint64_t)clock_real_ns() | 1;
        struct pacer pc;
        int64_t next;
        int rc = 0;

        pacer_init(&pc, cfg->rate, BACKLOG_MAX_NS, clock_mono_ns());
        next = clock_mono_ns();
        while (!demo_stop && rc == 0) {
                uint64_t due = pacer_due(&pc, clock_mono_ns());
                unsigned batch = 0;

                while (due > 0 && !demo_stop) {
                        void *p;

                        rc = ring_reserve(r, DEMO_TYPE, DEMO_RECORD_MAX, &p);
                        if (rc == -EAGAIN) {
                                waits++;
                                rc = ring_wait_space(r, DEMO_RECORD_MAX, WAIT_SPIN_NS,
                                                     WAIT_TIMEOUT_NS);
                                ring_heartbeat(r);
                                if (rc == -ETIMEDOUT || rc == -EINTR)
                                        rc = 0;
                                /* The schedule moved on while we waited. */
                                due = pacer_due(&pc, clock_mono_ns());
                                continue;
                        }
                        if (rc != 0)
                                break;
                        ring_commit(r, format_record(p, seq, &rnd));
                        seq++;
                        due--;
                        pacer_take(&pc, 1);
                        if (++batch == DEMO_BATCH) {
                                ring_publish(r);
                                batch = 0;
                        }
                }
                if (rc != 0)
                        break;
                ring_publish(r);
                ring_heartbeat(r);
                next += SLICE_NS;
                if (next < clock_mono_ns())
                        next = clock_mono_ns();
                sleep_until(next);
        }
        if (rc != 0)
                log_warnx("producer: %s: %s", strerror(-rc), ring_why(r));
        ring_publish(r);
        log_info("producer: published %" PRIu64 " records, waited for space %" PRIu64 " times",
                 seq, waits);
        ring_close(r);
        return rc == 0 ? 0 : EXIT_TEMPORARY;
}

/* Consumes up to max records; returns how many, or -errno. */
static int consume_batch(struct ring *r, unsigned max, int check, uint64_t *bad)
{
        struct ring_rec recs[DEMO_BATCH];
        int n, rc;

        n = ring_peek_batch(r, recs, max < DEMO_BATCH ? max : DEMO_BATCH);
        if (n <= 0)
                return n;
        /* Draining another program's ring: its records are its own business. */
        for (int i = 0; check && i < n; i++) {
                const char *d = recs[i].data;

                /* A demo sink only looks, but a wrong record is worth saying once. */
                if (recs[i].type != DEMO_TYPE || recs[i].len < 2 || d[0] != '{' ||
                    d[recs[i].len - 1] != '}') {
                        if ((*bad)++ == 0)
                                log_warnx("consumer: unexpected record at position %" PRIu64
                                          " (type %u, %" PRIu32 " bytes)",
                                          recs[i].pos, recs[i].type, recs[i].len);
                }
        }
        rc = ring_done(r, recs[n - 1].next);
        return rc != 0 ? rc : n;
}

/*
 * Consumer: as fast as records come (waiting on the futex when the ring is
 * empty), or at consumer_rate in slices, so the ring's fill is visible.
 */
static int run_consumer(int dirfd, const struct demo_cfg *cfg)
{
        struct ring *r = attach_or_exit(dirfd, cfg, RING_CONSUMER, "consumer");
        uint64_t got = 0, bad = 0;
        struct pacer pc;
        int64_t next;
        int rc = 0;

        /* Two slices of credit at most: an empty ring must not bank a burst. */
        pacer_init(&pc, cfg->consumer_rate, 2 * SLICE_NS, clock_mono_ns());
        next = clock_mono_ns();
        while (!demo_stop && rc >= 0) {
                if (cfg->consumer_rate == 0) {
                        rc = consume_batch(r, DEMO_BATCH, !cfg->drain, &bad);
                        if (rc > 0)
                                got += (uint64_t)rc;
                        else if (rc == 0)
                                rc = ring_wait_data(r, WAIT_SPIN_NS, WAIT_TIMEOUT_NS);
                        if (rc == -ETIMEDOUT || rc == -EINTR)
                                rc = 0;
                        ring_heartbeat(r);
                        continue;
                }
                for (uint64_t due = pacer_due(&pc, clock_mono_ns()); due > 0 && !demo_stop;) {
                        rc = consume_batch(r, due < DEMO_BATCH ? (unsigned)due : DEMO_BATCH, !cfg->drain,
                                           &bad);
                        if (rc <= 0)
                                break;
                        got += (uint64_t)rc;
                        due -= (uint64_t)rc;
                        pacer_take(&pc, (uint64_t)rc);
                }
                if (rc < 0)
                        break;
                ring_heartbeat(r);
                next += SLICE_NS;
                if (next < clock_mono_ns())
                        next = clock_mono_ns();
                sleep_until(next);
        }
        if (rc < 0)
                log_warnx("consumer: %s: %s", strerror(-rc), ring_why(r));
        log_info("consumer: consumed %" PRIu64 " records%s", got,
                 bad ? " (some unexpected, see above)" : "");
        ring_close(r);
        return rc < 0 ? EXIT_TEMPORARY : 0;
}

/*
 * Creates the ring, or checks that an existing one is a ring we can use:
 * valid, and with neither end held by a live process.
 */
static void prepare_ring(int dirfd, struct demo_cfg *cfg)
{
        struct ring_stats st;
        struct ring *obs;
        char why[WHY_MAX];
        int rc;

        rc = ring_create(dirfd, cfg->producer, cfg->consumer, cfg->capacity, 0, why, sizeof(why));
        if (rc == 0)
                return;
        if (rc != -EEXIST)
                fatalx(rc == -EINVAL ? EXIT_PERMANENT : EXIT_TEMPORARY, "creating %s: %s",
                       cfg->ring_file, why);
        rc = ring_attach(&obs, dirfd, cfg->producer, cfg->consumer, RING_OBSERVER,
                         why, sizeof(why));
        if (rc != 0)
                fatalx(EXIT_PERMANENT, "existing %s in instance %s is not usable: %s "
                       "(remove it, or use another --instance)", cfg->ring_file,
                       cfg->instance, why);
        rc = ring_stats(obs, &st);
        if (rc != 0)
                fatalx(EXIT_PERMANENT, "existing %s in instance %s is not usable: %s",
                       cfg->ring_file, cfg->instance, ring_why(obs));
        ring_close(obs);
        if (st.prod.alive || st.cons.alive)
                fatalx(EXIT_TEMPORARY, "%s in instance %s is in use (producer pid %" PRId32
                       "%s, consumer pid %" PRId32 "%s): is another ringdemo running?",
                       cfg->ring_file, cfg->instance, st.prod.pid,
                       st.prod.alive ? " alive" : " gone", st.cons.pid,
                       st.cons.alive ? " alive" : " gone");
        if (cfg->capacity_set && st.capacity != cfg->capacity)
                log_warnx("reusing %s with its capacity of %" PRIu64 " bytes, not %" PRIu64,
                          cfg->ring_file, st.capacity, cfg->capacity);
        cfg->capacity = st.capacity;
}

/* Forks one end; the child unblocks the stop signals it handles itself. */
static pid_t spawn(int dirfd, const struct demo_cfg *cfg, int sfd, const sigset_t *old,
                   int (*body)(int, const struct demo_cfg *))
{
        pid_t parent = getpid();
        struct sigaction sa;
        pid_t pid;

        fflush(NULL);
        pid = fork();
        if (pid != 0)
                return pid;
        close(sfd);
        /* Handlers without SA_RESTART: a stop must cut a sleep or a futex wait short. */
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_stop_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        signal(SIGCHLD, SIG_DFL);
        /* If the parent dies without stopping us, stop anyway: nobody would. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
                _exit(0);
        sigprocmask(SIG_SETMASK, old, NULL);
        exit(body(dirfd, cfg));
}

static const char *child_name(pid_t pid, const pid_t kids[2])
{
        return pid == kids[0] ? "producer" : pid == kids[1] ? "consumer" : "child";
}

/* Reaps whatever exited; returns 1 when a child ended on its own (not stopping). */
static int reap(pid_t kids[2], int stopping)
{
        int unexpected = 0;
        int status;
        pid_t pid;

        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
                if (!stopping) {
                        unexpected = 1;
                        if (WIFSIGNALED(status))
                                log_warnx("%s (pid %ld) was killed by signal %d",
                                          child_name(pid, kids), (long)pid, WTERMSIG(status));
                        else
                                log_warnx("%s (pid %ld) exited with status %d",
                                          child_name(pid, kids), (long)pid, WEXITSTATUS(status));
                }
                for (int i = 0; i < 2; i++)
                        if (kids[i] == pid)
                                kids[i] = 0;
        }
        return unexpected;
}

/* Asks both children to stop, then kills whichever has not within the grace period. */
static void stop_children(pid_t kids[2], int sfd)
{
        int64_t deadline = clock_mono_ns() + STOP_GRACE_NS;
        struct signalfd_siginfo si;

        for (int i = 0; i < 2; i++)
                if (kids[i] > 0)
                        kill(kids[i], SIGTERM);
        reap(kids, 1);
        while (kids[0] > 0 || kids[1] > 0) {
                int64_t left = deadline - clock_mono_ns();
                struct pollfd pfd = { .fd = sfd, .events = POLLIN };

                if (left <= 0) {
                        for (int i = 0; i < 2; i++)
                                if (kids[i] > 0) {
                                        log_warnx("%s did not stop, killing it",
                                                  child_name(kids[i], kids));
                                        kill(kids[i], SIGKILL);
                                        waitpid(kids[i], NULL, 0);
                                        kids[i] = 0;
                                }
                        break;
                }
                if (poll(&pfd, 1, (int)(left / NSEC_PER_MSEC) + 1) > 0)
                        while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
                                ;
                reap(kids, 1);
        }
}

/* Removes our ring, then the instance directory if nothing else lives in it. */
static void remove_ring(int dirfd, const char *instance)
{
        char path[sizeof(INSTANCE_ROOT) + INSTANCE_NAME_MAX + 2];

        if (unlinkat(dirfd, DEMO_RING_FILE, 0) != 0 && errno != ENOENT)
                log_warn("removing %s", DEMO_RING_FILE);
        snprintf(path, sizeof(path), "%s/%s", INSTANCE_ROOT, instance);
        if (rmdir(path) == 0)
                log_info("removed ring %s and instance %s", DEMO_RING_FILE, instance);
        else if (errno == ENOTEMPTY || errno == EEXIST)
                log_info("removed ring %s; kept instance %s: it holds other files",
                         DEMO_RING_FILE, instance);
        else
                log_warn("removing %s", path);
}

enum { OPT_INSTANCE = 256, OPT_RATE, OPT_CAPACITY, OPT_CONSUMER_RATE, OPT_REMOVE, OPT_DRAIN,
       OPT_HELP, OPT_VERSION };

static const struct option long_opts[] = {
        { "instance", required_argument, NULL, OPT_INSTANCE },
        { "rate", required_argument, NULL, OPT_RATE },
        { "capacity", required_argument, NULL, OPT_CAPACITY },
        { "consumer-rate", required_argument, NULL, OPT_CONSUMER_RATE },
        { "remove", no_argument, NULL, OPT_REMOVE },
        { "drain", required_argument, NULL, OPT_DRAIN },
        { "help", no_argument, NULL, OPT_HELP },
        { "version", no_argument, NULL, OPT_VERSION },
        { NULL, 0, NULL, 0 },
};

static void parse_args(int argc, char **argv, struct demo_cfg *cfg)
{
        uint64_t v;
        int c;

        *cfg = (struct demo_cfg){
                .instance = INSTANCE_DEFAULT,
                .capacity = DEFAULT_CAPACITY,
                .rate = DEFAULT_RATE,
                .producer = DEMO_PRODUCER,
                .consumer = DEMO_CONSUMER,
        };
        while ((c = getopt_long(argc, argv, "", long_opts, NULL)) != -1) {
                switch (c) {
                case OPT_INSTANCE:
                        if (instance_name_check(optarg) != 0)
                                fatalx(EXIT_PERMANENT, "--instance %s: expected 1 to %d of "
                                       "[A-Za-z0-9_.-], not starting with '.'", optarg,
                                       INSTANCE_NAME_MAX);
                        cfg->instance = optarg;
                        break;
                case OPT_RATE:
                        if (units_parse_size(optarg, 1, MAX_RATE, &v) != 0)
                                fatalx(EXIT_PERMANENT, "--rate %s: expected 1 to %u records/s",
                                       optarg, MAX_RATE);
                        cfg->rate = (unsigned)v;
                        break;
                case OPT_CONSUMER_RATE:
                        if (units_parse_size(optarg, 0, MAX_RATE, &v) != 0)
                                fatalx(EXIT_PERMANENT, "--consumer-rate %s: expected 0 (no limit) "
                                       "to %u records/s", optarg, MAX_RATE);
                        cfg->consumer_rate = (unsigned)v;
                        break;
                case OPT_CAPACITY:
                        if (units_parse_size(optarg, RING_MIN_CAPACITY, RING_MAX_CAPACITY, &v) != 0 ||
                            (v & (v - 1)) != 0)
                                fatalx(EXIT_PERMANENT, "--capacity %s: expected a power of two "
                                       "from %u to %u bytes", optarg, RING_MIN_CAPACITY,
                                       RING_MAX_CAPACITY);
                        cfg->capacity = v;
                        cfg->capacity_set = 1;
                        break;
                case OPT_REMOVE:
                        cfg->remove = 1;
                        break;
                case OPT_DRAIN: {
                        char fname[2 * RING_NAME_MAX + 8];

                        snprintf(fname, sizeof(fname), "%s.ring", optarg);
                        if (strlen(optarg) > 2 * RING_NAME_MAX + 1 ||
                            ring_parse_filename(fname, cfg->producer, cfg->consumer) != 0)
                                fatalx(EXIT_PERMANENT, "--drain %s: expected PRODUCER-CONSUMER, "
                                       "e.g. ingest-process", optarg);
                        cfg->drain = 1;
                        break;
                }
                case OPT_HELP:
                        usage(stdout);
                        exit(0);
                case OPT_VERSION:
                        printf("ringdemo (%s) %s\n", PACKAGE_NAME, PACKAGE_VERSION);
                        exit(0);
                default:
                        usage(stderr);
                        exit(EXIT_PERMANENT);
                }
        }
        if (optind < argc)
                fatalx(EXIT_PERMANENT, "unexpected argument '%s' (see --help)", argv[optind]);
        if (cfg->drain && cfg->remove)
                fatalx(EXIT_PERMANENT, "--remove and --drain: a drained ring is not ours to remove");
        snprintf(cfg->ring_file, sizeof(cfg->ring_file), "%s-%s.ring", cfg->producer, cfg->consumer);
}

int main(int argc, char **argv)
{
        pid_t kids[2] = { 0, 0 };
        struct signalfd_siginfo si;
        struct demo_cfg cfg;
        sigset_t mask, old;
        char why[WHY_MAX];
        char consumer_rate[32];
        int dirfd, sfd, status = 0;

        log_init(argv[0]);
        parse_args(argc, argv, &cfg);

        /* Blocked before forking: a Ctrl-C during start-up waits in the signalfd. */
        sigemptyset(&mask);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGCHLD);
        if (sigprocmask(SIG_BLOCK, &mask, &old) != 0)
                fatal(EXIT_TEMPORARY, "sigprocmask");
        sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
        if (sfd < 0)
                fatal(EXIT_TEMPORARY, "signalfd");

        dirfd = instance_open(cfg.instance, !cfg.drain, why, sizeof(why));
        if (dirfd < 0)
                fatalx(dirfd == -EINVAL ? EXIT_PERMANENT : EXIT_TEMPORARY, "instance %s: %s",
                       cfg.instance, why);
        if (!cfg.drain) {
                prepare_ring(dirfd, &cfg);
                kids[0] = spawn(dirfd, &cfg, sfd, &old, run_producer);
                if (kids[0] < 0)
                        fatal(EXIT_TEMPORARY, "fork");
        }
        kids[1] = spawn(dirfd, &cfg, sfd, &old, run_consumer);
        if (kids[1] < 0) {
                log_warn("fork");
                stop_children(kids, sfd);
                return EXIT_TEMPORARY;
        }

        if (cfg.consumer_rate)
                snprintf(consumer_rate, sizeof(consumer_rate), "%u records/s", cfg.consumer_rate);
        else
                snprintf(consumer_rate, sizeof(consumer_rate), "all");
        if (cfg.drain)
                log_info("draining ring %s->%s of instance %s: consumer pid %ld taking %s; "
                         "stop: Ctrl-C or SIGTERM", cfg.producer, cfg.consumer, cfg.instance,
                         (long)kids[1], consumer_rate);
        else
                log_info("feeding instance %s: ring %s->%s (%" PRIu64 " bytes), producer pid %ld "
                         "at %u records/s, consumer pid %ld draining %s; watch: ringstat "
                         "--instance %s -w 1; stop: Ctrl-C or SIGTERM", cfg.instance,
                         cfg.producer, cfg.consumer, cfg.capacity, (long)kids[0], cfg.rate,
                         (long)kids[1], consumer_rate, cfg.instance);

        for (;;) {
                struct pollfd pfd = { .fd = sfd, .events = POLLIN };
                int stop = 0;

                if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
                        fatal(EXIT_TEMPORARY, "poll");
                while (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
                        if (si.ssi_signo == SIGINT || si.ssi_signo == SIGTERM)
                                stop = 1;
                if (reap(kids, 0)) {
                        status = EXIT_TEMPORARY;
                        stop = 1;
                }
                if (stop)
                        break;
        }
        stop_children(kids, sfd);
        if (cfg.remove)
                remove_ring(dirfd, cfg.instance);
        else if (status == 0)
                log_info("stopped; instance %s is still there: ringstat --instance %s",
                         cfg.instance, cfg.instance);
        close(dirfd);
        close(sfd);
        return status;
}
