#!/usr/bin/env bash
# code_interpreter latency: a trivial execution (print(1)) in a warm session and a first
# execution (cold session: a new thread), median over N runs each, through the server.
#
#   1. the binary: .build/release/assistants-server if it exists and is newer than every
#      file of Sources/ and Package.swift/Package.resolved, else .build/debug/assistants-server
#      (this script never builds; ASSISTANTS_SERVER_BIN overrides)
#   2. bench/code_driver.py: runs the scripted upstream (tests/conformance/upstream.py)
#      in-process, starts the server on SQLite in a temp dir, and times streamed runs
#      whose model calls code_interpreter with print(1) (warm thread / new thread)
#      against identical runs whose model answers with text at once
#   3. prints a table: run latencies, the tool's cost (difference of medians), the gap
#      the upstream sees between the tool call and the tool output; targets: warm < 50 ms,
#      cold < 500 ms
#
# Env: N (50), WARMUP (3), KEEP_TMP=1, BENCH_LOG_LEVEL (warning), ASSISTANTS_SERVER_BIN,
#      ASSISTANTS_CODE_MAX_SESSIONS / ASSISTANTS_CODE_TIMEOUT_SECONDS (passed to the server).
# Needs root (the sandbox drops to uid 65534 itself), bubblewrap, user namespaces.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

N="${N:-50}"
WARMUP="${WARMUP:-3}"

pick_binary() {
    local release="$ROOT/.build/release/assistants-server" debug="$ROOT/.build/debug/assistants-server"
    if [ -x "$release" ]; then
        local newer
        newer="$(find "$ROOT/Sources" "$ROOT/Package.swift" "$ROOT/Package.resolved" -newer "$release" -type f 2>/dev/null | head -n 3)"
        if [ -z "$newer" ]; then
            echo "$release release"
            return
        fi
        log "the release binary is older than: $(echo "$newer" | tr '\n' ' ')"
    fi
    if [ -x "$debug" ]; then
        echo "$debug debug"
        return
    fi
    log "no server binary (build it first; this script does not build)"
    exit 1
}

if [ -n "${ASSISTANTS_SERVER_BIN:-}" ]; then
    BIN="$ASSISTANTS_SERVER_BIN"; KIND="given"
else
    read -r BIN KIND <<<"$(pick_binary)"
fi
log "server binary: $BIN ($KIND build)"

if [ -x "$ROOT/.venv-conformance/bin/python" ] && "$ROOT/.venv-conformance/bin/python" -c 'import httpx' 2>/dev/null; then
    VENV_PY="$ROOT/.venv-conformance/bin/python"
else
    log "preparing .venv-conformance (httpx for the driver)"
    VENV_PY="$(EXTRA_PIP_PACKAGES=httpx "$ROOT/scripts/conformance-venv.sh")"
fi

extra=()
[ -n "${KEEP_TMP:-}" ] && extra+=(--keep-tmp)
status=0
timeout 1800 "$VENV_PY" "$ROOT/bench/code_driver.py" --server-bin "$BIN" -n "$N" --warmup "$WARMUP" \
    --log-level "${BENCH_LOG_LEVEL:-warning}" "${extra[@]}" || status=$?
echo "(binary: $KIND build)"
exit "$status"
