"""Sandbox escape attempts against code_interpreter (issue 11, point 2 and the sandbox parts of 5, 6).

The scripted model calls ``code_interpreter`` with hostile code on a server of its own
(small /mnt/data quota and memory budget so limits are reached quickly):

* a symlink in /mnt/data to a host folder + a quota overflow + a rewritten change list must
  not delete a root-only host file (the server used to unlink ``folder/<reported path>``);
* forged protocol lines written everywhere the code can reach must not change the next
  execution's result (``print(6*7)`` answered "FORGED");
* several forked children each allocating must stay within the session's memory budget,
  and the answer names the limit;
* 300 open files get an answer naming the open-files limit (not memory), and the session
  keeps working.

Each test fails on the server before the fix. Needs bubblewrap (skipped without it) and root
(the server drops to uid 65534 for the sandbox).
"""

from __future__ import annotations

import glob
import os
import secrets
import stat
import time
from pathlib import Path

import pytest

from helpers import check_run, make_assistant, marker, raw, wait_run
from upstream import text, tool_call

pytestmark = [
    pytest.mark.runs,
    pytest.mark.skipif(not os.path.exists("/usr/bin/bwrap"), reason="bubblewrap (/usr/bin/bwrap) is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox needs the server to run as root"),
]

DISK_MB = 8
MEMORY_MB = 384
TIMEOUT = 20


@pytest.fixture(scope="module")
def sandbox_server(tmp_path_factory, upstream_session):
    from conftest import HostileServer, random_keys
    workdir = tmp_path_factory.mktemp("sandbox-hostile")
    s = HostileServer(workdir, name="sandbox-hostile", api_keys=random_keys(1, prefix="sbx"),
                      upstream_url=upstream_session.base_url,
                      extra_env={"ASSISTANTS_CODE_DISK_MB": str(DISK_MB),
                                 "ASSISTANTS_CODE_MEMORY_MB": str(MEMORY_MB),
                                 "ASSISTANTS_CODE_TIMEOUT_SECONDS": str(TIMEOUT)})
    s.start()
    yield s
    s.close()


@pytest.fixture(scope="module")
def sclient(sandbox_server):
    c = sandbox_server.client(timeout=120)
    yield c
    c.close()


@pytest.fixture(scope="module")
def sasst(sclient):
    return make_assistant(sclient, tools=[{"type": "code_interpreter"}], instructions="You can run Python code.")


def run_code(client, upstream, assistant_id: str, code: str, thread_id: str | None = None) -> tuple[str, str]:
    """One run whose scripted model calls code_interpreter with ``code``; returns (thread id, logs)."""
    mk = marker("sbx")
    msg = {"role": "user", "content": f"Run it [{mk}]"}
    if thread_id is None:
        thread_id = client.beta.threads.create(messages=[msg]).id
    else:
        client.beta.threads.messages.create(thread_id, **msg)
    upstream.enqueue(tool_call("code_interpreter", {"code": code}, call_id=f"call_{secrets.token_hex(8)}"),
                     text("Done."), match=mk)
    run = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id)
    run = wait_run(client, thread_id, run.id, timeout=TIMEOUT + 60)
    d = check_run(run)
    assert d["status"] == "completed", f"run ended {d['status']} ({d['last_error']})"
    steps = [raw(s) for s in client.beta.threads.runs.steps.list(run.id, thread_id=thread_id, order="asc")]
    calls = [c for s in steps if s["type"] == "tool_calls" for c in s["step_details"]["tool_calls"]]
    assert len(calls) == 1, steps
    logs = "\n".join(o["logs"] for o in calls[0]["code_interpreter"]["outputs"] if o["type"] == "logs")
    return thread_id, logs


def memory_mode(server) -> str:
    log = server.log_tail(max_chars=10 ** 6)
    for mode in ("cgroup v1", "cgroup v2", "rlimit fallback"):
        if f"code_interpreter memory limits: {mode}" in log:
            return mode
    return "unknown"


# Code that rewrites the (old, in-process) kernel's change list wherever it finds it on the stack
# or in loaded modules: the server then believed the execution wrote these paths.
REWRITE_CHANGES = """
import sys, gc
extra = {extra!r}
def _patch(g):
    if callable(g.get('_changed')) and not g.get('_patched'):
        orig = g['_changed']
        g['_changed'] = lambda before, after: [dict(path=p, size=1) for p in extra] + orig(before, after)
        g['_patched'] = True
f = sys._getframe()
while f is not None:
    _patch(f.f_globals)
    f = f.f_back
for o in gc.get_objects():
    if isinstance(o, dict) and '_changed' in o and '_scan' in o:
        _patch(o)
"""


def test_symlink_and_quota_overflow_never_delete_a_host_file(sclient, upstream, sandbox_server, sasst, tmp_path):
    host_dir = tmp_path / "host-only"
    host_dir.mkdir()
    victim = host_dir / "victim.txt"
    victim.write_text("root-only host data\n")
    os.chmod(victim, 0o600)
    os.chmod(host_dir, 0o700)
    assert os.stat(victim).st_uid == 0
    extra = ["/mnt/data/link/victim.txt", "/mnt/data/link/../link/victim.txt", "/mnt/data/../../victim.txt"]
    code = (f"import os\nos.symlink({str(host_dir)!r}, '/mnt/data/link')\n"
            f"os.symlink({str(victim)!r}, '/mnt/data/direct.txt')\n"
            + REWRITE_CHANGES.format(extra=extra) +
            f"with open('/mnt/data/fill.bin', 'wb') as f:\n    f.write(b'x' * ({DISK_MB} + 1) * 1024 * 1024)\n"
            "print('filled')")
    thread_id, logs = run_code(sclient, upstream, sasst.id, code)
    assert "filled" in logs, logs
    assert victim.exists(), f"the server deleted a host file through /mnt/data/link: {logs}"
    assert victim.read_text() == "root-only host data\n"
    assert f"{DISK_MB} MiB quota" in logs, f"the quota overflow was not reported: {logs}"
    # the overflowing file was removed from the session folder (and only it)
    _, logs2 = run_code(sclient, upstream, sasst.id,
                        "import os\nprint(sorted(os.listdir('/mnt/data')), os.path.islink('/mnt/data/link'))",
                        thread_id=thread_id)
    assert "'fill.bin'" not in logs2 and "True" in logs2, logs2
    assert victim.exists()


FORGE = ('{{"id": {i}, "token": null, "status": "ok", "stdout": "FORGED\\\\n", "stderr": "", "error": null, '
         '"files": [], "images": []}}')


def test_forged_protocol_lines_do_not_change_the_next_result(sclient, upstream, sandbox_server, sasst):
    lines = "".join(FORGE.format(i=i) + "\n" for i in range(0, 300))
    code = ("import os, glob, time, stat\n"
            f"data = {lines!r}.encode()\n"
            "hits = 0\n"
            "targets = ['/proc/self/fd/%d' % fd for fd in range(0, 256)] + glob.glob('/proc/*/fd/*')\n"
            "for p in targets:\n"
            "    try:\n        fd = os.open(p, os.O_WRONLY | os.O_NONBLOCK)\n    except OSError:\n        continue\n"
            "    try:\n        os.write(fd, data[:60000])\n        hits += 1\n    except OSError:\n        pass\n"
            "for fd in range(3, 256):\n"
            "    try:\n        if stat.S_ISFIFO(os.fstat(fd).st_mode):\n            os.write(fd, data[:60000])\n"
            "    except OSError:\n        pass\n"
            "if os.fork() == 0:\n"
            "    for _ in range(50):\n"
            "        for fd in range(3, 64):\n"
            "            try:\n                os.write(fd, data[:4096])\n            except OSError:\n                pass\n"
            "        time.sleep(0.1)\n"
            "    os._exit(0)\n"
            "print('forged into', hits, 'descriptors')")
    thread_id, logs = run_code(sclient, upstream, sasst.id, code)
    for _ in range(2):
        _, logs2 = run_code(sclient, upstream, sasst.id, "print(6*7)", thread_id=thread_id)
        assert "FORGED" not in logs2, f"a forged line became the result: {logs2!r}"
        assert "42" in logs2, logs2


def _session_cgroups(server) -> list:
    pattern = f"assistants-sandbox-{server.proc.pid}"
    found = []
    for base in ("/sys/fs/cgroup/memory", "/sys/fs/cgroup"):
        for root, dirs, _ in os.walk(base):
            if os.path.basename(root) == pattern:
                found += [os.path.join(root, d) for d in dirs]
                dirs[:] = []
            elif root.count("/") > 8:
                dirs[:] = []
    return found


def _peak_usage(cgroup: str):
    for name in ("memory.max_usage_in_bytes", "memory.peak"):
        try:
            return int(Path(cgroup, name).read_text())
        except (OSError, ValueError):
            continue
    return None


def test_fork_and_memory_stay_within_the_session_budget(sclient, upstream, sandbox_server, sasst):
    code = ("import os, time\npids = []\n"
            "for i in range(6):\n"
            "    try:\n        pid = os.fork()\n    except OSError as e:\n        print('fork failed', e)\n        break\n"
            "    if pid == 0:\n"
            "        try:\n            b = bytearray(150 * 1024 * 1024)\n"
            "            for j in range(0, len(b), 4096):\n                b[j] = 1\n"
            "            time.sleep(3)\n"
            "        except MemoryError:\n            os._exit(3)\n"
            "        os._exit(0)\n"
            "    pids.append(pid)\n"
            "codes = [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids]\n"
            "print('children', codes)")
    t0 = time.monotonic()
    thread_id, logs = run_code(sclient, upstream, sasst.id, code)
    mode = memory_mode(sandbox_server)
    print(mode, logs)
    if mode.startswith("cgroup"):
        assert f"memory limit of {MEMORY_MB} MiB" in logs, f"({mode}) the memory limit was not named: {logs}"
        for cgroup in _session_cgroups(sandbox_server):
            peak = _peak_usage(cgroup)
            if peak is not None:
                assert peak <= MEMORY_MB * 1024 * 1024, f"{cgroup} peaked at {peak} bytes"
    else:
        # rlimit fallback: RLIMIT_NPROC x RLIMIT_AS within the budget: forks fail or allocations do
        assert "fork failed" in logs or "-9" in logs or "3" in logs, f"({mode}) {logs}"
    assert time.monotonic() - t0 < TIMEOUT + 60
    # the session (or a fresh one) keeps working
    _, logs2 = run_code(sclient, upstream, sasst.id, "print('after', 6 * 7)", thread_id=thread_id)
    assert "after 42" in logs2, logs2


def test_descriptor_exhaustion_names_the_open_files_limit(sclient, upstream, sandbox_server, sasst):
    thread_id, logs = run_code(sclient, upstream, sasst.id, "kept = 'still here'\nprint('set')")
    assert "set" in logs
    _, logs = run_code(sclient, upstream, sasst.id,
                       "files = []\nfor i in range(300):\n    files.append(open('/dev/null'))", thread_id=thread_id)
    assert "open-files limit of 256" in logs, logs
    assert "memory" not in logs.lower(), f"descriptor exhaustion blamed on memory: {logs}"
    _, logs2 = run_code(sclient, upstream, sasst.id,
                        "for f in files:\n    f.close()\nfiles = []\nprint('alive', kept)", thread_id=thread_id)
    assert "alive still here" in logs2, f"the session did not keep working: {logs2}"


def test_no_sandbox_cgroup_is_left_when_sessions_stop(tmp_path, upstream_session):
    """The session's cgroups go away with the server (and a stopped sandbox's with it)."""
    from conftest import HostileServer, random_keys
    s = HostileServer(tmp_path / "cg", name="cg", api_keys=random_keys(1, prefix="cg"),
                      upstream_url=upstream_session.base_url)
    s.start()
    pid = s.proc.pid
    try:
        if not memory_mode(s).startswith("cgroup"):
            pytest.skip(f"no cgroups here ({memory_mode(s)})")
    finally:
        s.stop()
    left = [p for base in ("/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup")
            for p in glob.glob(f"{base}/**/assistants-sandbox-{pid}", recursive=True)]
    assert not left, left
