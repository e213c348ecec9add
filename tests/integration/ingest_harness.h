/* SPDX-License-Identifier: MIT */
/* ingest_harness.h: runs the real ringflow-ingest in a test instance and reads what it emits. */
#ifndef RINGFLOW_INGEST_HARNESS_H
#define RINGFLOW_INGEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "clock.h"
#include "event.h"
#include "ring.h"
#include "stats.h"
#include "test_instance.h"

/*
 * The integration tests of ringflow-ingest are the consumer of its output
 * ring (ingest-process.ring) and read its ingest.stats, as the process
 * stage and ringstat would. Everything here fails the running Criterion
 * test (cr_assert) when something is wrong, so tests read as a story.
 * Every wait is on a condition (ring data, a counter, a child's exit) with
 * a generous bound, never a bare sleep.
 */

#define IH_TIMEOUT_NS (60 * NSEC_PER_SEC)       /* upper bound of any one wait */
#define IH_ARGS_MAX 32

/* The test's instance (valid between ih_setup and ih_teardown). */
extern struct test_instance ih_ti;

/*
 * Finds $RINGFLOW_BUILDDIR/stages/ingest/ringflow-ingest (skips the test
 * when RINGFLOW_BUILDDIR is unset) and creates a fresh instance.
 */
void ih_setup(void);

/* Kills and reaps every child still running, then removes the instance. */
void ih_teardown(void);

/* ---- running ringflow-ingest ---- */

struct ih_proc {
        pid_t pid;              /* 0 once reaped */
        int outfd, errfd;       /* memfds that receive its stdout and stderr */
        int status;             /* exit status, or 128 + signal; -1 while running */
        int64_t started_ns;     /* CLOCK_MONOTONIC at fork */
};

/*
 * Starts ringflow-ingest --instance <the test's> followed by args
 * (NULL-terminated, at most IH_ARGS_MAX), with stdin_fd as its stdin
 * (-1: /dev/null). The child dies with the test (PR_SET_PDEATHSIG).
 */
void ih_startv(struct ih_proc *p, int stdin_fd, const char *const *args);

/* The same with the arguments as a NULL-terminated variadic list. */
void ih_start(struct ih_proc *p, int stdin_fd, ...);

/* Starts and waits: the exit status (or 128 + signal). */
int ih_run(struct ih_proc *p, int stdin_fd, ...);

/* Reaps p if it has exited (p->status set); true when it has. */
bool ih_exited(struct ih_proc *p);

/* Waits for p to exit within timeout_ns (kills it and fails the test if not); returns p->status. */
int ih_wait(struct ih_proc *p, int64_t timeout_ns);

/* Sends sig to p; with SIGKILL also reaps it. */
void ih_signal(struct ih_proc *p, int sig);

/* Its stderr (or stdout) so far, NUL-terminated, malloc'd; the caller frees. */
char *ih_stderr(const struct ih_proc *p);
char *ih_stdout(const struct ih_proc *p);

/* Frees the memfds of a reaped process. */
void ih_proc_fini(struct ih_proc *p);

/* ---- feeding stdin ---- */

/*
 * Returns the read end of a pipe that a writer child fills with buf and
 * then closes (the child is reaped by ih_teardown or ih_reap_writers).
 * The test's copy of the write end is closed, so the reader sees end of
 * input once the writer is done.
 */
int ih_pipe_feed(const void *buf, size_t len);

/* Forks a child that writes buf to fd and exits; returns its pid. */
pid_t ih_spawn_writer(int fd, const void *buf, size_t len);

/*
 * The same, but the child stops after gate_at bytes until a byte (or end
 * of input) arrives on gate_fd, then writes the rest.
 */
pid_t ih_spawn_writer_gated(int fd, const void *buf, size_t len, size_t gate_at, int gate_fd);

/* Waits for every writer child to finish; fails if one did not write everything. */
void ih_reap_writers(void);

/* Writes line i into buf (cap bytes); returns its length (snprintf's). */
typedef int (*ih_line_fn)(char *buf, size_t cap, unsigned i);

/* Lines 0..n-1 of fn, concatenated, malloc'd; *len set to their bytes. */
char *ih_lines(ih_line_fn fn, unsigned n, size_t *len);

/* An unlinked temporary regular file holding buf, opened read-only at offset 0. */
int ih_file_feed(const void *buf, size_t len);

/* ---- rings ---- */

void ih_ring_create(const char *producer, const char *consumer, uint64_t capacity);
struct ring *ih_attach(const char *producer, const char *consumer, enum ring_role role);

/* A decoded record of ingest-process.ring, borrowed until the callback returns. */
struct ih_view {
        uint16_t type;                  /* EVENT_REC_EVENT or EVENT_REC_REJECT */
        uint64_t index;                 /* records before it in the ring */
        uint64_t pos;                   /* position of its header in the ring */
        struct event_view ev;           /* when type == EVENT_REC_EVENT */
        struct event_reject_view rj;    /* when type == EVENT_REC_REJECT */
};

typedef void (*ih_fn)(const struct ih_view *v, void *ctx);

/* A consumer of ingest-process.ring that hands every record to fn. */
struct ih_sink {
        struct ring *ring;
        ih_fn fn;
        void *ctx;
        uint64_t n;                     /* records taken */
};

/* Attaches as the consumer of ingest-process.ring (which must exist). */
void ih_sink_init(struct ih_sink *s, ih_fn fn, void *ctx);
void ih_sink_fini(struct ih_sink *s);

/*
 * Takes up to max published records: decodes each (failing the test on a
 * record that does not decode), calls fn, then marks them done so the
 * producer may reuse the space. Returns how many it took.
 */
size_t ih_take(struct ih_sink *s, size_t max);

/*
 * Takes records until done(ctx) is true. Fails when p (if not NULL) exits
 * and the ring holds nothing more, or after timeout_ns.
 */
void ih_take_until(struct ih_sink *s, bool (*done)(void *ctx), void *ctx, struct ih_proc *p,
                   int64_t timeout_ns);

/* Takes records until s->n >= want. */
void ih_take_count(struct ih_sink *s, uint64_t want, struct ih_proc *p, int64_t timeout_ns);

/* Takes records until p exits and the ring is drained; returns p's exit status. */
int ih_take_until_exit(struct ih_sink *s, struct ih_proc *p, int64_t timeout_ns);

/*
 * For a stage run with --exit-on-eof whose input has all been handled (the
 * caller waited for its records or counters): waits up to 10 s for it to
 * exit by itself, taking records meanwhile when s is not NULL. If it does
 * not, records a test failure, stops it with SIGTERM and waits, so the
 * test can go on to check the records. Returns its exit status.
 */
int ih_exit_at_eof(struct ih_sink *s, struct ih_proc *p);

/* A copy of a record, for tests that look at records after the fact. */
struct ih_rec {
        uint16_t type;
        uint64_t seq;
        int64_t received_ns;
        uint64_t origin;
        enum event_source source_kind;
        int64_t seen_ns;                /* CLOCK_REALTIME when the test took it */
        /* EVENT_REC_EVENT */
        int64_t timestamp_ms;
        unsigned flags;
        char *id, *etype, *source, *data;
        /* EVENT_REC_REJECT */
        enum event_reason reason;
        char *raw;                      /* raw_len bytes and a NUL */
        uint32_t raw_len, raw_total;
        char *message;
};

struct ih_recs {
        struct ih_rec *v;
        size_t n, cap;
};

/* An ih_fn that appends a copy of the record to (struct ih_recs *)ctx. */
void ih_collect(const struct ih_view *v, void *ctx);
void ih_recs_free(struct ih_recs *rs);

/* "event seq 3 origin 120 id ..." or "reject seq 4 reason syntax: message" for messages. */
const char *ih_rec_describe(const struct ih_rec *r, char *buf, size_t len);

/* ---- ingest.stats ---- */

/* Reads ingest.stats; false (and nothing to free) when it does not exist yet. */
bool ih_stats_try(struct stats_snapshot *snap);

/* Reads ingest.stats, failing the test when it cannot. */
void ih_stats(struct stats_snapshot *snap);

/* The value of counter name, failing the test when the stage has no such counter. */
uint64_t ih_stat(const struct stats_snapshot *snap, const char *name);

/* One fresh read of one counter. */
uint64_t ih_stat_now(const char *name);

/* Waits until counter name >= min (0 = fail when p exits first); returns its value. */
uint64_t ih_wait_stat(const char *name, uint64_t min, struct ih_proc *p, int64_t timeout_ns);

/*
 * Waits until counter name has kept one value over `polls` polls in a row
 * (the stage stopped moving it); fails if p exits. Returns the value.
 */
uint64_t ih_wait_stat_settles(const char *name, unsigned polls, struct ih_proc *p);

/*
 * Checks the invariants of the spec on a snapshot: for each source S,
 * S.lines == S.accepted + S.rejected, and the sum of reject.* equals the
 * sum of S.rejected.
 */
void ih_check_invariants(const struct stats_snapshot *snap);

/* ---- sockets ---- */

/* A TCP port on 127.0.0.1 that was free a moment ago. */
int ih_free_port(void);

/* Connects, retrying until the listener is there or timeout_ns passes; returns the fd. */
int ih_connect_unix(const char *path, int64_t timeout_ns);
int ih_connect_tcp(int port, int64_t timeout_ns);

/* Writes all of buf to a socket (MSG_NOSIGNAL). */
void ih_send_all(int fd, const void *buf, size_t len);

/*
 * Waits until the peer closes fd (read returns 0 or ECONNRESET), within
 * timeout_ns; returns false when it did not.
 */
bool ih_wait_closed(int fd, int64_t timeout_ns);

/* ---- small things ---- */

/* Sleeps a millisecond between two polls of a condition (never as synchronisation by itself). */
void ih_poll_pause(void);

/* Bytes of a ring record with a payload of len bytes (header and alignment). */
static inline uint64_t ih_rec_bytes(uint64_t len)
{
        return (RING_RECORD_HEADER + len + RING_ALIGN - 1) & ~(uint64_t)(RING_ALIGN - 1);
}

/* A seed for the random parts: $RINGFLOW_TEST_SEED, else from the clock (logged either way). */
unsigned ih_seed(void);

#endif
