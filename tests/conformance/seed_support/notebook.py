"""Run the seed notebook's own code, verbatim, against the server, and check the flow.

Shared by tests/conformance/test_seed_notebook.py (openai==3.57.0) and
tests/conformance_v1/test_seed_notebook_v1.py (openai==1.6.1, ``assistants=v1``).

* ``seed_cells()``: the notebook's python cells, in order, read from
  ``REPO/../shared/seed/000_76996527503b6253.txt`` (never copied into the repo).
* ``notebook_script(cells)``: those cells joined into one script, each followed by a
  marker line (``<<seed cell N done>>``) so each cell's output can be told apart.
* ``ensure_venv(name, requirements)``: ``REPO/.venv-seed-NAME``, built once with pip
  and rebuilt when the requirements files change (sha256, as
  scripts/conformance-venv.sh does), so CI needs no step of its own.
* ``script_upstream(upstream)`` / ``run_notebook(...)`` / ``check_flow(...)``: the
  model turns GPT-4 gave in the notebook, one run of the script in a subprocess (with
  the stand-ins ``assistant_utils``/``function_utils`` of this folder on PYTHONPATH),
  and the checks both tests make.

``python notebook.py NAME REQUIREMENTS...`` builds a venv by hand and prints its python.
"""

from __future__ import annotations

import ast
import fcntl
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

SUPPORT_DIR = Path(__file__).resolve().parent
REPO = SUPPORT_DIR.parents[2]
SEED = REPO.parent / "shared" / "seed" / "000_76996527503b6253.txt"

MODEL = "gpt-4-1106-preview"  # the notebook's own model
# Text of the notebook's user message (cell "Step 4"): both model turns of its run contain it.
QUESTION = "Generate 25 random prime numbers between 2 and 100"
# The run's instructions (cell "Step 5").
RUN_INSTRUCTIONS = "Generate a random list of 25 prime numbers between \n2 and 100."
CALL_ID = "call_seednotebook0001"
# What the notebook's loop submits for 25 primes summing to 1060 (cell "Step 6").
TOOL_OUTPUT = "The sum of random prime numbers between 2 and 100 is 1060 and it's an even number"
# GPT-4's final answer, as the notebook's output shows it.
FINAL_TEXT = ("I have generated a list of 25 random prime numbers between 2 and 100 and summed them up. "
              "The total sum of these prime numbers is 1060, and it is an even number.")

_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
_MARKER = "<<seed cell {} done>>"
# The notebook's loop treats every other status as "still working" and polls forever;
# seeing one of these, the run is stopped and the test fails at once.
_HOPELESS = re.compile(r"^Assistant state: (failed|cancelled|expired|incomplete) waiting", re.M)


# --------------------------------------------------------------------------- the notebook


def seed_text() -> str:
    if not SEED.is_file():
        raise FileNotFoundError(f"seed notebook not found: {SEED} (shared/ must sit beside the repository)")
    return SEED.read_text(encoding="utf-8")


def seed_cells() -> list:
    """The python cells of the seed notebook, in order, verbatim.

    Nothing is filtered out: the notebook's pictures are markdown (``<img>``), not
    cells, and no cell has an IPython shell or magic line. Should a cell ever have
    one (``!pip ...``, ``%...``), this fails instead of quietly running less."""
    cells = [m.group(1) for m in _FENCE.finditer(seed_text())]
    for i, cell in enumerate(cells, 1):
        magic = [ln for ln in cell.splitlines() if ln.lstrip().startswith(("!", "%"))]
        if magic:
            raise ValueError(f"seed cell {i} has shell/magic lines that cannot run as python: {magic}")
    return cells


def cell_index(cells: list, needle: str) -> int:
    """1-based number of the first cell containing ``needle``."""
    for i, cell in enumerate(cells, 1):
        if needle in cell:
            return i
    raise LookupError(f"no seed cell contains {needle!r}")


def notebook_schema(cells: list) -> dict:
    """The notebook's function definition, ``sum_of_prime_numbers``, as its cell builds it."""
    ns: dict = {}
    exec(compile(cells[cell_index(cells, "sum_of_prime_numbers = {") - 1], "<seed schema cell>", "exec"), ns)
    return ns["sum_of_prime_numbers"]


def notebook_script(cells: list) -> str:
    parts = [f"# The python cells of {SEED.name}, verbatim and in order; after each, a marker line.\n"]
    for i, cell in enumerate(cells, 1):
        parts.append(f"# ---- seed cell {i} ----\n{cell.rstrip()}\nprint({_MARKER.format(i)!r}, flush=True)\n")
    return "\n".join(parts)


# --------------------------------------------------------------------------- venvs


def _base_python() -> str:
    """Like scripts/conformance-venv.sh: $PYTHON, else Debian's python3 when it can make venvs."""
    if os.environ.get("PYTHON"):
        return os.environ["PYTHON"]
    probe = subprocess.run(["/usr/bin/python3", "-c", "import venv, ensurepip"], capture_output=True)
    if probe.returncode == 0:
        return "/usr/bin/python3"
    return getattr(sys, "_base_executable", None) or sys.executable


def ensure_venv(name: str, requirements: list, timeout: float = 600) -> Path:
    """``REPO/.venv-seed-NAME`` with ``pip install -r`` of each requirements file; skipped
    when the files' sha256 matches the stamp left by the last install. Returns its python."""
    venv = REPO / f".venv-seed-{name}"
    python = venv / "bin" / "python"
    stamp = venv / ".requirements.sha256"
    want = hashlib.sha256(b"".join(Path(r).read_bytes() for r in requirements)).hexdigest()
    lock_path = Path(tempfile.gettempdir()) / f"assistants-seed-venv-{hashlib.sha256(str(venv).encode()).hexdigest()[:16]}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if python.exists() and stamp.exists() and stamp.read_text().strip() == want:
            return python
        if not python.exists():
            subprocess.run([_base_python(), "-m", "venv", "--clear", str(venv)], check=True,
                           capture_output=True, timeout=timeout)
        stamp.unlink(missing_ok=True)
        cmd = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        for r in requirements:
            cmd += ["-r", str(r)]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError(f"pip install for {venv} failed (exit {p.returncode}):\n{p.stdout}\n{p.stderr}")
        stamp.write_text(want + "\n")
        return python


def sdk_version(python: Path) -> str:
    p = subprocess.run([str(python), "-c", "import openai, dotenv; print(openai.__version__)"],
                       capture_output=True, text=True, timeout=60)
    if p.returncode != 0:
        raise RuntimeError(f"{python} cannot import openai and dotenv:\n{p.stderr}")
    return p.stdout.strip()


# --------------------------------------------------------------------------- the run


def script_upstream(upstream) -> None:
    """The model turns of the notebook's run, as GPT-4 gave them: a call of
    ``add_prime_numbers`` with ``{"prime_numbers": [...]}`` (the schema's ``required``
    slip is not honoured, as OpenAI never checked it), then the final text. Like a real
    model, every turn before the tool output comes back gets the same call (so a server
    that rejects it and asks again gets it again, and fails the run, as issue 12 saw);
    the turn that carries the tool output gets the text. The upstream is reset after
    each test."""
    from upstream import PRIMES_25, text, tool_call
    upstream.set_default(tool_call("add_prime_numbers", {"prime_numbers": PRIMES_25}, CALL_ID))
    upstream.enqueue(text(FINAL_TEXT), match=TOOL_OUTPUT)


@dataclass
class NotebookRun:
    script: Path
    returncode: Optional[int]
    stdout: str
    stderr: str
    stopped: Optional[str] = None  # why the test stopped the script, if it did
    seconds: float = 0.0
    cells: list = field(default_factory=list)

    def cell_output(self, n: int) -> str:
        """What cell n printed (between the markers of cells n-1 and n)."""
        start = 0
        if n > 1:
            mark = _MARKER.format(n - 1) + "\n"
            i = self.stdout.find(mark)
            if i < 0:
                raise AssertionError(f"seed cell {n - 1} never finished\n{self.report()}")
            start = i + len(mark)
        end = self.stdout.find(_MARKER.format(n), start)
        if end < 0:
            raise AssertionError(f"seed cell {n} never finished\n{self.report()}")
        return self.stdout[start:end]

    def report(self) -> str:
        return (f"notebook script {self.script}: exit {self.returncode}"
                f"{'; stopped: ' + self.stopped if self.stopped else ''} after {self.seconds:.1f}s\n"
                f"--- stdout ---\n{self.stdout[-12000:]}\n--- stderr ---\n{self.stderr[-12000:]}")


def run_notebook(python: Path, *, api_base: str, api_key: str, workdir: Path, model: str = MODEL,
                 timeout: float = 90.0) -> NotebookRun:
    """Run the notebook's cells as one script with ``python`` in a subprocess, the way
    its ``.env`` would configure it: OPENAI_API_BASE, OPENAI_API_KEY, MODEL. Stops it
    when the notebook's loop sees a run that can no longer complete (it would poll
    forever) or after ``timeout`` seconds."""
    cells = seed_cells()
    workdir.mkdir(parents=True, exist_ok=True)
    script = workdir / "seed_notebook.py"  # outside the repo: find_dotenv() looks upward from here
    script.write_text(notebook_script(cells), encoding="utf-8")
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("OPENAI_", "ANYSCALE_", "ASSISTANTS_")) and k not in ("MODEL", "PYTHONPATH")}
    env.update(OPENAI_API_BASE=api_base, OPENAI_API_KEY=api_key, MODEL=model,
               PYTHONPATH=str(SUPPORT_DIR), PYTHONUNBUFFERED="1")
    started = time.monotonic()
    proc = subprocess.Popen([str(python), str(script)], cwd=str(workdir), env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    out: list = []
    err: list = []
    hopeless = threading.Event()

    def pump(stream, sink, watch):
        for line in stream:
            sink.append(line)
            if watch and _HOPELESS.match(line):
                hopeless.set()

    readers = [threading.Thread(target=pump, args=(proc.stdout, out, True), daemon=True),
               threading.Thread(target=pump, args=(proc.stderr, err, False), daemon=True)]
    for t in readers:
        t.start()
    stopped = None
    deadline = started + timeout
    while proc.poll() is None:
        if hopeless.is_set():
            stopped = "the run can no longer complete and the notebook's loop would poll forever"
        elif time.monotonic() > deadline:
            stopped = f"still running after {timeout:.0f}s"
        if stopped:
            proc.kill()
            break
        time.sleep(0.1)
    proc.wait(10)
    for t in readers:
        t.join(5)
    return NotebookRun(script=script, returncode=proc.returncode, stdout="".join(out), stderr="".join(err),
                       stopped=stopped, seconds=time.monotonic() - started, cells=cells)


# --------------------------------------------------------------------------- checks


def _printed_strings(block: str) -> list:
    """The strings pprint()ed in ``block`` (each is a string literal, maybe parenthesized
    over several lines)."""
    tree = ast.parse(block.strip() or "pass")
    return [ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Expr)]


def _run_state(http, thread_id: Optional[str], run_id: Optional[str]) -> str:
    if not (thread_id and run_id):
        return "(run unknown)"
    try:
        r = http.get(f"/threads/{thread_id}/runs/{run_id}").json()
        return f"run {run_id}: status={r.get('status')} last_error={r.get('last_error')}"
    except Exception as e:  # noqa: BLE001 - diagnostics only
        return f"(run {run_id} not readable: {e!r})"


def check_flow(nb: NotebookRun, upstream, http, *, api_base: str, model: str = MODEL, dialect: str = "v2") -> dict:
    """Everything the notebook's run must show: each cell ran, the run went
    requires_action -> completed with the tool output the notebook computed, the final
    message is the model's text, and the upstream got the notebook's function
    definition unchanged (its ``required`` slip included). Returns the run JSON the
    notebook printed."""
    cells = nb.cells
    schema = notebook_schema(cells)
    assert schema["parameters"]["required"] == ["add_prime_numbers"], "the seed's slip is gone?"
    n_env, n_run = cell_index(cells, "load_dotenv(find_dotenv())"), cell_index(cells, "create_assistant_run(")
    n_loop, n_delete = cell_index(cells, "while True:"), cell_index(cells, "assistants.delete(")

    # The run the notebook printed (Step 5) names the thread and run.
    run_json, thread_id, run_id = None, None, None
    try:
        run_json = json.loads(nb.cell_output(n_run))
        thread_id, run_id = run_json["thread_id"], run_json["id"]
    except (AssertionError, ValueError, KeyError):
        pass
    state = _run_state(http, thread_id, run_id)
    reqs = upstream.requests_containing(QUESTION)
    diag = (f"{state}\nupstream got {len(reqs)} request(s) with the question\n{nb.report()}")

    assert nb.stopped is None and nb.returncode == 0, f"the notebook did not run through\n{diag}"
    assert len(nb.stdout.split("<<seed cell ")) - 1 == len(cells), diag

    assert nb.cell_output(n_env).strip() == f"Using MODEL={model}; base={api_base}", diag

    # Step 5: the run as created, with the notebook's instructions and tool, slip and all.
    assert run_json is not None, diag
    assert run_json["status"] in ("queued", "in_progress"), run_json
    assert run_json["instructions"] == RUN_INSTRUCTIONS, run_json
    assert run_json["model"] == model, run_json
    (tool,) = run_json["tools"]
    assert tool["type"] == "function", tool
    fn = {k: v for k, v in tool["function"].items() if v is not None}  # 3.57 dumps unset `strict` as null
    assert fn == schema, f"the run's function definition differs from the notebook's:\n{fn}\n{schema}"
    if dialect == "v1":
        assert run_json.get("file_ids") == [], run_json  # a v1 run, as the notebook printed it
        assert "tool_resources" not in run_json, run_json
    else:
        assert "file_ids" not in run_json, run_json

    # Step 6: the notebook's loop saw requires_action, submitted, then completed.
    loop = nb.cell_output(n_loop)
    lines = [ln.strip() for ln in loop.splitlines()]
    assert "requires_action" in lines, diag
    assert "Assistant taking required action: Function calling..." in lines, diag
    assert "completed" in lines, diag
    assert lines.index("requires_action") < lines.index("completed"), diag
    head, _, printed = loop.partition("Final output from the run:\n")
    assert printed, diag
    messages = _printed_strings(printed)
    assert messages[0] == f"assistant:{FINAL_TEXT}", messages
    assert messages[-1].startswith(f"user:{QUESTION}\n    as a list, and add the numbers"), messages
    assert len(messages) == 2, messages

    deleted = nb.cell_output(n_delete)
    assert "deleted=True" in deleted and "asst_" in deleted, deleted

    # The server's record of the run (read with the v2 header).
    run = http.get(f"/threads/{thread_id}/runs/{run_id}").json()
    assert run["status"] == "completed", run
    assert run["last_error"] is None, run
    steps = http.get(f"/threads/{thread_id}/runs/{run_id}/steps", params={"order": "asc"}).json()["data"]
    assert [s["type"] for s in steps] == ["tool_calls", "message_creation"], steps
    (call,) = steps[0]["step_details"]["tool_calls"]
    from upstream import PRIMES_25
    assert call["id"] == CALL_ID, call
    assert call["function"]["name"] == "add_prime_numbers", call
    assert json.loads(call["function"]["arguments"]) == {"prime_numbers": PRIMES_25}, call
    assert call["function"]["output"] == TOOL_OUTPUT, call
    msgs = http.get(f"/threads/{thread_id}/messages", params={"order": "asc"}).json()["data"]
    assert [m["role"] for m in msgs] == ["user", "assistant"], msgs
    assert msgs[1]["content"][0]["text"]["value"] == FINAL_TEXT, msgs[1]
    assert msgs[1]["run_id"] == run_id, msgs[1]

    # The upstream: two model turns, the first with the notebook's tool unchanged.
    assert len(reqs) == 2, f"expected 2 model turns, got {len(reqs)}: {[r.body for r in reqs]}"
    first, second = reqs[0].body, reqs[1].body
    assert first["model"] == model, first
    assert first["tools"] == [{"type": "function", "function": schema}], \
        f"the upstream got another function definition than the notebook's:\n{first['tools']}\n{schema}"
    system = "\n".join(m["content"] if isinstance(m["content"], str) else json.dumps(m["content"])
                       for m in first["messages"] if m["role"] in ("system", "developer"))
    assert RUN_INSTRUCTIONS in system, first["messages"]
    tool_msgs = [m for m in second["messages"] if m.get("role") == "tool"]
    assert len(tool_msgs) == 1 and tool_msgs[0]["tool_call_id"] == CALL_ID, second["messages"]
    assert tool_msgs[0]["content"] == TOOL_OUTPUT, tool_msgs
    calls = [c for m in second["messages"] if m.get("role") == "assistant" for c in (m.get("tool_calls") or [])]
    assert [c["id"] for c in calls] == [CALL_ID], second["messages"]
    assert json.loads(calls[0]["function"]["arguments"]) == {"prime_numbers": PRIMES_25}, calls
    return run_json


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit("usage: notebook.py NAME REQUIREMENTS... (builds REPO/.venv-seed-NAME)")
    print(ensure_venv(sys.argv[1], [Path(p).resolve() for p in sys.argv[2:]]))
