/* SPDX-License-Identifier: MIT */
/* bench.c: what ringbench and ingestbench share: instance, stop, options, machine facts. */
#include "autoconf.h"

#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "clock.h"
#include "instance.h"
#include "log.h"
#include "ring.h"
#include "units.h"
#include "why.h"

/*
 * One instance per process, kept here rather than by the caller because
 * atexit handlers take no argument and the stop path must find it too.
 */
static char instance_name[INSTANCE_NAME_MAX + 1];
static int instance_dirfd = -1;
static void (*instance_before_remove)(void);
static volatile sig_atomic_t stop_signal;

int bench_instance_open(const char *prefix, void (*before_remove)(void),
                        char *why, size_t whylen)
{
        static int registered;
        char name[INSTANCE_NAME_MAX + 1];
        char reason[WHY_MAX];
        int n, fd;

        if (instance_name[0] != '\0')
                return why_set(why, whylen, -EBUSY, "instance_open(%s-%ld): this process "
                               "already has instance %s", prefix, (long)getpid(), instance_name);
        n = snprintf(name, sizeof(name), "%s-%ld", prefix, (long)getpid());
        if (n < 0 || (size_t)n >= sizeof(name))
                return why_set(why, whylen, -ENAMETOOLONG, "instance_open(%s-%ld): the name is "
                               "longer than %d characters", prefix, (long)getpid(),
                               INSTANCE_NAME_MAX);
        /* Before the instance exists: once it does, a failure here would leave it behind. */
        if (!registered) {
                if (atexit(bench_instance_remove) != 0)
                        return why_set(why, whylen, -ENOMEM, "instance_open(%s): atexit failed",
                                       name);
                registered = 1;
        }
        fd = instance_open(name, 1, reason, sizeof(reason));
        if (fd < 0)
                return why_set(why, whylen, fd, "instance_open(%s): %s", name, reason);
        memcpy(instance_name, name, sizeof(instance_name));
        instance_dirfd = fd;
        instance_before_remove = before_remove;
        return fd;
}

const char *bench_instance_name(void)
{
        return instance_name;
}

void bench_instance_remove(void)
{
        if (instance_before_remove != NULL)
                instance_before_remove();
        if (instance_dirfd >= 0)
                close(instance_dirfd);
        instance_dirfd = -1;
        if (instance_name[0] != '\0' && instance_remove(instance_name) != 0)
                log_warnx("could not remove instance %s", instance_name);
        instance_name[0] = '\0';
}

static void on_stop_signal(int sig)
{
        stop_signal = sig;
}

int bench_catch_stop(void)
{
        struct sigaction sa;

        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_stop_signal;
        sigemptyset(&sa.sa_mask);
        if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0)
                return -errno;
        return 0;
}

int bench_stopping(void)
{
        return (int)stop_signal;
}

void bench_exit_stopped(void)
{
        char name[sizeof(instance_name)];
        int sig = (int)stop_signal;

        memcpy(name, instance_name, sizeof(name));
        bench_instance_remove();
        log_warnx("interrupted; instance %s removed", name);
        if (sig > 0) {
                signal(sig, SIG_DFL);
                raise(sig);
        }
        exit(128 + sig);
}

void bench_opt_other(int c, const char *tool, void (*usage)(FILE *))
{
        switch (c) {
        case BENCH_OPT_HELP:
                usage(stdout);
                exit(0);
        case BENCH_OPT_VERSION:
                printf("%s (%s) %s\n", tool, PACKAGE_NAME, PACKAGE_VERSION);
                exit(0);
        default:
                break;
        }
        usage(stderr);
        exit(EXIT_PERMANENT);
}

void bench_opt_end(int argc, char **argv)
{
        if (optind < argc)
                fatalx(EXIT_PERMANENT, "unexpected argument '%s' (see --help)", argv[optind]);
}

int bench_parse_capacity(const char *arg, uint64_t *out, char *why, size_t whylen)
{
        uint64_t v;
        int rc = units_parse_size(arg, RING_MIN_CAPACITY, RING_MAX_CAPACITY, &v);

        if (rc == 0 && (v & (v - 1)) != 0)
                rc = -EINVAL;
        if (rc != 0)
                return why_set(why, whylen, rc, "--capacity %s: expected a power of two "
                               "from %u to %u bytes", arg, RING_MIN_CAPACITY, RING_MAX_CAPACITY);
        *out = v;
        return 0;
}

int bench_first_cpus(int *cpus, int n)
{
        cpu_set_t set;
        int found = 0;

        for (int i = 0; i < n; i++)
                cpus[i] = -1;
        if (sched_getaffinity(0, sizeof(set), &set) != 0)
                return -errno;
        for (int cpu = 0; cpu < CPU_SETSIZE && found < n; cpu++)
                if (CPU_ISSET(cpu, &set))
                        cpus[found++] = cpu;
        return found;
}

int bench_pin_to(int cpu, char *why, size_t whylen)
{
        cpu_set_t set;
        int err;

        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        if (sched_setaffinity(0, sizeof(set), &set) == 0)
                return 0;
        err = errno;
        return why_set(why, whylen, -err, "sched_setaffinity(cpu %d): %s", cpu, strerror(err));
}

/*
 * The figures are only as good as the machine is quiet: another process on
 * one of the measured CPUs preempts a side and shows up here, so every run
 * reports it.
 */
int bench_machine_cpu_s(double *busy, double *steal)
{
        unsigned long long user, nice, sys, idle, iowait, irq, softirq, st;
        long hz = sysconf(_SC_CLK_TCK);
        FILE *f = fopen("/proc/stat", "re");
        int n;

        if (f == NULL)
                return -errno;
        n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu",
                   &user, &nice, &sys, &idle, &iowait, &irq, &softirq, &st);
        fclose(f);
        if (n != 8 || hz <= 0)
                return -EBADMSG;
        *busy = (double)(user + nice + sys + irq + softirq) / (double)hz;
        *steal = (double)st / (double)hz;
        return 0;
}

int bench_load1(double *load)
{
        FILE *f = fopen("/proc/loadavg", "re");
        double v;
        int n;

        if (f == NULL)
                return -errno;
        n = fscanf(f, "%lf", &v);
        fclose(f);
        if (n != 1)
                return -EBADMSG;
        *load = v;
        return 0;
}

double bench_tv_s(struct timeval tv)
{
        return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

void bench_warn_other(double other_s, double wall_s)
{
        /* One clock tick is 0.01 s per CPU: 0.02 s keeps rounding from warning. */
        if (other_s > 0.05 * wall_s + 0.02)
                log_warnx("other processes used %.2f CPU-s during this %.2f s run: "
                          "its figures are low", other_s, wall_s);
}

/* How many CPUs this process may run on, or -1. */
static int allowed_cpus(void)
{
        cpu_set_t set;

        if (sched_getaffinity(0, sizeof(set), &set) != 0)
                return -1;
        return CPU_COUNT(&set);
}

void bench_json_head(FILE *f, const char *tool)
{
        struct utsname u;

        if (uname(&u) != 0)
                strcpy(u.release, "unknown");
        fputs("{\"tool\":", f);
        bench_json_string(f, tool);
        fputs(",\"version\":", f);
        bench_json_string(f, PACKAGE_VERSION);
        fprintf(f, ",\"machine\":{\"cpus\":%ld,\"cpus_allowed\":%d,\"kernel\":",
                sysconf(_SC_NPROCESSORS_ONLN), allowed_cpus());
        bench_json_string(f, u.release);
        fputs("},", f);
}

void bench_json_string(FILE *f, const char *s)
{
        putc('"', f);
        for (; *s != '\0'; s++) {
                unsigned char c = (unsigned char)*s;

                if (c == '"' || c == '\\')
                        fprintf(f, "\\%c", c);
                else if (c < 0x20)
                        fprintf(f, "\\u%04x", c);
                else
                        putc(c, f);
        }
        putc('"', f);
}

double bench_self_cpu_s(void)
{
        struct rusage ru;

        if (getrusage(RUSAGE_SELF, &ru) != 0)
                return 0;
        return bench_tv_s(ru.ru_utime) + bench_tv_s(ru.ru_stime);
}

void bench_describe_status(char *buf, size_t len, int status)
{
        if (WIFSIGNALED(status))
                snprintf(buf, len, "killed by signal %d", WTERMSIG(status));
        else
                snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
}

void bench_find_stage(char *out, size_t len, const char *given, const char *rel, const char *flag)
{
        const char *dir = getenv("RINGFLOW_BUILDDIR");
        const char *name = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;
        char exe[PATH_MAX];
        ssize_t n;
        int got;

        if (given != NULL) {
                got = snprintf(out, len, "%s", given);
        } else if (dir != NULL && dir[0] != '\0') {
                got = snprintf(out, len, "%s/%s", dir, rel);
        } else {
                /* <builddir>/tools/<bench> -> <builddir>/<rel> */
                n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
                if (n < 0)
                        fatal(EXIT_TEMPORARY, "readlink /proc/self/exe");
                exe[n] = '\0';
                for (int up = 0; up < 2; up++) {
                        char *slash = strrchr(exe, '/');

                        if (slash != NULL)
                                *slash = '\0';
                }
                got = snprintf(out, len, "%s/%s", exe, rel);
        }
        if (got < 0 || (size_t)got >= len)
                fatalx(EXIT_PERMANENT, "the path of %s is too long", name);
        if (access(out, X_OK) != 0)
                fatal(EXIT_TEMPORARY, "%s is not an executable (build it, or pass %s PATH)", out, flag);
}

uint64_t bench_stat_value(const struct stats_snapshot *s, const char *name, int *missing)
{
        const struct stats_value *v = stats_find(s, name);

        if (v == NULL) {
                *missing = 1;
                return 0;
        }
        return v->value;
}

int bench_child_wait(pid_t pid, int64_t deadline_ns, int64_t poll_ns, int *status, struct rusage *ru)
{
        const struct timespec pause = { poll_ns / NSEC_PER_SEC, poll_ns % NSEC_PER_SEC };

        for (;;) {
                pid_t got = wait4(pid, status, WNOHANG, ru);

                if (got == pid)
                        return 0;
                if (got < 0 && errno != EINTR)
                        return -errno;
                if (clock_mono_ns() > deadline_ns || bench_stopping()) {
                        kill(pid, SIGKILL);
                        wait4(pid, status, 0, ru);
                        return bench_stopping() ? -EINTR : -ETIMEDOUT;
                }
                nanosleep(&pause, NULL);
        }
}

static int bench_rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
        (void)sb;
        (void)ftw;
        if ((flag == FTW_DP ? rmdir(path) : unlink(path)) != 0 && errno != ENOENT)
                log_warn("remove %s", path);
        return 0;
}

void bench_remove_tree(const char *path)
{
        if (nftw(path, bench_rm_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
                log_warn("nftw %s", path);
}

static int bench_cmp_double(const void *a, const void *b)
{
        double x = *(const double *)a, y = *(const double *)b;

        return x < y ? -1 : x > y;
}

double bench_median(double *v, unsigned n)
{
        qsort(v, n, sizeof(v[0]), bench_cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}
