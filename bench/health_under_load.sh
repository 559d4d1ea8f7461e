#!/usr/bin/env bash
# /health latency while the server does heavy work (issue 16): two 50 MB PDFs ingest into a
# vector store while a run stages a 200 MB file into its code-interpreter session.
#
#   1. the binary: .build/release/assistants-server if it exists and is newer than every file
#      of Sources/ and Package.swift/Package.resolved, else .build/debug/assistants-server
#      (this script never builds; ASSISTANTS_SERVER_BIN overrides)
#   2. bench/health_under_load_driver.py: writes the PDFs (pages of text, each with a grey image;
#      no library needed) and the blob once into $BENCH_CACHE, starts the scripted upstream
#      (tests/conformance/upstream.py) in-process and the server on SQLite in a temp dir, uploads
#      the files, then probes GET /health every 20 ms on one keep-alive connection while the
#      PDFs ingest and the run (model: call code_interpreter on the file, then answer) completes
#   3. prints probes, p50/p99/max, ingestion and run time, the server's CPU; target p99 < 50 ms
# Exits non-zero if a probe did not answer 200 or the work did not finish.
#
# Env: PDF_MB (50), PDFS (2), STAGE_MB (200), INTERVAL_MS (20), BENCH_CACHE
#      (/tmp/assistants-bench-cache), KEEP_TMP=1, BENCH_LOG_LEVEL (warning), ASSISTANTS_SERVER_BIN.
# Needs root (the sandbox drops to uid 65534 itself), bubblewrap, pdftotext (scripts/setup-system.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

pick_binary() {
    local release="$ROOT/.build/release/assistants-server" debug="$ROOT/.build/debug/assistants-server"
    if [ -x "$release" ] && [ -z "$(find "$ROOT/Sources" "$ROOT/Package.swift" "$ROOT/Package.resolved" -newer "$release" -type f 2>/dev/null | head -n 1)" ]; then
        echo "$release"
    elif [ -x "$debug" ]; then
        echo "$debug"
    else
        log "no server binary: swift build (or -c release) first"
        exit 1
    fi
}

BIN="${ASSISTANTS_SERVER_BIN:-$(pick_binary)}"
PY="$ROOT/.venv-conformance/bin/python"
[ -x "$PY" ] || PY=python3
log "server binary: $BIN"
args=(--server-bin "$BIN" --pdf-mb "${PDF_MB:-50}" --pdfs "${PDFS:-2}" --stage-mb "${STAGE_MB:-200}"
      --interval-ms "${INTERVAL_MS:-20}")
[ -n "${BENCH_CACHE:-}" ] && args+=(--cache "$BENCH_CACHE")
[ -n "${KEEP_TMP:-}" ] && args+=(--keep)
exec "$PY" "$ROOT/bench/health_under_load_driver.py" "${args[@]}"
