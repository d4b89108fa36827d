-- wrk's done() for every bench script: one BENCH_RESULT line of JSON that bench/run.py
-- (Bench.wrk_script) reads. Loaded with dofile from BENCH_LUA_DIR, which it sets.
function done(summary, latency, requests)
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"non2xx":%d,"socket_errors":%d,"p50_us":%d,"p99_us":%d,"mean_us":%f}\n',
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), latency.mean))
end
