-- wrk script: PUT one new application per request (stage done, so each makes an invitation
-- and queues its SMS), with the approval client's key.
-- Environment: BENCH_KEY, BENCH_NONCE (new for every run, so project numbers never repeat),
-- BENCH_DONE_AT (ISO 8601 with offset).
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  nonce = os.getenv("BENCH_NONCE")
  done_at = os.getenv("BENCH_DONE_AT")
  headers = {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. os.getenv("BENCH_KEY")}
end

function request()
  counter = counter + 1
  local path = string.format("/api/v1/projects/B%s-%02d-%08d", nonce, tid, counter)
  local body = string.format(
    '{"item_code":"bench-license","stage":"done","accepted_at":"%s","done_at":"%s","staff_no":"A01",' ..
    '"applicant":{"kind":"person","name":"陈小明","phone":"138%08d"}}', done_at, done_at, counter % 100000000)
  return wrk.format("PUT", path, headers, body)
end

-- done(): the BENCH_RESULT line bench/run.py reads (bench/result.lua, one copy for every script).
dofile(os.getenv("BENCH_LUA_DIR") .. "/result.lua")
