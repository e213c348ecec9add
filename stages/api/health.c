/* SPDX-License-Identifier: MIT */
/* health.c: GET /api/health: 200 when every stage is up and heartbeating, 503 with the reasons otherwise. */
#include "autoconf.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "metrics.h"
#include "route.h"

/*
 * The stages that count are those with a .stats file in the instance (the
 * supervisor's included): a stage that ran once and is gone now is down.
 * "down" when no stage but the api itself is up, "degraded" when some are.
 */
int health_get(struct api *a, struct MHD_Connection *c)
{
        struct view *v = malloc(sizeof(*v));
        struct rbuf o = { 0 }, reasons = { 0 };
        unsigned others = 0, others_up = 0, nreasons = 0;
        const char *status;
        int ret;

        if (v == NULL)
                return reply_error(a, c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory", NULL, -1, 0, NULL);
        /* Health is polled often and needs only the stages: no ring is opened. */
        view_take(a, v, 0);
        rbuf_puts(&o, "{\"stages\":{");
        rbuf_puts(&reasons, "[");
        for (unsigned i = 0; i < v->nstages; i++) {
                const struct view_stage *s = &v->stages[i];
                char why[160];

                if (strcmp(s->name, "api") != 0) {
                        others++;
                        others_up += s->up != 0;
                }
                rbuf_printf(&o, "%s", i > 0 ? "," : "");
                rbuf_json_str(&o, s->name, strlen(s->name));
                rbuf_printf(&o, ":{\"up\":%s,\"pid\":%d,\"heartbeat_age_ms\":%lld,", s->up ? "true" : "false",
                            (int)s->pid, (long long)s->hb_age_ms);
                rbuf_json_kv(&o, "state", s->state);
                rbuf_puts(&o, "}");
                if (s->up)
                        continue;
                if (s->err != 0)
                        snprintf(why, sizeof(why), "%s: %s", s->name, s->why);
                else if (!s->snap.alive)
                        snprintf(why, sizeof(why), "%s: not running (last pid %d)", s->name, (int)s->snap.pid);
                else if (s->hb_age_ms < 0 || s->hb_age_ms > a->cfg.health_stale / 1000000)
                        snprintf(why, sizeof(why), "%s: no heartbeat for %lld ms", s->name,
                                 (long long)s->hb_age_ms);
                else
                        snprintf(why, sizeof(why), "%s: %s", s->name, s->state);
                rbuf_printf(&reasons, "%s", nreasons++ > 0 ? "," : "");
                rbuf_json_str(&reasons, why, strlen(why));
        }
        if (others == 0) {
                rbuf_printf(&reasons, "%s\"no pipeline stage has run in this instance\"",
                            nreasons++ > 0 ? "," : "");
        }
        rbuf_puts(&reasons, "]");
        status = nreasons == 0 ? "ok" : others_up == 0 ? "down" : "degraded";
        rbuf_puts(&o, "},\"status\":");
        rbuf_json_str(&o, status, strlen(status));
        rbuf_puts(&o, ",\"reasons\":");
        rbuf_put(&o, reasons.p != NULL ? reasons.p : "[]", reasons.p != NULL ? reasons.len : 2);
        rbuf_puts(&o, "}");
        rbuf_free(&reasons);
        view_free(v);
        free(v);
        ret = reply_json(a, c, nreasons == 0 ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, &o, NULL, NULL);
        return ret;
}
