#!/usr/bin/env python3
"""Scale point of bench/retrieval.sh (MODE=scale): vector search latency and memory at N chunks.

  embedder --port P   a stand-in embedding upstream (POST /v1/embeddings): a deterministic
                      unit vector of --dimensions per text (a hash seeds it), answered at
                      once, so the figures are the server's own and not a model's
  run                 1. create a vector store through the API (the server runs with the
                         stand-in as its embedding model)
                      2. write N synthetic chunks into it straight into the server's SQLite
                         database (12 pseudo-words of text each, a random Float32 vector packed
                         little-endian as the server stores it); the database's triggers bump
                         the store's generation as ingestion would
                      3. the first search (it loads the store's vector index): its latency,
                         and the server's RSS before and after
                      4. QUERIES sequential searches (3 pseudo-words, max_num_results 5):
                         p50/p99 latency, RSS, and RSS less the RSS before the load, against
                         the raw vector bytes (N x dimensions x 4)
Uses Debian's python3 (numpy, sqlite3, urllib); prints one JSON line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sqlite3
import statistics
import sys
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np


def log(*a):
    print(f"[{time.strftime('%H:%M:%S')}]", *a, file=sys.stderr, flush=True)


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(p / 100.0 * (len(s) - 1)))))]


def embedder(args):
    dims = args.dimensions

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
            texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
            data = []
            for i, text in enumerate(texts):
                seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
                v = np.random.default_rng(seed).standard_normal(dims).astype(np.float32)
                v /= np.linalg.norm(v)
                data.append({"object": "embedding", "index": i, "embedding": v.tolist()})
            out = json.dumps({"object": "list", "data": data, "model": body.get("model")}).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    ThreadingHTTPServer(("127.0.0.1", args.port), Handler).serve_forever()


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def post(base, path, body):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "Authorization": "Bearer bench",
                                          "OpenAI-Beta": "assistants=v2"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.load(r)


def run(args):
    base = args.base_url.rstrip("/") + "/v1"
    rng = random.Random(args.seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = sorted({"".join(rng.choice(letters) for _ in range(rng.randint(4, 7))) for _ in range(20000)})
    vs = post(base, "/vector_stores", {"name": "scale-bench"})
    vs_id = vs["id"]
    db = sqlite3.connect(args.sqlite, timeout=60)
    project = db.execute("SELECT project FROM vector_stores WHERE id = ?", (vs_id,)).fetchone()[0]
    log(f"writing {args.chunks} chunks x {args.dimensions} dims into {vs_id}")
    t0 = time.monotonic()
    gen = np.random.default_rng(args.seed)
    batch = 10_000
    for start in range(0, args.chunks, batch):
        n = min(batch, args.chunks - start)
        vectors = gen.standard_normal((n, args.dimensions)).astype("<f4")
        rows = []
        for i in range(n):
            k = start + i
            text = " ".join(rng.choices(vocab, k=12))
            rows.append((project, vs_id, f"file-synthetic-{k // 100:06d}", k % 100, 0, len(text), text, vectors[i].tobytes()))
        db.executemany("INSERT INTO chunks (project, vector_store_id, file_id, chunk_index, start_offset, end_offset, text, embedding)"
                       " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
        db.commit()
        if (start // batch) % 20 == 0:
            log(f"  {start + n} chunks after {time.monotonic() - t0:.0f} s")
    db.close()
    write_s = time.monotonic() - t0
    queries = [" ".join(rng.sample(vocab, 3)) for _ in range(args.queries + 1)]
    rss_before = rss_kb(args.server_pid)
    t = time.perf_counter()
    post(base, f"/vector_stores/{vs_id}/search", {"query": queries[0], "max_num_results": 5})
    first_ms = (time.perf_counter() - t) * 1000
    rss_loaded = rss_kb(args.server_pid)
    lat = []
    for q in queries[1:]:
        t = time.perf_counter()
        r = post(base, f"/vector_stores/{vs_id}/search", {"query": q, "max_num_results": 5})
        lat.append((time.perf_counter() - t) * 1000)
        assert len(r["data"]) == 5, r
    rss_after = rss_kb(args.server_pid)
    raw = args.chunks * args.dimensions * 4
    print(json.dumps({
        "chunks": args.chunks, "dimensions": args.dimensions, "write_s": round(write_s, 1),
        "first_search_ms": round(first_ms, 1), "queries": len(lat),
        "search_ms_p50": round(pct(lat, 50), 2), "search_ms_p99": round(pct(lat, 99), 2),
        "search_ms_mean": round(statistics.mean(lat), 2),
        "raw_vector_mb": round(raw / 2**20, 1), "rss_before_load_mb": round(rss_before / 1024, 1),
        "rss_after_mb": round(rss_after / 1024, 1), "rss_loaded_mb": round(rss_loaded / 1024, 1),
        "rss_growth_over_raw": round((rss_after - rss_before) * 1024 / raw, 3),
        "rss_total_over_raw": round(rss_after * 1024 / raw, 3),
    }), flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="command", required=True)
    e = sub.add_parser("embedder")
    e.add_argument("--port", type=int, required=True)
    e.add_argument("--dimensions", type=int, default=384)
    r = sub.add_parser("run")
    r.add_argument("--base-url", required=True)
    r.add_argument("--sqlite", required=True)
    r.add_argument("--server-pid", type=int, required=True)
    r.add_argument("--chunks", type=int, default=100_000)
    r.add_argument("--dimensions", type=int, default=384)
    r.add_argument("--queries", type=int, default=200)
    r.add_argument("--seed", type=int, default=5)
    args = ap.parse_args(argv)
    embedder(args) if args.command == "embedder" else run(args)


if __name__ == "__main__":
    main()
