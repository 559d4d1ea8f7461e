"""Long-lived Python interpreter for the code_interpreter sandbox.

Runs INSIDE bubblewrap (see bwrap-command.md), one sandbox per session, as two
processes:

  supervisor  holds the protocol (the sandbox's stdin/stdout); never runs user
              code; not dumpable (prctl PR_SET_DUMPABLE 0), so code running as
              the same uid can neither ptrace it nor read its /proc/PID/fd or mem.
  worker      forked by the supervisor; runs the user code in one persistent
              namespace (the __main__ module), like notebook cells. It holds only
              its own request/reply pipes to the supervisor, never the protocol.

Protocol (supervisor <-> server): one JSON object per line.
  On start:            {"event": "ready", "pid": ..., "python": "3.11.2"}
  Request (stdin):     {"id": 1, "token": "<random>", "code": "print(1)", "timeout": 30}
      "timeout" is optional (seconds, soft, default 30). "token" is echoed back:
      the server sends a fresh random one with every request and accepts only
      the response carrying it.
  Response (stdout):   {"id": 1, "token": "<random>", "status": "ok"|"error"|"timeout",
                        "stdout": "...", "stderr": "...",
                        "error": "Traceback ..." | null,
                        "files": [{"path": "/mnt/data/x.png", "size": 123}, ...],
                        "images": ["/mnt/data/figure_1.png", ...],
                        "duration_ms": 1.2, "restarted": false, "exit": null}
      "restarted": true when the worker died or was killed during this execution
      (a fresh worker, without the variables, runs the next one); "exit" then
      says how it ended: {"signal": 9} or {"code": 7}.
  A request line that is not a JSON object gets {"id": null, "status": "error", ...}.
  End of stdin: the kernel exits 0.

Each execution: the supervisor drains and discards whatever the worker wrote
since the last one, scans /mnt/data, sends the worker the code with a fresh
nonce, accepts only the reply carrying that nonce (or the worker's death, or
kills it at timeout + KILL_GRACE), kills every other process left in the
sandbox, reads the captured output itself and computes the /mnt/data diff itself
(no symlinks followed).

Needs only the standard library; works as a file (python3 /opt/kernel.py)
or as text (python3 -c "$(cat kernel.py)").
"""

import ast
import builtins
import errno
import json
import os
import resource
import select
import signal
import sys
import time
import traceback
import types

DATA_DIR = "/mnt/data"
MAX_OUTPUT = 64 * 1024          # bytes kept per stream (stdout, stderr)
MAX_ERROR = 16 * 1024           # bytes kept of the traceback text
MAX_SCAN = 10000                # entries looked at when diffing /mnt/data
MAX_IMAGES = 100                # figures reported per execution
MAX_LINE = 8 * 1024 * 1024      # longest line the supervisor buffers from the worker
DEFAULT_TIMEOUT = 30.0          # soft timeout (s) when the request has none
KILL_GRACE = 1.5                # the supervisor kills the worker this long after the soft timeout
CPU_SLACK = 5                   # extra CPU seconds on top of the timeout
PR_SET_DUMPABLE = 4


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _line(obj):
    return (json.dumps(obj, ensure_ascii=True) + "\n").encode("ascii")


def _set_dumpable(value):
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, value, 0, 0, 0)
        return True
    except Exception:
        return False


def _nofile_limit():
    try:
        return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ValueError, OSError):
        return -1


# ================================================================= worker (runs user code)

class ExecutionTimeout(BaseException):
    """Raised in user code by SIGALRM; a BaseException so `except Exception` won't eat it."""


class _State:
    running = False
    cell = 0
    figure_counter = 0
    images = []


_state = _State()


def _on_alarm(signum, frame):
    if _state.running:
        raise ExecutionTimeout()


class _CappedWriter:
    """A text stream writing to a fixed fd, which stops writing after a cap."""

    def __init__(self, fd, cap, name):
        self._fd = fd
        self._cap = cap
        self.written = 0
        self.dropped = 0
        self.name = name
        self.encoding = "utf-8"
        self.errors = "backslashreplace"

    def write(self, s):
        if not isinstance(s, str):
            raise TypeError("write() argument must be str, not %s" % type(s).__name__)
        b = s.encode("utf-8", "backslashreplace")
        room = self._cap + 1 - self.written   # one byte over so the reader sees truncation
        if room > 0:
            chunk = b[:room]
            try:
                os.write(self._fd, chunk)
            except OSError:
                pass
            self.written += len(chunk)
            self.dropped += len(b) - len(chunk)
        else:
            self.dropped += len(b)
        return len(s)

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        pass

    def isatty(self):
        return False

    def fileno(self):
        return self._fd

    def readable(self):
        return False

    def writable(self):
        return True

    def seekable(self):
        return False

    @property
    def closed(self):
        return False

    def close(self):
        pass


_libc = []


def _flush_c_stdio():
    # C-level stdio buffers (printf from a C extension via ctypes) are only reachable through libc.
    try:
        if not _libc:
            import ctypes
            _libc.append(ctypes.CDLL(None))
        _libc[0].fflush(None)
    except Exception:
        pass


def _next_figure_path():
    while True:
        _state.figure_counter += 1
        path = os.path.join(DATA_DIR, "figure_%d.png" % _state.figure_counter)
        if not os.path.lexists(path):
            return path


def _save_open_figures(plt):
    saved = []
    for num in list(plt.get_fignums()):
        fig = plt.figure(num)
        path = _next_figure_path()
        fig.savefig(path, format="png")
        saved.append(path)
    plt.close("all")
    _state.images.extend(saved)
    return saved


def _patch_pyplot(plt):
    def show(*args, **kwargs):
        """Sandbox replacement: save every open figure to /mnt/data as PNG."""
        _save_open_figures(plt)
    show.__module__ = "matplotlib.pyplot"
    plt.show = show


class _PyplotHook:
    """meta_path finder that patches matplotlib.pyplot.show right after its first import."""

    def find_spec(self, name, path=None, target=None):
        if name != "matplotlib.pyplot":
            return None
        import importlib.util
        try:
            sys.meta_path.remove(self)
        except ValueError:
            pass
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        original = spec.loader.exec_module

        def exec_module(module):
            original(module)
            _patch_pyplot(module)

        spec.loader.exec_module = exec_module
        return spec

    def invalidate_caches(self):
        pass


def _flush_figures():
    """Like Jupyter's inline backend: figures still open at the end of a cell are saved."""
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return
    try:
        if plt.get_fignums():
            _save_open_figures(plt)
    except Exception as exc:  # never let a broken figure kill the worker
        sys.stderr.write("[could not save figure: %r]\n" % (exc,))


def _format_exception(exc):
    tb = exc.__traceback__
    # Drop the kernel's own frames: start at the first frame of a user cell.
    while tb is not None and not tb.tb_frame.f_code.co_filename.startswith("<cell-"):
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    if len(text) > MAX_ERROR:
        text = text[:MAX_ERROR // 2] + "\n[... traceback truncated ...]\n" + text[-MAX_ERROR // 2:]
    return text


def _run_cell(code, namespace, filename):
    import linecache
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    tree = ast.parse(code, filename, "exec")
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = ast.Expression(tree.body.pop().value)
    if tree.body:
        exec(compile(tree, filename, "exec"), namespace)
    if last is not None:
        value = eval(compile(last, filename, "eval"), namespace)
        if value is not None:
            namespace["_"] = value
            print(repr(value))


def _set_cpu_soft_limit(timeout):
    """RLIMIT_CPU counts the whole life of this process: move the soft limit
    to (CPU used so far + this execution's budget), under the hard limit."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
        if hard == resource.RLIM_INFINITY and soft == resource.RLIM_INFINITY:
            return
        ru = resource.getrusage(resource.RUSAGE_SELF)
        want = int(ru.ru_utime + ru.ru_stime) + int(timeout) + CPU_SLACK
        if hard != resource.RLIM_INFINITY:
            want = min(want, hard)
        resource.setrlimit(resource.RLIMIT_CPU, (want, hard))
    except (ValueError, OSError):
        pass


def _reap_children():
    """Children the last execution left (the supervisor killed them) are zombies until reaped."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _descriptors_exhausted(probe_fd):
    try:
        os.close(os.dup(probe_fd))
        return False
    except OSError as exc:
        return exc.errno == errno.EMFILE


def _open_files_message():
    return ("The Python session reached its open-files limit of %d (RLIMIT_NOFILE): close the files "
            "it keeps open (or del the objects holding them); the session and its variables were kept."
            % _nofile_limit())


def _worker_execute(request, namespace, out_fd, err_fd, devnull, reply_fd):
    _state.cell += 1
    code = request.get("code")
    timeout = request.get("timeout") or DEFAULT_TIMEOUT
    filename = "<cell-%d>" % _state.cell
    reply = {"nonce": request.get("nonce"), "status": "ok", "error": None, "images": [],
             "dropped": [0, 0], "duration_ms": 0.0}
    if not isinstance(code, str):
        reply.update(status="error", error="request has no string field 'code'")
        return reply
    _reap_children()
    try:
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
    except OSError:
        os._exit(70)   # user code closed the capture files: the supervisor starts a fresh worker
    out_w = _CappedWriter(1, MAX_OUTPUT, "<stdout>")
    err_w = _CappedWriter(2, MAX_OUTPUT, "<stderr>")
    sys.stdout = sys.__stdout__ = out_w
    sys.stderr = sys.__stderr__ = err_w
    _state.images = []
    _set_cpu_soft_limit(timeout)

    start = time.perf_counter()
    emfile = False
    try:
        try:
            _state.running = True
            signal.setitimer(signal.ITIMER_REAL, float(timeout))
            _run_cell(code, namespace, filename)
        finally:
            _state.running = False
            signal.setitimer(signal.ITIMER_REAL, 0)
    except ExecutionTimeout:
        reply["status"] = "timeout"
        reply["error"] = "execution timed out after %g s" % float(timeout)
    except BaseException as exc:   # includes SystemExit and KeyboardInterrupt
        reply["status"] = "error"
        reply["error"] = _format_exception(exc)
        emfile = isinstance(exc, OSError) and exc.errno == errno.EMFILE
    _flush_figures()
    _flush_c_stdio()
    reply["duration_ms"] = round((time.perf_counter() - start) * 1000.0, 3)
    for fd in (1, 2):
        try:
            os.dup2(devnull, fd)
        except OSError:
            pass
    if emfile or _descriptors_exhausted(reply_fd):
        if reply["status"] == "ok":
            reply["status"] = "error"
        reply["error"] = (reply["error"] + "\n" if reply["error"] else "") + _open_files_message()
    reply["images"] = list(_state.images)[:MAX_IMAGES]
    reply["dropped"] = [out_w.dropped, err_w.dropped]
    return reply


def _close_all_but(keep):
    limit = _nofile_limit()
    if limit < 0 or limit > 65536:
        limit = 65536
    low = 3
    for fd in sorted(k for k in keep if k >= 3) + [limit]:
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1


def _drain(fd):
    """Discards whatever is waiting in a pipe (the fd is switched to non-blocking for the read)."""
    try:
        os.set_blocking(fd, False)
        while os.read(fd, 1 << 16):
            pass
    except OSError:
        pass
    finally:
        try:
            os.set_blocking(fd, True)
        except OSError:
            pass


def _worker_main(req_fd, reply_fd, out_fd, err_fd, expected):
    """The worker: reads {"nonce", "next", "code", "timeout"} lines and runs only the request carrying
    the nonce the supervisor promised (at fork, then in each request's "next"); answers with it.
    Lines user code pushed into the request pipe (e.g. by reopening /proc/self/fd/N) are ignored."""
    _set_dumpable(1)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    signal.signal(signal.SIGALRM, _on_alarm)
    # A file over RLIMIT_FSIZE then fails with EFBIG instead of killing the worker.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    sys.meta_path.insert(0, _PyplotHook())
    main_module = types.ModuleType("__main__")
    main_module.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = main_module
    namespace = main_module.__dict__
    try:
        os.chdir(DATA_DIR)
    except OSError:
        pass
    _write_all(reply_fd, _line({"event": "worker-ready"}))
    buf = b""
    while True:
        while b"\n" not in buf:
            chunk = os.read(req_fd, 1 << 16)
            if not chunk:
                os._exit(0)
            buf += chunk
        line, buf = buf.split(b"\n", 1)
        try:
            request = json.loads(line)
        except ValueError:
            continue
        if not isinstance(request, dict) or request.get("nonce") != expected:
            continue
        expected = request.get("next")
        main_pid = os.getpid()
        reply = _worker_execute(request, namespace, out_fd, err_fd, devnull, reply_fd)
        if os.getpid() != main_pid:
            os._exit(0)   # a process the user's code forked must not answer
        _drain(req_fd)
        buf = b""
        try:
            # the leading newline ends any partial line user code pushed into the reply pipe
            _write_all(reply_fd, b"\n" + _line(reply))
        except OSError:
            os._exit(71)


# ================================================================= supervisor (holds the protocol)

def _new_capture_file():
    """An unlinked temporary file in /tmp, append-only so the supervisor can truncate it."""
    try:
        return os.open("/tmp", os.O_TMPFILE | os.O_RDWR | os.O_APPEND, 0o600)
    except (AttributeError, OSError):
        import tempfile
        fd, path = tempfile.mkstemp()
        os.unlink(path)
        return fd


def _read_capture(fd, dropped):
    try:
        size = os.fstat(fd).st_size
        data = os.pread(fd, MAX_OUTPUT, 0)
    except OSError:
        return ""
    text = data.decode("utf-8", "replace")
    extra = max(0, size - MAX_OUTPUT) + max(0, dropped)
    if extra:
        text += "\n[output truncated: %d more bytes]" % extra
    return text


def _scan(root=DATA_DIR):
    """Map path -> (size, mtime_ns, inode) of regular files under root (no symlinks followed)."""
    result = {}
    stack = [root]
    seen = 0
    while stack and seen < MAX_SCAN:
        d = stack.pop()
        try:
            with os.scandir(d) as it:
                for e in it:
                    seen += 1
                    if seen > MAX_SCAN:
                        break
                    try:
                        if e.is_dir(follow_symlinks=False):
                            stack.append(e.path)
                        elif e.is_file(follow_symlinks=False):
                            st = e.stat(follow_symlinks=False)
                            result[e.path] = (st.st_size, st.st_mtime_ns, st.st_ino)
                    except OSError:
                        pass
        except OSError:
            pass
    return result


def _changed(before, after):
    return [{"path": p, "size": v[0]} for p, v in sorted(after.items()) if before.get(p) != v]


def _end_strays(keep):
    """Kills every process in the sandbox's PID namespace but bwrap's init (1), the supervisor
    and `keep` (the worker): what the execution left running, a fork bomb, daemons."""
    me = os.getpid()
    for _ in range(200):
        others = []
        try:
            names = os.listdir("/proc")
        except OSError:
            return
        for name in names:
            if not name.isdigit():
                continue
            pid = int(name)
            if pid == 1 or pid == me or pid in keep:
                continue
            try:
                with open("/proc/%d/stat" % pid, "rb") as f:
                    state = f.read().rsplit(b")", 1)[1].split()[0]
            except (OSError, IndexError):
                continue
            if state == b"Z":
                continue      # already dead; its parent (the worker or init) reaps it
            others.append(pid)
        if not others:
            return
        for pid in others:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.002)


class _Worker:
    """The supervisor's handle on one worker process and its pipes."""

    def __init__(self):
        self.out_fd = _new_capture_file()
        self.err_fd = _new_capture_file()
        req_r, self.req_w = os.pipe()
        self.reply_r, reply_w = os.pipe()
        self.next_nonce = os.urandom(16).hex()
        pid = os.fork()
        if pid == 0:
            try:
                _close_all_but({req_r, reply_w, self.out_fd, self.err_fd})
                _worker_main(req_r, reply_w, self.out_fd, self.err_fd, self.next_nonce)
            finally:
                os._exit(0)
        self.pid = pid
        os.close(req_r)
        os.close(reply_w)
        os.set_blocking(self.reply_r, False)
        self.buf = b""
        self.pidfd = None
        try:
            self.pidfd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            pass
        self.status = None
        ready = self.read_until(lambda m: m.get("event") == "worker-ready", time.monotonic() + 15.0)
        if ready is None:
            self.kill()
            raise RuntimeError("the worker did not start")

    def alive(self):
        if self.status is not None:
            return False
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            self.status = 0
            return False
        if pid == 0:
            return True
        self.status = status
        return False

    def wait_exit(self, seconds):
        """After EOF on the reply pipe: the worker is usually exiting; wait for it briefly."""
        end = time.monotonic() + seconds
        while self.alive() and time.monotonic() < end:
            time.sleep(0.005)

    def kill(self):
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                _, self.status = os.waitpid(self.pid, 0)
            except ChildProcessError:
                self.status = -1
        for fd in (self.req_w, self.reply_r, self.out_fd, self.err_fd, self.pidfd):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self.pidfd = None

    def drain(self):
        """Discards everything the worker (or its threads and children) wrote between executions."""
        self.buf = b""
        while True:
            try:
                if not os.read(self.reply_r, 1 << 16):
                    return
            except BlockingIOError:
                return
            except OSError:
                return

    def send(self, code, timeout):
        """Sends one request; returns its nonce. The leading newline ends any partial line that
        user code pushed into the pipe."""
        nonce, self.next_nonce = self.next_nonce, os.urandom(16).hex()
        _write_all(self.req_w, b"\n" + _line({"nonce": nonce, "next": self.next_nonce, "code": code,
                                              "timeout": timeout}))
        return nonce

    def read_until(self, accept, deadline):
        """The first JSON line `accept` takes; None at the deadline or when the worker is gone."""
        while True:
            while b"\n" in self.buf:
                line, self.buf = self.buf.split(b"\n", 1)
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if isinstance(message, dict) and accept(message):
                    return message
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            watch = [self.reply_r] + ([self.pidfd] if self.pidfd is not None else [])
            try:
                ready, _, _ = select.select(watch, [], [], min(left, 0.1 if self.pidfd is None else left))
            except InterruptedError:
                continue
            if self.reply_r in ready:
                try:
                    chunk = os.read(self.reply_r, 1 << 16)
                except BlockingIOError:
                    chunk = None
                if chunk == b"":
                    self.wait_exit(0.5)
                    return None
                if chunk:
                    self.buf += chunk
                    if len(self.buf) > MAX_LINE and b"\n" not in self.buf:
                        self.buf = b""
                    continue
            if not self.alive():
                # read what it wrote before it ended
                try:
                    while True:
                        chunk = os.read(self.reply_r, 1 << 16)
                        if not chunk:
                            break
                        self.buf += chunk
                except OSError:
                    pass
                if b"\n" in self.buf:
                    continue
                return None


_SIGNAL_NOTES = {
    signal.SIGKILL: "it was killed (SIGKILL)",
    signal.SIGXCPU: "it used up its CPU time limit (SIGXCPU)",
    signal.SIGSEGV: "it crashed (SIGSEGV)",
    signal.SIGABRT: "it aborted (SIGABRT)",
    signal.SIGBUS: "it crashed (SIGBUS)",
}


def _death(status):
    """({"signal": N} or {"code": N}, human text) for a worker's wait status."""
    if status is None or status < 0:
        return {"code": -1}, "it ended"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return {"signal": sig}, _SIGNAL_NOTES.get(sig, "it was killed by signal %d" % sig)
    code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1
    return {"code": code}, "it exited with status %d" % code


class Supervisor:
    """Holds the protocol descriptors; runs each request on the worker; never runs user code."""

    def __init__(self):
        self.worker = None

    def ensure_worker(self):
        if self.worker is not None and self.worker.alive():
            return
        if self.worker is not None:
            self.worker.kill()
        self.worker = None
        _end_strays(())
        self.worker = _Worker()

    def execute(self, request):
        response = {"status": "ok", "stdout": "", "stderr": "", "error": None, "files": [],
                    "images": [], "duration_ms": 0.0, "restarted": False, "exit": None}
        code = request.get("code")
        if not isinstance(code, str):
            response.update(status="error", error="request has no string field 'code'")
            return response
        timeout = request.get("timeout")
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not 0 < timeout <= 86400:
            timeout = DEFAULT_TIMEOUT
        try:
            self.ensure_worker()
        except (OSError, RuntimeError) as exc:
            response.update(status="error", restarted=True,
                            error="The Python session could not start its interpreter (%s); try again." % exc)
            return response
        worker = self.worker
        worker.drain()
        for fd in (worker.out_fd, worker.err_fd):
            try:
                os.ftruncate(fd, 0)
            except OSError:
                pass
        before = _scan()
        start = time.perf_counter()
        reply = None
        deadline = time.monotonic() + float(timeout) + KILL_GRACE
        try:
            nonce = worker.send(code, timeout)
            reply = worker.read_until(lambda m: m.get("nonce") == nonce, deadline)
        except OSError:
            reply = None
        dropped = [0, 0]
        if reply is not None:
            status = reply.get("status")
            response["status"] = status if status in ("ok", "error", "timeout") else "error"
            error = reply.get("error")
            response["error"] = error[:2 * MAX_ERROR] if isinstance(error, str) else None
            images = reply.get("images")
            if isinstance(images, list):
                response["images"] = [p for p in images if isinstance(p, str)][:MAX_IMAGES]
            d = reply.get("dropped")
            if isinstance(d, list) and len(d) == 2 and all(isinstance(x, int) for x in d):
                dropped = d
            duration = reply.get("duration_ms")
            response["duration_ms"] = duration if isinstance(duration, (int, float)) else 0.0
            _end_strays((worker.pid,))
        else:
            hung = worker.alive()
            timed_out = hung and time.monotonic() >= deadline
            worker_status = None
            if hung:
                os.kill(worker.pid, signal.SIGKILL)
            _end_strays(())
            if not worker.alive():
                worker_status = worker.status
            response["restarted"] = True
            response["duration_ms"] = round((time.perf_counter() - start) * 1000.0, 3)
            if timed_out:
                response["status"] = "timeout"
                response["exit"] = {"signal": int(signal.SIGKILL)}
                response["error"] = ("Execution timed out after %g s and was stopped; the Python session was "
                                     "restarted, so its variables are gone." % float(timeout))
            elif hung:
                response["status"] = "error"
                response["error"] = ("The Python session closed its channel to the sandbox supervisor and was "
                                     "stopped; it was restarted, so its variables are gone.")
            else:
                exit_info, how = _death(worker_status)
                response["status"] = "error"
                response["exit"] = exit_info
                response["error"] = ("The Python session ended unexpectedly: %s. It was restarted, so its "
                                     "variables are gone." % how)
        response["stdout"] = _read_capture(worker.out_fd, dropped[0])
        response["stderr"] = _read_capture(worker.err_fd, dropped[1])
        if response["restarted"]:
            worker.kill()
            self.worker = None
        response["files"] = _changed(before, _scan())
        return response


def _setup_fds():
    """Keeps private copies of stdin/stdout for the protocol, points fds 0-2 at /dev/null."""
    proto_in = os.dup(0)      # os.dup: non-inheritable (O_CLOEXEC)
    proto_out = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)
    return proto_in, proto_out


def _raise_own_cpu_limit():
    try:
        _, hard = resource.getrlimit(resource.RLIMIT_CPU)
        resource.setrlimit(resource.RLIMIT_CPU, (hard, hard))
    except (ValueError, OSError):
        pass


def main():
    # The server's thread may have blocked signals; the worker's own timeouts need SIGALRM and SIGXCPU.
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    # Not dumpable: the worker (same uid) can't ptrace us or open /proc/<us>/fd, mem, environ.
    _set_dumpable(0)
    _raise_own_cpu_limit()
    proto_in, proto_out = _setup_fds()
    try:
        os.chdir(DATA_DIR)
    except OSError:
        pass
    supervisor = Supervisor()
    try:
        supervisor.ensure_worker()
    except (OSError, RuntimeError):
        pass
    _write_all(proto_out, _line({"event": "ready", "pid": os.getpid(),
                                 "python": "%d.%d.%d" % sys.version_info[:3]}))
    buf = b""
    while True:
        while b"\n" not in buf:
            chunk = os.read(proto_in, 1 << 16)
            if not chunk:
                if supervisor.worker is not None:
                    supervisor.worker.kill()
                return
            buf += chunk
        line, buf = buf.split(b"\n", 1)
        line = line.strip()
        if not line:
            continue
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("request is not an object")
        except ValueError as exc:
            _write_all(proto_out, _line({"id": None, "token": None, "status": "error", "stdout": "", "stderr": "",
                                         "error": "bad request: %s" % exc, "files": [], "images": [],
                                         "duration_ms": 0.0, "restarted": False, "exit": None}))
            continue
        response = supervisor.execute(request)
        token = request.get("token")
        response["id"] = request.get("id")
        response["token"] = token if isinstance(token, str) else None
        _write_all(proto_out, _line(response))


if __name__ == "__main__":
    main()
