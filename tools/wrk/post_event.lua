-- SPDX-License-Identifier: MIT
-- post_event.lua: wrk script: keep-alive POST /api/events with one event per request.
-- wrk -t2 -c64 -d10s -s tools/wrk/post_event.lua http://127.0.0.1:8080
-- Non-2xx answers (429, 503) are counted and printed at the end: wrk's req/s counts them too.

wrk.method = "POST"
wrk.path = "/api/events"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"type":"bench","source":"wrk","data":{"user":"u42","amount":12.5}}'

local threads = {}

function setup(thread)
        table.insert(threads, thread)
end

function init(args)
        bad = 0
end

function response(status, headers, body)
        if status ~= 202 then
                bad = bad + 1
        end
end

function done(summary, latency, requests)
        local b = 0
        for _, t in ipairs(threads) do
                b = b + t:get("bad")
        end
        local secs = summary.duration / 1e6
        io.write(string.format("events/s (202 answers): %.0f   non-202 answers: %d\n",
                               (summary.requests - b) / secs, b))
end
