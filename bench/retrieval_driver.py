#!/usr/bin/env python3
"""Driver of bench/retrieval.sh: upload a corpus (bench/retrieval_corpus.py), add it to one
vector store with file batches, then measure ingestion rate, search latency and recall@5.

  1. upload every document through POST /v1/files (--upload-concurrency in flight)
  2. create one vector store; one file batch per --batch-size files (static chunking
     --max-chunk/--overlap); time from the first batch create to the last batch completed
  3. --queries questions (sequential) through POST /v1/vector_stores/{id}/search with
     max_num_results 5: latency of each request, and whether the needle's file is among
     the top 5 results (recall@5); also whether the answer text is in a returned chunk
  4. print a JSON summary on stdout (progress on stderr)
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx


def log(*a):
    print(f"[{time.strftime('%H:%M:%S')}]", *a, file=sys.stderr, flush=True)


def pct(values, p):
    if not values:
        return None
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))
    return s[k]


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--api-key", default="bench")
    ap.add_argument("--max-chunk", type=int, default=100)
    ap.add_argument("--overlap", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=1000)
    ap.add_argument("--upload-concurrency", type=int, default=8)
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--ingest-timeout", type=float, default=600)
    ap.add_argument("--search-timeout", type=float, default=240, help="time budget of the search phase")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--sqlite", help="the server's SQLite database: count the store's chunks (read-only)")
    ap.add_argument("--phase", choices=["all", "ingest", "search", "vectors"], default="all",
                    help="ingest: upload and ingest, then save --state; search: search the saved store through "
                         "the API; vectors: rank the store's stored embeddings in the bench itself (embeddings "
                         "only), the questions embedded by --embeddings-url")
    ap.add_argument("--state", help="where --phase ingest saves the store and files for the later phases")
    ap.add_argument("--depth", type=int, default=5, help="results asked for per search (MRR looks this deep)")
    ap.add_argument("--embeddings-url", help="an OpenAI-compatible base URL for --phase vectors")
    ap.add_argument("--embedding-model", default="all-minilm-l6-v2")
    args = ap.parse_args(argv)
    if args.phase in ("search", "vectors"):
        return later_phase(args)

    corpus = Path(args.corpus)
    questions = [json.loads(line) for line in open(corpus / "questions.jsonl")]
    docs = [q["doc"] for q in questions]
    h = httpx.Client(base_url=args.base_url.rstrip("/") + "/v1", timeout=120,
                     headers={"Authorization": f"Bearer {args.api_key}", "OpenAI-Beta": "assistants=v2"})
    result: dict = {"docs": len(docs), "pdf_docs": sum(d.endswith(".pdf") for d in docs),
                    "corpus_bytes": sum((corpus / d).stat().st_size for d in docs)}

    # 1. upload
    log(f"uploading {len(docs)} documents ({result['corpus_bytes'] / 1e6:.1f} MB)")
    t0 = time.monotonic()

    def up(name):
        with httpx.Client(base_url=str(h.base_url), timeout=120, headers=dict(h.headers)) as c:
            for attempt in range(3):
                r = c.post("/files", files={"file": (name, (corpus / name).read_bytes())},
                           data={"purpose": "assistants"})
                if r.status_code == 200:
                    return name, r.json()["id"]
                time.sleep(0.5)
            raise RuntimeError(f"upload of {name} failed: {r.status_code} {r.text[:300]}")

    with ThreadPoolExecutor(args.upload_concurrency) as ex:
        file_ids = dict(ex.map(up, docs))
    result["upload_s"] = round(time.monotonic() - t0, 2)
    log(f"uploaded in {result['upload_s']} s")
    by_file = {fid: name for name, fid in file_ids.items()}

    # 2. ingest with file batches
    vs = h.post("/vector_stores", json={"name": "retrieval-bench"}).raise_for_status().json()
    vs_id = vs["id"]
    strategy = {"type": "static", "static": {"max_chunk_size_tokens": args.max_chunk,
                                             "chunk_overlap_tokens": args.overlap}}
    ids = [file_ids[d] for d in docs]
    t0 = time.monotonic()
    batches = []
    for i in range(0, len(ids), args.batch_size):
        b = h.post(f"/vector_stores/{vs_id}/file_batches",
                   json={"file_ids": ids[i:i + args.batch_size], "chunking_strategy": strategy})
        b.raise_for_status()
        batches.append(b.json()["id"])
    log(f"{len(batches)} batch(es) created in {time.monotonic() - t0:.2f} s; waiting")
    deadline = t0 + args.ingest_timeout
    pending = set(batches)
    last_log = 0.0
    final = {}
    while pending and time.monotonic() < deadline:
        for bid in list(pending):
            b = h.get(f"/vector_stores/{vs_id}/file_batches/{bid}").raise_for_status().json()
            if b["status"] != "in_progress":
                pending.discard(bid)
                final[bid] = b
            elif time.monotonic() - last_log > 10:
                last_log = time.monotonic()
                log(f"  batch {bid}: {b['file_counts']} after {time.monotonic() - t0:.0f} s")
        if pending:
            time.sleep(0.25)
    ingest_s = time.monotonic() - t0
    result["ingest_s"] = round(ingest_s, 2)
    result["ingest_complete"] = not pending
    counts = {"completed": 0, "failed": 0, "cancelled": 0, "in_progress": 0}
    for b in final.values():
        for k in counts:
            counts[k] += b["file_counts"][k]
    result["batch_status"] = sorted({b["status"] for b in final.values()}) + (["timeout"] if pending else [])
    result["files_completed"] = counts["completed"]
    result["files_failed"] = counts["failed"]
    if pending:
        log(f"ingestion did not finish within {args.ingest_timeout} s")
    store = h.get(f"/vector_stores/{vs_id}").raise_for_status().json()
    result["store_status"] = store["status"]
    result["store_usage_bytes"] = store["usage_bytes"]
    if counts["failed"]:
        failed = h.get(f"/vector_stores/{vs_id}/files", params={"filter": "failed", "limit": 5}).json()
        result["failed_examples"] = [(by_file.get(f["id"]), f["last_error"]) for f in failed.get("data", [])]

    # chunk count: the API does not list chunks; read it from the SQLite database (read-only)
    result["docs_per_s"] = round(counts["completed"] / ingest_s, 1) if ingest_s else None
    if args.sqlite:
        import sqlite3
        try:
            db = sqlite3.connect(f"file:{args.sqlite}?mode=ro", uri=True, timeout=30)
            n = db.execute("SELECT count(*) FROM chunks WHERE vector_store_id = ?", (vs_id,)).fetchone()[0]
            db.close()
            result["chunks"] = n
            result["chunks_per_s"] = round(n / ingest_s, 1) if ingest_s else None
        except Exception as e:  # noqa: BLE001
            result["chunks_error"] = repr(e)

    if args.phase == "ingest":
        json.dump({"vector_store_id": vs_id, "by_file": by_file}, open(args.state, "w"))
        result["vector_store_id"] = vs_id
        print(json.dumps(result), flush=True)
        return 0
    result.update(search(args, h, questions, vs_id, by_file))
    print(json.dumps(result), flush=True)
    return 0


def sample_questions(args, questions):
    rng = random.Random(args.seed)
    return questions[:] if args.queries >= len(questions) else rng.sample(questions, args.queries)


def score(result, ranked_names, q):
    """recall@5, recall@1, reciprocal rank (within the depth asked for) of one question."""
    result["hits"] += q["doc"] in ranked_names[:5]
    result["top1"] += bool(ranked_names) and ranked_names[0] == q["doc"]
    result["rr"] += next((1.0 / (i + 1) for i, n in enumerate(ranked_names) if n == q["doc"]), 0.0)


def later_phase(args):
    corpus = Path(args.corpus)
    questions = [json.loads(line) for line in open(corpus / "questions.jsonl")]
    state = json.load(open(args.state))
    h = httpx.Client(base_url=args.base_url.rstrip("/") + "/v1", timeout=120,
                     headers={"Authorization": f"Bearer {args.api_key}", "OpenAI-Beta": "assistants=v2"})
    if args.phase == "search":
        result = search(args, h, questions, state["vector_store_id"], state["by_file"])
    else:
        result = vector_ranking(args, questions, state["vector_store_id"], state["by_file"])
    print(json.dumps(result), flush=True)
    return 0


def vector_ranking(args, questions, vs_id, by_file):
    """Embeddings only: every stored embedding of the store (packed little-endian Float32) against
    each question's embedding, by cosine, in the bench (the server fuses with full text)."""
    import sqlite3
    import struct
    db = sqlite3.connect(f"file:{args.sqlite}?mode=ro", uri=True, timeout=30)
    rows = db.execute("SELECT file_id, embedding FROM chunks WHERE vector_store_id = ? AND embedding IS NOT NULL",
                      (vs_id,)).fetchall()
    db.close()

    def unit(v):
        n = sum(x * x for x in v) ** 0.5 or 1.0
        return [x / n for x in v]

    chunks = [(by_file.get(fid), unit(struct.unpack(f"<{len(blob) // 4}f", blob))) for fid, blob in rows]
    sample = sample_questions(args, questions)
    vectors = []
    with httpx.Client(timeout=120) as c:
        for i in range(0, len(sample), 64):
            r = c.post(args.embeddings_url.rstrip("/") + "/embeddings",
                       json={"model": args.embedding_model, "input": [q["question"] for q in sample[i:i + 64]]})
            r.raise_for_status()
            vectors += [unit(d["embedding"]) for d in sorted(r.json()["data"], key=lambda d: d["index"])]
    result = {"queries": len(sample), "hits": 0, "top1": 0, "rr": 0.0, "chunks": len(chunks)}
    for q, v in zip(sample, vectors):
        scored = sorted(((sum(a * b for a, b in zip(v, e)), name) for name, e in chunks), reverse=True)
        score(result, [name for _, name in scored[:args.depth]], q)
    return finish(result, [])


def finish(result, lat):
    done = result["queries"]
    result["recall_at_5"] = round(result.pop("hits") / done, 4) if done else None
    result["recall_at_1"] = round(result.pop("top1") / done, 4) if done else None
    result["mrr"] = round(result.pop("rr") / done, 4) if done else None
    for p in (50, 90, 99):
        result[f"search_ms_p{p}"] = round(pct(lat, p), 2) if lat else None
    result["search_ms_mean"] = round(statistics.mean(lat), 2) if lat else None
    result["search_ms_max"] = round(max(lat), 2) if lat else None
    return result


def search(args, h, questions, vs_id, by_file):
    """Sequential searches through the API: latency, recall@5, recall@1, MRR, answer in the chunks."""
    result: dict = {}
    sample = sample_questions(args, questions)
    depth = max(5, args.depth)
    lat, answer_hits, errors = [], 0, 0
    tally = {"queries": 0, "hits": 0, "top1": 0, "rr": 0.0}
    # warm-up (not measured)
    for q in questions[:3]:
        h.post(f"/vector_stores/{vs_id}/search", json={"query": q["question"], "max_num_results": depth})
    t_search = time.monotonic()
    for q in sample:
        if time.monotonic() - t_search > args.search_timeout:
            log(f"search budget of {args.search_timeout} s used up after {tally['queries']} queries")
            break
        s = time.perf_counter()
        r = h.post(f"/vector_stores/{vs_id}/search", json={"query": q["question"], "max_num_results": depth})
        lat.append((time.perf_counter() - s) * 1000)
        tally["queries"] += 1
        if r.status_code != 200:
            errors += 1
            continue
        data = r.json()["data"][:depth]
        score(tally, [by_file.get(d["file_id"]) for d in data], q)
        if any(q["answer"] in c["text"] for d in data[:5] for c in d["content"]):
            answer_hits += 1
    done = tally["queries"]
    result.update(finish(tally, lat))
    result["search_errors"] = errors
    result["answer_in_top5_chunks"] = round(answer_hits / done, 4) if done else None
    result["vector_store_id"] = vs_id
    return result


if __name__ == "__main__":
    sys.exit(main())
