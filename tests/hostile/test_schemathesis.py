"""A bounded schemathesis run over the spec (issue 11, point 5): every operation of
../shared/spec/assistants-openapi.yaml, fixed seed, keys ON, against a fresh server
(with the scripted upstream, so runs can complete), for a fixed time budget. Only the
``not_a_server_error`` check runs: 0 responses >= 500, 0 lost connections (network
errors, time-outs), and the server alive at the end.

Two runs share the budget:
* ``test_schemathesis_whole_spec``: every operation, generated IDs (all phases,
  stateful included, which chains real IDs through the spec's links);
* ``test_schemathesis_seeded_ids``: every operation but DELETE, with the path IDs (and
  ``assistant_id`` / ``file_id`` in bodies) drawn 90% of the time from real objects
  made first (assistant, thread, message, completed run and its step, files, vector
  store, file batch), so the handlers behind the 404 are fuzzed too.

Env: HOSTILE_SCHEMATHESIS_SECONDS  total time budget in seconds (default 170; the
                                   whole-spec run gets 60% of it)
     HOSTILE_SCHEMATHESIS_SEED     seed (default 1234)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from spec import spec_path

BUDGET = int(os.environ.get("HOSTILE_SCHEMATHESIS_SECONDS", "170"))
SEED = int(os.environ.get("HOSTILE_SCHEMATHESIS_SEED", "1234"))
BUDGET_WHOLE = max(10, int(BUDGET * 0.6))
BUDGET_SEEDED = max(10, BUDGET - BUDGET_WHOLE)
SLACK = 90  # a run is killed this long after its budget

def _st_command() -> list:
    st = Path(sys.executable).with_name("st")
    if st.exists():
        return [str(st)]
    found = shutil.which("st") or shutil.which("schemathesis")
    if found:
        return [found]
    pytest.fail("schemathesis is not installed in this venv (scripts/hostile-venv.sh installs it)", pytrace=False)


NETWORK_ERRORS = ("ConnectionError", "ConnectTimeout", "ReadTimeout", "Timeout", "ChunkedEncodingError",
                  "ProtocolError", "RemoteDisconnected", "IncompleteRead", "ConnectionResetError",
                  "BrokenPipeError", "ContentDecodingError")


def _summarise(ndjson: Path) -> dict:
    """From schemathesis's ndjson event report: responses by status class, the 5xx ones
    (method, uri, status), requests with no response, network errors (lost connections,
    time-outs) and other non-fatal errors (schemathesis's own trouble, reported only)."""
    out = {"responses": 0, "by_class": {}, "server_errors": [], "no_response": [], "network_errors": [],
           "other_errors": [], "operations": set()}
    if not ndjson.exists():
        return out
    seen = set()
    with open(ndjson) as f:
        for line in f:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            if "NonFatalError" in ev:
                e = ev["NonFatalError"]
                v = e.get("value") or {}
                item = (e.get("label"), v.get("type"), (v.get("message") or "")[:300])
                kind = "network_errors" if any(n in str(v.get("type")) or n in str(v.get("message"))
                                               for n in NETWORK_ERRORS) else "other_errors"
                out[kind].append(item)
            sf = ev.get("ScenarioFinished")
            if not sf:
                continue
            rec = sf.get("recorder") or {}
            if rec.get("label"):
                out["operations"].add(rec["label"])
            for key, inter in (rec.get("interactions") or {}).items():
                if key in seen:
                    continue
                seen.add(key)
                req = inter.get("request") or {}
                resp = inter.get("response")
                if not resp:
                    out["no_response"].append((req.get("method"), req.get("uri")))
                    continue
                code = resp.get("status_code")
                out["responses"] += 1
                cls = f"{code // 100}xx" if isinstance(code, int) else str(code)
                out["by_class"][cls] = out["by_class"].get(cls, 0) + 1
                if isinstance(code, int) and code >= 500:
                    out["server_errors"].append((req.get("method"), req.get("uri"), code))
    return out


def _run_schemathesis(srv, tmp_path: Path, budget: int, extra: list, name: str, config: Path = None) -> None:
    path = spec_path()
    assert path.exists(), f"spec not found: {path}"
    report = tmp_path / f"{name}-events.ndjson"
    cmd = _st_command() + (["--config-file", str(config)] if config else []) + [
        "run", str(path),
        "--url", srv.api_base,
        "-H", f"Authorization: Bearer {srv.key}",
        "-H", "OpenAI-Beta: assistants=v2",
        "--checks", "not_a_server_error",
        "--seed", str(SEED),
        "--max-time", str(budget),
        "--request-timeout", "20",
        "--workers", "2",
        "--generation-with-security-parameters", "false",
        "--generation-database", "none",
        "--suppress-health-check", "all",
        "--no-color",
        "--report", "ndjson,junit",
        "--report-ndjson-path", str(report),
        "--report-junit-path", str(tmp_path / f"{name}-junit.xml"),
        *extra,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMATHESIS_")}
    t0 = time.monotonic()
    try:
        proc = subprocess.run(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              timeout=budget + SLACK, text=True, errors="replace")
        output, rc = proc.stdout, proc.returncode
    except subprocess.TimeoutExpired as e:
        output = (e.stdout or b"").decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
        rc = "timeout"
    elapsed = time.monotonic() - t0
    tail = output[-6000:]
    alive = srv.is_running()
    health = None
    if alive:
        try:
            health = httpx.get(srv.base_url + "/health", timeout=5).status_code
        except httpx.HTTPError as e:
            health = repr(e)
    summary = _summarise(report)
    info = (f"{name}: schemathesis exit {rc} after {elapsed:.0f}s; {summary['responses']} responses "
            f"{summary['by_class']} over {len(summary['operations'])} operations; server "
            f"{'alive' if alive else 'DEAD (exit %s)' % srv.proc.returncode}, /health {health}; "
            f"{len(summary['other_errors'])} schemathesis-side errors (not counted): {summary['other_errors'][:5]}\n"
            f"--- schemathesis output (tail) ---\n{tail}")
    print(info.split("\n")[0])  # shown with -rP / -s
    (tmp_path / f"{name}-summary.txt").write_text(info)
    assert alive and health == 200, info
    assert rc != "timeout", f"schemathesis overran its budget by {SLACK}s\n{info}"
    assert summary["responses"] > 0, f"no response recorded\n{info}"
    assert not summary["server_errors"], f"{len(summary['server_errors'])} 5xx: {summary['server_errors'][:20]}\n{info}"
    lost = summary["network_errors"] + summary["no_response"]
    assert not lost, f"{len(lost)} lost connections / time-outs: {lost[:20]}\n{info}"


@pytest.mark.timeout(BUDGET_WHOLE + SLACK + 60)
def test_schemathesis_whole_spec(hostile_server, tmp_path):
    _run_schemathesis(hostile_server(), tmp_path, BUDGET_WHOLE, [], "whole")


def _seed_objects(srv) -> dict:
    """Real objects for the seeded run: {dictionary name: [ids]}."""
    h = httpx.Client(base_url=srv.api_base, headers=srv.headers(), timeout=30)
    try:
        def ok(r):
            assert r.status_code == 200, f"seeding: {r.request.method} {r.request.url}: {r.status_code} {r.text[:300]}"
            return r.json()

        files = [ok(h.post("/files", files={"file": (f"seed{i}.txt", f"seed file {i} about apples".encode())},
                           data={"purpose": "assistants"}))["id"] for i in range(3)]
        vs = ok(h.post("/vector_stores", json={"name": "seed", "file_ids": [files[0]]}))["id"]
        batch = ok(h.post(f"/vector_stores/{vs}/file_batches", json={"file_ids": [files[1]]}))["id"]
        asst = ok(h.post("/assistants", json={"model": "gpt-4o-mini", "name": "seed"}))["id"]
        thread = ok(h.post("/threads", json={"messages": [{"role": "user", "content": "seed message"}]}))["id"]
        msg = ok(h.get(f"/threads/{thread}/messages"))["data"][0]["id"]
        run = ok(h.post(f"/threads/{thread}/runs", json={"assistant_id": asst}))["id"]
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            st = ok(h.get(f"/threads/{thread}/runs/{run}"))["status"]
            if st in ("completed", "failed", "cancelled", "expired", "incomplete"):
                break
            time.sleep(0.1)
        steps = [s["id"] for s in ok(h.get(f"/threads/{thread}/runs/{run}/steps"))["data"]] or ["step_none"]
        return {"assistant_ids": [asst], "thread_ids": [thread], "message_ids": [msg], "run_ids": [run],
                "step_ids": steps, "file_ids": files, "vector_store_ids": [vs], "batch_ids": [batch]}
    finally:
        h.close()


def _toml_list(values) -> str:
    return "[" + ", ".join(json.dumps(v) for v in values) + "]"


@pytest.mark.timeout(BUDGET_SEEDED + SLACK + 90)
def test_schemathesis_seeded_ids(hostile_server, upstream, tmp_path):
    srv = hostile_server()
    ids = _seed_objects(srv)
    bindings = {
        "path.assistant_id": "assistant_ids", "path.thread_id": "thread_ids", "path.message_id": "message_ids",
        "path.run_id": "run_ids", "path.step_id": "step_ids", "path.file_id": "file_ids",
        "path.vector_store_id": "vector_store_ids", "path.batch_id": "batch_ids",
        "body.assistant_id": "assistant_ids", "body.file_id": "file_ids", "body.file_ids[*]": "file_ids",
    }
    lines = []
    for name, values in ids.items():
        lines += [f"[dictionaries.{name}]", f"values = {_toml_list(values)}", ""]
    lines.append("[parameters]")
    for key, dictionary in bindings.items():
        lines.append(f'"{key}" = {{ dictionary = "{dictionary}", probability = 0.9 }}')
    config = tmp_path / "schemathesis.toml"
    config.write_text("\n".join(lines) + "\n")
    _run_schemathesis(srv, tmp_path, BUDGET_SEEDED, ["--exclude-method", "DELETE"], "seeded", config)
