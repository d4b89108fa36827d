-- wrk script: POST one rating per request, each with a unique client_id, 3 % bad.
-- Environment: BENCH_PATH, BENCH_KEY (device key, may be empty), BENCH_NONCE (8 hex
-- digits, new for every run so client_ids never repeat), BENCH_RATED_AT, and
-- BENCH_COMMENT_SHARE (default 0): the share of good ratings that carry a comment too, one
-- of a pool of hall comments numbered by the request (so no two are the same text);
-- BENCH_KEYS (comma-separated device keys): each request from one of them at random, and
-- with BENCH_RATED_NOW=1 rated at the moment it is posted.
local threads = {}
local counter = 0
local comments = {"不动产登记要跑两趟，材料不全", "营业执照一窗通办很方便", "排队时间太长，工作人员态度生硬",
                  "自助终端系统故障", "办事指南写得清楚", "社保卡补办很快", "公积金提取手续复杂",
                  "窗口工作人员很耐心", "网上办理总是失败", "最多跑一次落实得好"}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(tid * 7919 + os.time())
  path = os.getenv("BENCH_PATH")
  nonce = os.getenv("BENCH_NONCE")
  rated_at = os.getenv("BENCH_RATED_AT")
  comment_share = tonumber(os.getenv("BENCH_COMMENT_SHARE") or "0")
  headers = {["Content-Type"] = "application/json"}
  local key = os.getenv("BENCH_KEY")
  if key and key ~= "" then headers["Authorization"] = "Bearer " .. key end
  keys = {}
  for k in string.gmatch(os.getenv("BENCH_KEYS") or "", "[^,]+") do table.insert(keys, k) end
  rated_now = os.getenv("BENCH_RATED_NOW") == "1"
end

function request()
  counter = counter + 1
  if #keys > 0 then headers["Authorization"] = "Bearer " .. keys[math.random(1, #keys)] end
  if rated_now then rated_at = os.date("!%Y-%m-%dT%H:%M:%SZ") end
  local cid = string.format("%s-%04x-4%03x-8%03x-%012x", nonce, tid, math.random(0, 4095),
                            math.random(0, 4095), counter)
  local body
  if math.random() < 0.03 then
    body = string.format('{"client_id":"%s","level":%d,"rated_at":"%s","staff_no":"A0107","comment":"排队时间太长，窗口只开了一个"}',
                         cid, math.random(1, 2), rated_at)
  elseif math.random() < comment_share then
    body = string.format('{"client_id":"%s","level":%d,"rated_at":"%s","staff_no":"A0107","comment":"%s（%d）"}',
                         cid, math.random(3, 5), rated_at, comments[math.random(1, #comments)], counter)
  else
    body = string.format('{"client_id":"%s","level":%d,"rated_at":"%s","staff_no":"A0107"}',
                         cid, math.random(3, 5), rated_at)
  end
  return wrk.format("POST", path, headers, body)
end

-- done(): the BENCH_RESULT line bench/run.py reads (bench/result.lua, one copy for every script).
dofile(os.getenv("BENCH_LUA_DIR") .. "/result.lua")
