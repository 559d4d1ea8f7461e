#!/usr/bin/env python3
"""Per-delta latency of streamed runs (bench/stream.sh).

The upstream (tests/conformance/upstream.py --mode instant --stamp --stream-chunks C)
answers every streamed chat completion with C content chunks ``<t=NANOS>``, NANOS being
``time.time_ns()`` just before the chunk is written. This driver reads SSE with raw httpx
and, for each token, computes ``receive time_ns - NANOS``.

Phases (--phases):

* ``baseline``: the same requests straight to the upstream
  (POST /v1/chat/completions, stream true): the cost of the upstream, loopback and this
  driver's own reading, without the server.
* ``server``: POST /v1/threads/runs {stream: true} through the server; every
  ``thread.message.delta`` is timed. Also the server's CPU (utime+stime from
  /proc/PID/stat, before/after) per delta.

Each phase runs --runs streams, --concurrency at a time, after --warmup unmeasured ones;
the phases take turns in --rounds rounds (so load changes on the machine hit both).
Prints one ``RESULT {json}`` line per phase. Exit status 1 when a run did not complete
with every token, or when fewer than --min-deltas deltas were timed.

Loopback only, bounded: every stream has a deadline (--run-timeout), every phase too.
Needs httpx (in .venv-conformance).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import re
import sys
import time

import httpx

STAMP = re.compile(r"<t=(\d+)>")


def proc_cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def percentile(sorted_vals: list, p: float) -> float:
    if not sorted_vals:
        return float("nan")
    k = min(len(sorted_vals) - 1, max(0, int(round(p * (len(sorted_vals) - 1)))))
    return sorted_vals[k]


class Stats:
    def __init__(self) -> None:
        self.lat_ns: list[int] = []      # one per token
        self.deltas = 0                  # SSE delta events (server) / chunks (baseline)
        self.tokens = 0                  # stamps seen (> deltas if the server coalesces)
        self.runs_ok = 0
        self.errors: collections.Counter[str] = collections.Counter()
        self.events: collections.Counter[str] = collections.Counter()


async def stream_server_run(client: httpx.AsyncClient, assistant_id: str, i: int, args, st: Stats, measure: bool):
    body = {"assistant_id": assistant_id, "stream": True,
            "thread": {"messages": [{"role": "user", "content": f"stream bench {i}"}]}}
    lat, tokens, deltas, last_run_event, got_done = [], 0, 0, None, False
    async with client.stream("POST", "/threads/runs", json=body) as r:
        if r.status_code != 200:
            st.errors[f"HTTP {r.status_code}: {(await r.aread())[:100]!r}"] += 1
            return
        event = None
        async for line in r.aiter_lines():
            if line.startswith("data: "):
                if event == "thread.message.delta":
                    now = time.time_ns()
                    obj = json.loads(line[6:])
                    deltas += 1
                    for part in obj["delta"].get("content") or []:
                        for m in STAMP.finditer((part.get("text") or {}).get("value") or ""):
                            lat.append(now - int(m.group(1)))
                            tokens += 1
                elif event == "done":
                    got_done = True
                elif event and event.startswith("thread.run.") and not event.startswith("thread.run.step"):
                    last_run_event = event
                if measure:
                    st.events[event] += 1
            elif line.startswith("event: "):
                event = line[7:]
    if not measure:
        return
    if last_run_event != "thread.run.completed" or not got_done or tokens != args.chunks:
        st.errors[f"run ended {last_run_event}, done={got_done}, tokens {tokens}/{args.chunks}"] += 1
        return
    st.runs_ok += 1
    st.lat_ns += lat
    st.tokens += tokens
    st.deltas += deltas


async def stream_upstream_run(client: httpx.AsyncClient, i: int, args, st: Stats, measure: bool):
    body = {"model": args.model, "stream": True, "messages": [{"role": "user", "content": f"baseline {i}"}]}
    lat, tokens, chunks, got_done = [], 0, 0, False
    async with client.stream("POST", "/chat/completions", json=body) as r:
        if r.status_code != 200:
            st.errors[f"HTTP {r.status_code}"] += 1
            return
        async for line in r.aiter_lines():
            if not line.startswith("data: "):
                continue
            if line == "data: [DONE]":
                got_done = True
                continue
            now = time.time_ns()
            obj = json.loads(line[6:])
            for ch in obj.get("choices") or []:
                content = (ch.get("delta") or {}).get("content") or ""
                found = STAMP.findall(content)
                if found:
                    chunks += 1
                for t in found:
                    lat.append(now - int(t))
                    tokens += 1
    if not measure:
        return
    if not got_done or tokens != args.chunks:
        st.errors[f"done={got_done}, tokens {tokens}/{args.chunks}"] += 1
        return
    st.runs_ok += 1
    st.lat_ns += lat
    st.tokens += tokens
    st.deltas += chunks


class Phase:
    """One phase's totals over all rounds."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.st = Stats()
        self.runs = 0
        self.wall = 0.0
        self.server_ticks = 0
        self.upstream_ticks = 0
        self.assistant_id = None
        self.warmed = False


async def run_round(ph: Phase, n_runs: int, first_index: int, args) -> None:
    name, st = ph.name, ph.st
    if name == "server":
        base, headers = args.base_url.rstrip("/") + "/v1", {"OpenAI-Beta": "assistants=v2",
                                                            "Authorization": "Bearer bench"}
    else:
        base, headers = args.upstream_url.rstrip("/"), {"Authorization": "Bearer bench-upstream-key"}
    limits = httpx.Limits(max_connections=args.concurrency + 2, max_keepalive_connections=args.concurrency + 2)
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, trust_env=False,
                                 timeout=httpx.Timeout(args.run_timeout)) as client:
        if name == "server" and ph.assistant_id is None:
            r = await client.post("/assistants", json={"model": args.model, "name": "stream-bench",
                                                       "instructions": "Be brief."})
            r.raise_for_status()
            ph.assistant_id = r.json()["id"]

        async def one(i: int, measure: bool):
            try:
                coro = (stream_server_run(client, ph.assistant_id, i, args, st, measure) if name == "server"
                        else stream_upstream_run(client, i, args, st, measure))
                await asyncio.wait_for(coro, args.run_timeout)
            except (httpx.HTTPError, asyncio.TimeoutError, ValueError, KeyError) as e:
                st.errors[f"{type(e).__name__}: {str(e)[:80]}"] += 1

        if not ph.warmed:  # warm-up (not measured), once per phase
            await asyncio.gather(*(one(-1 - k, False) for k in range(args.warmup)))
            ph.warmed = True
        else:  # open the connections again, unmeasured
            await asyncio.gather(*(one(-1 - k, False) for k in range(min(args.warmup, 1))))

        todo = iter(range(first_index, first_index + n_runs))

        async def worker():
            for i in todo:
                await one(i, True)

        up0 = proc_cpu_ticks(args.upstream_pid)
        cpu0 = proc_cpu_ticks(args.server_pid) if name == "server" else 0
        t0 = time.monotonic()
        tasks = [asyncio.create_task(worker()) for _ in range(args.concurrency)]
        _, pending = await asyncio.wait(tasks, timeout=args.phase_timeout)
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        ph.wall += time.monotonic() - t0
        ph.server_ticks += (proc_cpu_ticks(args.server_pid) - cpu0) if name == "server" else 0
        ph.upstream_ticks += proc_cpu_ticks(args.upstream_pid) - up0
        ph.runs += n_runs


def phase_result(ph: Phase, args) -> dict:
    st, name, wall = ph.st, ph.name, ph.wall
    lat_us = sorted(v / 1000.0 for v in st.lat_ns)
    us_per_tick = 1e6 / args.clk_tck
    res = {
        "phase": name,
        "runs": ph.runs,
        "runs_ok": st.runs_ok,
        "rounds": args.rounds,
        "concurrency": args.concurrency,
        "chunks_per_run": args.chunks,
        "deltas": st.deltas,
        "tokens": st.tokens,
        "wall_s": round(wall, 2),
        "tokens_per_s": round(st.tokens / wall, 0) if wall > 0 else 0,
        "lat_us_p50": round(percentile(lat_us, 0.50), 1),
        "lat_us_p90": round(percentile(lat_us, 0.90), 1),
        "lat_us_p99": round(percentile(lat_us, 0.99), 1),
        "lat_us_max": round(lat_us[-1], 1) if lat_us else None,
        "lat_us_min": round(lat_us[0], 1) if lat_us else None,
        "server_cpu_us_per_delta": (round(ph.server_ticks * us_per_tick / st.deltas, 1)
                                    if name == "server" and st.deltas else None),
        "server_cpu_ms_total": round(ph.server_ticks * us_per_tick / 1000, 1) if name == "server" else None,
        "upstream_cpu_us_per_chunk": round(ph.upstream_ticks * us_per_tick / st.tokens, 1) if st.tokens else None,
        "errors": dict(st.errors.most_common(8)),
    }
    if name == "server":
        res["events_per_run"] = {k: round(v / max(1, ph.runs), 2) for k, v in sorted(st.events.items())}
    return res


async def main_async(args) -> int:
    """The phases take turns, round by round (--rounds), so that a change in the machine's
    load during the bench hits both alike."""
    phases = [Phase(p) for p in args.phases.split(",") if p]
    per_round = [args.runs // args.rounds + (1 if r < args.runs % args.rounds else 0) for r in range(args.rounds)]
    index = 0
    for n in per_round:
        for ph in phases:
            await run_round(ph, n, index, args)
        index += n
    ok = True
    for ph in phases:
        res = phase_result(ph, args)
        print("RESULT " + json.dumps(res), flush=True)
        print(f"{ph.name}: {res['runs_ok']}/{res['runs']} runs, {res['tokens']} tokens in {res['deltas']} deltas, "
              f"p50 {res['lat_us_p50']} us, p99 {res['lat_us_p99']} us", file=sys.stderr, flush=True)
        if res["runs_ok"] != args.runs or res["tokens"] < args.min_deltas:
            ok = False
    return 0 if ok else 1


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base-url", required=True, help="the server, e.g. http://127.0.0.1:8080")
    ap.add_argument("--upstream-url", required=True, help="the upstream's /v1 base URL")
    ap.add_argument("--server-pid", type=int, required=True)
    ap.add_argument("--upstream-pid", type=int, required=True)
    ap.add_argument("--clk-tck", type=int, default=100)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--chunks", type=int, default=120, help="chunks per reply (must match the upstream)")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--model", default="gpt-4o-mini")
    ap.add_argument("--phases", default="baseline,server")
    ap.add_argument("--rounds", type=int, default=5, help="the phases take turns this many times")
    ap.add_argument("--min-deltas", type=int, default=5000)
    ap.add_argument("--run-timeout", type=float, default=60.0)
    ap.add_argument("--phase-timeout", type=float, default=600.0)
    args = ap.parse_args()
    for u in (args.base_url, args.upstream_url):
        host = httpx.URL(u).host
        if host not in ("127.0.0.1", "localhost", "::1"):
            ap.error(f"loopback only: {u}")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
