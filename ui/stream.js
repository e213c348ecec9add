// SPDX-License-Identifier: MIT
// stream.js: the live feed of committed events and window results, over WebSocket or else SSE, reconnecting by itself.

// Reconnect delays grow from the first to the last, then stay there.
export const RECONNECT_MIN_MS = 500;
export const RECONNECT_MAX_MS = 8000;
// WebSocket attempts that never opened before we try Server-Sent Events instead
// (a proxy in between may not pass the upgrade).
export const WS_TRIES_BEFORE_SSE = 3;

// Opens the live feed. handlers: onEvent(event), onWindow(window), onLagged(skipped),
// onState(state, detail) with state one of 'connecting', 'live', 'reconnecting', and
// apiReachable() saying whether the api answers HTTP now. Returns an object with kick()
// (reconnect now if waiting) and close().
export function openStream(handlers) {
        const s = new Stream(handlers);
        s.connect();
        return s;
}

class Stream {
        constructor(h) {
                this.h = h;
                this.delay = RECONNECT_MIN_MS;
                this.wsFails = 0;
                this.mode = typeof WebSocket === 'function' ? 'ws' : 'sse';
                this.lastSeq = null;
                this.closed = false;
                this.timer = null;
        }

        connect() {
                if (this.closed)
                        return;
                this.h.onState('connecting', this.mode);
                if (this.mode === 'ws')
                        this.openWs();
                else
                        this.openSse();
        }

        retry(why) {
                if (this.closed)
                        return;
                const wait = this.delay;
                this.delay = Math.min(RECONNECT_MAX_MS, this.delay * 2);
                this.h.onState('reconnecting', `${why}; again in ${(wait / 1000).toFixed(1)} s`);
                clearTimeout(this.timer);
                this.timer = setTimeout(() => {
                        this.timer = null;
                        this.connect();
                }, wait);
        }

        opened() {
                this.delay = RECONNECT_MIN_MS;
                this.h.onState('live', this.mode);
        }

        dispatch(kind, data, seq) {
                if (Number.isFinite(seq))
                        this.lastSeq = seq;
                if (kind === 'event')
                        this.h.onEvent(data);
                else if (kind === 'window')
                        this.h.onWindow(data);
                else if (kind === 'lagged')
                        this.h.onLagged(data && Number.isFinite(data.skipped) ? data.skipped : null);
        }

        openWs() {
                const url = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws/events`;
                let everOpened = false;
                let ws;
                try {
                        ws = new WebSocket(url);
                } catch (e) {
                        this.wsFailed(`WebSocket ${url}: ${e.message}`);
                        return;
                }
                this.ws = ws;
                ws.onopen = () => {
                        everOpened = true;
                        this.wsFails = 0;
                        ws.send(JSON.stringify({ subscribe: { kinds: ['events', 'windows'] } }));
                        this.opened();
                };
                ws.onmessage = (m) => {
                        let msg;
                        try {
                                msg = JSON.parse(m.data);
                        } catch {
                                console.warn('ringflow: a WebSocket frame that is not JSON:', String(m.data).slice(0, 200));
                                return;
                        }
                        if (msg && typeof msg === 'object')
                                this.dispatch(msg.kind, msg.data, msg.seq);
                };
                ws.onclose = (ev) => {
                        if (this.ws !== ws)
                                return;
                        this.ws = null;
                        const why = `stream closed${ev.code ? ` (${ev.code}${ev.reason ? ' ' + ev.reason : ''})` : ''}`;
                        if (everOpened)
                                this.retry(why);
                        else
                                this.wsFailed(why);
                };
        }

        // A WebSocket that never opened while the api answers HTTP counts against WebSocket; one
        // that failed because the api is down (restarting) does not.
        wsFailed(why) {
                if (this.h.apiReachable() && ++this.wsFails >= WS_TRIES_BEFORE_SSE && typeof EventSource === 'function') {
                        console.warn(`ringflow: WebSocket failed ${this.wsFails} times (${why}); using Server-Sent Events`);
                        this.mode = 'sse';
                }
                this.retry(why);
        }

        openSse() {
                // EventSource reconnects by itself and sends Last-Event-ID, so the api replays
                // what we missed; we only report its state.
                const es = new EventSource('/api/stream?kinds=events,windows');
                this.es = es;
                const on = (kind) => (m) => {
                        let data;
                        try {
                                data = JSON.parse(m.data);
                        } catch {
                                console.warn(`ringflow: an SSE ${kind} that is not JSON:`, String(m.data).slice(0, 200));
                                return;
                        }
                        this.dispatch(kind, data, Number(m.lastEventId));
                };
                es.addEventListener('event', on('event'));
                es.addEventListener('window', on('window'));
                es.addEventListener('lagged', on('lagged'));
                es.onopen = () => this.opened();
                es.onerror = () => {
                        if (es.readyState === EventSource.CLOSED) {
                                es.close();
                                this.retry('stream closed');
                        } else {
                                this.h.onState('reconnecting', 'stream interrupted');
                        }
                };
        }

        // The api answers again: reconnect now rather than at the end of a long backoff.
        kick() {
                if (this.closed || this.timer === null)
                        return;
                clearTimeout(this.timer);
                this.timer = null;
                this.delay = RECONNECT_MIN_MS;
                this.connect();
        }

        close() {
                this.closed = true;
                clearTimeout(this.timer);
                if (this.ws)
                        this.ws.close();
                if (this.es)
                        this.es.close();
        }
}
