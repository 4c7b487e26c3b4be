-- wrk script: every request is a new conversation (its own process_instance_id), so no call
-- attaches to another's job; counts answers by status. Arguments: the body file.
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  local file = assert(io.open(args[1], "r"))
  template = file:read("*a")
  file:close()
  prefix = "wrk" .. wrk.thread:get("id") .. "-" .. tostring(math.random(1, 1e9)) .. "-"
  sent, done_n, pending_n, other_n = 0, 0, 0, 0
  headers = {["Content-Type"] = "application/json"}
end

function request()
  sent = sent + 1
  local body = template:gsub("INSTANCE_ID", prefix .. sent, 1)
  return wrk.format("POST", nil, headers, body)
end

function response(status, headers, body)
  if status == 200 and body:find('_status":"done"', 1, true) then
    done_n = done_n + 1
  elseif status == 200 and body:find('_status":"pending"', 1, true) then
    pending_n = pending_n + 1
  else
    other_n = other_n + 1
  end
end

function done(summary, latency, requests)
  local d, p, o = 0, 0, 0
  for _, thread in ipairs(threads) do
    d = d + thread:get("done_n")
    p = p + thread:get("pending_n")
    o = o + thread:get("other_n")
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests": %d, "seconds": %f, "errors": %d, "p50_ms": %f, "p90_ms": %f, "p99_ms": %f, '
      .. '"max_ms": %f, "done": %d, "pending": %d, "other": %d}\n',
    summary.requests, summary.duration / 1e6, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, d, p, o))
end
