// SPDX-License-Identifier: MIT
// charts.js: the three uPlot time-series charts over the last five minutes of /api/metrics samples.

import { fmtNum } from './format.js';

// How much history the charts keep and show.
export const WINDOW_S = 300;
// Calm colours that read on the dark panels; one per series, in order.
const PALETTE = ['#5b9bd5', '#3fb68b', '#e5534b', '#d9a441', '#a78bfa', '#4fb5c4', '#c678dd', '#98c379'];
const AXIS = { stroke: '#7d8590', grid: { stroke: '#20262e', width: 1 }, ticks: { stroke: '#20262e', width: 1 },
        font: '11px ui-monospace, SFMono-Regular, Menlo, Consolas, monospace' };

function series(label, i, fmt) {
        return {
                label, stroke: PALETTE[i % PALETTE.length], width: 1.5,
                fill: i === 0 ? PALETTE[0] + '1a' : undefined,
                value: (u, v) => (v === null || v === undefined ? '–' : fmt(v)),
                points: { show: false },
        };
}

// The canvas height the stylesheet asks for (--plot-h, smaller on phones), legend excluded.
function plotHeight(root) {
        const v = parseInt(getComputedStyle(root).getPropertyValue('--plot-h'), 10);
        return Number.isFinite(v) && v > 0 ? v : 160;
}

// One chart: a uPlot in root whose series are named by labels; push() adds a sample.
class Chart {
        constructor(root, labels, fmt, yRange) {
                this.root = root;
                this.labels = labels;
                this.fmt = fmt;
                this.yRange = yRange;
                this.data = [[], ...labels.map(() => [])];
                this.plot = null;
                this.make();
        }

        make() {
                this.root.replaceChildren();
                const w = Math.max(200, this.root.clientWidth);
                const h = plotHeight(this.root);
                const opts = {
                        width: w, height: h,
                        cursor: { points: { size: 5 }, drag: { x: false, y: false } },
                        legend: { live: true },
                        scales: { x: { time: true }, y: { range: this.yRange } },
                        axes: [
                                { ...AXIS, space: 70, values: (u, vals) => vals.map(clock) },
                                { ...AXIS, size: 48, values: (u, vals) => vals.map((v) => this.fmt(v)) },
                        ],
                        series: [{ value: (u, v) => (v ? new Date(v * 1000).toLocaleTimeString() : '–') },
                                ...this.labels.map((l, i) => series(l, i, this.fmt))],
                };
                this.plot = new uPlot(opts, this.data, this.root);
        }

        // Adds one sample at epoch seconds t (values in label order; null for unknown) and drops
        // what is older than WINDOW_S.
        push(t, values) {
                const x = this.data[0];
                if (x.length && t <= x[x.length - 1])
                        return;
                x.push(t);
                values.forEach((v, i) => this.data[i + 1].push(Number.isFinite(v) ? v : null));
                let cut = 0;
                while (cut < x.length && x[cut] < t - WINDOW_S)
                        cut++;
                if (cut > 0)
                        for (const a of this.data)
                                a.splice(0, cut);
                this.plot.setData(this.data);
                // Off the chart the legend shows the newest values, under the cursor the hovered ones.
                if (this.plot.cursor.left === undefined || this.plot.cursor.left < 0)
                        this.plot.setLegend({ idx: x.length - 1 });
        }

        // Follows the width of the page; the height is the stylesheet's --plot-h.
        resize() {
                const w = this.root.clientWidth;
                if (w > 0 && (w !== this.plot.width || plotHeight(this.root) !== this.plot.height))
                        this.plot.setSize({ width: w, height: plotHeight(this.root) });
        }
}

const two = (n) => n.toString().padStart(2, '0');
// An x-axis tick (epoch seconds) as wall-clock time: 10:02:30.
function clock(t) {
        const d = new Date(t * 1000);
        return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

const pct = (v) => `${fmtNum(v)}%`;
const ms = (v) => (v === 0 ? '0' : v < 10 ? v.toFixed(v < 1 ? 2 : 1) : fmtNum(v));

export class Charts {
        // roots: {rates, latency, fill}: the elements to draw in. When uPlot did not load
        // (ui/node_modules missing on the server) each says so instead of failing silently.
        constructor(roots) {
                this.roots = roots;
                this.ok = typeof uPlot === 'function';
                if (!this.ok) {
                        for (const r of Object.values(roots)) {
                                r.textContent = 'charts unavailable: /vendor/uplot/uPlot.iife.min.js did not load ' +
                                        '(run tools/setup.sh so ui/node_modules has uplot)';
                                r.classList.add('empty');
                        }
                        return;
                }
                this.rates = new Chart(roots.rates, ['ingested', 'committed', 'rejected'], fmtNum, (u, lo, hi) => [0, Math.max(10, hi * 1.1)]);
                this.latency = new Chart(roots.latency, ['p50', 'p99'], ms, (u, lo, hi) => [0, Math.max(1, hi * 1.1)]);
                this.ringNames = [];
                this.fill = new Chart(roots.fill, [], pct, [0, 100]);
                const ro = new ResizeObserver(() => this.resize());
                for (const r of Object.values(roots))
                        ro.observe(r);
        }

        resize() {
                if (!this.ok)
                        return;
                for (const c of [this.rates, this.latency, this.fill])
                        c.resize();
        }

        // Adds one /api/metrics answer to every chart.
        push(m) {
                if (!this.ok)
                        return;
                const t = (Number.isFinite(m.time_ms) ? m.time_ms : Date.now()) / 1000;
                const r = m.rates || {}, l = m.latency_ms || {};
                this.rates.push(t, [r.ingested, r.committed, r.rejected]);
                this.latency.push(t, [l.commit_p50, l.commit_p99]);
                const names = Object.keys(m.rings || {}).sort();
                if (names.join() !== this.ringNames.join()) {
                        // A ring appeared or went: a chart's series are fixed, so start this one again.
                        this.ringNames = names;
                        this.fill.plot.destroy();
                        this.fill = new Chart(this.roots.fill, names, pct, [0, 100]);
                        this.resize();
                }
                this.fill.push(t, names.map((n) => 100 * (m.rings[n].fill || 0)));
        }
}
