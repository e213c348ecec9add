/* SPDX-License-Identifier: MIT */
/* reply.h: the api's responses and error answers. */
#ifndef RINGFLOW_API_REPLY_H
#define RINGFLOW_API_REPLY_H

#include <stddef.h>
#include <stdint.h>

#include "rbuf.h"

struct api;
struct MHD_Connection;

/*
 * Queues b as an application/json response with status (the buffer is handed
 * to MHD, b is left empty). extra_name/extra_value: one more header, or NULL.
 * Counts the status class in api.stats. Returns MHD_YES/MHD_NO.
 */
int reply_json(struct api *a, struct MHD_Connection *c, unsigned status, struct rbuf *b,
               const char *extra_name, const char *extra_value);

/* The same with another content type (Prometheus text). */
int reply_text(struct api *a, struct MHD_Connection *c, unsigned status, struct rbuf *b,
               const char *content_type);

/*
 * {"error": msg, "field": field (when not NULL or ""), "offset": offset (when >= 0)}
 * with status; 401 adds WWW-Authenticate, 429/503 add Retry-After: retry_s,
 * 405 adds Allow: allow (retry_s and allow otherwise ignored).
 */
int reply_error(struct api *a, struct MHD_Connection *c, unsigned status, const char *msg,
                const char *field, long long offset, unsigned retry_s, const char *allow);

#endif
