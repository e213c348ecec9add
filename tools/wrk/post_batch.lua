-- SPDX-License-Identifier: MIT
-- post_batch.lua: wrk script: keep-alive POST /api/events/batch, a JSON array of 1000 events per request.
-- wrk -t2 -c8 -d10s -s tools/wrk/post_batch.lua http://127.0.0.1:8080
-- BATCH=n in the environment changes the events per request. Prints events/s of 202 answers.

local n = tonumber(os.getenv("BATCH") or "1000")
local one = '{"type":"bench","source":"wrk","data":{"user":"u42","amount":12.5}}'
local parts = {}
for i = 1, n do
        parts[i] = one
end

wrk.method = "POST"
wrk.path = "/api/events/batch"
wrk.headers["Content-Type"] = "application/json"
wrk.body = "[" .. table.concat(parts, ",") .. "]"

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
        io.write(string.format("events/s (202 answers, %d events each): %.0f   non-202 answers: %d\n",
                               n, (summary.requests - b) * n / secs, b))
end
