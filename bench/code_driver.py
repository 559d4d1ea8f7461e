#!/usr/bin/env python3
"""Latency of a trivial code_interpreter execution through the server (bench/code.sh).

Starts, in this process, the scripted upstream of the conformance suite
(tests/conformance/upstream.py) with a reply rule: a request whose last message is a
user message containing ``[tool]`` gets a call ``code_interpreter({"code": "print(1)"})``;
every other request (a tool result, or a user message without ``[tool]``) gets the
text "done". Then starts the server (--server-bin) on SQLite in a temp dir, pointed at
that upstream, and creates one assistant with ``tools=[{"type": "code_interpreter"}]``.

Four kinds of run, every run streamed (``stream: true``; the end is the
``thread.run.completed`` event, so no polling), taking turns, --n of each after
--warmup unmeasured rounds:

* ``warm``:  a run on one long-lived thread (its sandbox session already started)
  whose model calls the tool once: print(1), then answers.
* ``cold``:  the same on a new thread each time (POST /v1/threads/runs): a first
  execution, which starts the thread's sandbox.
* ``base-warm`` / ``base-cold``: identical runs (same assistant, tool offered) whose
  model answers with text at once, on a long-lived thread / a new thread.

Figures (medians):

* end to end: run latency; the tool's cost = tool run - base run (warm: warm -
  base-warm; cold: cold - base-cold). It includes the second model round trip and the
  tool_calls step's bookkeeping, not only the execution.
* upstream gap: in the upstream, the time from the request that got the tool call to
  the request that carries the tool's output: what the server spent on the tool
  (parse the call, record the step, start the session if cold, run the code, save the
  step, build the next prompt) as seen by the model.
Step timestamps (created_at/completed_at) have a resolution of 1 s: useless here.

Prints a table and one ``RESULT {json}`` line; exit status 1 if a run did not complete,
an execution did not print 1, or a target (warm < 50 ms, cold < 500 ms, on the tool's
cost from end to end) was missed.

Loopback only; bounded (each run has a deadline, the server is stopped at the end).
Needs httpx (in .venv-conformance).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "conformance"))
from upstream import ScriptedUpstream, text, tool_call  # noqa: E402

from driverlib import shut_down  # noqa: E402

CODE = "print(1)"
TARGET_MS = {"warm": 50.0, "cold": 500.0}


class CodeUpstream(ScriptedUpstream):
    """Answers ``[tool]`` user turns with a code_interpreter call, the rest with text;
    records the gap between a tool call and the request with its output."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.sent_at: dict = {}       # call id -> perf_counter when its request arrived
        self.gaps: dict = {}          # call id -> seconds until its output came back
        self.outputs: dict = {}       # call id -> the tool message content
        self.counter = 0
        self.glock = threading.Lock()

    def _next_reply(self, body: dict):
        now = time.perf_counter()
        msgs = body.get("messages") or []
        last = msgs[-1] if msgs else {}
        content = last.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        content = content or ""
        if last.get("role") == "tool":
            cid = last.get("tool_call_id")
            with self.glock:
                if cid in self.sent_at:
                    self.gaps[cid] = now - self.sent_at.pop(cid)
                    self.outputs[cid] = content
            return text("done")
        if last.get("role") == "user" and "[tool]" in content:
            with self.glock:
                self.counter += 1
                cid = f"call_bench{self.counter:06d}"
                self.sent_at[cid] = now
            return tool_call("code_interpreter", {"code": CODE}, call_id=cid)
        return text("done")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def streamed_run(client: httpx.Client, path: str, body: dict, timeout: float) -> tuple:
    """POST a streamed run; returns (seconds to thread.run.completed, run id, thread id, status)."""
    body = dict(body, stream=True)
    t0 = time.perf_counter()
    status, run_id, thread_id, event = None, None, None, None
    with client.stream("POST", path, json=body, timeout=timeout) as r:
        if r.status_code != 200:
            r.read()
            raise RuntimeError(f"POST {path}: HTTP {r.status_code}: {r.text[:300]}")
        for line in r.iter_lines():
            if line.startswith("event: "):
                event = line[7:].strip()
            elif line.startswith("data: ") and event and event.startswith("thread.run."):
                if event in ("thread.run.completed", "thread.run.failed", "thread.run.cancelled",
                             "thread.run.expired", "thread.run.incomplete", "thread.run.requires_action"):
                    d = json.loads(line[6:])
                    status, run_id, thread_id = d["status"], d["id"], d["thread_id"]
                    elapsed = time.perf_counter() - t0
                    break
            elif line.startswith("data: [DONE]"):
                break
    if status is None:
        raise RuntimeError(f"POST {path}: the stream ended without a terminal run event")
    return elapsed, run_id, thread_id, status


def ms(v: float) -> float:
    return round(v * 1000.0, 2)


def pct(vals: list, p: float) -> float:
    s = sorted(vals)
    return s[min(len(s) - 1, int(round(p * (len(s) - 1))))] if s else float("nan")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--server-bin", required=True)
    ap.add_argument("-n", type=int, default=50, help="measured runs of each kind")
    ap.add_argument("--warmup", type=int, default=3, help="unmeasured rounds first")
    ap.add_argument("--run-timeout", type=float, default=60.0)
    ap.add_argument("--keep-tmp", action="store_true")
    ap.add_argument("--log-level", default="warning")
    args = ap.parse_args(argv)

    # TCP_NODELAY: else Nagle + delayed ACKs add ~40 ms to every streamed model reply
    up = CodeUpstream(nodelay=True).start()
    tmp = Path(tempfile.mkdtemp(prefix="assistants-bench-code."))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANTS_")}
    env.update({"ASSISTANTS_UPSTREAM_URL": up.base_url, "ASSISTANTS_UPSTREAM_API_KEY": "bench-upstream-key",
                "ASSISTANTS_LOG_LEVEL": args.log_level})
    for k in ("ASSISTANTS_CODE_TIMEOUT_SECONDS", "ASSISTANTS_CODE_MAX_SESSIONS", "ASSISTANTS_CODE_IDLE_SECONDS"):
        if os.environ.get(k):
            env[k] = os.environ[k]
    log = open(tmp / "server.log", "wb")
    cmd = [args.server_bin, "serve", "--host", "127.0.0.1", "--port", str(port),
           "--database-url", f"sqlite://{tmp / 'assistants.sqlite'}", "--data-dir", str(tmp / "files")]
    server = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    ok = True
    try:
        deadline = time.monotonic() + 60
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"the server exited ({server.returncode}); log {tmp / 'server.log'}")
            try:
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start within 60 s")
            time.sleep(0.05)

        headers = {"OpenAI-Beta": "assistants=v2", "Authorization": "Bearer bench"}
        client = httpx.Client(base_url=base + "/v1", headers=headers, timeout=30, trust_env=False)
        r = client.post("/assistants", json={"model": "gpt-4o-mini", "name": "bench-code",
                                             "instructions": "Run code when asked.",
                                             "tools": [{"type": "code_interpreter"}]})
        r.raise_for_status()
        asst = r.json()["id"]

        def new_thread() -> str:
            r = client.post("/threads", json={})
            r.raise_for_status()
            return r.json()["id"]

        warm_thread, base_thread = new_thread(), new_thread()
        results: dict = {k: [] for k in ("warm", "cold", "base-warm", "base-cold")}
        gaps: dict = {"warm": [], "cold": []}
        statuses: dict = {}
        bad_outputs: list = []

        def one(kind: str, measured: bool):
            tool = kind in ("warm", "cold")
            msg = {"role": "user", "content": ("[tool] print one" if tool else "just answer")}
            before = up.counter
            if kind in ("warm", "base-warm"):
                thread = warm_thread if kind == "warm" else base_thread
                el, run_id, tid, st = streamed_run(client, f"/threads/{thread}/runs",
                                                   {"assistant_id": asst, "additional_messages": [msg]},
                                                   args.run_timeout)
            else:
                el, run_id, tid, st = streamed_run(client, "/threads/runs",
                                                   {"assistant_id": asst, "thread": {"messages": [msg]}},
                                                   args.run_timeout)
            statuses[f"{kind}:{st}"] = statuses.get(f"{kind}:{st}", 0) + 1
            if tool:
                cid = f"call_bench{before + 1:06d}"
                out = up.outputs.get(cid)
                if out is None or out.strip() != "1":
                    bad_outputs.append((kind, cid, out))
                if measured and cid in up.gaps:
                    gaps[kind].append(up.gaps[cid])
            if measured and st == "completed":
                results[kind].append(el)

        order = ["warm", "base-warm", "cold", "base-cold"]
        # the warm thread's session starts in the first (unmeasured) round
        for i in range(args.warmup):
            for kind in order:
                one(kind, measured=False)
        t0 = time.monotonic()
        for i in range(args.n):
            for kind in (order if i % 2 == 0 else list(reversed(order))):
                one(kind, measured=True)
        wall = time.monotonic() - t0

        # one step, to show what was recorded
        steps = client.get(f"/threads/{warm_thread}/runs", params={"limit": 1}).json()["data"]
        sample = None
        if steps:
            st = client.get(f"/threads/{warm_thread}/runs/{steps[0]['id']}/steps", params={"order": "asc"}).json()
            calls = [c for s in st["data"] if s["type"] == "tool_calls" for c in s["step_details"]["tool_calls"]]
            sample = calls[0] if calls else None
        client.close()

        med = {k: statistics.median(v) if v else float("nan") for k, v in results.items()}
        gap_med = {k: statistics.median(v) if v else float("nan") for k, v in gaps.items()}
        cost = {"warm": med["warm"] - med["base-warm"], "cold": med["cold"] - med["base-cold"]}
        every_completed = all(k.endswith(":completed") for k in statuses) and \
            all(len(results[k]) == args.n for k in results)
        ok = every_completed and not bad_outputs and all(ms(cost[k]) < TARGET_MS[k] for k in cost)

        print(f"\n== bench/code.sh: code_interpreter print(1), {args.n} runs of each kind (median; "
              f"streamed runs on loopback, SQLite), {wall:.1f} s ==")
        print(f"server: {args.server_bin}")
        fmt = "{:<10} {:>9} {:>9} {:>9} {:>14} {:>14}   {}"
        print(fmt.format("run kind", "p50 ms", "p90 ms", "max ms", "tool cost ms", "upstr gap ms", "target"))
        for k in ("warm", "cold"):
            v = results[k]
            print(fmt.format(k, ms(med[k]), ms(pct(v, 0.9)), ms(max(v)) if v else "nan", ms(cost[k]),
                             ms(gap_med[k]), f"< {TARGET_MS[k]:.0f} ms: "
                             + ("OK" if ms(cost[k]) < TARGET_MS[k] else "MISSED")))
        for k in ("base-warm", "base-cold"):
            v = results[k]
            print(fmt.format(k, ms(med[k]), ms(pct(v, 0.9)), ms(max(v)) if v else "nan", "", "", ""))
        print("tool cost = median(tool run) - median(identical run answered with text at once); "
              "upstream gap = median time from the model's tool call to the request carrying its output")
        print("run statuses: " + ", ".join(f"{k}={v}" for k, v in sorted(statuses.items())))
        if bad_outputs:
            print(f"executions whose output was not '1': {bad_outputs[:5]}")
        if sample:
            print(f"a warm step's call: {json.dumps(sample)[:300]}")
        result = {
            "server_bin": args.server_bin, "n": args.n,
            "median_ms": {k: ms(v) for k, v in med.items()},
            "p90_ms": {k: ms(pct(v, 0.9)) for k, v in results.items()},
            "tool_cost_ms": {k: ms(v) for k, v in cost.items()},
            "upstream_gap_ms": {k: ms(v) for k, v in gap_med.items()},
            "statuses": statuses, "bad_outputs": len(bad_outputs), "ok": ok,
        }
        print("RESULT " + json.dumps(result), flush=True)
    except Exception as e:  # report, then clean up
        print(f"FAIL: {type(e).__name__}: {e}", flush=True)
        ok = False
        args.keep_tmp = True
    finally:
        shut_down(server, up, log, tmp, timeout=15, keep=args.keep_tmp, say=lambda kept: print(f"({kept})"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
