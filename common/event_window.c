/* SPDX-License-Identifier: MIT */
/* event_window.c: the layouts of window-result and late-event records. */
#include "autoconf.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "event.h"
#include "event_internal.h"
#include "why.h"

size_t event_window_size(const struct event_window_view *w)
{
        return sizeof(struct event_window_hdr) + (size_t)w->name_len + w->key_len + w->aggregates_len + 3;
}

long event_window_encode(void *out, size_t cap, const struct event_window_view *w)
{
        struct event_window_hdr h;
        char *p = out;
        size_t need;

        if (w->name_len == 0 || w->name_len > EVENT_WINDOW_NAME_MAX || w->key_len < 2 ||
            w->key_len > UINT16_MAX || w->aggregates_len < 2 ||
            w->aggregates_len > UINT32_MAX - sizeof(h) - 3 - UINT16_MAX - EVENT_WINDOW_NAME_MAX ||
            w->end_ms < w->start_ms)
                return -EINVAL;
        need = event_window_size(w);
        if (need > cap)
                return -ENOBUFS;
        memset(&h, 0, sizeof(h));
        h.start_ms = w->start_ms;
        h.end_ms = w->end_ms;
        h.emitted_ns = w->emitted_ns;
        h.count = w->count;
        h.name_len = (uint16_t)w->name_len;
        h.key_len = (uint16_t)w->key_len;
        h.aggregates_len = w->aggregates_len;
        h.final = w->final ? 1 : 0;
        memcpy(p, &h, sizeof(h));
        p += sizeof(h);
        memcpy(p, w->name, w->name_len);
        p[w->name_len] = '\0';
        p += w->name_len + 1;
        memcpy(p, w->key, w->key_len);
        p[w->key_len] = '\0';
        p += w->key_len + 1;
        memcpy(p, w->aggregates, w->aggregates_len);
        p[w->aggregates_len] = '\0';
        return (long)need;
}

int event_window_decode(const void *payload, size_t len, struct event_window_view *w,
                        char *why, size_t whylen)
{
        const char *b = payload;
        struct event_window_hdr h;
        uint64_t need;
        unsigned i;

        if (len < sizeof(h))
                return why_set(why, whylen, -EBADMSG,
                               "window record of %zu bytes is shorter than its %zu-byte header",
                               len, sizeof(h));
        memcpy(&h, b, sizeof(h));
        need = sizeof(h) + (uint64_t)h.name_len + h.key_len + h.aggregates_len + 3;
        if (need != len)
                return why_set(why, whylen, -EBADMSG,
                               "window record is %zu bytes but its lengths (name %u, key %u, "
                               "aggregates %u) need %llu", len, h.name_len, h.key_len,
                               h.aggregates_len, (unsigned long long)need);
        if (h.name_len == 0 || h.name_len > EVENT_WINDOW_NAME_MAX || h.key_len < 2 || h.aggregates_len < 2)
                return why_set(why, whylen, -EBADMSG,
                               "window record has a name of %u bytes, a key of %u, aggregates of %u",
                               h.name_len, h.key_len, h.aggregates_len);
        if (h.end_ms < h.start_ms || h.final > 1)
                return why_set(why, whylen, -EBADMSG, "window record has start %lld, end %lld, final %u",
                               (long long)h.start_ms, (long long)h.end_ms, h.final);
        for (i = 0; i < sizeof(h.reserved); i++)
                if (h.reserved[i] != 0)
                        return why_set(why, whylen, -EBADMSG, "window record has reserved bytes set");
        w->name = b + sizeof(h);
        w->key = w->name + h.name_len + 1;
        w->aggregates = w->key + h.key_len + 1;
        if (!event_cstr_ok(w->name, h.name_len) || !event_cstr_ok(w->key, h.key_len) ||
            !event_cstr_ok(w->aggregates, h.aggregates_len))
                return why_set(why, whylen, -EBADMSG,
                               "window record strings are not NUL-terminated where their lengths say");
        /* The store keeps them as JSON text: their outer shape is checked here, once. */
        if (w->key[0] != '[' || w->key[h.key_len - 1] != ']' || w->aggregates[0] != '{' ||
            w->aggregates[h.aggregates_len - 1] != '}')
                return why_set(why, whylen, -EBADMSG,
                               "window record key is not a JSON array or its aggregates not an object");
        w->start_ms = h.start_ms;
        w->end_ms = h.end_ms;
        w->emitted_ns = h.emitted_ns;
        w->count = h.count;
        w->final = h.final;
        w->name_len = h.name_len;
        w->key_len = h.key_len;
        w->aggregates_len = h.aggregates_len;
        return 0;
}

size_t event_late_size(const struct event_late_view *l)
{
        return sizeof(struct event_late_hdr) + (size_t)l->window_len + l->id_len + 2;
}

long event_late_encode(void *out, size_t cap, const struct event_late_view *l)
{
        struct event_late_hdr h;
        char *p = out;
        size_t need;

        if (l->window_len == 0 || l->window_len > EVENT_WINDOW_NAME_MAX || l->id_len == 0 ||
            l->id_len > UINT16_MAX)
                return -EINVAL;
        need = event_late_size(l);
        if (need > cap)
                return -ENOBUFS;
        memset(&h, 0, sizeof(h));
        h.seq = l->seq;
        h.timestamp_ms = l->timestamp_ms;
        h.watermark_ms = l->watermark_ms;
        h.received_ns = l->received_ns;
        h.window_len = (uint16_t)l->window_len;
        h.id_len = (uint16_t)l->id_len;
        memcpy(p, &h, sizeof(h));
        p += sizeof(h);
        memcpy(p, l->window, l->window_len);
        p[l->window_len] = '\0';
        p += l->window_len + 1;
        memcpy(p, l->id, l->id_len);
        p[l->id_len] = '\0';
        return (long)need;
}

int event_late_decode(const void *payload, size_t len, struct event_late_view *l, char *why, size_t whylen)
{
        const char *b = payload;
        struct event_late_hdr h;
        uint64_t need;

        if (len < sizeof(h))
                return why_set(why, whylen, -EBADMSG,
                               "late record of %zu bytes is shorter than its %zu-byte header",
                               len, sizeof(h));
        memcpy(&h, b, sizeof(h));
        need = sizeof(h) + (uint64_t)h.window_len + h.id_len + 2;
        if (need != len)
                return why_set(why, whylen, -EBADMSG,
                               "late record is %zu bytes but its lengths (window %u, id %u) need %llu",
                               len, h.window_len, h.id_len, (unsigned long long)need);
        if (h.window_len == 0 || h.window_len > EVENT_WINDOW_NAME_MAX || h.id_len == 0 || h.reserved != 0)
                return why_set(why, whylen, -EBADMSG,
                               "late record has a window name of %u bytes, an id of %u, reserved %#x",
                               h.window_len, h.id_len, h.reserved);
        l->window = b + sizeof(h);
        l->id = l->window + h.window_len + 1;
        if (!event_cstr_ok(l->window, h.window_len) || !event_cstr_ok(l->id, h.id_len))
                return why_set(why, whylen, -EBADMSG,
                               "late record strings are not NUL-terminated where their lengths say");
        l->seq = h.seq;
        l->timestamp_ms = h.timestamp_ms;
        l->watermark_ms = h.watermark_ms;
        l->received_ns = h.received_ns;
        l->window_len = h.window_len;
        l->id_len = h.id_len;
        return 0;
}
