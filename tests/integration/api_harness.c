/* SPDX-License-Identifier: MIT */
/* api_harness.c: runs the real ringflow-api (and ingest, store) in a test instance for the api's integration tests. */
#include "autoconf.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api_harness.h"
#include "stats.h"
#include "test_tmpdir.h"
#include "why.h"

#define ARGS_MAX 40

struct test_instance ah_ti = { .dirfd = -1 };
char ah_data_dir[PATH_MAX];
static char builddir[PATH_MAX];
static pid_t procs[AH_PROCS_MAX];
static int outs[AH_PROCS_MAX];
static unsigned nprocs;

void ah_setup(void)
{
        const char *dir = getenv("RINGFLOW_BUILDDIR");

        if (dir == NULL || dir[0] == '\0')
                cr_skip_test("RINGFLOW_BUILDDIR is not set: run through `make check`");
        snprintf(builddir, sizeof(builddir), "%s", dir);
        nprocs = 0;
        test_instance_init(&ah_ti);
        snprintf(ah_data_dir, PATH_MAX, "%s/ringflow-api-test-XXXXXX",
                 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
        cr_assert(mkdtemp(ah_data_dir) != NULL, "mkdtemp: %s", strerror(errno));
}

void ah_teardown(void)
{
        for (unsigned i = 0; i < nprocs; i++) {
                if (procs[i] > 0) {
                        kill(procs[i], SIGKILL);
                        waitpid(procs[i], NULL, 0);
                }
                close(outs[i]);
        }
        nprocs = 0;
        test_rmdir_flat(ah_data_dir);
        test_instance_fini(&ah_ti);
}

static pid_t ah_startv(const char *rel, const char *const *args, size_t nargs)
{
        char bin[PATH_MAX * 2];
        const char *argv[ARGS_MAX + 8];
        size_t argc = 0;
        pid_t pid;
        int out;

        cr_assert(nprocs < AH_PROCS_MAX && nargs <= ARGS_MAX, "too many children or arguments");
        snprintf(bin, sizeof(bin), "%s/%s", builddir, rel);
        cr_assert(access(bin, X_OK) == 0, "%s is not an executable", bin);
        argv[argc++] = bin;
        argv[argc++] = "--instance";
        argv[argc++] = ah_ti.name;
        argv[argc++] = "--data-dir";
        argv[argc++] = ah_data_dir;
        for (size_t i = 0; i < nargs; i++)
                argv[argc++] = args[i];
        argv[argc] = NULL;
        out = memfd_create("child-output", MFD_CLOEXEC);
        cr_assert(out >= 0);
        pid = fork();
        cr_assert(pid >= 0);
        if (pid == 0) {
                int in = open("/dev/null", O_RDONLY);

                if (in < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
                        _exit(126);
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                execv(bin, (char *const *)(uintptr_t)argv);
                _exit(127);
        }
        procs[nprocs] = pid;
        outs[nprocs] = out;
        nprocs++;
        return pid;
}

pid_t ah_start(const char *rel, ...)
{
        const char *args[ARGS_MAX];
        size_t n = 0;
        const char *a;
        va_list ap;

        va_start(ap, rel);
        while ((a = va_arg(ap, const char *)) != NULL) {
                cr_assert(n < ARGS_MAX);
                args[n++] = a;
        }
        va_end(ap);
        return ah_startv(rel, args, n);
}

static int ah_reap(unsigned i, int sig)
{
        int64_t deadline = clock_mono_ns() + AH_WAIT_NS;
        int st;

        cr_assert(i < nprocs && procs[i] > 0);
        if (sig != 0)
                kill(procs[i], sig);
        while (waitpid(procs[i], &st, WNOHANG) == 0) {
                cr_assert(clock_mono_ns() < deadline, "child %u did not exit", i);
                ah_pause();
        }
        procs[i] = 0;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int ah_stop(unsigned i)
{
        return ah_reap(i, SIGTERM);
}

int ah_wait_exit(unsigned i)
{
        return ah_reap(i, 0);
}

char *ah_output(unsigned i)
{
        off_t len;
        char *s;

        cr_assert(i < nprocs);
        len = lseek(outs[i], 0, SEEK_END);
        s = calloc(1, (size_t)len + 1);
        cr_assert(s != NULL);
        if (len > 0)
                cr_assert(pread(outs[i], s, (size_t)len, 0) == len);
        return s;
}

bool ah_stat(const char *stage, const char *name, uint64_t *v)
{
        struct stats_snapshot snap;
        const struct stats_value *sv;
        bool ok = false;

        if (stats_read(ah_ti.dirfd, stage, &snap, NULL, 0) < 0)
                return false;
        sv = stats_find(&snap, name);
        if (sv != NULL) {
                *v = sv->value;
                ok = true;
        }
        stats_snapshot_free(&snap);
        return ok;
}

void ah_pause(void)
{
        struct timespec ms = { 0, NSEC_PER_MSEC };

        nanosleep(&ms, NULL);
}

int ah_start_api(const char *arg, ...)
{
        const char *args[ARGS_MAX];
        size_t n = 0;
        const char *a = arg;
        int64_t deadline = clock_mono_ns() + AH_WAIT_NS;
        struct stats_snapshot snap;
        unsigned idx = nprocs;
        pid_t pid;
        va_list ap;

        if (a != NULL && strcmp(a, "--no-create") == 0)
                a = NULL;
        else
                args[n++] = "--create";
        args[n++] = "--listen";
        args[n++] = "127.0.0.1:0";
        va_start(ap, arg);
        if (a == NULL && arg != NULL)
                a = va_arg(ap, const char *);   /* after --no-create */
        while (a != NULL) {
                cr_assert(n < ARGS_MAX);
                args[n++] = a;
                a = va_arg(ap, const char *);
        }
        va_end(ap);
        pid = ah_startv("stages/api/ringflow-api", args, n);
        for (;;) {
                int st;

                if (stats_read(ah_ti.dirfd, "api", &snap, NULL, 0) == 0) {
                        const struct stats_value *v = stats_find(&snap, "listen.port");
                        int port = v != NULL && snap.pid == pid ? (int)v->value : 0;

                        stats_snapshot_free(&snap);
                        if (port > 0)
                                return port;
                }
                cr_assert(waitpid(pid, &st, WNOHANG) == 0, "ringflow-api exited early:\n%s", ah_output(idx));
                cr_assert(clock_mono_ns() < deadline, "ringflow-api did not start listening:\n%s",
                          ah_output(idx));
                ah_pause();
        }
}

void ah_connect(struct http_conn *c, int port)
{
        int err = http_connect(c, port);

        cr_assert(err == 0, "connect to 127.0.0.1:%d: %s", port, strerror(-err));
}

void ah_request(int port, const char *method, const char *path, const char *extra, const void *body,
                size_t len, struct http_resp *r)
{
        struct http_conn c;
        int err;

        ah_connect(&c, port);
        err = http_do(&c, method, path, extra, body, len, r, AH_TIMEOUT_MS);
        cr_assert(err == 0, "%s %s: %s", method, path, strerror(-err));
        http_close(&c);
}
