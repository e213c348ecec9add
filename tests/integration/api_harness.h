/* SPDX-License-Identifier: MIT */
/* api_harness.h: runs the real ringflow-api (and ingest, store) in a test instance for the api's integration tests. */
#ifndef RINGFLOW_API_HARNESS_H
#define RINGFLOW_API_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "clock.h"
#include "http_client.h"
#include "test_instance.h"

/*
 * Everything here fails the running Criterion test when something is wrong.
 * Children die with the test (PR_SET_PDEATHSIG) and are killed by
 * ah_teardown. Waits are on conditions with a bound, never bare sleeps.
 */

#define AH_WAIT_NS (20 * NSEC_PER_SEC)
#define AH_TIMEOUT_MS 20000             /* one HTTP exchange at most */
#define AH_PROCS_MAX 8

extern struct test_instance ah_ti;
extern char ah_data_dir[];

/* Skips without RINGFLOW_BUILDDIR; makes the instance and a temp data dir. */
void ah_setup(void);
void ah_teardown(void);

/*
 * Starts $RINGFLOW_BUILDDIR/<rel> --instance <test> --data-dir <temp> and
 * then the NULL-terminated args; stdout/stderr go to a memfd. Returns the pid.
 */
pid_t ah_start(const char *rel, ...);

/*
 * Starts ringflow-api --create --listen 127.0.0.1:0 plus args (NULL-ended;
 * a first argument "--no-create" leaves out --create),
 * waits for the port it writes into api.stats (listen.port) and returns it.
 */
int ah_start_api(const char *arg, ...);

/*
 * Sends SIGTERM to the i-th started child and waits for it (bounded):
 * returns its exit status, or 128 + the signal that ended it.
 */
int ah_stop(unsigned i);

/* Waits (bounded) for the i-th started child to exit by itself; returns as ah_stop. */
int ah_wait_exit(unsigned i);

/* The stderr+stdout of the i-th started child (malloc'd). */
char *ah_output(unsigned i);

/* A value of <stage>.stats; false when the file or name is not there. */
bool ah_stat(const char *stage, const char *name, uint64_t *v);

/* Connects to the api, failing the test when it cannot. */
void ah_connect(struct http_conn *c, int port);

/* One request on a fresh connection; fails the test on a transport error. */
void ah_request(int port, const char *method, const char *path, const char *extra, const void *body,
                size_t len, struct http_resp *r);

/* Polls a condition with a millisecond pause (never as synchronisation by itself). */
void ah_pause(void);

#endif
