/* SPDX-License-Identifier: MIT */
/* apibench_ws.h: apibench's delivery-latency mode: the whole pipeline under ringflowd, read by a WebSocket client. */
#ifndef RINGFLOW_APIBENCH_WS_H
#define RINGFLOW_APIBENCH_WS_H

#include <limits.h>

struct ws_lat_opts {
        double seconds;                 /* measured, after the warm-up */
        double warmup;                  /* seconds whose events are not counted */
        unsigned rate;                  /* events/s ringflow-gen writes into ringflowd */
        int json;                       /* one JSON object instead of text */
        char ringflowd[PATH_MAX];
        char gen[PATH_MAX];
        char **extra;                   /* more ringflowd flags (--durability normal ...), NULL-terminated */
        int nextra;
};

/*
 * Runs ringflow-gen --rate R --now | ringflowd (every stage, a private
 * instance, an ephemeral port, a temporary data directory), connects to
 * /ws/events and, for every event message, takes CLOCK_REALTIME on arrival
 * minus the event's "received" (epoch ms, so each figure is 0-1 ms high).
 * Prints p50/p99/p99.9/max over the measured seconds next to the api's own
 * deliver_ns histogram. Returns 0, or exits 111 when the pipeline cannot be
 * started or the stream stops.
 */
int ws_latency_run(const struct ws_lat_opts *o);

#endif
