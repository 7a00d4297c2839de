-- A wrk script for serve_metadata.sh. After each run it prints one
-- machine-readable RESULT line below wrk's own text report. The line has the
-- request count, requests per second, latency percentiles in microseconds and
-- the error counts. The script defines no request() function, so wrk sends
-- the same request every time.

done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local errors = summary.errors
  io.write(string.format(
    "RESULT requests=%d seconds=%.3f rps=%.1f p50_us=%d p99_us=%d max_us=%d " ..
    "connect_errors=%d read_errors=%d write_errors=%d status_errors=%d timeouts=%d\n",
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50), latency:percentile(99), latency.max,
    errors.connect, errors.read, errors.write, errors.status, errors.timeout))
end
