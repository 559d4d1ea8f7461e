"""The code_interpreter tool (issue 6): sandboxed, stateful Python for the model.

The scripted model calls the function ``code_interpreter`` with ``{"code": ...}``; the
server runs it in the thread's sandboxed session and records a ``tool_calls`` step with
a ``code_interpreter`` call (``input``, ``outputs``: ``logs`` / ``image``), sends the
output back to the model, and the model's answer becomes the reply (``file_path``
annotations for ``sandbox:/mnt/data/NAME`` links, ``image_file`` parts for charts).

Part 1 uses the shared server: computation, state across runs, input files (message
attachment, assistant and thread tool_resources), a chart, a file link.

Part 2 is hostile code on a dedicated server (module-scoped; 3 s execution time limit,
a fake upstream secret in its environment): network, the database file, /etc/shadow,
the environment, ``while True: pass``, 10 GB of memory, a fork bomb, 10 GB to disk.
Each must fail inside the sandbox while the run completes and the server stays healthy.
"""

from __future__ import annotations

import ast
import os
import secrets
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import httpx
import pytest

from conftest import TEST_DATABASE_URL, ServerProcess
from helpers import (check_file, check_message, check_run, check_step, make_assistant, marker, raw, text_of,
                     tool_messages, upload_bytes, wait_run)
from upstream import text, tool_call

pytestmark = pytest.mark.runs

CI = {"type": "code_interpreter"}
SECRET = "sk-secret-xyz"
HOSTILE_TIMEOUT = 3  # ASSISTANTS_CODE_TIMEOUT_SECONDS of the hostile server
SANDBOX_UID = 65534
# The sandbox's whole environment (sandbox/bwrap-command.md; PWD is set by the shell/kernel).
SANDBOX_ENV = {"PATH", "HOME", "LANG", "TMPDIR", "MPLBACKEND", "MPLCONFIGDIR", "OPENBLAS_NUM_THREADS",
               "OMP_NUM_THREADS", "OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "PWD"}


# --------------------------------------------------------------------------- helpers


@dataclass
class CodeRun:
    """One run whose model called code_interpreter once, then answered with text."""
    thread_id: str
    run: dict
    steps: list
    call: dict                    # the code_interpreter tool call of the tool_calls step
    logs: str                     # its logs output(s), joined
    images: list                  # file ids of its image outputs
    tool_output: str              # what the model got back for the call
    reply: dict                   # the run's assistant message
    requests: list = field(default_factory=list)  # upstream bodies of this run


def ci_assistant(client, **kw):
    kw.setdefault("instructions", "You can run Python code.")
    return make_assistant(client, tools=[CI], **kw)


def _content(m: dict) -> str:
    c = m.get("content")
    if isinstance(c, str):
        return c
    return "".join(p.get("text", "") for p in (c or []) if isinstance(p, dict))


def code_run(client, upstream, assistant_id: str, code: str, *, answer: str = "Done.",
             thread_id: Optional[str] = None, content: str = "Please run some code.",
             attachments: Optional[list] = None, thread_kw: Optional[dict] = None,
             timeout: float = 60.0, expect_status: str = "completed") -> CodeRun:
    """Adds a user message (a new thread unless ``thread_id``), scripts the model to call
    code_interpreter with ``code`` and then answer ``answer``, runs it to the end."""
    mk = marker("ci")
    call_id = f"call_{secrets.token_hex(12)}"
    msg: dict = {"role": "user", "content": f"{content} [{mk}]"}
    if attachments:
        msg["attachments"] = attachments
    if thread_id is None:
        thread_id = client.beta.threads.create(messages=[msg], **(thread_kw or {})).id
    else:
        client.beta.threads.messages.create(thread_id, **msg)
    upstream.enqueue(tool_call("code_interpreter", {"code": code}, call_id=call_id), text(answer), match=mk)
    run = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id)
    run = wait_run(client, thread_id, run.id, timeout=timeout)
    d = check_run(run)
    assert d["status"] == expect_status, f"run ended {d['status']} (last_error {d['last_error']})"
    steps = [raw(s) for s in client.beta.threads.runs.steps.list(run.id, thread_id=thread_id, order="asc")]
    calls = [c for s in steps if s["type"] == "tool_calls" for c in s["step_details"]["tool_calls"]]
    assert len(calls) == 1, f"expected one tool call: {steps}"
    call = calls[0]
    assert call["id"] == call_id, call
    assert call["type"] == "code_interpreter", call
    outputs = call["code_interpreter"]["outputs"]
    logs = "\n".join(o["logs"] for o in outputs if o["type"] == "logs")
    images = [o["image"]["file_id"] for o in outputs if o["type"] == "image"]
    bodies = [r.body for r in upstream.requests_containing(mk)]
    tool_outs = [m for b in bodies for m in tool_messages(b) if m.get("tool_call_id") == call_id]
    tool_output = _content(tool_outs[-1]) if tool_outs else ""
    msgs = [raw(m) for m in client.beta.threads.messages.list(thread_id, run_id=run.id)]
    replies = [m for m in msgs if m["role"] == "assistant"]
    return CodeRun(thread_id, d, steps, call, logs, images, tool_output, replies[0] if replies else {}, bodies)


def check_code_step(cr: CodeRun, code: str):
    """The step shapes of a completed one-call run: tool_calls, then message_creation."""
    assert [s["type"] for s in cr.steps] == ["tool_calls", "message_creation"], cr.steps
    s = check_step(cr.steps[0], type="tool_calls", status="completed")
    assert s["completed_at"] is not None and s["last_error"] is None, s
    check_step(cr.steps[1], type="message_creation", status="completed")
    assert set(cr.call) >= {"id", "type", "code_interpreter"}, cr.call
    ci = cr.call["code_interpreter"]
    assert ci["input"] == code
    assert isinstance(ci["outputs"], list) and ci["outputs"], ci
    assert ci["outputs"][0]["type"] == "logs", ci
    for o in ci["outputs"]:
        assert o["type"] in ("logs", "image"), o
        if o["type"] == "logs":
            assert isinstance(o["logs"], str), o
        else:
            assert o["image"]["file_id"].startswith("file-"), o
    assert cr.tool_output, f"the model did not get the output back: {cr.requests}"


def saved_files(logs: str) -> dict:
    """{name: file_id} from the '[saved /mnt/data/NAME as file-ID]' lines of the logs."""
    out = {}
    for line in logs.splitlines():
        if line.startswith("[saved /mnt/data/") and line.endswith("]"):
            name, _, fid = line[len("[saved /mnt/data/"):-1].rpartition(" as ")
            out[name] = fid
    return out


# --------------------------------------------------------------------------- part 1: the shared server


def test_computation_logs_and_tool_output(client, upstream):
    asst = ci_assistant(client)
    code = "import math\nprint('fact', math.factorial(20))\nsum(range(101))"
    cr = code_run(client, upstream, asst.id, code, answer="20! is 2432902008176640000 and the sum is 5050.")
    check_code_step(cr, code)
    # what the code printed, plus the repr of the last expression (like a notebook)
    assert "fact 2432902008176640000" in cr.logs, cr.logs
    assert "5050" in cr.logs, cr.logs
    assert "fact 2432902008176640000" in cr.tool_output and "5050" in cr.tool_output, cr.tool_output
    assert cr.images == []
    # the model was offered the tool as a function taking the code
    first = cr.requests[0]
    fns = [t["function"] for t in first.get("tools", []) if t.get("type") == "function"]
    ci_fn = [f for f in fns if f["name"] == "code_interpreter"]
    assert ci_fn, f"code_interpreter not offered to the model: {first.get('tools')}"
    assert "code" in ci_fn[0]["parameters"]["properties"], ci_fn
    # the assistant's call is in the second request, before the tool message
    second = cr.requests[-1]
    assert any(tc["id"] == cr.call["id"] and tc["function"]["name"] == "code_interpreter"
               for m in second["messages"] if m.get("role") == "assistant" for tc in m.get("tool_calls") or [])
    d = check_message(cr.reply, role="assistant", run_id=cr.run["id"])
    assert text_of(d) == "20! is 2432902008176640000 and the sum is 5050."
    assert cr.run["tools"] == [CI]


def test_error_output_reaches_model(client, upstream):
    asst = ci_assistant(client)
    cr = code_run(client, upstream, asst.id, "1 / 0", answer="Division by zero.")
    check_code_step(cr, "1 / 0")
    assert "ZeroDivisionError" in cr.logs and "ZeroDivisionError" in cr.tool_output
    assert text_of(cr.reply) == "Division by zero."


def test_state_across_runs_of_a_thread(client, upstream):
    asst = ci_assistant(client)
    token = secrets.token_hex(8)
    cr1 = code_run(client, upstream, asst.id, f"secret_var = '{token}'\nimport collections\n"
                   "counter = collections.Counter('abracadabra')\nprint('stored')")
    assert "stored" in cr1.logs
    cr2 = code_run(client, upstream, asst.id, "print(secret_var, counter['a'])", thread_id=cr1.thread_id,
                   answer="It is still there.")
    check_code_step(cr2, "print(secret_var, counter['a'])")
    assert f"{token} 5" in cr2.logs, cr2.logs
    assert f"{token} 5" in cr2.tool_output
    # another thread has a session of its own
    cr3 = code_run(client, upstream, asst.id, "print('secret_var' in globals(), sorted(__import__('os').listdir('.')))")
    assert "False" in cr3.logs and token not in cr3.logs, cr3.logs


CSV = b"item,amount\napples,12\npears,30\nplums,7.5\ncherries,100\n"
CSV_CODE = ("import csv\nwith open('/mnt/data/{name}') as f:\n"
            "    total = sum(float(r['amount']) for r in csv.DictReader(f))\nprint('TOTAL', total)")


@pytest.mark.parametrize("where", ["attachment", "assistant", "thread"])
def test_csv_input_file_summed(client, upstream, where):
    name = f"sales_{where}.csv"
    f = upload_bytes(client, CSV, name, purpose="assistants")
    attachments = thread_kw = None
    kw = {}
    if where == "attachment":
        attachments = [{"file_id": f.id, "tools": [CI]}]
    elif where == "assistant":
        kw["tool_resources"] = {"code_interpreter": {"file_ids": [f.id]}}
    else:
        thread_kw = {"tool_resources": {"code_interpreter": {"file_ids": [f.id]}}}
    asst = ci_assistant(client, **kw)
    if where == "assistant":
        assert raw(asst)["tool_resources"]["code_interpreter"]["file_ids"] == [f.id]
    code = CSV_CODE.format(name=name) + "\nimport os\nprint(sorted(os.listdir('/mnt/data')))"
    cr = code_run(client, upstream, asst.id, code, answer="The total is 149.5.", attachments=attachments,
                  thread_kw=thread_kw, content="Sum the amounts in my CSV.")
    check_code_step(cr, code)
    assert "TOTAL 149.5" in cr.logs, cr.logs
    assert "TOTAL 149.5" in cr.tool_output
    assert f"'{name}'" in cr.logs, cr.logs
    # an input file is not given back as an output file
    assert saved_files(cr.logs) == {}, cr.logs
    assert text_of(cr.reply) == "The total is 149.5."


def test_chart_becomes_image_file(client, upstream):
    asst = ci_assistant(client)
    code = ("import matplotlib.pyplot as plt\nxs = list(range(10))\nplt.plot(xs, [x * x for x in xs])\n"
            "plt.title('squares')\nplt.show()\nprint('plotted')")
    cr = code_run(client, upstream, asst.id, code, answer="Here is the chart of the squares.", timeout=90)
    check_code_step(cr, code)
    assert "plotted" in cr.logs, cr.logs
    assert len(cr.images) == 1, cr.call
    fid = cr.images[0]
    # outputs: logs first, then the image
    assert [o["type"] for o in cr.call["code_interpreter"]["outputs"]] == ["logs", "image"]
    # the model is told about the image
    assert "image" in cr.tool_output.lower(), cr.tool_output
    # the reply: the text, then an image_file part with that file
    d = check_message(cr.reply)
    types = [p["type"] for p in d["content"]]
    assert types[0] == "text" and "image_file" in types, d["content"]
    assert d["content"][0]["text"]["value"] == "Here is the chart of the squares."
    parts = [p for p in d["content"] if p["type"] == "image_file"]
    assert [p["image_file"]["file_id"] for p in parts] == [fid]
    f = check_file(client.files.retrieve(fid), purpose="assistants_output")
    data = client.files.content(fid).content
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:16]
    assert len(data) == f["bytes"] > 1000
    assert f["filename"].endswith(".png"), f


def test_written_file_linked_with_file_path(client, upstream):
    asst = ci_assistant(client)
    payload = "n,square\n" + "".join(f"{i},{i * i}\n" for i in range(50))
    code = ("with open('/mnt/data/squares.csv', 'w') as f:\n"
            "    f.write(''.join(['n,square\\n'] + [f'{i},{i*i}\\n' for i in range(50)]))\n"
            "import os\nos.makedirs('/mnt/data/sub', exist_ok=True)\n"
            "open('/mnt/data/sub/nested.txt', 'w').write('nested')\nprint('written')")
    answer = "Download [the squares](sandbox:/mnt/data/squares.csv). Also see sandbox:/mnt/data/missing.txt."
    cr = code_run(client, upstream, asst.id, code, answer=answer)
    check_code_step(cr, code)
    files = saved_files(cr.logs)
    assert set(files) == {"squares.csv"}, cr.logs  # top level of /mnt/data only
    fid = files["squares.csv"]
    assert fid.startswith("file-")
    assert f"[saved /mnt/data/squares.csv as {fid}]" in cr.tool_output, cr.tool_output
    assert cr.images == []
    f = check_file(client.files.retrieve(fid), purpose="assistants_output", filename="squares.csv")
    assert client.files.content(fid).content == payload.encode()
    assert f["bytes"] == len(payload)

    d = check_message(cr.reply)
    (part,) = d["content"]
    assert part["type"] == "text"
    value = part["text"]["value"]
    assert value == answer
    anns = part["text"]["annotations"]
    assert len(anns) == 1, anns  # only the link to a saved file
    (a,) = anns
    assert a["type"] == "file_path", a
    assert a["file_path"]["file_id"] == fid
    assert a["text"] == "sandbox:/mnt/data/squares.csv"
    assert value[a["start_index"]:a["end_index"]] == a["text"], (value, a)


# --------------------------------------------------------------------------- part 2: hostile code


@pytest.fixture(scope="module")
def hostile(upstream_session, tmp_path_factory):
    """A dedicated server: short execution time limit, a fake upstream secret."""
    workdir = tmp_path_factory.mktemp("ci-hostile")
    s = ServerProcess(workdir, name="ci-hostile", upstream_url=upstream_session.base_url,
                      upstream_api_key=SECRET,
                      extra_env={"ASSISTANTS_CODE_TIMEOUT_SECONDS": str(HOSTILE_TIMEOUT),
                                 "ASSISTANTS_TEST_CANARY": "canary-" + SECRET})
    s.start()
    yield s
    s.close()
    if not os.environ.get("KEEP_TMP"):
        shutil.rmtree(workdir, ignore_errors=True)  # the 10 GB test leaves a 100 MiB output file


@pytest.fixture
def hclient(hostile):
    c = hostile.client(timeout=60)
    yield c
    c.close()


@pytest.fixture
def hasst(hclient):
    return ci_assistant(hclient)


def _ppid_table() -> dict:
    table = {}
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                stat = f.read()
            with open(f"/proc/{p}/status") as f:
                uid = next(int(line.split()[1]) for line in f if line.startswith("Uid:"))
        except (OSError, StopIteration, ValueError):
            continue
        table[int(p)] = (int(stat[stat.rindex(")") + 2:].split()[1]), uid)
    return table


def sandbox_pids(server: ServerProcess) -> list:
    """The server's descendant processes running as the sandbox user."""
    table = _ppid_table()
    root = server.proc.pid
    out = []
    for pid, (ppid, uid) in table.items():
        seen, cur = 0, ppid
        while cur not in (0, 1, root) and cur in table and seen < 200:
            cur, seen = table[cur][0], seen + 1
        if cur == root and uid == SANDBOX_UID:
            out.append(pid)
    return out


def wait_pids_at_most(server, n: int, timeout: float = 10.0) -> list:
    deadline = time.monotonic() + timeout
    while True:
        pids = sandbox_pids(server)
        if len(pids) <= n or time.monotonic() > deadline:
            return pids
        time.sleep(0.1)


def assert_healthy(server: ServerProcess, client, upstream, asst_id: str):
    """/health answers, CRUD works, and a normal execution on a new thread works."""
    assert server.is_running(), server.log_tail()
    r = httpx.get(server.base_url + "/health", timeout=5)
    assert r.status_code == 200, r.text
    assert client.beta.assistants.retrieve(asst_id).id == asst_id
    tok = secrets.token_hex(4)
    cr = code_run(client, upstream, asst_id, f"print('healthy-{tok}', 6 * 7)")
    assert f"healthy-{tok} 42" in cr.logs, cr.logs


def test_network_is_unreachable(hclient, upstream, hostile, hasst):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    port = listener.getsockname()[1]
    try:
        targets = [("127.0.0.1", port), ("127.0.0.1", hostile.port), ("localhost", port),
                   ("1.1.1.1", 443), ("8.8.8.8", 53)]
        code = ("import socket\nfor host, port in %r:\n    try:\n"
                "        socket.create_connection((host, port), timeout=2).close()\n"
                "        print('CONNECTED', host, port)\n"
                "    except Exception as e:\n        print('refused', host, port, type(e).__name__)\n"
                "import urllib.request\ntry:\n"
                "    urllib.request.urlopen('http://127.0.0.1:%d/health', timeout=2)\n    print('CONNECTED http')\n"
                "except Exception as e:\n    print('http failed', type(e).__name__)\n"
                "print(sorted(n for _, n in socket.if_nameindex()))") % (targets, hostile.port)
        cr = code_run(hclient, upstream, hasst.id, code, answer="No network.")
        check_code_step(cr, code)
        assert "CONNECTED" not in cr.logs, cr.logs
        assert cr.logs.count("refused") == len(targets), cr.logs
        assert "http failed" in cr.logs, cr.logs
        assert "['lo']" in cr.logs, cr.logs  # only a loopback device of its own
        listener.settimeout(0.5)
        with pytest.raises(socket.timeout):
            conn, addr = listener.accept()
            conn.close()
            raise AssertionError(f"the sandbox connected to the test's listener from {addr}")
    finally:
        listener.close()
    assert_healthy(hostile, hclient, upstream, hasst.id)


def test_host_files_are_invisible(hclient, upstream, hostile, hasst):
    db = TEST_DATABASE_URL is None and hostile.database_url.startswith("sqlite://")
    paths = [str(hostile.data_dir), str(hostile.workdir), "/etc/shadow", "/root", "/work",
             "/proc/1/root/etc/shadow", "/mnt/data/../../etc/shadow"]
    if db:
        paths.insert(0, hostile.database_url[len("sqlite://"):])
        assert Path(paths[0]).is_file()
    code = ("import os\nfor p in %r:\n    try:\n"
            "        if os.path.isdir(p):\n            print('LISTED', p, os.listdir(p))\n"
            "        else:\n            print('READ', p, open(p, 'rb').read(64))\n"
            "    except Exception as e:\n        print('denied', p, type(e).__name__)\n"
            "print('root:', sorted(os.listdir('/')))") % (paths,)
    cr = code_run(hclient, upstream, hasst.id, code, answer="Nothing there.")
    check_code_step(cr, code)
    assert "READ" not in cr.logs and "LISTED" not in cr.logs, cr.logs
    assert cr.logs.count("denied") == len(paths), cr.logs
    assert "SQLite format" not in cr.logs and "root:x:0" not in cr.logs
    assert "'work'" not in cr.logs and "'root'" not in cr.logs, cr.logs
    assert_healthy(hostile, hclient, upstream, hasst.id)


def test_environment_has_no_secrets(hclient, upstream, hostile, hasst):
    code = ("import os, glob\nprint('KEYS', sorted(os.environ))\nprint(dict(os.environ))\n"
            "for p in sorted(glob.glob('/proc/*/environ')) + ['/proc/1/cmdline']:\n"
            "    try:\n        print(p, open(p, 'rb').read())\n"
            "    except Exception as e:\n        print(p, type(e).__name__)")
    cr = code_run(hclient, upstream, hasst.id, code, answer="Nothing secret.")
    check_code_step(cr, code)
    assert SECRET not in cr.logs and SECRET not in cr.tool_output, cr.logs
    assert "ASSISTANTS_" not in cr.logs, cr.logs
    keys_line = next(line for line in cr.logs.splitlines() if line.startswith("KEYS "))
    keys = set(ast.literal_eval(keys_line[len("KEYS "):]))
    assert keys <= SANDBOX_ENV, keys - SANDBOX_ENV
    assert_healthy(hostile, hclient, upstream, hasst.id)


def test_infinite_loop_times_out(hclient, upstream, hostile, hasst):
    t0 = time.monotonic()
    cr = code_run(hclient, upstream, hasst.id, "while True: pass", answer="That took too long.")
    took = time.monotonic() - t0
    check_code_step(cr, "while True: pass")
    assert "timed out after" in cr.logs.lower(), cr.logs
    assert "timed out after" in cr.tool_output.lower(), cr.tool_output
    assert HOSTILE_TIMEOUT <= took < HOSTILE_TIMEOUT + 10, took
    assert text_of(cr.reply) == "That took too long."
    # the thread's session works again afterwards
    cr2 = code_run(hclient, upstream, hasst.id, "print('alive', 2 ** 10)", thread_id=cr.thread_id)
    assert "alive 1024" in cr2.logs, cr2.logs
    assert_healthy(hostile, hclient, upstream, hasst.id)


def test_soft_timeout_keeps_session_state(hclient, upstream, hostile, hasst):
    """sandbox/README.md: an execution over the time limit that the kernel can interrupt
    (here a sleeping loop) ends with status timeout and the session, with its variables,
    is kept; only an uninterruptible one is killed (hard timeout = limit + 2 s)."""
    cr = code_run(hclient, upstream, hasst.id,
                  "kept = 41\nprint('set')\nprint([l.strip() for l in open('/proc/self/status') if l.startswith('SigBlk')])")
    assert "set" in cr.logs
    sigblk = cr.logs.splitlines()[-1]
    t0 = time.monotonic()
    cr2 = code_run(hclient, upstream, hasst.id, "import time\nwhile True:\n    time.sleep(0.05)",
                   thread_id=cr.thread_id)
    took = time.monotonic() - t0
    assert "timed out after" in cr2.logs.lower(), cr2.logs
    cr3 = code_run(hclient, upstream, hasst.id, "print('kept', kept + 1)", thread_id=cr.thread_id)
    assert "kept 42" in cr3.logs, (
        f"the session was restarted on a soft timeout (execution took {took:.1f} s, limit {HOSTILE_TIMEOUT} s); "
        f"timeout logs: {cr2.logs!r}; then: {cr3.logs!r}; the kernel's blocked signals: {sigblk} "
        f"(SIGALRM blocked means the kernel's own timer can never interrupt the code)")


def test_allocating_10gb_fails(hclient, upstream, hostile, hasst):
    code = ("for what, make in [('bytearray', lambda: bytearray(10 * 1024 ** 3)),\n"
            "                   ('str', lambda: ' ' * (10 * 1024 ** 3)),\n"
            "                   ('list', lambda: [0] * (10 * 1024 ** 3 // 8))]:\n"
            "    try:\n        big = make()\n        print('ALLOCATED', what)\n"
            "    except MemoryError:\n        print('MemoryError', what)\n"
            "big = None\nprint('still running')")
    cr = code_run(hclient, upstream, hasst.id, code, answer="Not enough memory.")
    check_code_step(cr, code)
    assert "ALLOCATED" not in cr.logs, cr.logs
    assert cr.logs.count("MemoryError") == 3 and "still running" in cr.logs, cr.logs
    assert "MemoryError" in cr.tool_output
    # the session survives a MemoryError
    cr2 = code_run(hclient, upstream, hasst.id, "print('after', len(bytearray(50 * 1024 ** 2)))",
                   thread_id=cr.thread_id)
    assert f"after {50 * 1024 ** 2}" in cr2.logs, cr2.logs
    assert_healthy(hostile, hclient, upstream, hasst.id)


def test_fork_bomb_is_bounded(hclient, upstream, hostile, hasst):
    # a warm session first, so that its own processes are in the baseline
    cr = code_run(hclient, upstream, hasst.id, "print('warm')")
    base_pids = sandbox_pids(hostile)
    base_all = len(_ppid_table())
    code = "import os\nwhile True: os.fork()"
    cr2 = code_run(hclient, upstream, hasst.id, code, thread_id=cr.thread_id, answer="Too many processes.")
    check_code_step(cr2, code)
    assert "BlockingIOError" in cr2.logs or "Resource temporarily unavailable" in cr2.logs \
        or "timed out" in cr2.logs.lower() or "ended unexpectedly" in cr2.logs, cr2.logs
    assert len(_ppid_table()) < base_all + 200, "the fork bomb was not bounded"
    assert text_of(cr2.reply) == "Too many processes."
    # the host can still fork
    assert os.spawnv(os.P_WAIT, "/bin/true", ["true"]) == 0
    problems = []
    # the next execution in the same thread gets its own result
    tok = secrets.token_hex(4)
    cr3 = code_run(hclient, upstream, hasst.id, f"print('after-bomb-{tok}')", thread_id=cr.thread_id)
    if f"after-bomb-{tok}" not in cr3.logs:
        problems.append(f"a stale result came back for the next execution in the thread: {cr3.logs!r}")
    # and no stray processes are left behind
    left = wait_pids_at_most(hostile, len(base_pids), timeout=5.0)
    if len(left) > len(base_pids):
        problems.append(f"{len(left)} sandbox processes still there 5 s after the fork bomb "
                        f"(before it: {len(base_pids)})")
    assert_healthy(hostile, hclient, upstream, hasst.id)
    assert not problems, "; ".join(problems)


def test_writing_10gb_to_disk_fails(hclient, upstream, hostile, hasst):
    code = ("n = 0\ntry:\n    with open('/mnt/data/big.bin', 'wb') as f:\n"
            "        for i in range(10 * 1024):\n            f.write(b'\\0' * 1024 ** 2)\n            n += 1\n"
            "    print('WROTE 10 GB')\nexcept OSError as e:\n    print('stopped after', n, 'MiB:', e.strerror)\n"
            "m = 0\ntry:\n    with open('/tmp/big.bin', 'wb') as f:\n"
            "        for i in range(10 * 1024):\n            f.write(b'\\0' * 1024 ** 2)\n            m += 1\n"
            "except OSError as e:\n    print('tmp stopped after', m, 'MiB:', e.strerror)\n")
    cr = code_run(hclient, upstream, hasst.id, code, answer="The disk is limited.")
    check_code_step(cr, code)
    assert "WROTE 10 GB" not in cr.logs, cr.logs
    assert "stopped after" in cr.logs and "File too large" in cr.logs, cr.logs
    n = int(cr.logs.split("stopped after", 1)[1].split()[0])
    assert n <= 100, cr.logs  # RLIMIT_FSIZE: 100 MiB per file
    assert "tmp stopped after" in cr.logs, cr.logs
    # a partial file that was kept is at most the per-file limit
    for name, fid in saved_files(cr.logs).items():
        assert hclient.files.retrieve(fid).bytes <= 100 * 1024 ** 2
    assert_healthy(hostile, hclient, upstream, hasst.id)


# --------------------------------------------------------------------------- part 3: a killed server's leftovers


def _sandbox_root_locked_by(server: ServerProcess) -> Path:
    """The sandbox folder whose ``.owner`` flock the server's process holds (/proc/locks)."""
    holders = {}
    with open("/proc/locks") as f:
        for line in f:
            parts = line.split()
            if "FLOCK" not in parts or "->" in parts:
                continue
            i = parts.index("FLOCK")
            holders[int(parts[i + 4].rsplit(":", 1)[1])] = int(parts[i + 3])
    for root in [server.data_dir / "sandbox", *Path("/tmp").glob("assistants-sandbox-*")]:
        try:
            inode = os.stat(root / ".owner", follow_symlinks=False).st_ino
        except OSError:
            continue
        if holders.get(inode) == server.proc.pid:
            return root
    raise AssertionError(f"no sandbox folder is locked by the server (pid {server.proc.pid})")


@pytest.mark.parametrize("where", ["tmp", "data_dir"])
def test_a_killed_servers_session_files_are_removed_at_its_next_start(upstream_session, upstream, tmp_path, where):
    """kill -9 mid-session leaves the session's files (user data) on disk; the next start removes
    them: the sandbox's own folder under /tmp when the data dir is out of the sandbox user's reach
    (pytest's 0700 tmp_path), the session folders under the data dir otherwise. A thread's next
    execution starts in an empty /mnt/data, as after a graceful restart."""
    if where == "tmp":
        workdir = tmp_path / "ci-killed"
    else:
        workdir = Path(tempfile.mkdtemp(prefix="ci-killed-", dir="/tmp"))
        os.chmod(workdir, 0o711)
    s = ServerProcess(workdir, name=f"ci-killed-{where}", upstream_url=upstream_session.base_url)
    try:
        s.start()
        c = s.client(timeout=60)
        a = ci_assistant(c)
        cr = code_run(c, upstream, a.id, "open('/mnt/data/private.txt', 'w').write('user data')\nprint('written')")
        assert "written" in cr.logs, cr.logs
        root = _sandbox_root_locked_by(s)
        if where == "tmp":
            assert str(root).startswith("/tmp/assistants-sandbox-"), root
        else:
            assert root == s.data_dir / "sandbox", root
        left = [p for p in (root / "sessions").iterdir() if (p / "private.txt").exists()]
        assert len(left) == 1, list((root / "sessions").iterdir())
        s.kill()
        assert left[0].exists(), "the kill itself removed the session folder"
        s.start()
        if where == "tmp":
            assert not root.exists(), f"{root} is still there after the next start"
        else:
            assert _sandbox_root_locked_by(s) == root
            assert not left[0].exists(), f"{left[0]} is still there after the next start"
        c = s.client(timeout=60)
        cr2 = code_run(c, upstream, a.id, "import os\nprint(sorted(os.listdir('/mnt/data')))", thread_id=cr.thread_id)
        assert cr2.logs.startswith("[") and "private.txt" not in cr2.logs, cr2.logs
    finally:
        s.close()
        shutil.rmtree(workdir, ignore_errors=True)
