#!/usr/bin/env bash
# Run throughput of a release build on SQLite against the scripted upstream, on loopback.
#   1. swift build -c release --product assistants-server
#   2. start tests/conformance/upstream.py --port P --mode instant --tool-round-trip
#   3. start the server with ASSISTANTS_UPSTREAM_URL pointing at it
#   4. bench/runs_driver.py: N runs (POST /v1/threads/runs, poll until terminal),
#      64 in flight; then N runs with one function-tool round trip
#      (requires_action -> submit_tool_outputs -> completed)
#   5. print runs/s, server CPU ms per run, terminal statuses (all must be completed)
#
# Env: N (2000), CONCURRENCY (64), POLL_INTERVAL (0.02 s), PHASES ("plain,tools"),
#      UPSTREAM_ARGS (args for upstream.py besides --port, default "--mode instant --tool-round-trip":
#      a fixed text at once, and a call to the first tool when the request offers tools),
#      UPSTREAM_URL_SUFFIX (default "/v1": ASSISTANTS_UPSTREAM_URL=http://127.0.0.1:P/v1),
#      CLIENT (driver's HTTP client: "raw", the default, one keep-alive connection per worker
#      through bench/loopback_http.py; or "httpx", which needs a core of its own at this rate),
#      and those of bench/lib.sh.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
trap bench_cleanup EXIT

CLIENT="${CLIENT:-raw}"
PHASES="${PHASES:-plain,tools}"
UPSTREAM_ARGS="${UPSTREAM_ARGS:---mode instant --tool-round-trip}"
UPSTREAM_URL_SUFFIX="${UPSTREAM_URL_SUFFIX-/v1}"
runs_bench_setup

build_release

BENCH_TMP="$(mktemp -d "${TMPDIR:-/tmp}/assistants-bench.XXXXXX")"
UPSTREAM_PORT="$(free_port)"
read -r -a upstream_args <<<"$UPSTREAM_ARGS"
log "starting upstream: $UPSTREAM_PY --port $UPSTREAM_PORT ${upstream_args[*]}"
"$VENV_PY" "$UPSTREAM_PY" --port "$UPSTREAM_PORT" "${upstream_args[@]}" >"$BENCH_TMP/upstream.log" 2>&1 &
UPSTREAM_PID=$!
track_pid "$UPSTREAM_PID"
if ! wait_http "http://127.0.0.1:$UPSTREAM_PORT/health" "$UPSTREAM_PID" upstream; then
    tail -n 30 "$BENCH_TMP/upstream.log" >&2 || true
    exit 1
fi

UPSTREAM_URL="http://127.0.0.1:$UPSTREAM_PORT$UPSTREAM_URL_SUFFIX"
start_server ASSISTANTS_UPSTREAM_URL="$UPSTREAM_URL" ASSISTANTS_UPSTREAM_API_KEY=bench-upstream-key
idle_rss_kb="$(proc_status_kb "$SERVER_PID" VmRSS)"

log "driver: N=$N, $CONCURRENCY in flight, phases $PHASES, client $CLIENT"
status=0
timeout 1800 "$VENV_PY" "$ROOT/bench/runs_driver.py" \
    --base-url "$BASE_URL" --server-pid "$SERVER_PID" --upstream-pid "$UPSTREAM_PID" --clk-tck "$(getconf CLK_TCK)" \
    -n "$N" --concurrency "$CONCURRENCY" --poll-interval "$POLL_INTERVAL" --phases "$PHASES" --client "$CLIENT" \
    >"$BENCH_TMP/driver.out" || status=$?

peak_rss_kb="$(proc_status_kb "$SERVER_PID" VmHWM)"

printf '\n== bench/runs.sh: %s runs per phase, %s in flight, SQLite, instant upstream, driver client %s, %s ==\n' "$N" "$CONCURRENCY" "$CLIENT" "$ASSISTANTS_SERVER_BIN"
"$BENCH_PY" - "$BENCH_TMP/driver.out" <<'PY'
import json, sys
rows = [json.loads(l[len("RESULT "):]) for l in open(sys.argv[1]) if l.startswith("RESULT ")]
fmt = "{:<8} {:>6} {:>9} {:>14} {:>14} {:>10} {:>10} {:>10}  {}"
print(fmt.format("phase", "runs", "runs/s", "srv CPU ms/run", "upstr CPU ms/r", "polls/run", "p50 ms", "p99 ms",
                 "terminal statuses"))
for r in rows:
    st = ", ".join(f"{k}={v}" for k, v in sorted(r["statuses"].items()))
    if r["phase"] == "tools":
        st += "; tool round trips " + ", ".join(f"{k}:{v}" for k, v in r["tool_round_trips"].items())
    print(fmt.format(r["phase"], r["runs"], r["runs_per_s"], r["server_cpu_ms_per_run"],
                     r["upstream_cpu_ms_per_run"], r["polls_per_run"],
                     r["latency_ms_p50"], r["latency_ms_p99"], st))
    if r["errors"]:
        print(f"         errors: {r['errors']}")
if not rows:
    print("no results from the driver")
PY
printf '%-34s %s MB\n' "server RSS idle (before load)" "$(kb_to_mb "$idle_rss_kb")"
printf '%-34s %s MB\n' "server peak RSS (VmHWM)" "$(kb_to_mb "$peak_rss_kb")"
echo "(server CPU ms/run counts all server work for a run: create, polls, tool submit, upstream calls)"
if [ "$status" -ne 0 ]; then
    echo "FAIL: not every run completed (driver exit $status); server log: $BENCH_TMP/server.log"
    KEEP_TMP=1
else
    echo "OK: every run completed"
fi
exit "$status"
