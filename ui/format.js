// SPDX-License-Identifier: MIT
// format.js: how numbers, sizes, durations and times read on the dashboard.

// A rate or count in at most 4 significant characters: 987, 12.3k, 1.25M.
export function fmtNum(v) {
        if (v === null || v === undefined || !Number.isFinite(v))
                return '–';
        const a = Math.abs(v);
        if (a >= 1e9)
                return (v / 1e9).toFixed(a >= 1e10 ? 1 : 2) + 'G';
        if (a >= 1e6)
                return (v / 1e6).toFixed(a >= 1e7 ? 1 : 2) + 'M';
        if (a >= 1e4)
                return (v / 1e3).toFixed(a >= 1e5 ? 0 : 1) + 'k';
        if (a >= 100 || Number.isInteger(v))
                return Math.round(v).toString();
        return v.toFixed(a >= 10 ? 1 : 2);
}

// Bytes in binary units: 512 B, 3.0 KiB, 4.0 MiB.
export function fmtBytes(v) {
        if (!Number.isFinite(v))
                return '–';
        const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
        let i = 0;
        while (Math.abs(v) >= 1024 && i < units.length - 1) {
                v /= 1024;
                i++;
        }
        return (i === 0 ? v.toString() : v.toFixed(v >= 100 ? 0 : 1)) + ' ' + units[i];
}

// Seconds as the two largest units: 45s, 12m 03s, 3h 07m, 2d 04h.
export function fmtUptime(s) {
        if (!Number.isFinite(s) || s < 0)
                return '–';
        s = Math.floor(s);
        const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24;
        const m = Math.floor(s / 60) % 60, sec = s % 60;
        const two = (n) => n.toString().padStart(2, '0');
        if (d > 0)
                return `${d}d ${two(h)}h`;
        if (h > 0)
                return `${h}h ${two(m)}m`;
        if (m > 0)
                return `${m}m ${two(sec)}s`;
        return `${sec}s`;
}

// Milliseconds: 0.42 ms, 12.5 ms, 1.20 s.
export function fmtMs(v) {
        if (!Number.isFinite(v))
                return '–';
        if (v >= 1000)
                return (v / 1000).toFixed(2) + ' s';
        return (v >= 10 ? v.toFixed(1) : v.toFixed(2)) + ' ms';
}

// Epoch milliseconds as local wall-clock time with milliseconds: 10:02:13.042.
export function fmtClock(ms) {
        if (!Number.isFinite(ms))
                return '–';
        const d = new Date(ms);
        const two = (n) => n.toString().padStart(2, '0');
        return `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.` +
                d.getMilliseconds().toString().padStart(3, '0');
}

// Epoch milliseconds as local wall-clock time to the second: 10:02:13.
export function fmtTime(ms) {
        return fmtClock(ms).slice(0, 8);
}

// Epoch milliseconds as date and time, for values that may be days old: 12-02 10:02:13.
export function fmtDateTime(ms) {
        if (!Number.isFinite(ms))
                return '–';
        const d = new Date(ms);
        const two = (n) => n.toString().padStart(2, '0');
        return `${two(d.getMonth() + 1)}-${two(d.getDate())} ` +
                `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

// A window's time span: its start as date and time, then its end's time: 12-02 10:02:00–10:03:00.
export function fmtSpan(start, end) {
        if (!Number.isFinite(start) || !Number.isFinite(end))
                return '–';
        return `${fmtDateTime(start)}–${fmtDateTime(end).slice(6)}`;
}

// Any JSON value as a one-line preview of at most max characters.
export function preview(v, max) {
        let s = typeof v === 'string' ? v : JSON.stringify(v);
        if (s === undefined)
                s = '';
        return s.length > max ? s.slice(0, max - 1) + '…' : s;
}

// A new element with a class and text, the one way the page builds cells (no innerHTML with data).
export function el(tag, cls, text) {
        const e = document.createElement(tag);
        if (cls)
                e.className = cls;
        if (text !== undefined && text !== null)
                e.textContent = text;
        return e;
}
