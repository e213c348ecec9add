// SPDX-License-Identifier: MIT
// tables.js: the window results table (one tab per configured window) and the rejects table.

import { el, fmtDateTime, fmtNum, fmtSpan, preview } from './format.js';
import { toMs } from './tail.js';

// Results kept per window name (newest by end time).
export const WINDOWS_KEEP = 100;
// Characters of a reject's raw input shown in its row (the whole of it is in the tooltip).
const RAW_PREVIEW = 80;

function fmtAgg(v) {
        if (typeof v === 'number')
                return Number.isInteger(v) ? fmtNum(v) : (Math.abs(v) >= 100 ? fmtNum(v) : v.toFixed(3));
        return preview(v, 40);
}

export class Windows {
        constructor(dom) {
                this.dom = dom; // {tabs, head, body, empty}
                this.byName = new Map(); // name -> Map(key -> window)
                this.current = null;
                this.dirty = false;
                dom.tabs.addEventListener('click', (e) => {
                        const b = e.target.closest('button');
                        if (b) {
                                this.current = b.dataset.name;
                                this.dirty = true;
                                this.render();
                        }
                });
        }

        // The window names seen so far.
        names() {
                return [...this.byName.keys()];
        }

        // Adds or replaces one window result (a later, final result replaces an early one).
        add(w) {
                if (!w || typeof w.name !== 'string')
                        return;
                let m = this.byName.get(w.name);
                if (!m) {
                        m = new Map();
                        this.byName.set(w.name, m);
                }
                const id = JSON.stringify([w.key, w.start]);
                m.set(id, w);
                if (m.size > WINDOWS_KEEP + WINDOWS_KEEP / 4) {
                        const keep = [...m.entries()].sort((a, b) => toMs(b[1].end) - toMs(a[1].end)).slice(0, WINDOWS_KEEP);
                        this.byName.set(w.name, new Map(keep));
                }
                if (this.current === null)
                        this.current = w.name;
                this.dirty = true;
        }

        render() {
                if (!this.dirty)
                        return;
                this.dirty = false;
                const d = this.dom;
                const names = [...this.byName.keys()].sort();
                d.tabs.replaceChildren(...names.map((n) => {
                        const b = el('button', n === this.current ? 'tab on' : 'tab', n);
                        b.type = 'button';
                        b.dataset.name = n;
                        b.setAttribute('role', 'tab');
                        b.setAttribute('aria-selected', String(n === this.current));
                        return b;
                }));
                const m = this.byName.get(this.current);
                if (!m || m.size === 0) {
                        d.head.replaceChildren();
                        d.body.replaceChildren();
                        d.empty.hidden = false;
                        return;
                }
                const rows = [...m.values()].sort((a, b) => toMs(b.end) - toMs(a.end)).slice(0, WINDOWS_KEEP);
                const aggs = [];
                // count has its own column already.
                for (const w of rows)
                        for (const k of Object.keys(w.aggregates || {}))
                                if (k !== 'count' && !aggs.includes(k))
                                        aggs.push(k);
                const hr = el('tr');
                hr.append(el('th', '', 'key'), el('th', '', 'window'), el('th', 'r', 'count'),
                        ...aggs.map((a) => el('th', 'r', a)), el('th', '', ''));
                d.head.replaceChildren(hr);
                d.body.replaceChildren(...rows.map((w) => {
                        const tr = el('tr', w.final === false ? 'partial' : '');
                        const key = Array.isArray(w.key) ? w.key.join(' · ') : preview(w.key, 60);
                        const span = el('td', 'num muted', fmtSpan(toMs(w.start), toMs(w.end)));
                        span.title = `${new Date(toMs(w.start)).toISOString()} to ${new Date(toMs(w.end)).toISOString()}`;
                        tr.append(el('td', 'key', key || '(all)'), span, el('td', 'num r', fmtNum(w.count)),
                                ...aggs.map((a) => el('td', 'num r', fmtAgg((w.aggregates || {})[a]))),
                                el('td', 'muted', w.final === false ? 'open' : ''));
                        return tr;
                }));
                d.empty.hidden = true;
        }
}

export class Rejects {
        constructor(dom) {
                this.dom = dom; // {body, empty, count}
        }

        // Shows one /api/rejects answer (newest first).
        show(answer) {
                const list = Array.isArray(answer && answer.rejects) ? answer.rejects : [];
                this.dom.body.replaceChildren(...list.map((r) => {
                        const tr = el('tr');
                        const raw = el('td', 'raw hide-narrow', preview(r.raw ?? '', RAW_PREVIEW));
                        raw.title = typeof r.raw === 'string' ? r.raw : JSON.stringify(r.raw);
                        const msg = el('td', 'msg', r.message ?? '');
                        if (Number.isFinite(r.offset))
                                msg.title = `at byte ${r.offset} of the input`;
                        tr.append(el('td', 'num muted', fmtDateTime(toMs(r.received))), el('td', 'src', r.source ?? ''),
                                el('td', 'reason', r.reason ?? ''), msg, raw);
                        return tr;
                }));
                this.dom.empty.hidden = list.length > 0;
                this.dom.count.textContent = list.length ? `latest ${list.length}` : '';
        }
}
