#!/usr/bin/env python3
"""Holds thousands of streamed runs open at once (bench/streams.sh).

Opens --streams runs, --rate per second, each ``POST /v1/threads/runs {stream: true}`` on a
connection of its own, and reads every Server-Sent Event to the end. The upstream
(bench/streams_upstream.py) writes ``<t=NANOS>`` into every content chunk, NANOS being
``time.time_ns()`` at its send; for each ``thread.message.delta`` the driver records
``time.time_ns()`` at receipt minus NANOS: the latency the server adds (plus loopback and the
driver's own reading, both small; same machine, same clock).

Meanwhile, on a connection of its own, ``GET /health`` every --health-interval seconds, while
any stream is open; and once a second the server's RSS, CPU ticks and open descriptors from
/proc. A stream counts as completed when it saw every stamp, ``thread.run.completed`` and
``event: done``; anything else (an HTTP error, a failed run, a broken connection, missing
deltas) counts as dropped, with its reason.

Prints one ``RESULT {json}`` line. Exit status 1 when a stream was dropped.
Needs aiohttp (and uses uvloop when installed). Loopback only, bounded by --deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import re
import resource
import sys
import time

import aiohttp

STAMP = re.compile(rb"<t=(\d+)>")


def proc_cpu_ticks(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def proc_status(pid: int) -> dict:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM", "Threads"):
                out[name] = int(value.split()[0])
    return out


def percentile(sorted_vals: list, p: float) -> float:
    if not sorted_vals:
        return float("nan")
    k = min(len(sorted_vals) - 1, max(0, int(round(p * (len(sorted_vals) - 1)))))
    return sorted_vals[k]


class State:
    def __init__(self) -> None:
        self.lat_ns: list[int] = []
        self.first_event_ms: list[float] = []
        self.open = 0
        self.most_open = 0
        self.started = 0
        self.completed = 0
        self.dropped: collections.Counter[str] = collections.Counter()
        self.health: list[tuple[float, float, int]] = []  # (time, ms, streams open)
        self.health_errors: collections.Counter[str] = collections.Counter()
        self.samples: list[dict] = []
        self.all_open_at: float | None = None
        self.first_close_at: float | None = None


async def one_stream(session: aiohttp.ClientSession, base: str, assistant_id: str, i: int, args, st: State) -> None:
    body = {"assistant_id": assistant_id, "stream": True,
            "thread": {"messages": [{"role": "user", "content": f"streams bench {i}"}]}}
    stamps, last_run_event, got_done, event = 0, None, False, b""
    lat = st.lat_ns
    t0 = time.monotonic()
    st.started += 1
    opened = False
    try:
        async with session.post(base + "/v1/threads/runs", json=body) as r:
            if r.status != 200:
                text = (await r.read())[:120]
                st.dropped[f"HTTP {r.status}: {text!r}"] += 1
                return
            st.open += 1
            opened = True
            st.most_open = max(st.most_open, st.open)
            if st.all_open_at is None and st.open >= args.streams:
                st.all_open_at = time.monotonic()
            first = True
            async for line in r.content:
                if line.startswith(b"data: "):
                    if event == b"thread.message.delta":
                        now = time.time_ns()
                        for m in STAMP.finditer(line):
                            lat.append(now - int(m.group(1)))
                            stamps += 1
                    elif event == b"done":
                        got_done = True
                    elif event.startswith(b"thread.run.") and not event.startswith(b"thread.run.step"):
                        last_run_event = event
                    if first:
                        st.first_event_ms.append((time.monotonic() - t0) * 1000)
                        first = False
                elif line.startswith(b"event: "):
                    event = line[7:].rstrip()
    except asyncio.TimeoutError:
        st.dropped["timeout"] += 1
        return
    except aiohttp.ClientError as e:
        st.dropped[f"{type(e).__name__}: {str(e)[:80]}"] += 1
        return
    finally:
        if opened:
            st.open -= 1
            if st.first_close_at is None:
                st.first_close_at = time.monotonic()
    if last_run_event != b"thread.run.completed" or not got_done or stamps != args.deltas:
        st.dropped[f"ended {last_run_event!r}, done={got_done}, deltas {min(stamps, args.deltas)}/{args.deltas}"] += 1
        return
    st.completed += 1


async def health_sampler(base: str, args, st: State, stop: asyncio.Event) -> None:
    """GET /health every interval on one keep-alive connection, while streams are open."""
    connector = aiohttp.TCPConnector(limit=1)
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while not stop.is_set():
            next_at += args.health_interval
            if st.open > 0:
                t = time.perf_counter()
                try:
                    async with session.get(base + "/health") as r:
                        await r.read()
                        ms = (time.perf_counter() - t) * 1000
                        if r.status != 200:
                            st.health_errors[f"HTTP {r.status}"] += 1
                        st.health.append((time.monotonic(), ms, st.open))
                except (aiohttp.ClientError, asyncio.TimeoutError) as e:
                    st.health_errors[type(e).__name__] += 1
                    st.health.append((time.monotonic(), 5000.0, st.open))
            await asyncio.sleep(max(0.0, next_at - loop.time()))


async def proc_sampler(args, st: State, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            s = proc_status(args.server_pid)
            s["t"] = time.monotonic()
            s["ticks"] = proc_cpu_ticks(args.server_pid)
            s["fds"] = len(os.listdir(f"/proc/{args.server_pid}/fd"))
            s["open"] = st.open
            st.samples.append(s)
        except (OSError, ValueError):
            pass
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except asyncio.TimeoutError:
            pass


async def main_async(args) -> int:
    base = args.base_url.rstrip("/")
    headers = {"OpenAI-Beta": "assistants=v2", "Authorization": "Bearer bench"}
    st = State()
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, force_close=False)
    timeout = aiohttp.ClientTimeout(total=args.stream_timeout, connect=30, sock_read=args.read_timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as session:
        async with session.post(base + "/v1/assistants", json={"model": args.model, "name": "streams-bench",
                                                                 "instructions": "Be brief."}) as r:
            r.raise_for_status()
            assistant_id = (await r.json())["id"]
        stop = asyncio.Event()
        samplers = [asyncio.create_task(health_sampler(base, args, st, stop)),
                    asyncio.create_task(proc_sampler(args, st, stop))]
        ticks0 = proc_cpu_ticks(args.server_pid)
        rusage0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.monotonic()
        loop = asyncio.get_running_loop()
        tasks = []
        for i in range(args.streams):
            due = t0 + i / args.rate
            now = time.monotonic()
            if due > now:
                await asyncio.sleep(due - now)
            tasks.append(asyncio.create_task(one_stream(session, base, assistant_id, i, args, st)))
        opened_in = time.monotonic() - t0
        _, pending = await asyncio.wait(tasks, timeout=max(1.0, args.deadline - (time.monotonic() - t0)))
        for t in pending:
            t.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        if pending:
            st.dropped["bench deadline"] += len(pending)
        wall = time.monotonic() - t0
        ticks = proc_cpu_ticks(args.server_pid) - ticks0
        rusage1 = resource.getrusage(resource.RUSAGE_SELF)
        stop.set()
        await asyncio.gather(*samplers, return_exceptions=True)
        del loop

    lat_ms = sorted(v / 1e6 for v in st.lat_ns)
    health_all = sorted(ms for _, ms, _ in st.health)
    # The plateau: every stream open, none closed yet.
    plateau_end = st.first_close_at or float("inf")
    health_plateau = sorted(ms for t, ms, _ in st.health
                            if st.all_open_at is not None and st.all_open_at <= t <= plateau_end)
    first_ms = sorted(st.first_event_ms)
    peak_rss_kb = max([s.get("VmHWM", 0) for s in st.samples] or [0])
    res = {
        "streams": args.streams,
        "completed": st.completed,
        "dropped": sum(st.dropped.values()),
        "dropped_reasons": dict(st.dropped.most_common(8)),
        "most_open": st.most_open,
        "opened_in_s": round(opened_in, 1),
        "wall_s": round(wall, 1),
        "deltas": len(lat_ms),
        "lat_ms_p50": round(percentile(lat_ms, 0.50), 2),
        "lat_ms_p90": round(percentile(lat_ms, 0.90), 2),
        "lat_ms_p99": round(percentile(lat_ms, 0.99), 2),
        "lat_ms_max": round(lat_ms[-1], 2) if lat_ms else None,
        "first_event_ms_p50": round(percentile(first_ms, 0.50), 1),
        "first_event_ms_p99": round(percentile(first_ms, 0.99), 1),
        "health_samples": len(health_all),
        "health_ms_p50": round(percentile(health_all, 0.50), 2),
        "health_ms_p99": round(percentile(health_all, 0.99), 2),
        "health_ms_max": round(health_all[-1], 2) if health_all else None,
        "health_plateau_samples": len(health_plateau),
        "health_plateau_ms_p99": round(percentile(health_plateau, 0.99), 2),
        "health_errors": dict(st.health_errors),
        "server_rss_peak_mb": round(peak_rss_kb / 1024, 1),
        "server_rss_mb_at_most_open": round(max((s.get("VmRSS", 0) for s in st.samples), default=0) / 1024, 1),
        "server_fds_peak": max((s.get("fds", 0) for s in st.samples), default=0),
        "server_threads_peak": max((s.get("Threads", 0) for s in st.samples), default=0),
        "server_cpu_s": round(ticks / args.clk_tck, 1),
        "server_cpu_us_per_delta": round(ticks / args.clk_tck * 1e6 / len(lat_ms), 1) if lat_ms else None,
        "driver_cpu_s": round((rusage1.ru_utime - rusage0.ru_utime) + (rusage1.ru_stime - rusage0.ru_stime), 1),
    }
    print("RESULT " + json.dumps(res), flush=True)
    return 0 if st.completed == args.streams else 1


def raise_open_files() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base-url", required=True, help="the server, e.g. http://127.0.0.1:8080")
    ap.add_argument("--server-pid", type=int, required=True)
    ap.add_argument("--clk-tck", type=int, default=100)
    ap.add_argument("--streams", type=int, default=10000)
    ap.add_argument("--deltas", type=int, default=60, help="content chunks per reply (as the upstream sends)")
    ap.add_argument("--rate", type=float, default=250.0, help="streams opened per second")
    ap.add_argument("--model", default="gpt-4o-mini")
    ap.add_argument("--health-interval", type=float, default=0.1)
    ap.add_argument("--stream-timeout", type=float, default=600.0, help="one stream, start to end")
    ap.add_argument("--read-timeout", type=float, default=60.0, help="silence on one stream")
    ap.add_argument("--deadline", type=float, default=1200.0, help="the whole bench")
    args = ap.parse_args()
    host = args.base_url.split("//", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0]
    if host not in ("127.0.0.1", "localhost", "[::1]"):
        ap.error(f"loopback only: {args.base_url}")
    limit = raise_open_files()
    if limit < args.streams + 64:
        print(f"warning: the driver may open {limit} files, fewer than {args.streams} streams need", file=sys.stderr)
    try:
        import uvloop  # type: ignore
    except ImportError:
        return asyncio.run(main_async(args))
    return uvloop.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
