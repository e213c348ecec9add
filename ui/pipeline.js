// SPDX-License-Identifier: MIT
// pipeline.js: the diagram of stages and rings, and the timestamped notes of restarts and state changes.

import { el, fmtBytes, fmtClock, fmtNum, fmtTime } from './format.js';

// The pipeline's shape (DESIGN.md): stages in data order, each ring between two of them.
const STAGES = ['ingest', 'process', 'store', 'api'];
const FLOW = [
        { stage: 'ingest' }, { ring: 'ingest-process' },
        { stage: 'process' }, { ring: 'process-store' },
        { stage: 'store' }, { ring: 'store-api', note: 'lossy' },
        { stage: 'api' },
];
const RETURN_RING = 'api-ingest';

// A stage stays marked as restarted this long after we saw its restart, so a fast restart
// (between two samples) is still seen by a person glancing at the page.
export const RESTART_MARK_MS = 20000;
// Notes kept on the page, newest first.
const NOTES_MAX = 30;
// A heartbeat older than this makes a stage amber even when the supervisor says it is up.
const HEARTBEAT_STALE_MS = 3000;
// The counter that best says how much a stage did, in order of preference, and its unit:
// ingest publishes out.records, process records.out, store events.stored, the api requests.
const RATE_COUNTERS = [['out.records', 'rec/s'], ['records.out', 'rec/s'], ['events.stored', 'ev/s'],
        ['records.in', 'rec/s'], ['events.in', 'ev/s'], ['requests', 'req/s']];

function pickCounter(counters) {
        if (!counters)
                return null;
        for (const c of RATE_COUNTERS)
                if (typeof counters[c[0]] === 'number')
                        return c;
        return null;
}

// The state word's colour class: ok, warn or bad.
function stateClass(state, hbAge, healthUp) {
        if (state === 'up' || state === 'running') {
                if (healthUp === false)
                        return 'bad';
                return Number.isFinite(hbAge) && hbAge > HEARTBEAT_STALE_MS ? 'warn' : 'ok';
        }
        if (/start|restart|backoff|wait|stopping|stale/.test(state || ''))
                return 'warn';
        return 'bad';
}

// A small table of labelled values: labels over values, one column each. Returns the element
// and the value cells in label order.
function kv(labels) {
        const box = el('div', 'kv');
        const cells = labels.map((l) => {
                const d = el('div');
                const v = el('span', 'num', '–');
                d.append(el('span', 'k', l), v);
                box.append(d);
                return v;
        });
        return [box, cells];
}

export class Pipeline {
        constructor(root, notesRoot) {
                this.root = root;
                this.notesRoot = notesRoot;
                this.cards = new Map();
                this.rings = new Map();
                this.prev = new Map();       // stage -> {pid, restarts, state, counter, value, t}
                this.restartedAt = new Map(); // stage -> epoch ms we saw it restart
                this.build();
        }

        build() {
                const row = el('div', 'flow');
                for (const item of FLOW) {
                        if (item.stage)
                                row.append(this.makeStage(item.stage));
                        else
                                row.append(this.makeRing(item.ring, item.note));
                }
                const back = el('div', 'return');
                back.append(this.makeRing(RETURN_RING, 'HTTP POSTs'));
                this.root.replaceChildren(row, back);
        }

        makeStage(name) {
                const c = el('div', 'stage');
                c.id = `stage-${name}`;
                c.dataset.stage = name;
                c.dataset.state = 'unknown';
                const head = el('div', 'stage-head');
                const state = el('span', 'stage-state', '–');
                head.append(el('span', 'dot'), el('span', 'stage-name', name), state);
                const rate = el('div', 'stage-rate');
                const rateNum = el('span', 'num big', '–');
                const unit = el('small', '', ' rec/s');
                rate.append(rateNum, unit);
                const [meta, [pid, rs, hb]] = kv(['pid', 'restarts', 'hb']);
                hb.title = 'age of the stage\'s heartbeat';
                const flag = el('div', 'stage-flag');
                c.append(head, rate, meta, flag);
                this.cards.set(name, { c, state, rate: rateNum, unit, pid, rs, hb, flag });
                return c;
        }

        makeRing(name, note) {
                const r = el('div', 'ring');
                r.id = `ring-${name}`;
                const [from, to] = name.split('-');
                const title = el('div', 'ring-name');
                title.append(el('span', '', `${from} → ${to}`));
                if (note)
                        title.append(el('span', 'tag', note));
                const bar = el('div', 'fillbar');
                const fill = el('span', 'fill');
                bar.append(fill);
                const pct = el('span', 'num ring-pct', '–');
                const barRow = el('div', 'ring-bar');
                barRow.append(bar, pct);
                const [meta, [lag, drops, waits]] = kv(['lag', 'drops', 'waits p/c']);
                r.append(title, barRow, meta);
                this.rings.set(name, { r, fill, pct, lag, drops, waits });
                return r;
        }

        note(text, cls, t) {
                const li = el('li', cls);
                li.append(el('time', 'num', fmtClock(t)), el('span', '', ' ' + text));
                this.notesRoot.prepend(li);
                while (this.notesRoot.children.length > NOTES_MAX)
                        this.notesRoot.lastChild.remove();
        }

        // Updates every card and ring from one /api/metrics answer (m) and the latest /api/health
        // answer (h, may be null). Notes a restart when a stage's pid or restart count changes.
        update(m, h) {
                const now = Date.now();
                const tMs = Number.isFinite(m.time_ms) ? m.time_ms : now;
                for (const name of STAGES) {
                        const card = this.cards.get(name);
                        const s = (m.stages && m.stages[name]) || null;
                        const hs = h && h.stages ? h.stages[name] : undefined;
                        const p = this.prev.get(name);
                        if (!s) {
                                card.c.dataset.state = 'absent';
                                card.state.textContent = 'absent';
                                card.c.className = 'stage bad';
                                continue;
                        }
                        const state = String(s.state ?? 'unknown');
                        const restarts = Number.isFinite(s.restarts) ? s.restarts : 0;
                        if (p) {
                                if ((p.pid && s.pid && p.pid !== s.pid) || restarts > p.restarts) {
                                        this.restartedAt.set(name, now);
                                        this.note(`${name} restarted: pid ${p.pid || '–'} → ${s.pid || '–'}, restarts ${restarts}`, 'warn', now);
                                }
                                if (p.state !== state)
                                        this.note(`${name} ${p.state} → ${state}`, state === 'up' ? 'ok' : 'warn', now);
                        }
                        // Per-stage rate from the deltas of its main counter between two samples.
                        const picked = pickCounter(s.counters);
                        const cname = picked ? picked[0] : null;
                        const value = cname ? s.counters[cname] : null;
                        let rate = null;
                        if (p && cname && p.counter === cname && tMs > p.t && value >= p.value)
                                rate = (value - p.value) * 1000 / (tMs - p.t);
                        // Between two lives a stage has no pid: remember the last one for the note.
                        this.prev.set(name, { pid: s.pid || (p && p.pid), restarts, state, counter: cname, value, t: tMs });

                        const cls = stateClass(state, s.heartbeat_age_ms, hs ? hs.up : undefined);
                        const since = this.restartedAt.get(name);
                        const marked = since !== undefined && now - since < RESTART_MARK_MS;
                        card.c.className = `stage ${cls}${marked ? ' restarted' : ''}`;
                        card.c.dataset.state = state;
                        card.c.dataset.pid = s.pid || '';
                        card.c.dataset.restarted = marked ? 'yes' : 'no';
                        card.state.textContent = state;
                        card.pid.textContent = s.pid || '–';
                        card.rs.textContent = restarts;
                        card.hb.textContent = Number.isFinite(s.heartbeat_age_ms) ? `${fmtNum(s.heartbeat_age_ms)} ms` : '–';
                        if (rate !== null)
                                card.rate.textContent = fmtNum(rate);
                        card.unit.textContent = ` ${picked ? picked[1] : 'rec/s'}`;
                        card.flag.textContent = marked ? `restarted ${fmtTime(since)}` : '';
                        card.c.title = cname ? `rate from counter ${cname}` : 'no record counter';
                }
                const rings = m.rings || {};
                for (const [name, ring] of Object.entries(rings)) {
                        if (!this.rings.has(name))
                                this.root.querySelector('.return').append(this.makeRing(name));
                        const v = this.rings.get(name);
                        if (ring.error !== undefined) {
                                // The api could not read this ring's header: say so, show no numbers.
                                v.r.classList.add('absent');
                                v.r.title = `the api could not read this ring (error ${ring.error})`;
                                v.pct.textContent = 'error';
                                continue;
                        }
                        const fill = Math.max(0, Math.min(1, ring.fill || 0));
                        v.fill.style.width = `${(fill * 100).toFixed(1)}%`;
                        v.fill.className = 'fill' + (fill > 0.9 ? ' bad' : fill > 0.6 ? ' warn' : '');
                        v.pct.textContent = `${(fill * 100).toFixed(fill < 0.1 ? 1 : 0)}%`;
                        v.lag.textContent = fmtBytes(ring.lag_bytes);
                        v.drops.textContent = fmtNum(ring.drops);
                        v.drops.classList.toggle('warn-text', ring.drops > 0);
                        v.waits.textContent = `${fmtNum(ring.waits_producer)}/${fmtNum(ring.waits_consumer)}`;
                        v.waits.title = 'producer waits / consumer waits';
                        v.r.title = `used ${fmtBytes(ring.used_bytes)} of ${fmtBytes(ring.capacity)}`;
                        v.r.classList.remove('absent');
                }
                for (const [name, v] of this.rings)
                        if (!(name in rings))
                                v.r.classList.add('absent');
        }

        // The api did not answer: the picture is old, say so without pretending anything changed.
        stale(isStale) {
                this.root.classList.toggle('stale', isStale);
        }
}
