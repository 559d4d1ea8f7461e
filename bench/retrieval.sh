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
#
# MODE=needle (the default): the above. With RANKING=compare it ranks three ways, as below.
# MODE=paraphrase: bench/retrieval_paraphrase.py's corpus (DOCS, default 300, short notes whose
#      question shares no rare word with them), RANKING=compare implied: with the local
#      all-MiniLM-L6-v2 (llama-server --embeddings from ASSISTANTS_MODEL_CACHE, installed by
#      scripts/install-local-model.sh --with-embeddings) as the embedding model, ingest and
#      search fused (full text + vectors, the server's ranking); embeddings only (the stored
#      vectors ranked by cosine in the driver); then the server restarted on the same database
#      without an embedding model: full text only. Prints recall@5, recall@1 and MRR (depth 10)
#      side by side. Targets: fused recall@5 >= 0.9 on paraphrases; on needles, fused no lower
#      than full text.
# MODE=scale: bench/retrieval_scale.py: CHUNKS (100000) synthetic chunks x DIMENSIONS (384)
#      written into one store's database, a stand-in embedder; first-search (index load)
#      latency, QUERIES search p50/p99, RSS against the raw vector bytes. Targets at 100k:
#      p50 < 20 ms, p99 < 60 ms; at 1M (CHUNKS=1000000 ASSISTANTS_VECTOR_CACHE_MB=2048):
#      p50 < 200 ms; RSS growth <= 1.3x the raw vector bytes.
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

MODE="${MODE:-needle}"
RANKING="${RANKING:-fused}"
[ "$MODE" = paraphrase ] && RANKING=compare
BENCH_TMP="$(mktemp -d "${TMPDIR:-/tmp}/assistants-retrieval.XXXXXX")"
bench_start=$SECONDS

if [ "$MODE" = scale ]; then
    CHUNKS="${CHUNKS:-100000}"; DIMENSIONS="${DIMENSIONS:-384}"
    embed_port="$(free_port)"
    /usr/bin/python3 "$ROOT/bench/retrieval_scale.py" embedder --port "$embed_port" --dimensions "$DIMENSIONS" &
    track_pid $!
    printf '{"models": [{"name": "synthetic-embedder", "upstream_url": "http://127.0.0.1:%s/v1"}]}\n' "$embed_port" >"$BENCH_TMP/models.json"
    start_server ASSISTANTS_MODELS_CONFIG="$BENCH_TMP/models.json" ASSISTANTS_EMBEDDING_MODEL=synthetic-embedder \
        ASSISTANTS_LOCAL_MODEL=off ASSISTANTS_VECTOR_CACHE_MB="${ASSISTANTS_VECTOR_CACHE_MB:-512}"
    timeout "$((BENCH_TIMEOUT - (SECONDS - bench_start)))" /usr/bin/python3 "$ROOT/bench/retrieval_scale.py" run \
        --base-url "$BASE_URL" --sqlite "$BENCH_TMP/assistants.sqlite" --server-pid "$SERVER_PID" \
        --chunks "$CHUNKS" --dimensions "$DIMENSIONS" --queries "$QUERIES" >"$BENCH_TMP/scale.out"
    /usr/bin/python3 - "$BENCH_TMP/scale.out" "$BUILD_KIND" "$ASSISTANTS_SERVER_BIN" <<'PY'
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
big = r["chunks"] >= 1_000_000
print(f"=== retrieval scale ({r['chunks']} chunks x {r['dimensions']} dims, SQLite, synthetic vectors) ===")
print(f"binary            {sys.argv[3]} ({sys.argv[2]}{' - debug build, figures are pessimistic' if sys.argv[2] == 'debug' else ''})")
print(f"first search      {r['first_search_ms']} ms (loads the store's vector index)")
print(f"search            {r['queries']} queries: p50 {r['search_ms_p50']} ms  p99 {r['search_ms_p99']} ms  mean {r['search_ms_mean']} ms")
print(f"memory            raw vectors {r['raw_vector_mb']} MB; RSS {r['rss_before_load_mb']} MB before the load, "
      f"{r['rss_after_mb']} MB after: growth {r['rss_growth_over_raw']}x raw, total {r['rss_total_over_raw']}x raw")
ok_lat = r["search_ms_p50"] < 200 if big else (r["search_ms_p50"] < 20 and r["search_ms_p99"] < 60)
print(f"targets           {'p50 < 200 ms' if big else 'p50 < 20 ms, p99 < 60 ms'}: {'PASS' if ok_lat else 'FAIL'};  "
      f"RSS growth <= 1.3x raw: {'PASS' if r['rss_growth_over_raw'] <= 1.3 else 'FAIL'}")
print("json " + json.dumps(r))
PY
    exit 0
fi

if [ "$RANKING" = compare ]; then
    [ "$MODE" = paraphrase ] && DOCS="${PARAPHRASE_DOCS:-300}"
    cache="${ASSISTANTS_MODEL_CACHE:-$HOME/.cache/assistants-server}"
    read -r llama emb_model < <(/usr/bin/python3 -c 'import json, sys
m = json.load(open(sys.argv[1])); print(m["llama_server"], (m.get("embedding_model") or {}).get("path", "-"))' "$cache/local-model.json" 2>/dev/null || echo "- -")
    if [ ! -x "$llama" ] || [ ! -f "$emb_model" ]; then
        log "no local embedding model under $cache: run scripts/install-local-model.sh --with-embeddings"; exit 1
    fi
    embed_port="$(free_port)"
    "$llama" -m "$emb_model" --embeddings --host 127.0.0.1 --port "$embed_port" -t "$(nproc)" -b 2048 -ub 2048 \
        >"$BENCH_TMP/llama.log" 2>&1 &
    track_pid $!
    wait_http "http://127.0.0.1:$embed_port/health" "$!" llama-server || exit 1
    EMBEDDINGS_URL="http://127.0.0.1:$embed_port/v1"
    printf '{"models": [{"name": "all-minilm-l6-v2", "upstream_url": "%s"}]}\n' "$EMBEDDINGS_URL" >"$BENCH_TMP/models.json"
    if [ "$MODE" = paraphrase ]; then
        "$VENV_PY" "$ROOT/bench/retrieval_paraphrase.py" "$BENCH_TMP/corpus" --docs "$DOCS" >"$BENCH_TMP/corpus.json"
    else
        "$VENV_PY" "$ROOT/bench/retrieval_corpus.py" "$BENCH_TMP/corpus" --docs "$DOCS" \
            --words-per-doc "$WORDS_PER_DOC" --pdf-fraction "$PDF_FRACTION" >"$BENCH_TMP/corpus.json"
    fi
    log "corpus ($MODE): $(cat "$BENCH_TMP/corpus.json")"
    drive() {
        timeout "$((BENCH_TIMEOUT - (SECONDS - bench_start)))" "$VENV_PY" "$ROOT/bench/retrieval_driver.py" \
            --base-url "${BASE_URL:-http://127.0.0.1:1}" --corpus "$BENCH_TMP/corpus" --state "$BENCH_TMP/state.json" \
            --max-chunk "$MAX_CHUNK" --overlap "$OVERLAP" --queries "$QUERIES" --batch-size "$BATCH_SIZE" --depth 10 \
            --ingest-timeout "$INGEST_TIMEOUT" --search-timeout "$SEARCH_TIMEOUT" --sqlite "$BENCH_TMP/assistants.sqlite" \
            --embeddings-url "$EMBEDDINGS_URL" "$@"
    }
    start_server ASSISTANTS_MODELS_CONFIG="$BENCH_TMP/models.json" ASSISTANTS_EMBEDDING_MODEL=all-minilm-l6-v2 ASSISTANTS_LOCAL_MODEL=off
    drive --phase ingest >"$BENCH_TMP/ingest.out"
    drive --phase search >"$BENCH_TMP/fused.out"
    drive --phase vectors >"$BENCH_TMP/vectors.out"
    kill -TERM "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
    start_server ASSISTANTS_LOCAL_MODEL=off
    drive --phase search >"$BENCH_TMP/text.out"
    "$VENV_PY" - "$BENCH_TMP" "$MODE" "$BUILD_KIND" <<'PY'
import json, sys
d, mode, kind = sys.argv[1:4]
load = lambda n: json.loads(open(f"{d}/{n}.out").read().strip().splitlines()[-1])
ingest, rows = load("ingest"), [("full text only", load("text")), ("embeddings only", load("vectors")), ("fused", load("fused"))]
print(f"=== retrieval ranking compared ({mode}, SQLite, all-MiniLM-L6-v2 through llama-server; {kind} build) ===")
print(f"corpus            {ingest['docs']} docs, {ingest['files_completed']} ingested in {ingest['ingest_s']} s (with embeddings)")
print(f"{'ranking':<18}{'recall@5':>9}{'recall@1':>9}{'MRR@10':>8}{'p50 ms':>8}{'p99 ms':>8}")
for name, r in rows:
    f = lambda k: "-" if r.get(k) is None else r[k]
    print(f"{name:<18}{f('recall_at_5'):>9}{f('recall_at_1'):>9}{f('mrr'):>8}{f('search_ms_p50'):>8}{f('search_ms_p99'):>8}")
text, fused = rows[0][1], rows[2][1]
if mode == "paraphrase":
    print(f"target            fused recall@5 >= 0.9: {'PASS' if fused['recall_at_5'] >= 0.9 else 'FAIL'}")
else:
    print(f"target            fused recall@5 >= full text's: {'PASS' if fused['recall_at_5'] >= text['recall_at_5'] else 'FAIL'}")
print("json " + json.dumps({name: r for name, r in rows}))
PY
    exit 0
fi

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
