/* SPDX-License-Identifier: MIT */
/* bench.h: what every ringflow benchmark needs: a private instance, a clean stop, machine facts. */
#ifndef RINGFLOW_BENCH_H
#define RINGFLOW_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/types.h>

#include "stats.h"

/* ---- the private instance ---- */

/*
 * Creates the benchmark's own instance, INSTANCE_ROOT/<prefix>-<pid>, and
 * arranges for it to be removed at exit. before_remove (may be NULL) runs
 * first at every removal: a tool stops there a child that still writes into
 * the instance. Returns the instance's directory fd, which stays ours until
 * bench_instance_remove (do not close it), or -errno with why set to
 * "instance_open(<name>): <reason>". One instance per process: a second
 * call returns -EBUSY.
 */
int bench_instance_open(const char *prefix, void (*before_remove)(void),
                        char *why, size_t whylen);

/* The instance's name, or "" when there is none (not yet opened, or removed). */
const char *bench_instance_name(void);

/*
 * Runs before_remove, closes the directory fd and removes the instance with
 * its files; a failure to remove is logged, not returned, since the caller
 * is on its way out. Does nothing once the instance is gone.
 */
void bench_instance_remove(void);

/* ---- stopping on SIGINT and SIGTERM ---- */

/*
 * Catches SIGINT and SIGTERM without SA_RESTART, so that a stop interrupts
 * a blocking read or wait (EINTR) and the loop around it sees
 * bench_stopping(). Returns 0, or -errno when sigaction fails.
 */
int bench_catch_stop(void);

/* The signal that asked the benchmark to stop, or 0. Any thread may ask. */
int bench_stopping(void);

/*
 * After a stop: removes the instance, logs that it did, and ends the process
 * by the same signal with its default action, so the caller's shell sees how
 * it ended; exits with 128 + the signal should the process survive that.
 */
void bench_exit_stopped(void) __attribute__((noreturn));

/* ---- options ---- */

/*
 * Codes of the options every benchmark has, for its struct option table;
 * a tool numbers its own options from 256, as getopt_long leaves room for.
 */
enum { BENCH_OPT_HELP = 0x7000, BENCH_OPT_VERSION };

/*
 * The default case of a tool's getopt_long switch: BENCH_OPT_HELP prints
 * usage to stdout and exits 0; BENCH_OPT_VERSION prints "<tool> (<package>)
 * <version>" and exits 0; any other code (getopt_long's '?', after its own
 * message) prints usage to stderr and exits EXIT_PERMANENT. Never returns.
 */
void bench_opt_other(int c, const char *tool, void (*usage)(FILE *))
        __attribute__((noreturn));

/* After the getopt_long loop: exits EXIT_PERMANENT naming argv[optind] if any operand is left. */
void bench_opt_end(int argc, char **argv);

/*
 * Parses a --capacity value: a ring data area size with an optional K, M or
 * G suffix that is a power of two the ring accepts. Returns 0 with *out set,
 * or -EINVAL (not a number, not a power of two) or -ERANGE (out of the
 * ring's bounds) with why naming the value and the bounds; *out is then
 * unchanged.
 */
int bench_parse_capacity(const char *arg, uint64_t *out, char *why, size_t whylen);

/* ---- CPUs ---- */

/*
 * Stores in cpus[0..n) the lowest-numbered CPUs this process may run on,
 * -1 where the affinity mask has fewer than n. Returns how many it found,
 * or -errno when sched_getaffinity fails.
 */
int bench_first_cpus(int *cpus, int n);

/*
 * Pins the calling process (or thread) to one CPU. Returns 0, or -errno
 * with why (may be NULL) set to "sched_setaffinity(cpu N): <reason>".
 */
int bench_pin_to(int cpu, char *why, size_t whylen);

/* ---- machine facts, reported beside every figure ---- */

/*
 * Busy and steal CPU time of the whole machine since boot, in seconds, from
 * /proc/stat; the difference over a run shows what other processes took.
 * Returns 0, or -errno (-EBADMSG: a line we cannot read); *busy and *steal
 * are unchanged on failure.
 */
int bench_machine_cpu_s(double *busy, double *steal);

/*
 * The 1-minute load average from /proc/loadavg. Returns 0, or -errno
 * (-EBADMSG: unreadable); *load is unchanged on failure.
 */
int bench_load1(double *load);

/* A struct timeval (a rusage time) in seconds. */
double bench_tv_s(struct timeval tv);

/*
 * Logs a warning beside a figure when other processes took more than 5% of
 * one CPU (plus clock-tick slack) during a run of wall_s seconds: the
 * figure is then low. other_s may be negative (tick rounding).
 */
void bench_warn_other(double other_s, double wall_s);

/* CPU time (user + system) this process has used, in seconds; 0 when getrusage fails. */
double bench_self_cpu_s(void);

/* "killed by signal N" or "exited with status N" for a wait status. */
void bench_describe_status(char *buf, size_t len, int status);

/* ---- the stage under test ---- */

/*
 * Finds the stage binary a benchmark drives, into out (len bytes): given
 * (a --flag's value) when not NULL, else $RINGFLOW_BUILDDIR/rel, else rel
 * beside the build directory this benchmark runs from (<builddir>/tools/x
 * -> <builddir>/rel). Exits 100 when the path is too long and 111 when it
 * is not an executable, naming flag as the way to pass another.
 */
void bench_find_stage(char *out, size_t len, const char *given, const char *rel, const char *flag);

/*
 * Waits until child pid exits, polling every poll_ns, and reaps it into
 * *status and *ru. Returns 0; -ETIMEDOUT past deadline_ns (CLOCK_MONOTONIC)
 * or -EINTR once a stop was asked for (bench_stopping), in both cases with
 * the child killed and reaped; or -errno from wait4.
 */
int bench_child_wait(pid_t pid, int64_t deadline_ns, int64_t poll_ns, int *status, struct rusage *ru);

/* The value (or histogram count) named name in s; 0, and *missing set, when there is none. */
uint64_t bench_stat_value(const struct stats_snapshot *s, const char *name, int *missing);

/* ---- files and figures ---- */

/* Removes a directory tree (files and subdirectories); failures are logged, since callers are cleaning up. */
void bench_remove_tree(const char *path);

/* The median of v[0..n) (n >= 1), which it sorts in place. */
double bench_median(double *v, unsigned n);

/* ---- JSON ---- */

/*
 * Prints the opening every benchmark's JSON shares, up to and including the
 * comma after the machine object:
 * {"tool":"<tool>","version":"..","machine":{"cpus":N,"cpus_allowed":N,"kernel":".."},
 * cpus_allowed is -1 when the affinity mask cannot be read, the kernel
 * "unknown" when uname fails. Write errors show in ferror(f).
 */
void bench_json_head(FILE *f, const char *tool);

/*
 * Prints s as a JSON string, quotes included, escaping what JSON requires:
 * reasons may carry quotes, backslashes or file names.
 */
void bench_json_string(FILE *f, const char *s);

#endif
