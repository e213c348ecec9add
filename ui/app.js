// SPDX-License-Identifier: MIT
// app.js: the dashboard's entry: polls metrics, health, windows and rejects, opens the live stream, and keeps the header honest.

import { Charts } from './charts.js';
import { fmtClock, fmtNum, fmtUptime } from './format.js';
import { Pipeline } from './pipeline.js';
import { every, getJSON } from './poll.js';
import { openStream } from './stream.js';
import { Rejects, Windows } from './tables.js';
import { Tail } from './tail.js';

// How often each part of the page asks the api (the charts' resolution is METRICS_MS).
const METRICS_MS = 1000;
const WINDOWS_MS = 5000;
const REJECTS_MS = 5000;
const WINDOWS_QUERY_LIMIT = 100;
const REJECTS_QUERY_LIMIT = 50;

const $ = (id) => document.getElementById(id);

const pipeline = new Pipeline($('pipeline'), $('notes'));
const charts = new Charts({ rates: $('chart-rates'), latency: $('chart-latency'), fill: $('chart-fill') });
const tail = new Tail({
        body: $('tail'), count: $('tail-count'), empty: $('tail-empty'), type: $('filter-type'), source: $('filter-source'),
        pause: $('tail-pause'), detail: $('detail'), detailJson: $('detail-json'), detailClose: $('detail-close'),
});
const windows = new Windows({ tabs: $('window-tabs'), head: $('windows-head'), body: $('windows'), empty: $('windows-empty') });
const rejects = new Rejects({ body: $('rejects'), empty: $('rejects-empty'), count: $('rejects-count') });

// What the connection chip says comes from two sources: the metrics poll and the live stream.
const conn = { api: 'connecting', apiWhy: '', stream: 'connecting', streamWhy: '', failures: 0, lastOk: 0 };

function showConn() {
        const c = $('conn');
        let state, text;
        if (conn.api === 'down') {
                state = 'reconnecting';
                text = `api unreachable · reconnecting (try ${conn.failures})`;
                c.title = conn.apiWhy + (conn.lastOk ? ` · last answer ${fmtClock(conn.lastOk)}` : '');
        } else if (conn.api === 'connecting') {
                state = 'connecting';
                text = 'connecting…';
                c.title = '';
        } else if (conn.stream === 'live') {
                state = 'live';
                text = `live · ${conn.streamWhy}`;
                c.title = conn.streamWhy === 'ws' ? 'events over WebSocket /ws/events' : 'events over Server-Sent Events /api/stream';
        } else {
                state = 'partial';
                text = conn.stream === 'reconnecting' ? 'event stream reconnecting…' : 'event stream connecting…';
                c.title = conn.streamWhy;
        }
        c.dataset.conn = state;
        c.textContent = text;
        document.body.dataset.conn = state;
}

let lastHealth = null;

function showHealth(h) {
        const pill = $('health');
        const status = h && typeof h.status === 'string' ? h.status : 'unknown';
        const reasons = h && Array.isArray(h.reasons) ? h.reasons : [];
        const word = { ok: 'healthy', degraded: 'degraded', down: 'down' }[status] || status;
        pill.dataset.status = status;
        pill.textContent = word;
        pill.title = reasons.join('\n');
        const r = $('health-reason');
        r.textContent = reasons.join(' · ');
        r.hidden = status === 'ok' || reasons.length === 0;
        r.dataset.status = status;
        if (lastHealth && lastHealth.status !== status)
                pipeline.note(`health ${lastHealth.status} → ${status}${reasons.length ? ': ' + reasons.join('; ') : ''}`,
                        status === 'ok' ? 'ok' : 'warn', Date.now());
        lastHealth = { status };
}

function showHeader(m) {
        $('instance').textContent = m.instance ?? '–';
        $('uptime').textContent = fmtUptime(m.uptime_s);
        $('version').textContent = m.version ? `v${m.version}` : '';
        const r = m.rates || {};
        $('rate-in').textContent = fmtNum(r.ingested);
        $('rate-committed').textContent = fmtNum(r.committed);
        $('rate-rejected').textContent = fmtNum(r.rejected);
        $('rate-rejected').classList.toggle('warn-text', r.rejected > 0);
        document.title = `ringflow · ${m.instance ?? ''} · ${fmtNum(r.committed)} ev/s`;
}

// The live feed first: the metrics poll kicks it when the api comes back.
const stream = openStream({
        apiReachable: () => conn.api === 'up',
        onEvent: (ev) => tail.push(ev),
        onWindow: (w) => windows.add(w),
        onLagged: (n) => tail.lagged(n),
        onState: (state, detail) => {
                conn.stream = state;
                conn.streamWhy = detail;
                showConn();
        },
});

every(METRICS_MS, async () => {
        // Health answers 503 with a body when something is wrong: that is an answer, not a failure.
        const [m, h] = await Promise.all([getJSON('/api/metrics'), getJSON('/api/health', [503]).catch(() => null)]);
        if (conn.api === 'down') {
                pipeline.note(`api reachable again after ${conn.failures} failed ${conn.failures === 1 ? 'try' : 'tries'}`, 'ok', Date.now());
                stream.kick();
        }
        conn.api = 'up';
        conn.failures = 0;
        conn.lastOk = Date.now();
        showConn();
        pipeline.stale(false);
        showHeader(m);
        showHealth(h);
        pipeline.update(m, h);
        charts.push(m);
}, (e) => {
        if (conn.api !== 'down')
                pipeline.note(`api unreachable: ${e.message}`, 'bad', Date.now());
        conn.api = 'down';
        conn.apiWhy = e.message;
        conn.failures++;
        pipeline.stale(true);
        showConn();
        // With no answer the health is unknown, not what it was.
        const pill = $('health');
        pill.dataset.status = 'unknown';
        pill.textContent = 'no answer';
        pill.title = e.message;
});

// /api/windows without name= lists the windows the store holds; each is then read in full.
// Names first seen on the live stream are read too, before their first row is stored.
every(WINDOWS_MS, async () => {
        const listed = await getJSON('/api/windows');
        const names = new Set([...(Array.isArray(listed.names) ? listed.names : []), ...windows.names()]);
        for (const name of names) {
                const a = await getJSON(`/api/windows?name=${encodeURIComponent(name)}&limit=${WINDOWS_QUERY_LIMIT}`);
                for (const w of Array.isArray(a.windows) ? a.windows : [])
                        windows.add(w);
        }
        windows.render();
}, (e) => console.warn('ringflow: windows:', e.message));

every(REJECTS_MS, async () => {
        rejects.show(await getJSON(`/api/rejects?limit=${REJECTS_QUERY_LIMIT}`));
}, (e) => console.warn('ringflow: rejects:', e.message));

setInterval(() => windows.render(), 1000);
