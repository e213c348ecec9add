/* SPDX-License-Identifier: MIT */
/* child.h: finding a stage's binary and starting it as ringflowd's child, without a shell. */
#ifndef RINGFLOW_CHILD_H
#define RINGFLOW_CHILD_H

#include <stddef.h>
#include <sys/types.h>

#define CHILD_ARGS_MAX 256              /* ringflowd's own arguments passed on, and ours */

/* How to start one stage. */
struct child_spec {
        const char *path;               /* absolute path of the binary */
        char *const *argv;              /* argv[0] is the path; NULL-terminated */
        char *const *envp;              /* the environment, NULL-terminated */
        int stdin_fd;                   /* becomes its stdin; -1: /dev/null */
        int own_pgrp;                   /* in a process group of its own (a terminal's ^C is ours alone) */
        int deathsig;                   /* PR_SET_PDEATHSIG: sent to it when we die (0: none) */
};

/*
 * Forks and executes spec->path. The child gets default signal
 * dispositions, a signal mask of only the stop signals (SIGTERM, SIGINT,
 * SIGHUP: a stage reads them from a signalfd), its own process group when asked,
 * the death signal (and exits at once if we died before it was set), and
 * stdin. Returns 0 with *pid once the exec succeeded; -errno when fork
 * failed, or the exec's error (-ENOENT, -EACCES, ...), the child then
 * already reaped. Every other descriptor of ours must be close-on-exec.
 */
int child_spawn(const struct child_spec *spec, pid_t *pid);

/*
 * Finds ringflow-<stage>: in dir when dir is not empty (and only there);
 * else in self_dir (where ringflowd is), then in self_dir/../<stage> (the
 * build tree). Writes the path into out (len bytes). Returns 0, or -ENOENT
 * with why naming every place looked at.
 */
int child_find_binary(const char *dir, const char *self_dir, const char *stage, char *out,
                      size_t len, char *why, size_t whylen);

/*
 * The directory of the running executable (/proc/self/exe), into out.
 * Returns 0 or -errno.
 */
int child_self_dir(char *out, size_t len);

/*
 * A copy of env (NULL-terminated) without the variables that speak to
 * systemd for ringflowd alone (NOTIFY_SOCKET, WATCHDOG_*, LISTEN_*), so a
 * stage never talks to the service manager in our name. Returns a malloc'd
 * array of borrowed strings (free the array only), or NULL when out of memory.
 */
char **child_env(char *const *env);

#endif
