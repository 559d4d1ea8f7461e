#!/usr/bin/env bash
# Retrieval bench on SQLite, loopback only: ingestion rate, search latency, recall@5.
#   1. bench/retrieval_corpus.py: DOCS documents (PDF_FRACTION of them PDFs) of filler prose
#      with one unique needle each ("The secret code of project AURORA-1412 is ZEBRA-9931.")
#      and a question per needle
#   2. start the server: .build/release/assistants-server when it exists and is newer than
#      every file under Sources/, else .build/debug/assistants-server (never builds)
#   3. bench/retrieval_driver.py: upload (files API), one vector store, file batches with
#      static chunking MAX_CHUNK/OVERLAP tokens; ingestion time = first batch create ->
#      last batch completed; QUERIES sequential searches (max_num_results 5): p50/p99
#      latency and recall@5 (the needle's file among the top 5 results), full-text ranking
#      only (no embedding model configured)
#   4. print a summary; targets: recall@5 >= 0.95, search p50 < 50 ms at >= 100k chunks
#
# Env: DOCS (1000), WORDS_PER_DOC (10500: about 105 chunks of 100 tokens a document),
#      PDF_FRACTION (0.05), MAX_CHUNK (100), OVERLAP (0), QUERIES (300), BATCH_SIZE (1000),
#      INGEST_TIMEOUT (600 s), SEARCH_TIMEOUT (180 s), ASSISTANTS_SERVER_BIN (override the
#      binary choice), KEEP_TMP=1, and those of bench/lib.sh. The whole bench is bounded by
#      `timeout` (BENCH_TIMEOUT, 870 s).
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
trap bench_cleanup EXIT

DOCS="${DOCS:-1000}"
WORDS_PER_DOC="${WORDS_PER_DOC:-10500}"
PDF_FRACTION="${PDF_FRACTION:-0.05}"
MAX_CHUNK="${MAX_CHUNK:-100}"
OVERLAP="${OVERLAP:-0}"
QUERIES="${QUERIES:-300}"
BATCH_SIZE="${BATCH_SIZE:-1000}"
INGEST_TIMEOUT="${INGEST_TIMEOUT:-600}"
SEARCH_TIMEOUT="${SEARCH_TIMEOUT:-180}"
BENCH_TIMEOUT="${BENCH_TIMEOUT:-870}"

VENV_PY="$ROOT/.venv-conformance/bin/python"
if [ ! -x "$VENV_PY" ]; then
    log "preparing .venv-conformance"
    VENV_PY="$(EXTRA_PIP_PACKAGES=httpx "$ROOT/scripts/conformance-venv.sh")"
fi

# the binary: release when it is newer than the sources, else debug (no build here)
if [ -z "${ASSISTANTS_SERVER_BIN:-}" ]; then
    release="$ROOT/.build/release/assistants-server"
    debug="$ROOT/.build/debug/assistants-server"
    newest_src="$(find "$ROOT/Sources" "$ROOT/Package.swift" -type f -newer "$release" 2>/dev/null | head -n 1 || true)"
    if [ -x "$release" ] && [ -z "$newest_src" ]; then
        ASSISTANTS_SERVER_BIN="$release"; BUILD_KIND=release
    elif [ -x "$debug" ]; then
        ASSISTANTS_SERVER_BIN="$debug"; BUILD_KIND="debug"
        if [ -x "$release" ]; then
            log "NOTE: $release is older than $newest_src: using the DEBUG binary (figures are pessimistic)"
        else
            log "NOTE: no release binary: using the DEBUG binary (figures are pessimistic); not building"
        fi
    else
        log "no server binary (.build/release or .build/debug): build one first"; exit 1
    fi
else
    BUILD_KIND="custom"
fi

BENCH_TMP="$(mktemp -d "${TMPDIR:-/tmp}/assistants-retrieval.XXXXXX")"
bench_start=$SECONDS
log "generating corpus: $DOCS docs x $WORDS_PER_DOC words, $PDF_FRACTION PDF"
"$VENV_PY" "$ROOT/bench/retrieval_corpus.py" "$BENCH_TMP/corpus" --docs "$DOCS" \
    --words-per-doc "$WORDS_PER_DOC" --pdf-fraction "$PDF_FRACTION" >"$BENCH_TMP/corpus.json"
log "corpus: $(cat "$BENCH_TMP/corpus.json")"

start_server
left=$((BENCH_TIMEOUT - (SECONDS - bench_start)))
status=0
timeout "$left" "$VENV_PY" "$ROOT/bench/retrieval_driver.py" --base-url "$BASE_URL" --corpus "$BENCH_TMP/corpus" \
    --max-chunk "$MAX_CHUNK" --overlap "$OVERLAP" --queries "$QUERIES" --batch-size "$BATCH_SIZE" \
    --ingest-timeout "$INGEST_TIMEOUT" --search-timeout "$SEARCH_TIMEOUT" \
    --sqlite "$BENCH_TMP/assistants.sqlite" >"$BENCH_TMP/driver.out" || status=$?
rss_kb="$(proc_status_kb "$SERVER_PID" VmHWM || echo 0)"
if [ "$status" != 0 ] || [ ! -s "$BENCH_TMP/driver.out" ]; then
    log "driver failed (exit $status)"; tail -n 30 "$BENCH_TMP/server.log" >&2 || true; exit 1
fi
db_mb="$(du -sm "$BENCH_TMP/assistants.sqlite" 2>/dev/null | cut -f1 || echo '?')"

"$VENV_PY" - "$BENCH_TMP/driver.out" "$BUILD_KIND" "$ASSISTANTS_SERVER_BIN" "$rss_kb" "$db_mb" "$((SECONDS - bench_start))" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
kind, binary, rss_kb, db_mb, wall = sys.argv[2], sys.argv[3], int(sys.argv[4] or 0), sys.argv[5], sys.argv[6]
def f(v, unit=""):
    return "n/a" if v is None else f"{v}{unit}"
chunks = r.get("chunks")
ok_recall = r.get("recall_at_5") is not None and r["recall_at_5"] >= 0.95
ok_p50 = r.get("search_ms_p50") is not None and r["search_ms_p50"] < 50
ok_size = chunks is not None and chunks >= 100_000
print("=== retrieval bench (SQLite, full-text ranking only) ===")
print(f"binary            {binary} ({kind}{' - debug build, figures are pessimistic' if kind == 'debug' else ''})")
print(f"corpus            {r['docs']} docs ({r['pdf_docs']} PDF), {r['corpus_bytes'] / 1e6:.1f} MB; upload {r['upload_s']} s")
print(f"ingestion         {r['files_completed']} completed, {r['files_failed']} failed, batch {r['batch_status']}, "
      f"store {r['store_status']}, in {r['ingest_s']} s")
print(f"                  {f(r.get('docs_per_s'))} docs/s, {f(r.get('chunks_per_s'))} chunks/s, {f(chunks)} chunks")
print(f"search            {r['queries']} queries (sequential, max_num_results 5), {r['search_errors']} errors")
print(f"  latency ms      p50 {f(r['search_ms_p50'])}  p90 {f(r['search_ms_p90'])}  p99 {f(r['search_ms_p99'])}  "
      f"mean {f(r['search_ms_mean'])}  max {f(r['search_ms_max'])}")
print(f"  recall@5        {f(r['recall_at_5'])}   recall@1 {f(r['recall_at_1'])}   answer text in top-5 chunks {f(r['answer_in_top5_chunks'])}")
print(f"server            peak RSS {rss_kb / 1024:.0f} MB, database {db_mb} MB, bench wall time {wall} s")
if r.get("failed_examples"):
    print(f"failed files      {r['failed_examples']}")
print(f"targets           recall@5 >= 0.95: {'PASS' if ok_recall else 'FAIL'};  p50 < 50 ms: {'PASS' if ok_p50 else 'FAIL'};  "
      f">= 100k chunks: {'yes' if ok_size else 'NO'}")
print("json " + json.dumps(r))
PY
