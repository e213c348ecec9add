/* SPDX-License-Identifier: MIT */
/* child.c: fork and exec of a stage with its stdin, process group and death signal (see child.h). */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"
#include "why.h"

/* Only async-signal-safe calls between fork and exec: the child reports a failure by errno on a pipe. */
static void child_fail(int fd, int err)
{
        ssize_t w = write(fd, &err, sizeof(err));

        (void)w;
        _exit(127);
}

static void child_exec(const struct child_spec *spec, pid_t parent, int errfd)
{
        sigset_t stop;
        int in;

        /*
         * Our blocked signals and SIGPIPE's SIG_IGN would be inherited
         * through exec: defaults for all, and only the stop signals stay
         * blocked. Every stage blocks those first thing (stage.c) and reads
         * them from a signalfd; were they unblocked here, a SIGTERM of a
         * drain arriving before the stage blocked them would kill it with
         * the default action instead of stopping it cleanly.
         */
        sigemptyset(&stop);
        sigaddset(&stop, SIGTERM);
        sigaddset(&stop, SIGINT);
        sigaddset(&stop, SIGHUP);
        for (int sig = 1; sig < NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        signal(sig, SIG_DFL);
        if (sigprocmask(SIG_SETMASK, &stop, NULL) != 0)
                child_fail(errfd, errno);
        if (spec->own_pgrp && setpgid(0, 0) != 0)
                child_fail(errfd, errno);
        if (spec->deathsig != 0) {
                if (prctl(PR_SET_PDEATHSIG, spec->deathsig) != 0)
                        child_fail(errfd, errno);
                /*
                 * The supervisor may have died between fork and prctl: the
                 * death signal would then never come, and the stage would
                 * run on beside the next supervisor's.
                 */
                if (getppid() != parent)
                        _exit(111);
        }
        in = spec->stdin_fd;
        if (in < 0) {
                in = open("/dev/null", O_RDONLY);
                if (in < 0)
                        child_fail(errfd, errno);
        }
        if (in != STDIN_FILENO) {
                if (dup2(in, STDIN_FILENO) < 0)
                        child_fail(errfd, errno);
                if (spec->stdin_fd < 0)
                        close(in);
        }
        execve(spec->path, spec->argv, spec->envp);
        child_fail(errfd, errno);
}

int child_spawn(const struct child_spec *spec, pid_t *pid)
{
        pid_t parent = getpid(), p;
        int fds[2], err = 0;
        ssize_t got;

        if (pipe2(fds, O_CLOEXEC) != 0)
                return -errno;
        p = fork();
        if (p < 0) {
                err = -errno;
                close(fds[0]);
                close(fds[1]);
                return err;
        }
        if (p == 0) {
                close(fds[0]);
                child_exec(spec, parent, fds[1]);
        }
        close(fds[1]);
        /* The pipe closes at a successful exec (close-on-exec) or carries the errno of a failure. */
        do
                got = read(fds[0], &err, sizeof(err));
        while (got < 0 && errno == EINTR);
        close(fds[0]);
        if (got == (ssize_t)sizeof(err)) {
                while (waitpid(p, NULL, 0) < 0 && errno == EINTR)
                        ;
                return -(err > 0 ? err : EIO);
        }
        *pid = p;
        return 0;
}

int child_self_dir(char *out, size_t len)
{
        char buf[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
        char *slash;

        if (n < 0)
                return -errno;
        buf[n] = '\0';
        slash = strrchr(buf, '/');
        if (slash == NULL)
                return -EINVAL;
        *slash = '\0';
        if ((size_t)snprintf(out, len, "%s", buf[0] != '\0' ? buf : "/") >= len)
                return -ENAMETOOLONG;
        return 0;
}

/* 1 when path is an executable regular file. */
static int child_executable(const char *path)
{
        return access(path, X_OK) == 0;
}

int child_find_binary(const char *dir, const char *self_dir, const char *stage, char *out,
                      size_t len, char *why, size_t whylen)
{
        char a[PATH_MAX], b[PATH_MAX];

        if (dir != NULL && dir[0] != '\0') {
                if ((size_t)snprintf(out, len, "%s/ringflow-%s", dir, stage) >= len)
                        return why_set(why, whylen, -ENAMETOOLONG, "stage_dir %s: path too long", dir);
                if (child_executable(out))
                        return 0;
                return why_set(why, whylen, -ENOENT, "ringflow-%s: %s is not an executable (%s)",
                               stage, out, strerror(errno));
        }
        snprintf(a, sizeof(a), "%s/ringflow-%s", self_dir, stage);
        snprintf(b, sizeof(b), "%s/../%s/ringflow-%s", self_dir, stage, stage);
        if (child_executable(a)) {
                if ((size_t)snprintf(out, len, "%s", a) >= len)
                        return why_set(why, whylen, -ENAMETOOLONG, "%s: path too long", a);
                return 0;
        }
        /* The build tree: build/stages/supervise/ringflowd next to build/stages/<stage>/. */
        if (child_executable(b)) {
                char real[PATH_MAX];

                /* Logs and ps read better without "supervise/../". */
                if ((size_t)snprintf(out, len, "%s", realpath(b, real) != NULL ? real : b) >= len)
                        return why_set(why, whylen, -ENAMETOOLONG, "%s: path too long", b);
                return 0;
        }
        return why_set(why, whylen, -ENOENT,
                       "ringflow-%s: no executable at %s nor %s (set stage_dir, or drop %s from stages)",
                       stage, a, b, stage);
}

char **child_env(char *const *env)
{
        static const char *const drop[] = { "NOTIFY_SOCKET=", "WATCHDOG_PID=", "WATCHDOG_USEC=",
                                            "LISTEN_PID=", "LISTEN_FDS=", "LISTEN_FDNAMES=", NULL };
        size_t n = 0, k = 0;
        char **out;

        while (env != NULL && env[n] != NULL)
                n++;
        out = calloc(n + 1, sizeof(*out));
        if (out == NULL)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                int keep = 1;

                for (size_t j = 0; drop[j] != NULL; j++)
                        if (strncmp(env[i], drop[j], strlen(drop[j])) == 0)
                                keep = 0;
                if (keep)
                        out[k++] = env[i];
        }
        out[k] = NULL;
        return out;
}
