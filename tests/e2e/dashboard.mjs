// SPDX-License-Identifier: MIT
// dashboard.mjs: the dashboard end to end: a real pipeline under load, the page in Debian's Chromium, what a person would check.
//
// Run by tests/e2e/dashboard.sh from `make check` (RINGFLOW_BUILDDIR = the build tree).
// Exit status: 0 every check passed, 1 one failed, 77 something it needs is not there (named).
// Leaves tests/e2e/dashboard.png (1440x900) and dashboard-phone.png (390x844) in the build tree.

import { spawn, spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

// Every wait has a bound. A run takes 15-35 s on a busy 2-core machine; the watchdog only
// ends one that is stuck.
const TEST_TIMEOUT_MS = 90000;
const START_TIMEOUT_MS = 20000;   // ringflowd up and the api's port known
const WAIT_MS = 20000;            // each condition on the page
const RESTART_TIMEOUT_MS = 30000; // a killed stage seen restarting and healthy again
const GEN_RATE = 2000;            // events/s from ringflow-gen
const GEN_DURATION_S = 180;       // the generator stops by itself even if we are killed
const TAIL_MIN_ROWS = 20;
const MEASURE_MS = 5000;          // the page's CPU use is measured over this long
const STDERR_KEEP = 8192;         // bytes of ringflowd's stderr shown when a check fails
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'];
// The charts' series colours (charts.js PALETTE): pixels near them mean data was drawn.
const SERIES_RGB = [[0x5b, 0x9b, 0xd5], [0x3f, 0xb6, 0x8b], [0xe5, 0x53, 0x4b], [0xd9, 0xa4, 0x41]];

const here = dirname(fileURLToPath(import.meta.url));
const srcdir = resolve(here, '..', '..');
const uiDir = join(srcdir, 'ui');
const builddir = resolve(process.env.RINGFLOW_BUILDDIR || process.argv[2] || '.');
const bin = {
        ringflowd: join(builddir, 'stages/supervise/ringflowd'),
        api: join(builddir, 'stages/api/ringflow-api'),
        process: join(builddir, 'stages/process/ringflow-process'),
        gen: join(builddir, 'tools/ringflow-gen'),
        ringstat: join(builddir, 'tools/ringstat'),
};

let passed = 0, failed = 0;
const children = [];
let stderrTail = '';
let instance = null, dataDir = null, profileDir = null, browserCtx = null;

function log(msg) {
        process.stdout.write(`dashboard: ${msg}\n`);
}

function canRun(p) {
        try {
                accessSync(p, constants.X_OK);
                return true;
        } catch {
                return false;
        }
}

function exists(p) {
        try {
                accessSync(p, constants.R_OK);
                return true;
        } catch {
                return false;
        }
}

// ---- what the test needs; missing parts are a skip, named ----
const missing = [];
for (const [name, p] of Object.entries(bin))
        if (!canRun(p))
                missing.push(`${p} (${name})`);
if (!canRun(CHROMIUM))
        missing.push(`${CHROMIUM} (Debian's chromium package: tools/setup.sh installs it)`);
for (const mod of ['playwright-core', 'uplot'])
        if (!exists(join(uiDir, 'node_modules', mod, 'package.json')))
                missing.push(`${join(uiDir, 'node_modules', mod)} (tools/setup.sh runs npm ci in ui/)`);
if (missing.length) {
        log(`SKIP: missing ${missing.join(', ')}`);
        process.exit(77);
}
const { chromium } = await import(join(uiDir, 'node_modules/playwright-core/index.mjs'));

// ---- cleanup, always ----
async function cleanup() {
        if (browserCtx)
                await browserCtx.close().catch(() => {});
        browserCtx = null;
        // ringflowd and the generator each lead their own process group (detached), so the
        // stages ringflowd started go with it even if it cannot stop them itself.
        for (const c of children)
                if (c.exitCode === null && c.signalCode === null)
                        try { process.kill(c.pid, 'SIGTERM'); } catch { /* gone */ }
        const deadline = Date.now() + 10000;
        for (const c of children) {
                while (c.exitCode === null && c.signalCode === null && Date.now() < deadline)
                        await sleep(50);
                try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ }
        }
        if (instance)
                rmSync(`/dev/shm/ringflow/${instance}`, { recursive: true, force: true });
        for (const d of [dataDir, profileDir])
                if (d)
                        rmSync(d, { recursive: true, force: true });
}

function finish(code) {
        process.stdout.write(`${passed} passed, ${failed} failed\n`);
        process.exit(code);
}

// Whatever ends this process, the pipeline it started ends with it: the process groups are
// killed synchronously on exit, and a signal first runs the orderly cleanup.
process.on('exit', () => {
        for (const c of children)
                try { process.kill(-c.pid, 'SIGKILL'); } catch { /* gone */ }
});
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'])
        process.on(sig, async () => {
                log(`${sig}: stopping`);
                await cleanup();
                process.exit(1);
        });

const watchdog = setTimeout(async () => {
        log(`FAIL: the test took longer than ${TEST_TIMEOUT_MS} ms`);
        failed++;
        await cleanup();
        finish(1);
}, TEST_TIMEOUT_MS);

function sleep(ms) {
        return new Promise((r) => setTimeout(r, ms));
}

// Runs one named check; a failure is reported with what was seen and ends the test.
async function check(name, fn) {
        const t0 = Date.now();
        try {
                const detail = await fn();
                passed++;
                log(`ok ${passed + failed} - ${name} (${Date.now() - t0} ms)${detail ? ': ' + detail : ''}`);
        } catch (e) {
                failed++;
                log(`not ok ${passed + failed} - ${name}: ${e.message}`);
                if (stderrTail)
                        log(`ringflowd's stderr (last ${STDERR_KEEP} bytes):\n${stderrTail}`);
                await cleanup();
                clearTimeout(watchdog);
                finish(1);
        }
}

// Polls fn() until it returns a truthy value; throws with what the last attempt said.
async function until(what, timeoutMs, fn, everyMs = 200) {
        const deadline = Date.now() + timeoutMs;
        let last = null;
        for (;;) {
                try {
                        const v = await fn();
                        if (v)
                                return v;
                } catch (e) {
                        last = e.message;
                }
                if (Date.now() > deadline)
                        throw new Error(`${what}: not within ${timeoutMs} ms${last ? ` (last: ${last})` : ''}`);
                await sleep(everyMs);
        }
}

// Which of our flags this ringflowd knows (every binary takes every config key as a flag).
function knownFlags() {
        const r = spawnSync(bin.ringflowd, ['--help'], { encoding: 'utf8' });
        return `${r.stdout || ''}${r.stderr || ''}`;
}

// The api's port: the gauge listen.port in api.stats, read with ringstat.
function apiPort() {
        const r = spawnSync(bin.ringstat, ['--instance', instance, '--json'], { encoding: 'utf8', timeout: 5000 });
        if (r.status !== 0)
                throw new Error(`ringstat exit ${r.status}: ${(r.stderr || '').trim().split('\n').pop()}`);
        const line = r.stdout.trim().split('\n').pop();
        const j = JSON.parse(line);
        const api = (j.stages || []).find((s) => s.stage === 'api');
        const port = api && api.gauges ? api.gauges['listen.port'] : 0;
        if (!port)
                throw new Error('api.stats has no listen.port yet');
        return port;
}

async function getJSON(base, path) {
        const res = await fetch(base + path, { signal: AbortSignal.timeout(4000) });
        if (!res.ok && res.status !== 503)
                throw new Error(`GET ${path}: HTTP ${res.status}`);
        return res.json();
}

// Pixels of a uPlot canvas: how many are not transparent, and how many are near a series colour.
async function canvasInk(page, sel) {
        return page.evaluate(([sel, rgbs]) => {
                const c = document.querySelector(sel);
                if (!c || !c.width || !c.height)
                        return { inked: 0, series: 0, w: 0, h: 0 };
                const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                let inked = 0, series = 0;
                for (let i = 0; i < d.length; i += 4) {
                        if (d[i + 3] === 0)
                                continue;
                        inked++;
                        for (const [r, g, b] of rgbs)
                                if (Math.abs(d[i] - r) + Math.abs(d[i + 1] - g) + Math.abs(d[i + 2] - b) < 40 && d[i + 3] > 160) {
                                        series++;
                                        break;
                                }
                }
                return { inked, series, w: c.width, h: c.height };
        }, [sel, SERIES_RGB]);
}

// ---- the pipeline ----
instance = `e2e-dash-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
dataDir = mkdtempSync(join(tmpdir(), 'ringflow-e2e-data-'));
profileDir = mkdtempSync(join(tmpdir(), 'ringflow-e2e-chromium-'));
// A port the api keeps across its restarts, so the page can reconnect to it: a
// free one the kernel picked for us just now (`--listen 127.0.0.1:0` would give
// every restarted api a new port, and no browser could follow it).
const port = await new Promise((ok, fail) => {
        const srv = createServer();
        srv.on('error', fail);
        srv.listen(0, '127.0.0.1', () => {
                const p = srv.address().port;
                srv.close(() => ok(p));
        });
});
const help = knownFlags();
// One short window, so results close while the page is open.
const conf = join(dataDir, 'ringflow.conf');
writeFileSync(conf, '[window types_per_2s]\nkind = tumbling\nsize = 2s\ngroup_by = type\n' +
        'aggregates = count, p99(data.latency_ms)\n', { mode: 0o600 });
const args = ['--config', conf, '--instance', instance, '--data-dir', dataDir, '--listen', `127.0.0.1:${port}`];
// Where the api finds the dashboard and uPlot: the source tree's ui/ (and its node_modules).
if (help.includes('--ui-dir'))
        args.push('--ui-dir', uiDir);
if (help.includes('--uplot-dir'))
        args.push('--uplot-dir', join(uiDir, 'node_modules/uplot/dist'));

const gen = spawn(bin.gen, ['--rate', String(GEN_RATE), '--now', '--invalid-ratio', '0.01', '--duration', String(GEN_DURATION_S)],
        { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
children.push(gen);
const daemon = spawn(bin.ringflowd, args, { stdio: [gen.stdout, 'ignore', 'pipe'], detached: true });
children.push(daemon);
gen.stdout.destroy(); // ringflowd has the pipe now; ours would only keep it open
let logPort = 0;
daemon.stderr.on('data', (b) => {
        stderrTail = (stderrTail + b.toString()).slice(-STDERR_KEEP);
        const m = /listen\w*[^\n]*?127\.0\.0\.1:(\d+)/i.exec(stderrTail);
        if (m && Number(m[1]) > 0)
                logPort = Number(m[1]);
});
log(`ringflow-gen --rate ${GEN_RATE} | ringflowd ${args.join(' ')}`);

let base = '';
await check('ringflowd starts and the api listens on the port asked for', async () => {
        const told = await until('the api port (api.stats listen.port or its log line)', START_TIMEOUT_MS, () => {
                if (daemon.exitCode !== null)
                        throw new Error(`ringflowd exited with status ${daemon.exitCode}`);
                return logPort || apiPort();
        });
        if (told !== port)
                throw new Error(`the api says it listens on ${told}, not on ${port}`);
        base = `http://127.0.0.1:${port}`;
        return base;
});

const ctxOpts = { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1440, height: 900 } };
let page = null;
await check('Chromium starts with a fresh profile', async () => {
        browserCtx = await chromium.launchPersistentContext(profileDir, ctxOpts);
        page = browserCtx.pages()[0] || await browserCtx.newPage();
        const ua = await page.evaluate(() => navigator.userAgent);
        return `${CHROMIUM}: ${(/(?:Headless)?Chrome\/[\d.]+/.exec(ua) || [ua])[0]}`;
});
const pageErrors = [];
page.on('pageerror', (e) => pageErrors.push(e.message));
page.on('console', (m) => {
        // /api/health answers 503 while a stage is down (the killed one): an answer, not an error.
        if (m.type() === 'error' && !/Failed to load resource: .* 503/.test(m.text()))
                pageErrors.push(m.text());
});

await check('GET / serves the dashboard and its modules load', async () => {
        const res = await page.goto(base + '/', { waitUntil: 'load', timeout: WAIT_MS });
        if (!res || res.status() !== 200)
                throw new Error(`GET / answered ${res ? res.status() : 'nothing'}: is ui_dir set for ringflow-api?`);
        if (!(await page.evaluate(() => typeof uPlot === 'function'))) {
                const r = await fetch(`${base}/vendor/uplot/uPlot.iife.min.js`);
                throw new Error(`uPlot did not load: GET /vendor/uplot/uPlot.iife.min.js answered ${r.status} ` +
                        `(ringflow-api should serve it from ${join(uiDir, 'node_modules/uplot/dist')})`);
        }
        return `${await page.title()}`;
});

await check('rates in and committed become non-zero', async () => {
        return until('non-zero #rate-in and #rate-committed', WAIT_MS, async () => {
                const [a, b] = await page.evaluate(() => ['rate-in', 'rate-committed'].map((id) => document.getElementById(id).textContent));
                const num = (s) => parseFloat(s) * (s.endsWith('k') ? 1e3 : s.endsWith('M') ? 1e6 : 1);
                if (!(num(a) > 0 && num(b) > 0))
                        throw new Error(`in "${a}", committed "${b}"`);
                return `in ${a} ev/s, committed ${b} ev/s`;
        });
});

await check('the header shows instance, uptime, health and the live stream', async () => {
        return until('header filled', WAIT_MS, async () => {
                const h = await page.evaluate(() => ({
                        instance: document.getElementById('instance').textContent,
                        uptime: document.getElementById('uptime').textContent,
                        health: document.getElementById('health').dataset.status,
                        conn: document.getElementById('conn').dataset.conn,
                        connText: document.getElementById('conn').textContent,
                }));
                if (h.instance !== instance || h.uptime === '–' || h.health === 'unknown' || h.conn !== 'live')
                        throw new Error(JSON.stringify(h));
                return `health ${h.health}, ${h.connText}`;
        });
});

await check('the event tail fills from the live stream', async () => {
        return until(`at least ${TAIL_MIN_ROWS} rows in the tail`, WAIT_MS, async () => {
                const n = await page.locator('#tail tr:not([hidden])').count();
                if (n < TAIL_MIN_ROWS)
                        throw new Error(`${n} rows`);
                return `${n} rows`;
        });
});

// A figure, not a check (it depends on the machine): how much of a core the page's main
// thread uses while the live tail runs, and how many events a second reach it.
{
        const cdp = await browserCtx.newCDPSession(page);
        await cdp.send('Performance.enable');
        const sample = async () => {
                const m = Object.fromEntries((await cdp.send('Performance.getMetrics')).metrics.map((x) => [x.name, x.value]));
                const n = await page.evaluate(() => parseInt(document.getElementById('tail-count').textContent.replace(/,/g, ''), 10));
                return { task: m.TaskDuration, layout: m.LayoutDuration, script: m.ScriptDuration, n, t: Date.now() };
        };
        const a = await sample();
        await sleep(MEASURE_MS);
        const b = await sample();
        const dt = (b.t - a.t) / 1000;
        const pct = (k) => ((b[k] - a[k]) / dt * 100).toFixed(1);
        log(`measure: page main thread ${pct('task')}% of one core (script ${pct('script')}%, layout ${pct('layout')}%) ` +
                `over ${dt.toFixed(1)} s with ${((b.n - a.n) / dt).toFixed(0)} events/s reaching the page`);
        await cdp.detach();
}

await check('the three charts draw (uPlot canvases with series pixels)', async () => {
        // Two samples at least make a line; give the charts a few seconds of data.
        return until('series drawn', WAIT_MS, async () => {
                const out = [];
                for (const id of ['chart-rates', 'chart-latency', 'chart-fill']) {
                        const ink = await canvasInk(page, `#${id} canvas`);
                        if (ink.inked === 0)
                                throw new Error(`#${id}: blank canvas ${ink.w}x${ink.h}`);
                        // Latency may honestly be unknown (null) early on; rates and ring fill always have values.
                        if (id !== 'chart-latency' && ink.series < 20)
                                throw new Error(`#${id}: ${ink.series} series pixels`);
                        out.push(`${id} ${ink.inked} inked/${ink.series} series px`);
                }
                return out.join(', ');
        }, 500);
});

await check('a SIGKILLed process stage shows as restarting, then healthy again', async () => {
        const m = await getJSON(base, '/api/metrics');
        const old = m.stages && m.stages.process ? m.stages.process.pid : 0;
        if (!(old > 0))
                throw new Error(`/api/metrics has no pid for process: ${JSON.stringify(m.stages && m.stages.process)}`);
        process.kill(old, 'SIGKILL');
        log(`killed ringflow-process pid ${old}`);
        const seen = await until('the process card marked restarting or restarted', RESTART_TIMEOUT_MS, () => page.evaluate((old) => {
                const c = document.getElementById('stage-process');
                const notes = document.getElementById('notes').textContent;
                if (c.dataset.state !== 'up' || c.dataset.restarted === 'yes' || notes.includes('process restarted'))
                        return `state ${c.dataset.state}, restarted mark ${c.dataset.restarted}, pid ${c.dataset.pid} (was ${old})`;
                return null;
        }, old), 100);
        log(`seen: ${seen}`);
        const healthy = await until('the process card healthy again with a new pid', RESTART_TIMEOUT_MS, () => page.evaluate((old) => {
                const c = document.getElementById('stage-process');
                const note = [...document.querySelectorAll('#notes li')].map((li) => li.textContent).find((t) => t.includes('process restarted'));
                const ok = c.dataset.state === 'up' && c.classList.contains('ok') && c.dataset.pid && c.dataset.pid !== String(old);
                return ok && note ? `state ${c.dataset.state}, pid ${c.dataset.pid}, note "${note}"` : null;
        }, old));
        await until('health back to ok', RESTART_TIMEOUT_MS, () => page.evaluate(() => document.getElementById('health').dataset.status === 'ok'));
        return `${healthy}; health ok`;
});

await check('a type filter narrows the tail', async () => {
        const before = await page.evaluate(() => [...document.querySelectorAll('#tail tr:not([hidden])')].map((tr) => tr.dataset.type));
        const types = [...new Set(before)];
        if (types.length < 2)
                throw new Error(`only ${types.length} type(s) in the tail before filtering: ${types.join(', ')}`);
        const pick = types[0];
        await page.fill('#filter-type', pick);
        // The tail keeps moving while we read it: compare against what it shows now.
        const after = await until('only rows of the filtered type', WAIT_MS, async () => {
                const rows = await page.evaluate(() => [...document.querySelectorAll('#tail tr:not([hidden])')].map((tr) => tr.dataset.type));
                if (rows.length === 0 || rows.some((t) => !t.includes(pick)))
                        throw new Error(`${rows.length} rows, types ${[...new Set(rows)].join(', ')}`);
                return rows;
        });
        const others = before.filter((t) => !t.includes(pick)).length;
        if (others === 0)
                throw new Error('nothing was filtered out');
        await page.fill('#filter-type', '');
        return `"${pick}": ${types.length} types → 1 (${after.length} rows shown; ${others} of ${before.length} rows before were other types)`;
});

await check('clicking an event shows its JSON', async () => {
        // Pause first: the rows are redrawn four times a second and a moving row is hard to click.
        await page.click('#tail-pause');
        await page.locator('#tail tr:not([hidden])').first().click();
        const text = await page.locator('#detail-json').textContent({ timeout: WAIT_MS });
        const ev = JSON.parse(text);
        if (!ev.id || !ev.type || !ev.source)
                throw new Error(`detail lacks id/type/source: ${text.slice(0, 200)}`);
        await page.click('#detail-close');
        await page.click('#tail-pause'); // resume for the screenshot
        if ((await page.textContent('#tail-pause')) !== 'pause')
                throw new Error('the tail did not resume');
        return `event ${ev.id} (${ev.type}/${ev.source})`;
});

await check('the window results table fills as windows close', async () => {
        await page.locator('#windows tr').first().waitFor({ timeout: WAIT_MS });
        const rows = await page.locator('#windows tr').count();
        const tab = await page.locator('.windows-panel button').first().textContent();
        if (!/types_per_2s/.test(tab || ''))
                throw new Error(`the window tab reads "${tab}", not types_per_2s`);
        return `${rows} rows of ${tab.trim()}`;
});

await check('no script errors on the page', async () => {
        const real = pageErrors.filter((e) => !/favicon/.test(e));
        if (real.length)
                throw new Error(real.slice(0, 5).join(' | '));
        return '';
});

await check('without WebSocket the page streams over Server-Sent Events', async () => {
        // A browser (or a proxy) without WebSocket: the page must use /api/stream instead.
        const p2 = await browserCtx.newPage();
        try {
                await p2.addInitScript(() => {
                        window.WebSocket = undefined;
                });
                await p2.goto(base + '/', { waitUntil: 'load', timeout: WAIT_MS });
                return await until('live over SSE with events in the tail', WAIT_MS, () => p2.evaluate((min) => {
                        const c = document.getElementById('conn');
                        const rows = document.querySelectorAll('#tail tr:not([hidden])').length;
                        if (c.dataset.conn !== 'live' || !c.textContent.includes('sse') || rows < min)
                                throw new Error(`conn "${c.textContent}", ${rows} rows`);
                        return `${c.textContent}, ${rows} rows`;
                }, TAIL_MIN_ROWS));
        } finally {
                await p2.close();
        }
});

// From here on, connection errors are the point of the test: only uncaught exceptions count.
const uncaught = [];
page.on('pageerror', (e) => uncaught.push(e.message));

await check('the page says it is reconnecting when the api dies, and reconnects by itself', async () => {
        const m = await getJSON(base, '/api/metrics');
        const old = m.stages && m.stages.api ? m.stages.api.pid : 0;
        if (!(old > 0))
                throw new Error(`/api/metrics has no pid for api: ${JSON.stringify(m.stages && m.stages.api)}`);
        const before = await page.evaluate(() => parseInt(document.getElementById('tail-count').textContent.replace(/,/g, ''), 10));
        process.kill(old, 'SIGKILL');
        log(`killed ringflow-api pid ${old}`);
        // The supervisor may restart the api within 100 ms: watch every animation frame.
        const said = await page.waitForFunction(() => {
                const c = document.getElementById('conn');
                return c.dataset.conn === 'reconnecting' || c.dataset.conn === 'partial' ? c.textContent : null;
        }, null, { timeout: WAIT_MS, polling: 'raf' });
        const text = await said.jsonValue();
        const back = await until('live again, with the new api and new events', RESTART_TIMEOUT_MS, () => page.evaluate(([old, before]) => {
                const c = document.getElementById('conn');
                const api = document.getElementById('stage-api');
                const n = parseInt(document.getElementById('tail-count').textContent.replace(/,/g, ''), 10);
                if (c.dataset.conn !== 'live' || !api.dataset.pid || api.dataset.pid === String(old) || !(n > before))
                        throw new Error(`conn ${c.dataset.conn}, api pid ${api.dataset.pid}, events ${n} (before ${before})`);
                return `${c.textContent}, api pid ${api.dataset.pid}, ${n - before} events since`;
        }, [old, before]));
        if (uncaught.length)
                throw new Error(`uncaught: ${uncaught.join(' | ')}`);
        return `said "${text}"; ${back}`;
});

await check('screenshots under load at 1440x900 and 390x844', async () => {
        const dir = join(builddir, 'tests/e2e');
        mkdirSync(dir, { recursive: true });
        await sleep(1500);
        const wide = join(dir, 'dashboard.png');
        await page.screenshot({ path: wide });
        await page.setViewportSize({ width: 390, height: 844 });
        await sleep(1200);
        const phone = join(dir, 'dashboard-phone.png');
        await page.screenshot({ path: phone, fullPage: true });
        // The page must fit a phone's width: nothing wider than the viewport.
        const scrollW = await page.evaluate(() => document.documentElement.scrollWidth);
        if (scrollW > 390)
                throw new Error(`the page is ${scrollW} px wide at a 390 px viewport`);
        const size = readFileSync(wide).length;
        log(`screenshot: ${wide}`);
        log(`screenshot: ${phone}`);
        return `${wide} (${size} bytes)`;
});

clearTimeout(watchdog);
await cleanup();
finish(failed ? 1 : 0);
