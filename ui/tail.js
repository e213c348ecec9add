// SPDX-License-Identifier: MIT
// tail.js: the live event tail: a bounded buffer, filters, pause, and an event's JSON on click.

import { el, fmtClock, preview } from './format.js';

// Events kept in memory for filtering and for the rows shown.
export const TAIL_KEEP = 2000;
// Rows on the page while live (a screenful: nobody reads more at thousands of events a second)
// and while paused (to scroll back through); more would cost the browser without helping anyone.
export const TAIL_ROWS_LIVE = 50;
export const TAIL_ROWS = 200;
// The table is redrawn at most this often, however fast events come.
export const TAIL_RENDER_MS = 250;
// Characters of an event's data shown in its row.
const DATA_PREVIEW = 160;

// Event times come as epoch milliseconds; tolerate microseconds or nanoseconds and ISO strings.
export function toMs(v) {
        if (typeof v === 'string')
                return Date.parse(v);
        if (!Number.isFinite(v))
                return NaN;
        if (v > 1e17)
                return v / 1e6;
        if (v > 1e14)
                return v / 1e3;
        return v;
}

export class Tail {
        constructor(dom) {
                this.dom = dom;   // {body, count, empty, type, source, pause, detail, detailJson, detailClose}
                this.buf = [];    // newest last
                this.total = 0;
                this.skipped = 0;
                this.paused = false;
                this.frozen = null; // what a paused tail shows
                this.dirty = false;
                this.shown = new WeakMap(); // row -> the event it shows
                this.rows = null;
                this.selected = null;
                dom.type.addEventListener('input', () => this.refilter());
                dom.source.addEventListener('input', () => this.refilter());
                dom.pause.addEventListener('click', () => this.setPaused(!this.paused));
                dom.body.addEventListener('click', (e) => {
                        const tr = e.target.closest('tr');
                        if (tr && !tr.hidden && this.shown.has(tr))
                                this.show(tr);
                });
                dom.body.addEventListener('keydown', (e) => {
                        if ((e.key === 'Enter' || e.key === ' ') && e.target.closest('tr')) {
                                e.preventDefault();
                                this.show(e.target.closest('tr'));
                        }
                });
                dom.detailClose.addEventListener('click', () => this.hide());
                document.addEventListener('keydown', (e) => {
                        if (e.key === 'Escape')
                                this.hide();
                });
                setInterval(() => this.render(), TAIL_RENDER_MS);
        }

        push(ev) {
                if (!ev || typeof ev !== 'object')
                        return;
                this.total++;
                this.buf.push(ev);
                if (this.buf.length > TAIL_KEEP + TAIL_KEEP / 4)
                        this.buf.splice(0, this.buf.length - TAIL_KEEP);
                this.dirty = true;
        }

        lagged(n) {
                if (Number.isFinite(n))
                        this.skipped += n;
                this.dirty = true;
        }

        // Pausing freezes what the rows are drawn from (filters still apply to it); events go
        // on arriving and being counted.
        setPaused(p) {
                this.paused = p;
                this.frozen = p ? this.buf.slice() : null;
                this.dom.pause.textContent = p ? 'resume' : 'pause';
                this.dom.pause.setAttribute('aria-pressed', String(p));
                this.dom.pause.classList.toggle('on', p);
                // On pause the rows stay exactly as they are (one may have just been clicked).
                if (p)
                        this.dirty = true;
                else
                        this.refilter();
        }

        refilter() {
                this.dirty = true;
                this.render(true);
        }

        // A predicate for the filters as they are now: case-insensitive substrings of type and source.
        matcher() {
                const t = this.dom.type.value.trim().toLowerCase();
                const s = this.dom.source.value.trim().toLowerCase();
                if (!t && !s)
                        return () => true;
                return (ev) => (!t || String(ev.type || '').toLowerCase().includes(t)) &&
                        (!s || String(ev.source || '').toLowerCase().includes(s));
        }

        // The row pool: TAIL_ROWS rows made once and refilled (hidden when not needed), because
        // making 200 rows four times a second cost the page most of a core at 2,000 events/s.
        pool() {
                if (!this.rows) {
                        this.rows = [];
                        for (let i = 0; i < TAIL_ROWS; i++) {
                                const tr = el('tr');
                                tr.tabIndex = 0;
                                tr.hidden = true;
                                tr.append(el('td', 'num muted'), el('td', 'type'), el('td', 'src'),
                                        el('td', 'num muted id hide-narrow'), el('td', 'data'));
                                this.rows.push(tr);
                        }
                        this.dom.body.replaceChildren(...this.rows);
                }
                return this.rows;
        }

        fill(tr, ev) {
                if (this.shown.get(tr) === ev)
                        return;
                const c = tr.children;
                c[0].textContent = fmtClock(toMs(ev.timestamp));
                c[1].textContent = ev.type;
                c[2].textContent = ev.source;
                c[3].textContent = ev.id;
                c[4].textContent = preview(ev.data ?? {}, DATA_PREVIEW);
                tr.dataset.type = ev.type;
                tr.dataset.source = ev.source;
                tr.classList.toggle('sel', this.selected !== null && this.selected.id === ev.id);
                this.shown.set(tr, ev);
        }

        // Redraws the rows from the newest matching events (unless paused, when the rows stay
        // and only the counter moves), at most every TAIL_RENDER_MS.
        render(force) {
                const d = this.dom;
                if (!this.dirty && !force)
                        return;
                this.dirty = false;
                const filtered = d.type.value.trim() || d.source.value.trim();
                d.count.textContent = `${this.total.toLocaleString()} received` +
                        (this.skipped ? ` · ${this.skipped.toLocaleString()} skipped (slow client)` : '') +
                        (this.paused ? ' · paused' : '') + (filtered ? ' · filtered' : '');
                if (this.paused && !force)
                        return;
                const src = this.paused ? this.frozen : this.buf;
                const match = this.matcher();
                const rows = this.pool();
                const max = this.paused ? TAIL_ROWS : TAIL_ROWS_LIVE;
                let n = 0;
                for (let i = src.length - 1; i >= 0 && n < max; i--)
                        if (match(src[i]))
                                this.fill(rows[n++], src[i]);
                for (let i = 0; i < TAIL_ROWS; i++)
                        if (rows[i].hidden !== (i >= n))
                                rows[i].hidden = i >= n;
                d.empty.hidden = n > 0;
                d.empty.textContent = this.total === 0 ? 'waiting for events…' : 'no event matches the filter';
        }

        show(tr) {
                const ev = this.shown.get(tr);
                this.selected = ev;
                for (const r of this.dom.body.querySelectorAll('tr.sel'))
                        r.classList.remove('sel');
                tr.classList.add('sel');
                this.dom.detailJson.textContent = JSON.stringify(ev, null, 2);
                this.dom.detail.hidden = false;
                // Reading an event is easier when the rows under it stop moving.
                if (!this.paused)
                        this.setPaused(true);
        }

        hide() {
                this.dom.detail.hidden = true;
                this.selected = null;
        }
}
