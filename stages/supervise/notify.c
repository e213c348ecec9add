/* SPDX-License-Identifier: MIT */
/* notify.c: sd_notify READY, WATCHDOG, STATUS and STOPPING through libsystemd (see notify.h). */
#include "autoconf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

#include "clock.h"
#include "log.h"
#include "notify.h"

void notify_init(struct notify *n)
{
        uint64_t usec = 0;

        memset(n, 0, sizeof(*n));
        n->enabled = getenv("NOTIFY_SOCKET") != NULL;
        /* Only when WATCHDOG_PID names us (or is unset), as systemd means it. */
        if (n->enabled && sd_watchdog_enabled(0, &usec) > 0)
                n->watchdog_ns = (int64_t)usec * NSEC_PER_USEC;
}

static void notify_send(struct notify *n, const char *msg)
{
        int err;

        if (!n->enabled)
                return;
        err = sd_notify(0, msg);
        if (err < 0 && !n->warned) {
                n->warned = 1;
                log_warnx("sd_notify to NOTIFY_SOCKET=%s: %s (not said again)", getenv("NOTIFY_SOCKET"),
                          strerror(-err));
        }
}

/* Builds "<head>STATUS=<line>" without newlines inside the status, which would start a new field. */
static void notify_with_status(struct notify *n, const char *head, const char *status)
{
        char msg[512];
        size_t len;

        snprintf(msg, sizeof(msg), "%sSTATUS=%s", head, status);
        len = strlen(head);
        for (char *p = msg + len; *p != '\0'; p++)
                if (*p == '\n')
                        *p = ' ';
        notify_send(n, msg);
}

void notify_ready(struct notify *n, const char *status)
{
        notify_with_status(n, n->ready_sent ? "" : "READY=1\n", status);
        n->ready_sent = 1;
}

void notify_watchdog(struct notify *n)
{
        if (n->watchdog_ns > 0)
                notify_send(n, "WATCHDOG=1");
}

void notify_status(struct notify *n, const char *status)
{
        notify_with_status(n, "", status);
}

void notify_stopping(struct notify *n, const char *status)
{
        notify_with_status(n, "STOPPING=1\n", status);
}
