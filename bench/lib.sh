#!/usr/bin/env bash
# Shared helpers for bench/*.sh (sourced, not run). Loopback only.
#
# Env understood by every bench:
#   SKIP_BUILD=1            use the existing release binary
#   ASSISTANTS_SERVER_BIN   binary to run (default .build/release/assistants-server)
#   SERVER_ARGS             the server's arguments; @PORT@ and @DIR@ are replaced by the
#                           port and the temp data dir (default below)
#   SERVER_READY_TIMEOUT    seconds to wait for the server to answer (default 60)
#   BENCH_LOG_LEVEL         the server's ASSISTANTS_LOG_LEVEL (default warning)

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_PY="${BENCH_PY:-/usr/bin/python3}"
command -v "$BENCH_PY" >/dev/null 2>&1 || BENCH_PY=python3

# How the server is started (`assistants-server serve` flags): SQLite in @DIR@,
# listening on 127.0.0.1:@PORT@; ASSISTANTS_API_KEYS is unset, so no API keys.
SERVER_ARGS="${SERVER_ARGS:-serve --host 127.0.0.1 --port @PORT@ --database-url sqlite://@DIR@/assistants.sqlite --data-dir @DIR@}"

SERVER_PID=""
BENCH_TMP=""
_cleanup_pids=()

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

bench_cleanup() {
    local pid
    for pid in "$SERVER_PID" "${_cleanup_pids[@]}"; do
        [ -n "$pid" ] || continue
        if kill -0 "$pid" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
        wait "$pid" 2>/dev/null || true
    done
    if [ -n "$BENCH_TMP" ] && [ -z "${KEEP_TMP:-}" ]; then
        rm -rf "$BENCH_TMP"
    fi
}

# Remember a background process to stop at exit.
track_pid() { _cleanup_pids+=("$1"); }

build_release() {
    ASSISTANTS_SERVER_BIN="${ASSISTANTS_SERVER_BIN:-$ROOT/.build/release/assistants-server}"
    if [ "${SKIP_BUILD:-0}" = 1 ]; then
        log "SKIP_BUILD=1: using $ASSISTANTS_SERVER_BIN"
    else
        log "swift build -c release --product assistants-server"
        (cd "$ROOT" && swift build -c release --product assistants-server) >&2
    fi
    if [ ! -x "$ASSISTANTS_SERVER_BIN" ]; then
        log "no server binary at $ASSISTANTS_SERVER_BIN"
        exit 1
    fi
}

free_port() {
    "$BENCH_PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_http URL PID NAME [CURL_OPTION...]: until URL answers with any HTTP status (bounded);
# the options go to curl (e.g. --cacert FILE for an https URL).
wait_http() {
    local url="$1" pid="$2" name="$3" limit="${SERVER_READY_TIMEOUT:-60}" code
    shift 3
    local deadline=$((SECONDS + limit))
    while [ "$SECONDS" -lt "$deadline" ]; do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "$name exited before answering"
            return 1
        fi
        code="$(curl -s -o /dev/null -m 2 -w '%{http_code}' "$@" "$url" || true)"
        if [ -n "$code" ] && [ "$code" != 000 ]; then
            return 0
        fi
        sleep 0.2
    done
    log "$name did not answer $url within ${limit}s"
    return 1
}

# runs_bench_setup: what the runs benches (runs.sh, cluster.sh) share before they start anything:
# the defaults of N (2000), CONCURRENCY (64) and POLL_INTERVAL (0.02 s), UPSTREAM_PY (the scripted
# upstream, tests/conformance/upstream.py; exits when it is missing) and VENV_PY (the python of
# .venv-conformance, made with httpx for the driver).
runs_bench_setup() {
    N="${N:-2000}"
    CONCURRENCY="${CONCURRENCY:-64}"
    POLL_INTERVAL="${POLL_INTERVAL:-0.02}"
    UPSTREAM_PY="$ROOT/tests/conformance/upstream.py"
    [ -f "$UPSTREAM_PY" ] || { log "missing $UPSTREAM_PY"; exit 1; }
    log "preparing .venv-conformance (httpx for the driver)"
    VENV_PY="$(EXTRA_PIP_PACKAGES=httpx "$ROOT/scripts/conformance-venv.sh")"
}

# start_server [ENV=VALUE...]: starts the server on SQLite in a temp dir on a
# free loopback port; sets SERVER_PID, SERVER_PORT, BASE_URL, BENCH_TMP.
start_server() {
    BENCH_TMP="${BENCH_TMP:-$(mktemp -d "${TMPDIR:-/tmp}/assistants-bench.XXXXXX")}"
    SERVER_PORT="$(free_port)"
    local args_str="${SERVER_ARGS//@PORT@/$SERVER_PORT}"
    args_str="${args_str//@DIR@/$BENCH_TMP}"
    local -a args
    read -r -a args <<<"$args_str"
    log "starting $ASSISTANTS_SERVER_BIN ${args[*]} $*"
    env -u ASSISTANTS_API_KEYS -u ASSISTANTS_DATABASE_URL ASSISTANTS_LOG_LEVEL="${BENCH_LOG_LEVEL:-warning}" "$@" \
        "$ASSISTANTS_SERVER_BIN" "${args[@]}" >"$BENCH_TMP/server.log" 2>&1 &
    SERVER_PID=$!
    BASE_URL="http://127.0.0.1:$SERVER_PORT"
    if ! wait_http "$BASE_URL/v1/assistants" "$SERVER_PID" server; then
        tail -n 30 "$BENCH_TMP/server.log" >&2 || true
        exit 1
    fi
    log "server pid $SERVER_PID on $BASE_URL (log $BENCH_TMP/server.log)"
}

# proc_status_kb PID FIELD: e.g. VmRSS, VmHWM, in kB.
proc_status_kb() { awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status"; }

kb_to_mb() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

# api METHOD PATH [JSON]: prints the response body; fails on a non-2xx status.
api() {
    local method="$1" path="$2" body="${3:-}"
    local -a data=()
    [ -n "$body" ] && data=(-H 'Content-Type: application/json' --data "$body")
    curl -sS -f -m 10 -X "$method" "$BASE_URL$path" \
        -H 'OpenAI-Beta: assistants=v2' -H 'Authorization: Bearer bench' "${data[@]}"
}

json_field() { "$BENCH_PY" -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
