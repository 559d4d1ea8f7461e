#!/usr/bin/python3
"""End-to-end checks of the code_interpreter sandbox (stdlib only, run as root).

Drives sandbox/kernel.py through the exact command of bwrap-command.md and
prints PASS/FAIL per check, then 'N passed, N failed'; exit 1 on any failure.

    sudo /usr/bin/python3 sandbox/check.py            # all checks
    /usr/bin/python3 sandbox/check.py --timings-only  # just the timings
"""

import json
import os
import pwd
import secrets
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
KERNEL = os.path.join(HERE, "kernel.py")
PASSWD = os.path.join(HERE, "etc", "passwd")
GROUP = os.path.join(HERE, "etc", "group")
SANDBOX_UID = 65534

LIMITS = {
    "as": 1024 ** 3,            # address space per process: the session's budget (cgroup modes)
    "cpu": (60, 3600),          # soft/hard CPU s; the kernel moves soft per execution
    "nproc": 64,                # processes + threads in the sandbox's user namespace
    "fsize": 100 * 1024 ** 2,   # largest file a process may write: 100 MiB
    "nofile": 256,
    "tmp_size": 256 * 1024 ** 2,
    "shm_size": 16 * 1024 ** 2,
}
GRACE = 5.0        # the server's hard kill of the whole sandbox at timeout + GRACE
KILL_GRACE = 1.5   # the supervisor kills a hung worker at timeout + KILL_GRACE (kernel.py)


def sandbox_argv(session_dir, kernel=KERNEL, limits=LIMITS):
    """The exact command of bwrap-command.md."""
    cpu_soft, cpu_hard = limits["cpu"]
    argv = [
        "/usr/bin/env", "-i",
        "/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
        "--inh-caps=-all", "--bounding-set=-all",
        "/usr/bin/bwrap",
        "--unshare-all", "--unshare-user", "--disable-userns",
        "--uid", "65534", "--gid", "65534",
        "--cap-drop", "ALL", "--new-session", "--die-with-parent",
        "--hostname", "sandbox",
        "--clearenv",
        "--setenv", "PATH", "/usr/bin:/bin",
        "--setenv", "HOME", "/mnt/data",
        "--setenv", "LANG", "C.UTF-8",
        "--setenv", "TMPDIR", "/tmp",
        "--setenv", "MPLBACKEND", "Agg",
        "--setenv", "MPLCONFIGDIR", "/tmp/matplotlib",
        "--setenv", "OPENBLAS_NUM_THREADS", "1",
        "--setenv", "OMP_NUM_THREADS", "1",
        "--ro-bind", "/usr", "/usr",
        "--symlink", "usr/bin", "/bin",
        "--symlink", "usr/sbin", "/sbin",
        "--symlink", "usr/lib", "/lib",
        "--symlink", "usr/lib64", "/lib64",
        "--ro-bind", "/etc/alternatives", "/etc/alternatives",
        "--ro-bind", "/etc/python3", "/etc/python3",
        "--ro-bind", "/etc/python3.11", "/etc/python3.11",
        "--ro-bind", "/etc/matplotlibrc", "/etc/matplotlibrc",
        "--ro-bind", "/etc/fonts", "/etc/fonts",
        "--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache",
        "--ro-bind", "/etc/localtime", "/etc/localtime",
        "--ro-bind", PASSWD, "/etc/passwd",
        "--ro-bind", GROUP, "/etc/group",
        "--ro-bind", "/var/cache/fontconfig", "/var/cache/fontconfig",
        "--proc", "/proc",
        "--dev", "/dev",
        "--size", str(limits["shm_size"]), "--tmpfs", "/dev/shm",
        "--remount-ro", "/dev",
        "--size", str(limits["tmp_size"]), "--tmpfs", "/tmp",
        "--bind", session_dir, "/mnt/data",
        "--ro-bind", kernel, "/opt/kernel.py",
        "--remount-ro", "/",
        "--chdir", "/mnt/data",
        "--",
        "/usr/bin/prlimit",
        "--as=%d" % limits["as"],
        "--cpu=%d:%d" % (cpu_soft, cpu_hard),
        "--nproc=%d" % limits["nproc"],
        "--fsize=%d" % limits["fsize"],
        "--nofile=%d" % limits["nofile"],
        "--core=0",
        "--",
        "/usr/bin/python3", "-I", "-B", "/opt/kernel.py",
    ]
    return argv


def new_session_dir(parent):
    d = tempfile.mkdtemp(prefix="sess-", dir=parent)
    os.chown(d, SANDBOX_UID, SANDBOX_UID)
    os.chmod(d, 0o700)
    return d


class Session:
    """What the Swift side does: spawn, read line by line, hard timeout, kill the group, restart."""

    def __init__(self, session_dir, env=None, prefix=()):
        self.session_dir = session_dir
        self.env = env
        self.prefix = list(prefix)
        self.restarts = 0
        self.next_id = 0
        self.stale = 0      # lines skipped because they did not carry the request's token
        self.start()

    def start(self):
        self.t_spawn = time.perf_counter()
        self.proc = subprocess.Popen(
            self.prefix + sandbox_argv(self.session_dir), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True, env=self.env)
        self.buf = b""
        self.sel = selectors.DefaultSelector()
        self.sel.register(self.proc.stdout, selectors.EVENT_READ)
        self.ready = self._read_line(10.0)
        if self.ready is None or self.ready.get("event") != "ready":
            err = self.proc.stderr.read1(4096) if self.proc.poll() is not None else b""
            raise RuntimeError("sandbox did not start: %r %r" % (self.ready, err))

    def _read_line(self, timeout):
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or not self.sel.select(left):
                return None
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                return {"eof": True}
            self.buf += chunk
            if len(self.buf) > 8 * 1024 * 1024:   # a line that big: treat as broken
                return {"eof": True}
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def kill(self):
        """Kill the whole tree: bwrap's process group (the sandbox dies with bwrap)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        self.sel.close()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            f.close()

    def restart(self):
        self.kill()
        self.restarts += 1
        self.start()

    def run(self, code, timeout=30.0):
        self.next_id += 1
        token = secrets.token_hex(16)
        req = {"id": self.next_id, "token": token, "code": code, "timeout": timeout}
        try:
            self.proc.stdin.write((json.dumps(req) + "\n").encode())
            self.proc.stdin.flush()
        except BrokenPipeError:
            self.restart()
            return {"id": req["id"], "status": "error", "error": "the session had ended; it was restarted"}
        deadline = time.monotonic() + timeout + GRACE
        while True:
            resp = self._read_line(max(0.0, deadline - time.monotonic()))
            if resp is None or resp.get("eof") or resp.get("token") == token:
                break
            self.stale += 1     # only the response carrying this request's token counts
        if resp is None:
            self.restart()
            return {"id": req["id"], "status": "timeout", "stdout": "", "stderr": "",
                    "error": "execution timed out after %g s; the session was restarted" % timeout,
                    "hard_kill": True}
        if resp.get("eof"):
            rc = self.proc.wait()
            self.restart()
            return {"id": req["id"], "status": "error", "stdout": "", "stderr": "",
                    "error": "the session ended (exit status %s); it was restarted" % rc,
                    "died": rc}
        assert resp.get("id") == req["id"], resp
        resp["sandbox_restarts"] = self.restarts
        return resp

    def close(self):
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except Exception:
            pass
        self.kill()


# ------------------------------------------------------------------ helpers

def sandbox_pids():
    """Host pids owned by the sandbox uid (should be none when no session is open)."""
    pids = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                if os.stat("/proc/" + p).st_uid == SANDBOX_UID:
                    pids.append(int(p))
            except OSError:
                pass
    return pids


def wait_no_sandbox_pids(timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not sandbox_pids():
            return True
        time.sleep(0.05)
    return False


def host_fine():
    """The host can still fork, and loopback TCP works."""
    r = subprocess.run(["/bin/true"], timeout=5)
    return r.returncode == 0


RESULTS = []


def check(name, ok, detail=""):
    ok = bool(ok)
    RESULTS.append(ok)
    print("%s %s%s" % ("PASS" if ok else "FAIL", name, (" -- " + detail) if detail else ""), flush=True)


def short(resp):
    return json.dumps({k: resp.get(k) for k in ("status", "stdout", "stderr", "error", "files")})[:600]


# ------------------------------------------------------------------ timings

def timings(root):
    d = new_session_dir(root)
    colds = []
    for _ in range(5):
        t0 = time.perf_counter()
        s = Session(d)
        r = s.run("print(1)")
        colds.append((time.perf_counter() - t0) * 1000)
        assert r["stdout"] == "1\n", r
        s.close()
    s = Session(d)
    warm = []
    for _ in range(50):
        t0 = time.perf_counter()
        r = s.run("print(1)")
        warm.append((time.perf_counter() - t0) * 1000)
        assert r["stdout"] == "1\n"
    t0 = time.perf_counter()
    r = s.run("import numpy, matplotlib.pyplot as plt")
    np_ms = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    r = s.run("plt.plot([1, 2, 3]); plt.show()")
    plot_ms = (time.perf_counter() - t0) * 1000
    s.close()
    print("TIMING cold start (spawn -> response to print(1)): median %.1f ms (min %.1f, max %.1f, n=5)"
          % (statistics.median(colds), min(colds), max(colds)))
    print("TIMING warm print(1) round trip: median %.2f ms (p90 %.2f, max %.2f, n=50)"
          % (statistics.median(warm), sorted(warm)[44], max(warm)))
    print("TIMING first 'import numpy, matplotlib.pyplot' in a session: %.0f ms; first plot+show: %.0f ms"
          % (np_ms, plot_ms))
    check("timing: warm print(1) < 50 ms", statistics.median(warm) < 50, "%.2f ms" % statistics.median(warm))
    check("timing: cold start < 500 ms", statistics.median(colds) < 500, "%.1f ms" % statistics.median(colds))


# ------------------------------------------------------------------ checks

def checks(root):
    host_dir = tempfile.mkdtemp(prefix="host-data-", dir=root)   # stands for the server's data dir
    secret_path = os.path.join(host_dir, "secret.txt")
    with open(secret_path, "w") as f:
        f.write("host secret\n")
    os.chmod(secret_path, 0o644)          # even world-readable: must still be invisible
    d = new_session_dir(root)
    env = dict(os.environ, FAKE_SECRET="sk-fake-upstream-key-0123456789",
               OPENAI_API_KEY="sk-fake-openai-key-abcdef")
    s = Session(d, env=env)

    # 1. computation
    r = s.run("sum(i * i for i in range(10))")
    check("computation output", r["status"] == "ok" and r["stdout"] == "285\n", short(r))

    # 2. state across executions
    s.run("x = 21\ndef double(v):\n    return 2 * v")
    r = s.run("double(x)")
    check("state persists across executions", r["stdout"] == "42\n", short(r))

    # 3. CSV placed in /mnt/data
    with open(os.path.join(d, "data.csv"), "w") as f:
        f.write("name,value\n" + "".join("r%d,%d\n" % (i, i) for i in range(1, 101)))
    r = s.run("import csv\nwith open('/mnt/data/data.csv') as f:\n"
              "    total = sum(float(row['value']) for row in csv.DictReader(f))\n"
              "import numpy as np\n"
              "print(total, np.loadtxt('/mnt/data/data.csv', delimiter=',', skiprows=1, usecols=1).sum())")
    check("CSV in /mnt/data read and summed", r["stdout"] == "5050.0 5050.0\n", short(r))

    # 4. matplotlib PNG: savefig and plt.show()
    r = s.run("import matplotlib.pyplot as plt\nplt.plot([1, 4, 9, 16])\nplt.title('squares')\n"
              "plt.savefig('/mnt/data/chart.png')\nplt.show()")
    paths = [f["path"] for f in r.get("files", [])]
    ok = r["status"] == "ok" and "/mnt/data/chart.png" in paths and len(r["images"]) == 1
    for p in paths:
        with open(os.path.join(d, os.path.basename(p)), "rb") as f:
            ok = ok and f.read(8) == b"\x89PNG\r\n\x1a\n"
    check("matplotlib PNG via savefig and plt.show()", ok, short(r) + " images=%s" % r.get("images"))
    r = s.run("plt.bar(['a', 'b'], [1, 2])")   # left open: saved at the end of the cell
    check("figure left open is saved at end of execution", len(r.get("images", [])) == 1, short(r))

    # 5. network: a port the test listens on
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(5)
    lst.setblocking(False)
    port = lst.getsockname()[1]
    r = s.run("import socket\nprint(sorted(n for _, n in socket.if_nameindex()))\n"
              "try:\n    socket.create_connection(('127.0.0.1', %d), timeout=3)\n    print('CONNECTED')\n"
              "except OSError as e:\n    print('refused:', e)" % port)
    accepted = False
    try:
        lst.accept()
        accepted = True
    except BlockingIOError:
        pass
    lst.close()
    check("network: TCP to host 127.0.0.1 listener fails, nothing accepted",
          "CONNECTED" not in r["stdout"] and "refused" in r["stdout"] and not accepted
          and "['lo']" in r["stdout"], short(r))

    # 6. host files
    r = s.run("import os\nfor p in [%r, '/etc/shadow', '/etc/hostname', '/root', '/work', '/proc/1/root/etc/shadow']:\n"
              "    try:\n        open(p).read()\n        print('READ', p)\n"
              "    except OSError as e:\n        print('denied', p, type(e).__name__)\n"
              "print(sorted(os.listdir('/')))" % secret_path)
    check("host files: data dir file and /etc/shadow unreadable",
          "READ" not in r["stdout"] and r["stdout"].count("denied") == 6 and "host secret" not in json.dumps(r),
          short(r))

    # 7. environment
    r = s.run("import os\nprint(sorted(os.environ))\nfound = False\n"
              "for p in os.listdir('/proc'):\n    if p.isdigit():\n        try:\n"
              "            found = found or b'sk-fake' in open('/proc/%s/environ' % p, 'rb').read()\n"
              "        except PermissionError:\n            pass   # the supervisor is not dumpable\n"
              "print(found)")
    check("environment: no server keys (os.environ and every /proc/*/environ)",
          "FAKE_SECRET" not in r["stdout"] and "OPENAI" not in r["stdout"] and r["stdout"].endswith("False\n")
          and "sk-fake" not in json.dumps(r), short(r))

    # 8a. while True: pass -> soft timeout inside the kernel, session kept
    t0 = time.monotonic()
    r = s.run("while True:\n    pass", timeout=3)
    el = time.monotonic() - t0
    r2 = s.run("x")
    check("while True: pass -> timeout, state kept (soft, in-kernel)",
          r["status"] == "timeout" and el < 3 + GRACE and r2["stdout"] == "21\n" and host_fine(),
          "%.1fs %s / next: %s" % (el, short(r), r2.get("stdout")))

    # 8b. a loop that swallows the timeout and a C loop: the supervisor kills the worker at
    # timeout + KILL_GRACE and starts a fresh one (variables gone); the sandbox itself is kept
    for name, code in [("loop catching BaseException", "while True:\n    try:\n        while True:\n            y = 1\n"
                                                       "    except BaseException:\n        pass"),
                       ("uninterruptible C loop", "sum(range(10**13))")]:
        restarts = s.restarts
        t0 = time.monotonic()
        r = s.run(code, timeout=2)
        el = time.monotonic() - t0
        r2 = s.run("print('fresh', 'x' in globals())")
        check("%s -> worker killed at timeout+grace by the supervisor, fresh worker, host fine" % name,
              r["status"] == "timeout" and r.get("restarted") and s.restarts == restarts
              and "timed out after" in (r.get("error") or "")
              and r2["stdout"] == "fresh False\n" and el < 2 + KILL_GRACE + 1 and host_fine(),
              "%.1fs %s" % (el, r.get("error")))

    # 9. 10 GB allocation
    r = s.run("try:\n    b = bytearray(10 * 1024**3)\n    print('ALLOCATED')\nexcept MemoryError:\n    print('MemoryError')\n"
              "import numpy as np\ntry:\n    a = np.ones(10 * 1024**3 // 8)\n    print('ALLOCATED')\n"
              "except MemoryError as e:\n    print('MemoryError', e)")
    check("allocate 10 GB -> MemoryError", r["stdout"].count("MemoryError") == 2 and "ALLOCATED" not in r["stdout"],
          short(r))

    # 10. fork bomb (every process keeps forking; bounded loop)
    r = s.run("import os, time\nchild = False\nfailed = 0\nfor i in range(200):\n"
              "    try:\n        if os.fork() == 0:\n            child = True\n"
              "    except OSError:\n        failed += 1\n"
              "if child:\n    time.sleep(60)\n    os._exit(0)\n"
              "print('pids in sandbox:', len([p for p in os.listdir('/proc') if p.isdigit()]), 'failed forks:', failed > 0)")
    inside = sandbox_pids()
    ok = r["status"] == "ok" and "failed forks: True" in r["stdout"] and len(inside) <= LIMITS["nproc"] + 2
    s.kill()
    clean = wait_no_sandbox_pids()
    # the supervisor killed the bomb's processes before answering: only bwrap (2), supervisor, worker are left
    after = sandbox_pids()
    check("fork bomb bounded by nproc, its processes killed by the supervisor, host fine",
          ok and len(after) <= 4 and host_fine(), "%s; host saw %d sandbox pids during, %d after"
          % (r["stdout"].strip(), len(inside), len(after)))
    s.kill()
    clean = wait_no_sandbox_pids()
    check("killing bwrap ends the whole sandbox", clean)
    s.start()

    # 11. 10 GB to disk
    r = s.run("import os\nres = []\nfor path in ['/mnt/data/big.bin', '/tmp/big.bin']:\n"
              "    n = 0\n    try:\n        with open(path, 'wb') as f:\n"
              "            for i in range(10240):\n                f.write(b'\\0' * 1024 * 1024)\n                n += 1\n"
              "    except OSError as e:\n        res.append((path, n, e.strerror))\n"
              "print(res)\n"
              "n = 0\ntry:\n    for k in range(10):\n        with open('/tmp/f%d' % k, 'wb') as f:\n"
              "            for i in range(100):\n                f.write(b'\\0' * 1024 * 1024)\n                n += 1\n"
              "except OSError as e:\n    print('tmp total stopped at', n, 'MiB:', e.strerror)\n", timeout=60)
    big = os.path.join(d, "big.bin")
    size = os.path.getsize(big) if os.path.exists(big) else -1
    check("write 10 GB -> stopped by RLIMIT_FSIZE (per file) and tmpfs size (/tmp)",
          "File too large" in r["stdout"] and size <= LIMITS["fsize"] and "No space left" in r["stdout"]
          and r["status"] == "ok", "%s host file %d bytes" % (short(r), size))
    os.unlink(big)

    # 12. protocol robustness
    r = s.run("import os, sys\nprint('before')\nos.write(1, b'{\"id\": 999, \"status\": \"ok\"}\\n')\n"
              "try:\n    input()\nexcept EOFError:\n    print('stdin is empty')\nos.close(1)\nsys.stdout.close()\nprint('after')")
    r2 = s.run("print('still fine')")
    check("protocol survives user writes to fd 1, input(), closing fd 1",
          r["status"] == "ok" and "stdin is empty" in r["stdout"] and r2["stdout"] == "still fine\n",
          short(r) + " / " + short(r2))
    r = s.run("print('y' * 200000)")
    check("output capped at 64 KB with a note", len(r["stdout"]) < 70000 and "output truncated" in r["stdout"],
          r["stdout"][-60:])
    r = s.run("import ctypes\nctypes.CDLL(None).printf(b'from C printf\\n')\nNone")
    check("C-level stdout (printf) captured", "from C printf" in r["stdout"], short(r))
    s.run("z = 5")
    r = s.run("import sys\nsys.exit(3)")
    r2 = s.run("z")
    check("sys.exit() is an error, not the end of the session",
          r["status"] == "error" and "SystemExit" in r["error"] and r2["stdout"] == "5\n", short(r))
    restarts = s.restarts
    r = s.run("import os\nos._exit(7)")
    r2 = s.run("print(2)")
    check("os._exit() ends the worker; the supervisor reports it and starts a fresh one",
          r.get("exit") == {"code": 7} and r.get("restarted") and "status 7" in r.get("error", "")
          and r2["stdout"] == "2\n" and s.restarts == restarts, short(r))
    r = s.run("import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    r2 = s.run("print(3)")
    check("a killed worker is reported (signal 9) and replaced",
          r.get("exit") == {"signal": 9} and r.get("restarted") and r2["stdout"] == "3\n", short(r))
    r = s.run("def f():\n    return 1/0\nf()")
    check("traceback shows user frames only",
          r["status"] == "error" and "<cell-" in r["error"] and "kernel.py" not in r["error"]
          and "ZeroDivisionError" in r["error"], r.get("error"))
    r = s.run("import os\nos.symlink('/etc/passwd', '/mnt/data/link')\nos.mkfifo('/mnt/data/fifo')")
    check("symlinks/fifos made in /mnt/data are not reported as files",
          r["status"] == "ok" and r["files"] == [], short(r))

    hostile_checks(s, d, root)

    s.close()
    check("no sandbox process left after close", wait_no_sandbox_pids() and host_fine())
    with open(secret_path) as f:
        check("host data intact", f.read() == "host secret\n")


def hostile_checks(s, d, root):
    """Issue 11: forged protocol lines, the supervisor's descriptors, descriptor exhaustion."""
    # forged responses: to fd 1, to every /proc/*/fd/1 the code can open, from a child left behind,
    # for the next ids; the next execution still gets its own result
    forge = ('{"id": %d, "token": null, "status": "ok", "stdout": "FORGED\\n", "stderr": "", "error": null, '
             '"files": [], "images": []}')
    code = ("import os, glob\nlines = ''.join((%r %% i) + '\\n' for i in range(1, 400)).encode()\n"
            "os.write(1, lines)\nopened = []\n"
            "for p in glob.glob('/proc/*/fd/*'):\n"
            "    try:\n        fd = os.open(p, os.O_WRONLY | os.O_NONBLOCK)\n"
            "        os.write(fd, lines[:4096])\n        opened.append(p)\n    except OSError:\n        pass\n"
            "print('wrote to', len(opened))\n"
            "if os.fork() == 0:\n    import time\n    for fd in range(3, 64):\n"
            "        try:\n            os.write(fd, lines[:4096])\n        except OSError:\n            pass\n"
            "    time.sleep(30)\n    os._exit(0)\n") % forge
    r = s.run(code)
    r2 = s.run("print(6*7)")
    r3 = s.run("print(6*7)")
    check("forged protocol lines (fd 1, /proc/*/fd, a child) do not change later results",
          r2["status"] == "ok" and r2["stdout"] == "42\n" and r3["stdout"] == "42\n" and "FORGED" not in json.dumps([r2, r3]),
          short(r) + " / " + short(r2))
    # the supervisor is not dumpable: the worker (same uid) cannot reach its descriptors or memory
    r = s.run("import os\nsup = os.getppid()\nfor p in ['/proc/%d/mem' % sup, '/proc/%d/fd/1' % sup, '/proc/%d/fd/0' % sup]:\n"
              "    try:\n        open(p, 'rb').close()\n        print('OPENED', p)\n"
              "    except OSError as e:\n        print('denied', type(e).__name__)\n"
              "try:\n    os.listdir('/proc/%d/fd' % sup)\n    print('LISTED')\nexcept OSError:\n    print('denied list')")
    check("the supervisor's /proc/PID/mem and fds are out of the worker's reach",
          "OPENED" not in r["stdout"] and "LISTED" not in r["stdout"] and r["stdout"].count("denied") == 4, short(r))
    # descriptor exhaustion: the answer names the open-files limit, the session keeps working
    s.run("kept_var = 'still here'")
    r = s.run("files = []\nfor i in range(300):\n    files.append(open('/dev/null'))")
    r2 = s.run("print(len(files), kept_var)")
    r3 = s.run("for f in files:\n    f.close()\nfiles = []\nprint(len(open('/dev/null').read()))")
    check("300 open files -> error naming the open-files limit; the session and variables are kept",
          r["status"] == "error" and "open-files limit of %d" % LIMITS["nofile"] in (r.get("error") or "")
          and "memory" not in (r.get("error") or "").lower()
          and r2["stdout"] == "%d still here\n" % (LIMITS["nofile"] - 3 - 4 - 1) or (
              r2["stdout"].endswith(" still here\n") and r2["status"] == "error")
          and r3["stdout"] == "0\n",
          short(r) + " / " + short(r2) + " / " + short(r3))
    # a symlink to a host directory in /mnt/data is never listed, nor anything under it
    outside = tempfile.mkdtemp(prefix="outside-", dir=root)
    os.chmod(outside, 0o755)
    with open(os.path.join(outside, "host.txt"), "w") as f:
        f.write("host")
    r = s.run("import os\nos.symlink(%r, '/mnt/data/hostdir')\nos.makedirs('/mnt/data/sub', exist_ok=True)\n"
              "open('/mnt/data/sub/inner.txt', 'w').write('x')" % outside)
    paths = [f["path"] for f in r.get("files", [])]
    check("files lists regular files in subfolders, never through symlinks",
          paths == ["/mnt/data/sub/inner.txt"], short(r))
    os.unlink(os.path.join(d, "hostdir"))


def cgroup_check(root):
    """With a cgroup v1 memory + pids hierarchy (this machine), the server's launch: a root shell
    moves itself into the cgroup, then the argv; forked children together stay within the budget."""
    mem_root, pids_root = "/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids"
    if not (os.path.exists(mem_root + "/memory.limit_in_bytes") and os.path.exists(pids_root + "/cgroup.procs")):
        print("SKIP cgroup check: no cgroup v1 memory and pids hierarchies")
        return
    name = "sandbox-check-%d" % os.getpid()
    mem, pids = os.path.join(mem_root, name), os.path.join(pids_root, name)
    budget = 256 * 1024 ** 2
    try:
        os.mkdir(mem)
        os.mkdir(pids)
        with open(mem + "/memory.limit_in_bytes", "w") as f:
            f.write(str(budget))
        if os.path.exists(mem + "/memory.memsw.limit_in_bytes"):
            with open(mem + "/memory.memsw.limit_in_bytes", "w") as f:
                f.write(str(budget))
        with open(pids + "/pids.max", "w") as f:
            f.write("68")
    except OSError as e:
        print("SKIP cgroup check: %s" % e)
        return
    prefix = ["/bin/sh", "-c", "echo $$ > '%s/cgroup.procs' && echo $$ > '%s/cgroup.procs' && exec \"$@\"" % (mem, pids), "sh"]
    try:
        s = Session(new_session_dir(root), prefix=prefix)
        r = s.run("import os, time\npids = []\nfor i in range(4):\n    pid = os.fork()\n    if pid == 0:\n"
                  "        b = bytearray(120 * 1024 * 1024)\n        time.sleep(2)\n        os._exit(0)\n    pids.append(pid)\n"
                  "print([os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids])")
        with open(mem + "/memory.oom_control") as f:
            oom = dict(line.split() for line in f.read().splitlines())
        with open(mem + "/memory.max_usage_in_bytes") as f:
            peak = int(f.read())
        r2 = s.run("print('after')")
        check("cgroup v1: 4 x 120 MiB children under a 256 MiB budget -> OOM kills, peak within the budget, session kept",
              "-9" in r["stdout"] and int(oom.get("oom_kill", 0)) > 0 and peak <= budget and r2["stdout"] == "after\n",
              "%s oom_kill=%s peak=%d MiB" % (r["stdout"].strip(), oom.get("oom_kill"), peak // 1024 ** 2))
        s.close()
    finally:
        for d in (mem, pids):
            for _ in range(100):
                try:
                    os.rmdir(d)
                    break
                except OSError:
                    time.sleep(0.05)


def userns_available():
    r = subprocess.run(["/usr/bin/env", "-i", "/usr/bin/setpriv", "--reuid=65534", "--regid=65534",
                        "--clear-groups", "/usr/bin/bwrap", "--unshare-user", "--ro-bind", "/", "/",
                        "/bin/true"], capture_output=True, timeout=10)
    return r.returncode == 0, r.stderr.decode(errors="replace").strip()


def main():
    if os.geteuid() != 0:
        sys.exit("run as root (the server runs as root; setpriv drops to uid 65534)")
    ok, err = userns_available()
    check("user namespaces available to uid 65534 (bwrap --unshare-user)", ok, err)
    if not ok:
        sys.exit(1)
    root = tempfile.mkdtemp(prefix="sandbox-check-")
    os.chmod(root, 0o711)     # the sandbox uid must be able to traverse to its session dir
    try:
        timings(root)
        if "--timings-only" not in sys.argv:
            checks(root)
            cgroup_check(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    passed = sum(RESULTS)
    failed = len(RESULTS) - passed
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
