// SPDX-License-Identifier: MIT
// poll.js: fetching the api's JSON on a timer, never two requests at once, surviving failures.

// A request that has not answered in this long counts as failed (the api answers in microseconds).
export const FETCH_TIMEOUT_MS = 4000;

// GETs url and returns the parsed JSON. Throws an Error saying what went wrong and where:
// a timeout, a network error, a status that is not 2xx (503 from /api/health still has a body
// worth reading, so okStatuses lists the statuses that are answers), or a body that is not JSON.
export async function getJSON(url, okStatuses = []) {
        const ctl = new AbortController();
        const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
        let res;
        try {
                res = await fetch(url, { signal: ctl.signal, cache: 'no-store' });
        } catch (e) {
                throw new Error(`${url}: ${e.name === 'AbortError' ? `no answer in ${FETCH_TIMEOUT_MS} ms` : e.message}`);
        } finally {
                clearTimeout(timer);
        }
        if (!res.ok && !okStatuses.includes(res.status))
                throw new Error(`${url}: HTTP ${res.status}`);
        try {
                return await res.json();
        } catch (e) {
                throw new Error(`${url}: answer is not JSON (${e.message})`);
        }
}

// Calls fn() every intervalMs, waiting for each call to finish before scheduling the next, so a
// slow api gets at most one request from us at a time. fn's failures are passed to onError and
// polling goes on: that is how the page reconnects after the api restarts. Returns a stop function.
export function every(intervalMs, fn, onError) {
        let stopped = false;
        let timer = null;
        const tick = async () => {
                const started = performance.now();
                try {
                        await fn();
                } catch (e) {
                        onError(e);
                }
                if (!stopped)
                        timer = setTimeout(tick, Math.max(0, intervalMs - (performance.now() - started)));
        };
        tick();
        return () => {
                stopped = true;
                clearTimeout(timer);
        };
}
