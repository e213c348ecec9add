/* SPDX-License-Identifier: MIT */
/* ws.c: GET /ws/events: the WebSocket handshake over MHD's upgrade, then wslay on the socket from live_poll. */
#include "autoconf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <wslay/wslay.h>

#include "clock.h"
#include "live_priv.h"
#include "log.h"
#include "why.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_KEY_LEN 24u                  /* base64 of the 16-byte Sec-WebSocket-Key */
#define WS_WSLAY_QUEUE 8u               /* messages handed to wslay ahead of the socket */
#define WS_CLOSE_POLICY 1008u           /* RFC 6455: policy violation ("too slow") */
#define WS_CLOSE_UNSUPPORTED 1003u      /* binary frames: we only speak text */

static char ws_seen;

/* ---- SHA-1 (RFC 3174), only for Sec-WebSocket-Accept ---- */

static uint32_t rol(uint32_t x, unsigned n)
{
        return (x << n) | (x >> (32 - n));
}

static void sha1_block(uint32_t h[5], const unsigned char *p)
{
        uint32_t w[80], a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];

        for (int i = 0; i < 16; i++)
                w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
                       (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
        for (int i = 16; i < 80; i++)
                w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        for (int i = 0; i < 80; i++) {
                uint32_t f, k, t;

                if (i < 20) {
                        f = (b & c) | (~b & d);
                        k = 0x5a827999;
                } else if (i < 40) {
                        f = b ^ c ^ d;
                        k = 0x6ed9eba1;
                } else if (i < 60) {
                        f = (b & c) | (b & d) | (c & d);
                        k = 0x8f1bbcdc;
                } else {
                        f = b ^ c ^ d;
                        k = 0xca62c1d6;
                }
                t = rol(a, 5) + f + e + k + w[i];
                e = d;
                d = c;
                c = rol(b, 30);
                b = a;
                a = t;
        }
        h[0] += a;
        h[1] += b;
        h[2] += c;
        h[3] += d;
        h[4] += e;
}

/* Digests n bytes (n < 120: a key and the GUID) into out. */
static void sha1_short(const void *data, size_t n, unsigned char out[20])
{
        uint32_t h[5] = { 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0 };
        unsigned char buf[128] = { 0 };
        size_t blocks = (n + 8) / 64 + 1;
        uint64_t bits = (uint64_t)n * 8;

        memcpy(buf, data, n);
        buf[n] = 0x80;
        for (size_t i = 0; i < 8; i++)
                buf[blocks * 64 - 1 - i] = (unsigned char)(bits >> (8 * i));
        for (size_t i = 0; i < blocks; i++)
                sha1_block(h, buf + 64 * i);
        for (int i = 0; i < 20; i++)
                out[i] = (unsigned char)(h[i / 4] >> (24 - 8 * (i % 4)));
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Writes base64 of n bytes into out (4 * ceil(n / 3) + 1 bytes). */
static void base64(const unsigned char *in, size_t n, char *out)
{
        size_t o = 0;

        for (size_t i = 0; i < n; i += 3) {
                uint32_t v = (uint32_t)in[i] << 16;

                if (i + 1 < n)
                        v |= (uint32_t)in[i + 1] << 8;
                if (i + 2 < n)
                        v |= in[i + 2];
                out[o++] = b64[v >> 18];
                out[o++] = b64[(v >> 12) & 63];
                out[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
                out[o++] = i + 2 < n ? b64[v & 63] : '=';
        }
        out[o] = '\0';
}

/* 1 when key is the base64 of 16 bytes: 22 alphabet characters and "==". */
static int key_valid(const char *key)
{
        if (key == NULL || strlen(key) != WS_KEY_LEN || strcmp(key + 22, "==") != 0)
                return 0;
        for (int i = 0; i < 22; i++)
                if (strchr(b64, key[i]) == NULL || key[i] == '\0')
                        return 0;
        /* The last character before the padding carries 4 bits of data and 2 zero bits. */
        return ((strchr(b64, key[21]) - b64) & 15) == 0;
}

/* 1 when the comma-separated header value has token (case-insensitive). */
static int has_token(const char *v, const char *token)
{
        size_t tl = strlen(token);

        while (v != NULL && *v != '\0') {
                size_t n;

                v += strspn(v, " \t,");
                n = strcspn(v, ",");
                while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
                        n--;
                if (n == tl && strncasecmp(v, token, tl) == 0)
                        return 1;
                v += strcspn(v, ",");
        }
        return 0;
}

/* 1 when s (n bytes) is valid UTF-8 (text frames must be; wslay does not check). */
static int utf8_valid(const unsigned char *s, size_t n)
{
        size_t i = 0;

        while (i < n) {
                unsigned char c = s[i];
                uint32_t cp;
                size_t len;

                if (c < 0x80) {
                        i++;
                        continue;
                }
                if ((c & 0xe0) == 0xc0) {
                        len = 2;
                        cp = c & 0x1f;
                } else if ((c & 0xf0) == 0xe0) {
                        len = 3;
                        cp = c & 0x0f;
                } else if ((c & 0xf8) == 0xf0) {
                        len = 4;
                        cp = c & 0x07;
                } else {
                        return 0;
                }
                if (i + len > n)
                        return 0;
                for (size_t k = 1; k < len; k++) {
                        if ((s[i + k] & 0xc0) != 0x80)
                                return 0;
                        cp = cp << 6 | (s[i + k] & 0x3f);
                }
                if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
                    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
                        return 0;
                i += len;
        }
        return 1;
}

/* ---- wslay callbacks ---- */

static ssize_t ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *ud)
{
        struct live_client *c = ud;
        ssize_t n;

        (void)flags;
        if (c->extra_off < c->extra_len) {
                /* What MHD had read past the request comes first. */
                n = (ssize_t)(c->extra_len - c->extra_off < len ? c->extra_len - c->extra_off : len);
                memcpy(buf, c->extra + c->extra_off, (size_t)n);
                c->extra_off += (size_t)n;
                return n;
        }
        n = recv(c->fd, buf, len, 0);
        if (n > 0)
                return n;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        else
                wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
}

/* Writes what is buffered. Returns 0 when all is out, 1 when the socket is full, -1 on error. */
static int ws_flush(struct live_client *c)
{
        while (c->out_head < c->out_tail) {
                ssize_t n = send(c->fd, c->out + c->out_head, c->out_tail - c->out_head, MSG_NOSIGNAL);

                if (n < 0) {
                        if (errno == EAGAIN || errno == EWOULDBLOCK)
                                return 1;
                        if (errno == EINTR)
                                continue;
                        return -1;
                }
                c->out_head += (size_t)n;
        }
        c->out_head = c->out_tail = 0;
        return 0;
}

/*
 * wslay writes each frame with its own call: they are gathered here and
 * written with one send per LIVE_WS_OUT_BYTES, not one per message.
 */
static ssize_t ws_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *ud)
{
        struct live_client *c = ud;
        size_t room;

        (void)flags;
        if (c->out_tail + len > LIVE_WS_OUT_BYTES) {
                int rc = ws_flush(c);

                if (rc < 0) {
                        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
                        return -1;
                }
                if (c->out_head > 0) {
                        memmove(c->out, c->out + c->out_head, c->out_tail - c->out_head);
                        c->out_tail -= c->out_head;
                        c->out_head = 0;
                }
        }
        room = LIVE_WS_OUT_BYTES - c->out_tail;
        if (room == 0) {
                wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
                return -1;
        }
        if (len > room)
                len = room;
        memcpy(c->out + c->out_tail, data, len);
        c->out_tail += len;
        return (ssize_t)len;
}

/* Answers a subscribe problem: {"kind":"error","error":...,"field":...}. */
static void ws_answer_error(struct live_client *c, const char *msg, const char *field)
{
        struct json_object *o = json_object_new_object();
        const char *s;

        if (o == NULL)
                return;
        json_object_object_add(o, "kind", json_object_new_string("error"));
        json_object_object_add(o, "error", json_object_new_string(msg));
        if (field != NULL)
                json_object_object_add(o, "field", json_object_new_string(field));
        s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
        live_queue_raw(c, s, strlen(s));
        json_object_put(o);
}

static int sub_str(struct json_object *sub, const char *name, char *dst, char *field, size_t flen)
{
        struct json_object *v;
        const char *s;

        dst[0] = '\0';
        if (!json_object_object_get_ex(sub, name, &v) || v == NULL)
                return 0;
        snprintf(field, flen, "subscribe.%s", name);
        if (!json_object_is_type(v, json_type_string))
                return -1;
        s = json_object_get_string(v);
        if ((size_t)json_object_get_string_len(v) > LIVE_FILTER_MAX || strlen(s) != (size_t)json_object_get_string_len(v))
                return -1;
        memcpy(dst, s, strlen(s) + 1);
        return 0;
}

/*
 * Applies {"subscribe":{"type","source","window","kinds":[...]}} (every
 * member optional) and answers {"kind":"subscribed","filter":{...}}, or an
 * error naming the field; the old filter stays on an error.
 */
static void ws_subscribe(struct live_client *c, const char *msg, size_t len)
{
        struct json_tokener *tok = json_tokener_new();
        struct json_object *root = NULL, *sub, *kinds, *ans, *flt, *ka;
        struct live_filter f;
        char field[32] = "";
        const char *s;

        if (tok == NULL)
                return;
        root = json_tokener_parse_ex(tok, msg, (int)len);
        if (root == NULL || json_tokener_get_parse_end(tok) != len) {
                ws_answer_error(c, "not one JSON object", NULL);
                goto out;
        }
        if (!json_object_is_type(root, json_type_object) ||
            !json_object_object_get_ex(root, "subscribe", &sub) || json_object_object_length(root) != 1) {
                ws_answer_error(c, "expected {\"subscribe\":{...}}", NULL);
                goto out;
        }
        if (!json_object_is_type(sub, json_type_object)) {
                ws_answer_error(c, "must be an object", "subscribe");
                goto out;
        }
        json_object_object_foreach(sub, key, val) {
                (void)val;
                if (strcmp(key, "type") != 0 && strcmp(key, "source") != 0 &&
                    strcmp(key, "window") != 0 && strcmp(key, "kinds") != 0) {
                        ws_answer_error(c, "unknown member (type, source, window, kinds)", "subscribe");
                        goto out;
                }
        }
        memset(&f, 0, sizeof(f));
        if (sub_str(sub, "type", f.type, field, sizeof(field)) < 0 ||
            sub_str(sub, "source", f.source, field, sizeof(field)) < 0 ||
            sub_str(sub, "window", f.window, field, sizeof(field)) < 0) {
                ws_answer_error(c, "must be a string of at most 128 bytes without NUL", field);
                goto out;
        }
        f.kinds = LIVE_K_EVENTS | LIVE_K_WINDOWS;
        if (json_object_object_get_ex(sub, "kinds", &kinds) && kinds != NULL) {
                size_t n;

                if (!json_object_is_type(kinds, json_type_array)) {
                        ws_answer_error(c, "must be an array of \"events\", \"windows\"", "subscribe.kinds");
                        goto out;
                }
                f.kinds = 0;
                n = json_object_array_length(kinds);
                for (size_t i = 0; i < n; i++) {
                        struct json_object *k = json_object_array_get_idx(kinds, i);

                        if (!json_object_is_type(k, json_type_string) ||
                            live_filter_kind(&f.kinds, json_object_get_string(k),
                                             (size_t)json_object_get_string_len(k)) < 0) {
                                ws_answer_error(c, "must be an array of \"events\", \"windows\"",
                                                "subscribe.kinds");
                                goto out;
                        }
                }
        }
        c->f = f;
        ans = json_object_new_object();
        flt = json_object_new_object();
        ka = json_object_new_array();
        if (ans == NULL || flt == NULL || ka == NULL) {
                json_object_put(ans);
                json_object_put(flt);
                json_object_put(ka);
                goto out;
        }
        json_object_object_add(flt, "type", f.type[0] ? json_object_new_string(f.type) : NULL);
        json_object_object_add(flt, "source", f.source[0] ? json_object_new_string(f.source) : NULL);
        json_object_object_add(flt, "window", f.window[0] ? json_object_new_string(f.window) : NULL);
        if (f.kinds & LIVE_K_EVENTS)
                json_object_array_add(ka, json_object_new_string("events"));
        if (f.kinds & LIVE_K_WINDOWS)
                json_object_array_add(ka, json_object_new_string("windows"));
        json_object_object_add(flt, "kinds", ka);
        json_object_object_add(ans, "kind", json_object_new_string("subscribed"));
        json_object_object_add(ans, "filter", flt);
        s = json_object_to_json_string_ext(ans, JSON_C_TO_STRING_PLAIN);
        live_queue_raw(c, s, strlen(s));
        json_object_put(ans);
out:
        json_object_put(root);
        json_tokener_free(tok);
}

static void ws_on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                      void *ud)
{
        struct live_client *c = ud;

        if (c->closing)
                return;
        if (arg->opcode == WSLAY_TEXT_FRAME) {
                if (!utf8_valid(arg->msg, arg->msg_length)) {
                        wslay_event_queue_close(ctx, WSLAY_CODE_INVALID_FRAME_PAYLOAD_DATA,
                                                (const uint8_t *)"invalid UTF-8", 13);
                        return;
                }
                ws_subscribe(c, (const char *)arg->msg, arg->msg_length);
        } else if (arg->opcode == WSLAY_BINARY_FRAME) {
                wslay_event_queue_close(ctx, WS_CLOSE_UNSUPPORTED, (const uint8_t *)"text only", 9);
        }
        /* Pings are answered and pongs taken by wslay itself; close is queued by it too. */
}

/* ---- the socket ---- */

void ws_destroy(struct live *l, struct live_client *c)
{
        if (c->fd >= 0)
                epoll_ctl(live_epfd(l), EPOLL_CTL_DEL, c->fd, NULL);
        if (c->ctx != NULL)
                wslay_event_context_free(c->ctx);
        /* MHD owns an upgraded socket: it closes it on its next run. */
        if (c->urh != NULL)
                MHD_upgrade_action(c->urh, MHD_UPGRADE_ACTION_CLOSE);
        else if (c->fd >= 0)
                close(c->fd);
        live_client_remove(l, c);
        free(c->extra);
        free(c->out);
        free(c->q);
        free(c);
}

/*
 * Hands queued messages to wslay a few at a time (it copies each one) and
 * writes them, until the queue is empty or the socket is full. Returns -1
 * when the client is finished (error, or the close handshake is over).
 */
static int ws_pump(struct live_client *c)
{
        int rc;

        if ((rc = ws_flush(c)) != 0)
                return rc < 0 ? -1 : 0;
        for (;;) {
                while (!c->closing && live_queued(c) >= sizeof(uint32_t) &&
                       wslay_event_get_queued_msg_count(c->ctx) < WS_WSLAY_QUEUE) {
                        struct wslay_event_msg m = { .opcode = WSLAY_TEXT_FRAME };
                        uint32_t len;

                        memcpy(&len, c->q + c->head, sizeof(len));
                        m.msg = (const uint8_t *)c->q + c->head + sizeof(len);
                        m.msg_length = len;
                        if (wslay_event_queue_msg(c->ctx, &m) != 0)
                                break;
                        c->head += sizeof(len) + len;
                        if (c->head == c->tail)
                                c->head = c->tail = 0;
                }
                if (!wslay_event_want_write(c->ctx))
                        break;
                if (wslay_event_send(c->ctx) != 0)
                        return -1;
                /* Still wanting to write after a send: the socket is full (EPOLLOUT resumes). */
                if (wslay_event_want_write(c->ctx) || c->closing || live_queued(c) == 0)
                        break;
        }
        if ((rc = ws_flush(c)) != 0)
                return rc < 0 ? -1 : 0;
        if (!wslay_event_want_read(c->ctx) && !wslay_event_want_write(c->ctx))
                return -1;
        return 0;
}

int ws_service(struct live *l, struct live_client *c, int64_t now)
{
        (void)now;
        if (wslay_event_want_read(c->ctx) && wslay_event_recv(c->ctx) != 0) {
                ws_destroy(l, c);
                return 1;
        }
        if (ws_pump(c) < 0)
                ws_destroy(l, c);
        return 1;
}

int ws_tick(struct live *l, struct live_client *c, int64_t now)
{
        size_t before = live_queued(c);

        /* Whoever started it (the peer, wslay on a bad frame, us), a close handshake has a deadline. */
        if (!c->closing && wslay_event_get_close_sent(c->ctx)) {
                c->closing = 1;
                c->close_by = now + LIVE_WS_CLOSE_NS;
        }
        if (c->closing) {
                if (now > c->close_by) {
                        ws_destroy(l, c);
                        return 1;
                }
        } else if (c->full_since != 0 && now - c->full_since > LIVE_SLOW_CLOSE_NS) {
                log_info("live: closing a WebSocket client too slow to read the stream (%" PRIu64
                         " events skipped)", c->skipped);
                live_counters(l)->closed_slow++;
                c->closing = 1;
                c->close_by = now + LIVE_WS_CLOSE_NS;
                c->head = c->tail = 0;
                wslay_event_queue_close(c->ctx, WS_CLOSE_POLICY, (const uint8_t *)"too slow", 8);
        } else {
                live_catch_up(c, now);
                if (now - c->last_ping >= LIVE_PING_NS) {
                        struct wslay_event_msg m = { .opcode = WSLAY_PING };

                        c->last_ping = now;
                        wslay_event_queue_msg(c->ctx, &m);
                }
        }
        if (ws_pump(c) < 0) {
                ws_destroy(l, c);
                return 1;
        }
        return live_queued(c) != before;
}

int ws_client_start(struct live *l, struct MHD_Connection *conn, int sock,
                    struct MHD_UpgradeResponseHandle *urh, const char *extra_in, size_t extra_in_size)
{
        static const struct wslay_event_callbacks cb = {
                .recv_callback = ws_recv,
                .send_callback = ws_send,
                .on_msg_recv_callback = ws_on_msg,
        };
        struct live_client *c;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET };
        int64_t now = clock_mono_ns();
        int fl;

        c = calloc(1, sizeof(*c));
        if (c == NULL)
                goto fail;
        c->ws = 1;
        c->fd = sock;
        c->urh = urh;
        c->last_out = now;
        c->last_ping = now;
        c->q = malloc(LIVE_QUEUE_BYTES);
        c->out = malloc(LIVE_WS_OUT_BYTES);
        if (c->q == NULL || c->out == NULL)
                goto fail;
        /* The request's own filter arguments were checked before the 101. */
        if (conn == NULL || live_filter_args(conn, &c->f, NULL, 0) < 0)
                live_filter_set(&c->f, NULL, NULL, NULL, NULL, NULL, 0);
        if (extra_in_size > 0) {
                c->extra = malloc(extra_in_size);
                if (c->extra == NULL)
                        goto fail;
                memcpy(c->extra, extra_in, extra_in_size);
                c->extra_len = extra_in_size;
        }
        fl = fcntl(sock, F_GETFL);
        if (fl < 0 || fcntl(sock, F_SETFL, fl | O_NONBLOCK) < 0)
                goto fail;
        if (wslay_event_context_server_init(&c->ctx, &cb, c) != 0) {
                c->ctx = NULL;
                goto fail;
        }
        wslay_event_config_set_max_recv_msg_length(c->ctx, LIVE_WS_MAX_MESSAGE);
        ev.data.ptr = c;
        if (epoll_ctl(live_epfd(l), EPOLL_CTL_ADD, sock, &ev) < 0)
                goto fail;
        live_client_add(l, c);
        /* Bytes MHD already read may hold a whole subscribe message. */
        if (c->extra_len > 0)
                ws_service(l, c, now);
        return 0;
fail:
        log_warn("live: setting up a WebSocket client");
        if (c != NULL) {
                if (c->ctx != NULL)
                        wslay_event_context_free(c->ctx);
                free(c->extra);
                free(c->out);
                free(c->q);
                free(c);
        }
        if (urh != NULL)
                MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
        else
                close(sock);
        return -ENOMEM;
}

/* MHD has sent the 101: the socket is ours to drive (and MHD's to close). */
static void ws_upgraded(void *cls, struct MHD_Connection *conn, void *con_cls, const char *extra_in,
                        size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
        (void)con_cls;
        ws_client_start(cls, conn, sock, urh, extra_in, extra_in_size);
}

int live_handle_ws(struct live *l, struct MHD_Connection *conn, void **con_cls)
{
        const char *key, *ver, *up, *con;
        struct live_filter f;
        struct MHD_Response *r;
        char buf[WS_KEY_LEN + sizeof(WS_GUID)], accept[32];
        unsigned char dig[20];
        int ret, rc;

        if (*con_cls == NULL) {
                *con_cls = &ws_seen;
                return MHD_YES;
        }
        if (l == NULL)
                return live_reply_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "the api is stopping", NULL);
        up = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_UPGRADE);
        con = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONNECTION);
        ver = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-WebSocket-Version");
        key = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Sec-WebSocket-Key");
        if (!has_token(up, "websocket") || !has_token(con, "upgrade"))
                return live_reply_error(conn, MHD_HTTP_BAD_REQUEST,
                                        "a WebSocket upgrade needs Upgrade: websocket and Connection: Upgrade",
                                        "Upgrade");
        if (ver == NULL || strcmp(ver, "13") != 0) {
                /* RFC 6455 4.4: say which version we speak. */
                r = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
                if (r == NULL)
                        return MHD_NO;
                MHD_add_response_header(r, "Sec-WebSocket-Version", "13");
                ret = MHD_queue_response(conn, MHD_HTTP_UPGRADE_REQUIRED, r);
                MHD_destroy_response(r);
                return ret;
        }
        if (!key_valid(key))
                return live_reply_error(conn, MHD_HTTP_BAD_REQUEST,
                                        "Sec-WebSocket-Key: not the base64 of 16 bytes",
                                        "Sec-WebSocket-Key");
        if ((rc = live_filter_from_args(conn, &f)) != 0)
                return rc > 0 ? MHD_YES : MHD_NO;
        memcpy(buf, key, WS_KEY_LEN);
        memcpy(buf + WS_KEY_LEN, WS_GUID, sizeof(WS_GUID) - 1);
        sha1_short(buf, WS_KEY_LEN + sizeof(WS_GUID) - 1, dig);
        base64(dig, sizeof(dig), accept);
        r = MHD_create_response_for_upgrade(ws_upgraded, l);
        if (r == NULL)
                return MHD_NO;
        MHD_add_response_header(r, MHD_HTTP_HEADER_UPGRADE, "websocket");
        MHD_add_response_header(r, "Sec-WebSocket-Accept", accept);
        ret = MHD_queue_response(conn, MHD_HTTP_SWITCHING_PROTOCOLS, r);
        MHD_destroy_response(r);
        return ret;
}
