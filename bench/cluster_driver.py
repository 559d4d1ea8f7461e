#!/usr/bin/env python3
"""Runs through one or several servers sharing one PostgreSQL database (bench/cluster.sh).

Phase `runs`: N runs (POST /v1/threads/runs, then polls until terminal), CONCURRENCY in flight,
worker w talking to server w mod K, so the runs are spread evenly over the K servers. Prints
runs/s and the server CPU ms per run: utime + stime of every listed server process over the
phase, divided by N. Every run must end `completed`.

Phase `cancel`: M runs of a model whose upstream streams slowly, each created on the first
server; once it is in progress (its model call open there), it is cancelled through the second
server and polled there every 10 ms until it reads `cancelled`: p50 and p99 of that latency.

Output: one `RESULT {json}` line per phase on stdout, a summary on stderr. Loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

import httpx

from loopback_http import Connection
from runs_driver import Stats, add_load_args, one_run, proc_cpu_ticks

HEADERS = {"OpenAI-Beta": "assistants=v2", "Authorization": "Bearer bench"}


def percentile(values: list, p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")


async def runs_phase(args) -> bool:
    urls = [u.rstrip("/") + "/v1" for u in args.base_url]
    setup = Connection(urls[0], HEADERS)
    try:
        r = await setup.post("/assistants", json={"model": args.model, "name": "bench-cluster", "instructions": "Be brief."})
        if r.status_code != 200:
            raise SystemExit(f"creating the assistant: {r.status_code} {r.text[:200]}")
        assistant_id = r.json()["id"]
    finally:
        await setup.close()

    stats = Stats()
    remaining = iter(range(args.n))
    per_node = [0] * len(urls)

    async def worker(w: int) -> None:
        node = w % len(urls)
        client = Connection(urls[node], HEADERS)
        try:
            for _ in remaining:
                per_node[node] += 1
                try:
                    await one_run(client, assistant_id, False, args, stats)
                except (OSError, asyncio.TimeoutError, KeyError, ValueError) as e:
                    stats.errors[f"{type(e).__name__}: {str(e)[:80]}"] += 1
                    stats.statuses["error"] += 1
        finally:
            await client.close()

    cpu0 = sum(proc_cpu_ticks(p) for p in args.server_pid)
    t0 = time.monotonic()
    tasks = [asyncio.create_task(worker(w)) for w in range(args.concurrency)]
    done, pending = await asyncio.wait(tasks, timeout=args.phase_timeout)
    for t in pending:
        t.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    wall = time.monotonic() - t0
    cpu1 = sum(proc_cpu_ticks(p) for p in args.server_pid)

    finished = sum(stats.statuses.values())
    if finished < args.n:
        stats.statuses["stuck (phase timeout)"] += args.n - finished
    completed = stats.statuses.get("completed", 0)
    cpu_ms = (cpu1 - cpu0) * 1000.0 / args.clk_tck
    result = {
        "phase": "runs", "label": args.label, "servers": len(urls), "runs": args.n, "per_server": per_node,
        "concurrency": args.concurrency, "wall_s": round(wall, 2),
        "runs_per_s": round(completed / wall, 1) if wall > 0 else 0,
        "server_cpu_ms_per_run": round(cpu_ms / args.n, 3),
        "latency_ms_p50": round(percentile(stats.latencies, 0.5) * 1000, 1),
        "latency_ms_p99": round(percentile(stats.latencies, 0.99) * 1000, 1),
        "statuses": dict(stats.statuses), "errors": dict(stats.errors.most_common(10)),
        "ok": completed == args.n,
    }
    print(f"RESULT {json.dumps(result)}", flush=True)
    print(f"{args.label}: {completed}/{args.n} completed in {wall:.2f}s = {result['runs_per_s']} runs/s, "
          f"server CPU {result['server_cpu_ms_per_run']} ms/run, statuses {dict(stats.statuses)}",
          file=sys.stderr, flush=True)
    return result["ok"]


async def cancel_phase(args) -> bool:
    a, b = (u.rstrip("/") + "/v1" for u in args.base_url[:2])
    owner, other = Connection(a, HEADERS), Connection(b, HEADERS)
    latencies, failures = [], []
    try:
        r = await owner.post("/assistants", json={"model": args.slow_model, "name": "bench-cancel"})
        if r.status_code != 200:
            raise SystemExit(f"creating the assistant: {r.status_code} {r.text[:200]}")
        assistant_id = r.json()["id"]
        for i in range(args.cancels):
            r = await owner.post("/threads/runs", json={
                "assistant_id": assistant_id, "thread": {"messages": [{"role": "user", "content": f"cancel {i}"}]}})
            run = r.json()
            run_id, thread_id = run["id"], run["thread_id"]
            deadline = time.monotonic() + 30
            while run["status"] != "in_progress" and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
                run = (await owner.get(f"/threads/{thread_id}/runs/{run_id}")).json()
            await asyncio.sleep(0.2)  # its model call is open on the owner by now
            started = time.monotonic()
            r = await other.post(f"/threads/{thread_id}/runs/{run_id}/cancel")
            if r.status_code != 200:
                failures.append(f"cancel {r.status_code}: {r.text[:100]}")
                continue
            status = r.json()["status"]
            deadline = started + args.cancel_timeout
            while status != "cancelled" and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
                status = (await other.get(f"/threads/{thread_id}/runs/{run_id}")).json()["status"]
            if status != "cancelled":
                failures.append(f"still {status} after {args.cancel_timeout} s")
                continue
            latencies.append(time.monotonic() - started)
    finally:
        await owner.close()
        await other.close()
    result = {
        "phase": "cancel", "cancels": args.cancels, "cancelled": len(latencies),
        "latency_ms_p50": round(percentile(latencies, 0.5) * 1000, 1),
        "latency_ms_p99": round(percentile(latencies, 0.99) * 1000, 1),
        "latency_ms_max": round(max(latencies) * 1000, 1) if latencies else None,
        "failures": failures[:10], "ok": not failures,
    }
    print(f"RESULT {json.dumps(result)}", flush=True)
    print(f"cancel across nodes: {len(latencies)}/{args.cancels} cancelled, p50 {result['latency_ms_p50']} ms, "
          f"p99 {result['latency_ms_p99']} ms", file=sys.stderr, flush=True)
    return result["ok"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-url", action="append", required=True, help="http://127.0.0.1:PORT, once per server")
    ap.add_argument("--server-pid", type=int, action="append", required=True, help="once per server")
    ap.add_argument("--clk-tck", type=int, default=os.sysconf("SC_CLK_TCK"))
    ap.add_argument("--phase", choices=("runs", "cancel"), default="runs")
    ap.add_argument("--label", default="runs")
    add_load_args(ap, run_timeout=120.0, phase_timeout=900.0)
    ap.add_argument("--slow-model", default="slow-model")
    ap.add_argument("--cancels", type=int, default=50)
    ap.add_argument("--cancel-timeout", type=float, default=30.0)
    args = ap.parse_args()
    for url in args.base_url:
        if httpx.URL(url).host not in ("127.0.0.1", "localhost", "::1"):
            ap.error("loopback only")
    if args.phase == "cancel" and len(args.base_url) < 2:
        ap.error("the cancel phase needs two servers")
    ok = asyncio.run(runs_phase(args) if args.phase == "runs" else cancel_phase(args))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
