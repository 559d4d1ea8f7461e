#!/usr/bin/env python3
"""Push N runs through the server, CONCURRENCY in flight, and measure them.

Each run: POST /v1/threads/runs (a new thread with one user message), then poll
GET /v1/threads/{thread_id}/runs/{run_id} until the run is terminal. With
--tools the assistant has a function tool: the run must stop at
requires_action, the driver submits one output per tool call
(POST .../submit_tool_outputs), and polls again until it is completed.

Prints runs/s, the server's CPU time per run (utime + stime from
/proc/PID/stat before and after, in clock ticks of --clk-tck), and the counts of
terminal statuses. Every run must end `completed` (with exactly one tool round
trip in --tools mode); the exit status is 1 otherwise.

Loopback only; bounded: each run has a deadline (--run-timeout) and the whole
phase too (--phase-timeout); runs not finished by then count as stuck.
--client raw (default): one keep-alive connection per worker through
bench/loopback_http.py, light enough that the driver does not starve the server
of load on a 2-core machine; --client httpx: the pooled httpx client (in
.venv-conformance), for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import sys
import time

import httpx

from loopback_http import Connection

TERMINAL = {"completed", "failed", "cancelled", "expired", "incomplete"}


def proc_cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    # Fields after the command name, which is in parentheses and may hold spaces.
    fields = stat[stat.rindex(")") + 2 :].split()
    # utime and stime are fields 14 and 15 of the whole line (1-based): 11 and 12 here.
    return int(fields[11]) + int(fields[12])


class Stats:
    def __init__(self) -> None:
        self.statuses: collections.Counter[str] = collections.Counter()
        self.errors: collections.Counter[str] = collections.Counter()
        self.tool_round_trips: collections.Counter[int] = collections.Counter()
        self.polls = 0
        self.latencies: list[float] = []


async def one_run(client, assistant_id: str, tools: bool, args, stats: Stats) -> None:
    """One run through `client` (an httpx.AsyncClient or a loopback_http.Connection)."""
    started = time.monotonic()
    deadline = started + args.run_timeout
    r = await client.post(
        "/threads/runs",
        json={
            "assistant_id": assistant_id,
            "thread": {"messages": [{"role": "user", "content": "hello"}]},
        },
    )
    if r.status_code != 200:
        stats.errors[f"create {r.status_code}: {r.text[:100]}"] += 1
        stats.statuses["error"] += 1
        return
    run = r.json()
    run_id, thread_id = run["id"], run["thread_id"]
    round_trips = 0
    while run["status"] not in TERMINAL:
        if time.monotonic() > deadline:
            stats.statuses[f"stuck ({run['status']})"] += 1
            return
        if run["status"] == "requires_action" and tools:
            calls = run["required_action"]["submit_tool_outputs"]["tool_calls"]
            outputs = [
                {"tool_call_id": c["id"], "output": json.dumps({"temperature_c": 21})}
                for c in calls
            ]
            r = await client.post(
                f"/threads/{thread_id}/runs/{run_id}/submit_tool_outputs",
                json={"tool_outputs": outputs},
            )
            if r.status_code != 200:
                stats.errors[f"submit {r.status_code}: {r.text[:100]}"] += 1
                stats.statuses["error"] += 1
                return
            round_trips += 1
            run = r.json()
            continue
        if run["status"] == "requires_action":
            stats.statuses["requires_action (no tools expected)"] += 1
            return
        await asyncio.sleep(args.poll_interval)
        r = await client.get(f"/threads/{thread_id}/runs/{run_id}")
        stats.polls += 1
        if r.status_code != 200:
            stats.errors[f"poll {r.status_code}: {r.text[:100]}"] += 1
            stats.statuses["error"] += 1
            return
        run = r.json()
    status = run["status"]
    if status == "failed" and run.get("last_error"):
        stats.errors[f"last_error {run['last_error'].get('code')}: {run['last_error'].get('message', '')[:80]}"] += 1
    stats.statuses[status] += 1
    stats.tool_round_trips[round_trips] += 1
    stats.latencies.append(time.monotonic() - started)


async def phase(name: str, tools: bool, args) -> bool:
    headers = {"OpenAI-Beta": "assistants=v2", "Authorization": "Bearer bench"}
    base_url = args.base_url.rstrip("/") + "/v1"
    shared = None
    if args.client == "httpx":
        limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=args.concurrency)
        shared = httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits,
                                   timeout=httpx.Timeout(30.0), trust_env=False)
    setup = shared or Connection(base_url, headers)
    try:
        body: dict = {"model": args.model, "name": f"bench-{name}", "instructions": "Be brief."}
        if tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "description": "Current weather in a city",
                        "parameters": {
                            "type": "object",
                            "properties": {"city": {"type": "string"}},
                            "required": ["city"],
                        },
                    },
                }
            ]
        r = await setup.post("/assistants", json=body)
        if r.status_code != 200:
            raise SystemExit(f"creating the assistant: {r.status_code} {r.text[:200]}")
        assistant_id = r.json()["id"]

        stats = Stats()
        remaining = iter(range(args.n))

        async def worker() -> None:
            client = shared or Connection(base_url, headers)
            try:
                for _ in remaining:
                    try:
                        await one_run(client, assistant_id, tools, args, stats)
                    except (httpx.HTTPError, OSError, asyncio.TimeoutError, KeyError, ValueError) as e:
                        stats.errors[f"{type(e).__name__}: {str(e)[:80]}"] += 1
                        stats.statuses["error"] += 1
            finally:
                if client is not shared:
                    await client.close()

        cpu0 = proc_cpu_ticks(args.server_pid)
        up0 = proc_cpu_ticks(args.upstream_pid) if args.upstream_pid else 0
        t0 = time.monotonic()
        tasks = [asyncio.create_task(worker()) for _ in range(args.concurrency)]
        done, pending = await asyncio.wait(tasks, timeout=args.phase_timeout)
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        wall = time.monotonic() - t0
        cpu1 = proc_cpu_ticks(args.server_pid)
        up1 = proc_cpu_ticks(args.upstream_pid) if args.upstream_pid else 0
    finally:
        if shared is not None:
            await shared.aclose()
        elif setup is not None:
            await setup.close()

    finished = sum(stats.statuses.values())
    if finished < args.n:
        stats.statuses["stuck (phase timeout)"] += args.n - finished
    cpu_ms = (cpu1 - cpu0) * 1000.0 / args.clk_tck
    completed = stats.statuses.get("completed", 0)
    lat = sorted(stats.latencies)

    def pct(p: float) -> float:
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else float("nan")

    ok = completed == args.n
    if tools:
        ok = ok and stats.tool_round_trips.get(1, 0) == args.n
    result = {
        "phase": name,
        "runs": args.n,
        "concurrency": args.concurrency,
        "wall_s": round(wall, 3),
        "runs_per_s": round(completed / wall, 1) if wall > 0 else 0,
        "server_cpu_ms_per_run": round(cpu_ms / args.n, 3),
        "server_cpu_ms_total": round(cpu_ms, 1),
        "upstream_cpu_ms_per_run": round((up1 - up0) * 1000.0 / args.clk_tck / args.n, 3),
        "polls_per_run": round(stats.polls / args.n, 2),
        "latency_ms_p50": round(pct(0.50), 1),
        "latency_ms_p99": round(pct(0.99), 1),
        "statuses": dict(stats.statuses),
        "tool_round_trips": {str(k): v for k, v in sorted(stats.tool_round_trips.items())},
        "errors": dict(stats.errors.most_common(10)),
        "ok": ok,
    }
    print(f"RESULT {json.dumps(result)}", flush=True)
    print(
        f"{name}: {completed}/{args.n} completed in {wall:.2f}s = {result['runs_per_s']} runs/s, "
        f"server CPU {result['server_cpu_ms_per_run']} ms/run, "
        f"upstream CPU {result['upstream_cpu_ms_per_run']} ms/run, "
        f"p50 {result['latency_ms_p50']} ms, p99 {result['latency_ms_p99']} ms, "
        f"{result['polls_per_run']} polls/run, statuses {dict(stats.statuses)}"
        + (f", tool round trips {result['tool_round_trips']}" if tools else ""),
        file=sys.stderr,
        flush=True,
    )
    if stats.errors:
        print(f"{name}: errors {dict(stats.errors.most_common(10))}", file=sys.stderr, flush=True)
    return ok


def add_load_args(ap: argparse.ArgumentParser, *, run_timeout: float, phase_timeout: float) -> None:
    """The options of the load a runs driver makes (this one and bench/cluster_driver.py): how many
    runs, how many in flight, how often a run is polled, how long a run and a phase may take (the
    defaults given), and the model the runs name."""
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--poll-interval", type=float, default=0.02, help="seconds between polls of a run")
    ap.add_argument("--run-timeout", type=float, default=run_timeout, help="seconds one run may take")
    ap.add_argument("--phase-timeout", type=float, default=phase_timeout, help="seconds one phase may take")
    ap.add_argument("--model", default="gpt-4o-mini")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-url", required=True, help="http://127.0.0.1:PORT (without /v1)")
    ap.add_argument("--server-pid", type=int, required=True)
    ap.add_argument("--upstream-pid", type=int, help="also report this process's CPU per run")
    ap.add_argument("--clk-tck", type=int, default=os.sysconf("SC_CLK_TCK"))
    add_load_args(ap, run_timeout=60.0, phase_timeout=600.0)
    ap.add_argument("--phases", default="plain,tools", help="comma-separated: plain, tools")
    ap.add_argument("--client", choices=("raw", "httpx"), default="raw",
                    help="raw: bench/loopback_http.py, one connection per worker; httpx: pooled httpx")
    args = ap.parse_args()
    host = httpx.URL(args.base_url).host
    if host not in ("127.0.0.1", "localhost", "::1"):
        ap.error("loopback only")

    ok = True
    for name in args.phases.split(","):
        ok = asyncio.run(phase(name, name == "tools", args)) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
