/* SPDX-License-Identifier: MIT */
/* notify.h: telling systemd (sd_notify) that the pipeline is ready, alive, and how it is doing. */
#ifndef RINGFLOW_NOTIFY_H
#define RINGFLOW_NOTIFY_H

#include <stdint.h>

/*
 * Everything is a no-op unless NOTIFY_SOCKET is set (not run by systemd
 * with Type=notify). Failures to send are logged once and never fatal:
 * the pipeline matters more than its reports.
 */
struct notify {
        int enabled;                    /* NOTIFY_SOCKET was set */
        int64_t watchdog_ns;            /* WatchdogSec for us, 0: no watchdog pings wanted */
        int ready_sent;
        int warned;
};

/* Reads NOTIFY_SOCKET and the watchdog settings (before the environment is filtered for stages). */
void notify_init(struct notify *n);

/* READY=1 with a status line, once; later calls send only the status. */
void notify_ready(struct notify *n, const char *status);

/* WATCHDOG=1, when systemd asked for them (sd_watchdog_enabled). */
void notify_watchdog(struct notify *n);

/* STATUS=<one line>. */
void notify_status(struct notify *n, const char *status);

/* STOPPING=1 with a status line. */
void notify_stopping(struct notify *n, const char *status);

#endif
