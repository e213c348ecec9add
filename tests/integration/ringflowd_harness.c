/* SPDX-License-Identifier: MIT */
/* ringflowd_harness.c: starting ringflowd, its stage directory and reading its stats for tests. */
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

#include "ringflowd_harness.h"
#include "stats.h"
#include "test_tmpdir.h"
#include "why.h"

#define RF_CHILDREN_MAX 16

extern char **environ;

struct test_instance rf_ti = { .dirfd = -1 };
char rf_builddir[2048], rf_data_dir[2048], rf_stage_dir[2048];
static pid_t rf_children[RF_CHILDREN_MAX];

static void rf_mkdtemp(char *buf, size_t len, const char *what)
{
        const char *tmp = getenv("TMPDIR");

        snprintf(buf, len, "%s/ringflowd-test-%s-XXXXXX", tmp != NULL ? tmp : "/tmp", what);
        cr_assert(mkdtemp(buf) != NULL, "mkdtemp: %s", strerror(errno));
}

void rf_setup(void)
{
        const char *dir = getenv("RINGFLOW_BUILDDIR");

        if (dir == NULL || dir[0] == '\0')
                cr_skip_test("RINGFLOW_BUILDDIR is not set: run through `make check`");
        snprintf(rf_builddir, sizeof(rf_builddir), "%s", dir);
        signal(SIGPIPE, SIG_IGN);
        test_instance_init(&rf_ti);
        rf_mkdtemp(rf_data_dir, sizeof(rf_data_dir), "data");
        rf_mkdtemp(rf_stage_dir, sizeof(rf_stage_dir), "stages");
}

void rf_teardown(void)
{
        for (int i = 0; i < RF_CHILDREN_MAX; i++) {
                if (rf_children[i] > 0) {
                        kill(rf_children[i], SIGKILL);
                        waitpid(rf_children[i], NULL, 0);
                        rf_children[i] = 0;
                }
        }
        /* Both temp dirs hold only files. */
        test_rmdir_flat(rf_data_dir);
        test_rmdir_flat(rf_stage_dir);
        test_instance_fini(&rf_ti);
}

void rf_start(struct rf_proc *p, int stdin_fd, const char *const *env, ...)
{
        char bin[PATH_MAX + 64];
        char *argv[RF_ARGS_MAX + 8];
        char *envp[RF_ENV_MAX + 1];
        size_t argc = 0, envc = 0;
        const char *a;
        va_list ap;

        snprintf(bin, sizeof(bin), "%s/stages/supervise/ringflowd", rf_builddir);
        cr_assert(access(bin, X_OK) == 0, "%s is not an executable", bin);
        argv[argc++] = bin;
        argv[argc++] = (char *)(uintptr_t)"--instance";
        argv[argc++] = rf_ti.name;
        argv[argc++] = (char *)(uintptr_t)"--data-dir";
        argv[argc++] = rf_data_dir;
        va_start(ap, env);
        while ((a = va_arg(ap, const char *)) != NULL) {
                cr_assert(argc < RF_ARGS_MAX, "too many arguments");
                argv[argc++] = (char *)(uintptr_t)a;
        }
        va_end(ap);
        argv[argc] = NULL;
        for (size_t i = 0; env != NULL && env[i] != NULL; i++) {
                cr_assert(envc < RF_ENV_MAX);
                envp[envc++] = (char *)(uintptr_t)env[i];
        }
        for (size_t i = 0; environ[i] != NULL; i++) {
                cr_assert(envc < RF_ENV_MAX);
                envp[envc++] = environ[i];
        }
        envp[envc] = NULL;

        p->status = -1;
        p->errfd = memfd_create("ringflowd-output", MFD_CLOEXEC);
        cr_assert(p->errfd >= 0, "memfd_create: %s", strerror(errno));
        p->pid = fork();
        cr_assert(p->pid >= 0, "fork: %s", strerror(errno));
        if (p->pid == 0) {
                int in = stdin_fd >= 0 ? stdin_fd : open("/dev/null", O_RDONLY);
                char pidenv[64];

                if (in < 0 || dup2(in, 0) < 0 || dup2(p->errfd, 1) < 0 || dup2(p->errfd, 2) < 0)
                        _exit(126);
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                signal(SIGPIPE, SIG_DFL);
                /* systemd names the pid it watches; only now do we know ours. */
                for (size_t i = 0; i < envc; i++) {
                        if (strcmp(envp[i], "WATCHDOG_PID=self") == 0) {
                                snprintf(pidenv, sizeof(pidenv), "WATCHDOG_PID=%ld", (long)getpid());
                                envp[i] = pidenv;
                        }
                }
                execve(bin, argv, envp);
                _exit(127);
        }
        for (int i = 0; i < RF_CHILDREN_MAX; i++) {
                if (rf_children[i] == 0) {
                        rf_children[i] = p->pid;
                        return;
                }
        }
        cr_assert_fail("more than %d children", RF_CHILDREN_MAX);
}

bool rf_exited(struct rf_proc *p)
{
        int ws;
        pid_t got;

        if (p->pid == 0)
                return true;
        got = waitpid(p->pid, &ws, WNOHANG);
        cr_assert(got >= 0, "waitpid: %s", strerror(errno));
        if (got == 0)
                return false;
        p->status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
        for (int i = 0; i < RF_CHILDREN_MAX; i++)
                if (rf_children[i] == p->pid)
                        rf_children[i] = 0;
        p->pid = 0;
        return true;
}

int rf_wait(struct rf_proc *p, int64_t timeout_ns)
{
        int64_t dl = rf_deadline(timeout_ns);

        while (!rf_exited(p)) {
                cr_assert(clock_mono_ns() < dl, "ringflowd did not exit; it said:\n%s", rf_output(p));
                rf_pause();
        }
        return p->status;
}

char *rf_output(const struct rf_proc *p)
{
        off_t len = p != NULL ? lseek(p->errfd, 0, SEEK_END) : 0;
        char *s = calloc(1, (size_t)(len > 0 ? len : 0) + 1);

        cr_assert(s != NULL);
        if (len > 0)
                cr_assert(pread(p->errfd, s, (size_t)len, 0) == len);
        return s;
}

static void rf_link(const char *target, const char *stage)
{
        char path[8192];

        snprintf(path, sizeof(path), "%s/ringflow-%s", rf_stage_dir, stage);
        cr_assert(access(target, X_OK) == 0, "%s is not an executable", target);
        cr_assert(symlink(target, path) == 0, "symlink %s: %s", path, strerror(errno));
}

void rf_stub(const char *stage)
{
        char target[8192];

        snprintf(target, sizeof(target), "%s/tests/integration/stage-stub", rf_builddir);
        rf_link(target, stage);
}

void rf_real(const char *stage)
{
        char target[8192];

        snprintf(target, sizeof(target), "%s/stages/%s/ringflow-%s", rf_builddir, stage, stage);
        rf_link(target, stage);
}

bool rf_stat_try(const char *stage, const char *name, uint64_t *v)
{
        struct stats_snapshot snap;
        const struct stats_value *sv;
        char why[WHY_MAX];
        bool found = false;

        if (stats_read(rf_ti.dirfd, stage, &snap, why, sizeof(why)) != 0)
                return false;
        sv = stats_find(&snap, name);
        if (sv != NULL) {
                *v = sv->value;
                found = true;
        }
        stats_snapshot_free(&snap);
        return found;
}

uint64_t rf_sv(const char *name)
{
        uint64_t v = 0;

        return rf_stat_try("supervise", name, &v) ? v : 0;
}

bool rf_pid_dead(pid_t pid)
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
        /* "pid (comm) S ...": the state follows the last ')'. */
        rp = strrchr(buf, ')');
        return rp != NULL && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X');
}

int64_t rf_deadline(int64_t timeout_ns)
{
        return clock_mono_ns() + timeout_ns;
}

void rf_pause(void)
{
        struct timespec ts = { 0, RF_POLL_NS };

        nanosleep(&ts, NULL);
}

unsigned rf_stub_log(const char *path, const char *prefix, int64_t *times, pid_t *pids, unsigned n)
{
        FILE *f = fopen(path, "re");
        char line[256];
        unsigned k = 0;

        if (f == NULL)
                return 0;
        while (fgets(line, sizeof(line), f) != NULL) {
                long pid = 0;
                long long t = 0;

                if (strncmp(line, prefix, strlen(prefix)) != 0)
                        continue;
                if (k < n) {
                        sscanf(line + strlen(prefix), " %ld %lld", &pid, &t);
                        if (times != NULL)
                                times[k] = t;
                        if (pids != NULL)
                                pids[k] = (pid_t)pid;
                }
                k++;
        }
        fclose(f);
        return k;
}
