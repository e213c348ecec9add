/* SPDX-License-Identifier: MIT */
/* ringflowd_harness.h: runs the real ringflowd in a test instance with real or stand-in stages. */
#ifndef RINGFLOW_RINGFLOWD_HARNESS_H
#define RINGFLOW_RINGFLOWD_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "clock.h"
#include "test_instance.h"

/*
 * Each test gets a fresh instance, a temporary data directory and an empty
 * temporary stage directory (rf_stub and rf_real fill it, for
 * --stage-dir). Everything fails the running Criterion test when something
 * is wrong; every wait is on a condition with a bound, never a bare sleep.
 */

#define RF_WAIT_NS (30 * NSEC_PER_SEC)
#define RF_POLL_NS (5 * NSEC_PER_MSEC)
#define RF_ARGS_MAX 48
#define RF_ENV_MAX 512

extern struct test_instance rf_ti;
extern char rf_builddir[2048], rf_data_dir[2048], rf_stage_dir[2048];

/* Skips the test when RINGFLOW_BUILDDIR is unset; makes the instance and the directories. */
void rf_setup(void);

/* Kills and reaps what the test started, removes the directories and the instance. */
void rf_teardown(void);

struct rf_proc {
        pid_t pid;              /* 0 once reaped */
        int errfd;              /* memfd: its stdout and stderr */
        int status;             /* exit status, or 128 + signal; -1 while running */
};

/*
 * Starts ringflowd --instance <test> --data-dir <temp> args (NULL-terminated
 * after env) with stdin_fd as stdin (-1: /dev/null) and the test's
 * environment plus env ("K=V" strings, NULL-terminated; NULL for none).
 * The child dies with the test (PR_SET_PDEATHSIG).
 */
void rf_start(struct rf_proc *p, int stdin_fd, const char *const *env, ...);

/* Reaps p if it exited; true when it has. */
bool rf_exited(struct rf_proc *p);

/* Waits up to timeout_ns for p to exit (fails the test otherwise); returns p->status. */
int rf_wait(struct rf_proc *p, int64_t timeout_ns);

/* Its output so far, NUL-terminated, malloc'd ("" for NULL). */
char *rf_output(const struct rf_proc *p);

/* <stage_dir>/ringflow-<stage> -> the stand-in stage, or the real binary of the build tree. */
void rf_stub(const char *stage);
void rf_real(const char *stage);

/* Value name of <stage>.stats; false when the file or the value is not there (yet). */
bool rf_stat_try(const char *stage, const char *name, uint64_t *v);

/* Value name of supervise.stats (0 when not there yet). */
uint64_t rf_sv(const char *name);

/* True when pid is gone or a zombie (a stage whose supervisor died is reaped by someone else). */
bool rf_pid_dead(pid_t pid);

/* A CLOCK_MONOTONIC deadline timeout_ns from now; and a short poll pause. */
int64_t rf_deadline(int64_t timeout_ns);
void rf_pause(void);

/*
 * Polls cond until it is true, failing the test with what after
 * RF_WAIT_NS and printing p's output (p may be NULL).
 */
#define RF_WAIT_FOR(cond, p, what)                                                         \
        do {                                                                               \
                int64_t rf_dl_ = rf_deadline(RF_WAIT_NS);                                  \
                while (!(cond)) {                                                          \
                        if (clock_mono_ns() > rf_dl_)                                      \
                                cr_assert_fail("timed out waiting for %s; ringflowd said:\n%s", \
                                               (what), rf_output(p));                     \
                        rf_pause();                                                        \
                }                                                                          \
        } while (0)

/* Lines of the stub's STUB_LOG file that start with prefix; *times gets their clocks (max n). */
unsigned rf_stub_log(const char *path, const char *prefix, int64_t *times, pid_t *pids, unsigned n);

#endif
