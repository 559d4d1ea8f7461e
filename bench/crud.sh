#!/usr/bin/env bash
# CRUD throughput of a release build on SQLite, on loopback.
#   1. swift build -c release --product assistants-server
#   2. start the server (SQLite in a temp dir, free 127.0.0.1 port, no API keys)
#   3. create one assistant and one thread with curl
#   4. wrk -t2 -c64 -d10s --latency:  GET  /v1/assistants/{id}
#                                     POST /v1/threads/{id}/messages  {"role":"user","content":"hello"}
#   5. print req/s, p99, non-2xx count (must be 0), idle RSS and peak RSS (VmHWM)
# Exits non-zero if a load saw non-2xx responses or socket errors.
#
# Env: WRK_THREADS (2), WRK_CONNECTIONS (64), WRK_DURATION (10s), and those of bench/lib.sh.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
trap bench_cleanup EXIT

WRK_THREADS="${WRK_THREADS:-2}"
WRK_CONNECTIONS="${WRK_CONNECTIONS:-64}"
WRK_DURATION="${WRK_DURATION:-10s}"

command -v wrk >/dev/null || { log "wrk is missing: run scripts/setup-system.sh"; exit 1; }

build_release
# shellcheck disable=SC2119
start_server
sleep 1
idle_rss_kb="$(proc_status_kb "$SERVER_PID" VmRSS)"
log "idle RSS $(kb_to_mb "$idle_rss_kb") MB"

assistant_id="$(api POST /v1/assistants '{"model":"gpt-4o-mini","name":"bench","instructions":"You are a benchmark."}' | json_field id)"
thread_id="$(api POST /v1/threads '{}' | json_field id)"
log "assistant $assistant_id, thread $thread_id"

cat >"$BENCH_TMP/post_message.lua" <<'LUA'
wrk.method = "POST"
wrk.body = '{"role":"user","content":"hello"}'
wrk.headers["Content-Type"] = "application/json"
LUA

# run_wrk NAME URL [wrk args...]: runs wrk, keeps its output in $BENCH_TMP/NAME.wrk
run_wrk() {
    local name="$1" url="$2"
    shift 2
    log "wrk -t$WRK_THREADS -c$WRK_CONNECTIONS -d$WRK_DURATION --latency $* $url"
    # wrk stops by itself after the duration; timeout is a backstop.
    timeout 120 wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"$WRK_DURATION" --latency \
        -H 'OpenAI-Beta: assistants=v2' -H 'Authorization: Bearer bench' "$@" "$url" \
        | tee "$BENCH_TMP/$name.wrk" >&2
}

# wrk_stat FILE WHAT
wrk_stat() {
    local f="$1"
    case "$2" in
        rps) awk '/^Requests\/sec:/ {print $2}' "$f" ;;
        p50) awk '$1 == "50%" {print $2}' "$f" ;;
        p99) awk '$1 == "99%" {print $2}' "$f" ;;
        total) awk '/requests in/ {print $1}' "$f" ;;
        non2xx) awk -F: '/Non-2xx or 3xx responses/ {gsub(/ /, "", $2); n = $2} END {print n + 0}' "$f" ;;
        sockerr) awk '/Socket errors/ {gsub(/,/, ""); print $4 + $6 + $8 + $10; found = 1} END {if (!found) print 0}' "$f" ;;
    esac
}

run_wrk get_assistant "$BASE_URL/v1/assistants/$assistant_id"
run_wrk post_message "$BASE_URL/v1/threads/$thread_id/messages" -s "$BENCH_TMP/post_message.lua"

# Check that the POSTs really stored messages.
stored="$(api GET "/v1/threads/$thread_id/messages?limit=1" | "$BENCH_PY" -c 'import json, sys; print(len(json.load(sys.stdin)["data"]))')"

peak_rss_kb="$(proc_status_kb "$SERVER_PID" VmHWM)"
after_rss_kb="$(proc_status_kb "$SERVER_PID" VmRSS)"

status=0
printf '\n== bench/crud.sh: wrk -t%s -c%s -d%s, SQLite, %s ==\n' "$WRK_THREADS" "$WRK_CONNECTIONS" "$WRK_DURATION" "$ASSISTANTS_SERVER_BIN"
printf '%-34s %12s %10s %10s %10s %9s %9s\n' endpoint req/s p50 p99 requests non-2xx sock-err
for name in get_assistant post_message; do
    f="$BENCH_TMP/$name.wrk"
    case "$name" in
        get_assistant) label="GET /v1/assistants/{id}" ;;
        post_message) label="POST /v1/threads/{id}/messages" ;;
    esac
    non2xx="$(wrk_stat "$f" non2xx)"
    sockerr="$(wrk_stat "$f" sockerr)"
    printf '%-34s %12s %10s %10s %10s %9s %9s\n' "$label" "$(wrk_stat "$f" rps)" "$(wrk_stat "$f" p50)" \
        "$(wrk_stat "$f" p99)" "$(wrk_stat "$f" total)" "$non2xx" "$sockerr"
    if [ "$non2xx" != 0 ] || [ "$sockerr" != 0 ]; then status=1; fi
done
printf '%-34s %s MB\n' "server RSS idle (before load)" "$(kb_to_mb "$idle_rss_kb")"
printf '%-34s %s MB\n' "server RSS after load" "$(kb_to_mb "$after_rss_kb")"
printf '%-34s %s MB\n' "server peak RSS (VmHWM)" "$(kb_to_mb "$peak_rss_kb")"
if [ "$stored" != 1 ]; then
    echo "FAIL: listing the thread's messages after the load returned $stored messages"
    status=1
fi
if [ "$status" -ne 0 ]; then
    echo "FAIL: non-2xx responses or socket errors during the load (must be 0); server log: $BENCH_TMP/server.log"
    KEEP_TMP=1
else
    echo "OK: 0 non-2xx responses, 0 socket errors"
fi
exit "$status"
