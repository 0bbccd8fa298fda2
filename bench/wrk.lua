-- wrk script for every bench scenario: headers from the environment, a fresh
-- Idempotency-Key per POST, and one JSON line of results from done().
local method = os.getenv("BENCH_METHOD") or "GET"
local cookie = os.getenv("BENCH_COOKIE")
local bearer = os.getenv("BENCH_BEARER")
local body = os.getenv("BENCH_BODY")
local forwarded = os.getenv("BENCH_FORWARDED_FOR")
local run_prefix = os.getenv("BENCH_KEY_PREFIX") or tostring(os.time())
local threads = 0
local counter = 0
local prefix = ""

function setup(thread)
  threads = threads + 1
  thread:set("thread_id", threads)
end

function init(args)
  prefix = run_prefix .. "-" .. tostring(thread_id) .. "-"
end

function request()
  local headers = {}
  if cookie then headers["Cookie"] = cookie end
  if bearer then headers["Authorization"] = "Bearer " .. bearer end
  if forwarded then headers["X-Forwarded-For"] = forwarded end
  if method == "POST" then
    counter = counter + 1
    headers["Content-Type"] = "application/json"
    headers["Idempotency-Key"] = prefix .. counter
  end
  return wrk.format(method, nil, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"status_errors":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p99_us":%d,"mean_us":%.1f}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
