"""Long-lived Python interpreter for the code_interpreter sandbox.

Runs INSIDE bubblewrap (see bwrap-command.md), one process per session.

Protocol: one JSON object per line.
  On start the kernel writes   {"event": "ready", "pid": ..., "python": "3.11.2"}
  Request (stdin):             {"id": 1, "code": "print(1)", "timeout": 30}
      "timeout" is optional (seconds, soft, default 30; the server enforces
      the hard wall-clock limit from outside regardless).
  Response (stdout):           {"id": 1, "status": "ok"|"error"|"timeout",
                                "stdout": "...", "stderr": "...",
                                "error": "Traceback ..." | null,
                                "files": [{"path": "/mnt/data/x.png", "size": 123}, ...],
                                "images": ["/mnt/data/figure_1.png", ...],
                                "duration_ms": 1.2}
  A request line that is not valid JSON gets {"id": null, "status": "error", ...}.
  End of stdin: the kernel exits 0.

User code runs in one persistent namespace (the __main__ module) like a
notebook cell; if the last statement is an expression its repr is printed.
The protocol uses private duplicates of the original fds 0 and 1; during
user code fd 0 is /dev/null and fds 1/2 are capture files, so user code
cannot read requests or write raw protocol lines by accident.

Needs only the standard library; works as a file (python3 /opt/kernel.py)
or as text (python3 -c "$(cat kernel.py)").
"""

import ast
import builtins
import json
import os
import resource
import signal
import sys
import time
import traceback
import types

DATA_DIR = "/mnt/data"
MAX_OUTPUT = 64 * 1024          # bytes kept per stream (stdout, stderr)
MAX_ERROR = 16 * 1024           # bytes kept of the traceback text
MAX_SCAN = 10000                # entries looked at when diffing /mnt/data
DEFAULT_TIMEOUT = 30.0          # soft timeout (s) when the request has none
CPU_SLACK = 5                   # extra CPU seconds on top of the timeout


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


# ---------------------------------------------------------------- protocol fds

def _setup_fds():
    """Keep private copies of stdin/stdout for the protocol, neuter fds 0-2."""
    proto_in = os.dup(0)      # os.dup: non-inheritable (O_CLOEXEC)
    proto_out = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    os.close(devnull)
    return os.fdopen(proto_in, "rb"), proto_out


def _send(proto_out, obj):
    data = (json.dumps(obj, ensure_ascii=True) + "\n").encode("ascii")
    view = memoryview(data)
    while view:
        n = os.write(proto_out, view)
        view = view[n:]


# ---------------------------------------------------------------- output capture

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


def _new_capture_file():
    """An unlinked temporary file in /tmp (falls back to the data dir's parent tmp)."""
    try:
        return os.open("/tmp", os.O_TMPFILE | os.O_RDWR, 0o600)
    except (AttributeError, OSError):
        import tempfile
        fd, path = tempfile.mkstemp()
        os.unlink(path)
        return fd


def _read_capture(fd, writer):
    try:
        size = os.fstat(fd).st_size
        data = os.pread(fd, MAX_OUTPUT, 0)
    except OSError:
        return ""
    text = data.decode("utf-8", "replace")
    extra = max(0, size - MAX_OUTPUT) + writer.dropped
    if extra:
        text += "\n[output truncated: %d more bytes]" % extra
    return text


def _flush_c_stdio():
    # C-level stdio buffers (printf from a C extension via ctypes) are only
    # reachable through libc; only pay for ctypes if user code imported it.
    if "ctypes" in sys.modules:
        try:
            import ctypes
            ctypes.CDLL(None).fflush(None)
        except Exception:
            pass


# ---------------------------------------------------------------- /mnt/data diff

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


# ---------------------------------------------------------------- matplotlib

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
    except Exception as exc:  # never let a broken figure kill the kernel
        sys.stderr.write("[could not save figure: %r]\n" % (exc,))


# ---------------------------------------------------------------- execution

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


def execute(request, namespace):
    _state.cell += 1
    code = request.get("code")
    timeout = request.get("timeout") or DEFAULT_TIMEOUT
    filename = "<cell-%d>" % _state.cell
    response = {"id": request.get("id"), "status": "ok", "stdout": "", "stderr": "",
                "error": None, "files": [], "images": [], "duration_ms": 0.0}
    if not isinstance(code, str):
        response.update(status="error", error="request has no string field 'code'")
        return response

    before = _scan()
    out_fd, err_fd = _new_capture_file(), _new_capture_file()
    os.dup2(out_fd, 1)
    os.dup2(err_fd, 2)
    out_w = _CappedWriter(1, MAX_OUTPUT, "<stdout>")
    err_w = _CappedWriter(2, MAX_OUTPUT, "<stderr>")
    sys.stdout = sys.__stdout__ = out_w
    sys.stderr = sys.__stderr__ = err_w
    _state.images = []
    _set_cpu_soft_limit(timeout)

    start = time.perf_counter()
    try:
        try:
            _state.running = True
            signal.setitimer(signal.ITIMER_REAL, float(timeout))
            _run_cell(code, namespace, filename)
        finally:
            _state.running = False
            signal.setitimer(signal.ITIMER_REAL, 0)
    except ExecutionTimeout:
        response["status"] = "timeout"
        response["error"] = "execution timed out after %g s" % float(timeout)
    except BaseException as exc:   # includes SystemExit and KeyboardInterrupt
        response["status"] = "error"
        response["error"] = _format_exception(exc)
    _flush_figures()
    _flush_c_stdio()
    response["duration_ms"] = round((time.perf_counter() - start) * 1000.0, 3)

    response["stdout"] = _read_capture(out_fd, out_w)
    response["stderr"] = _read_capture(err_fd, err_w)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (1, 2):
        try:
            os.dup2(devnull, fd)
        except OSError:
            pass
    for fd in (devnull, out_fd, err_fd):
        try:
            os.close(fd)
        except OSError:
            pass
    response["files"] = _changed(before, _scan())
    response["images"] = list(_state.images)
    return response


def _end_strays():
    """Kills whatever the execution left running (a fork bomb, background processes): in the
    sandbox's own PID namespace, kill(-1) reaches every process but the namespace's init and us."""
    try:
        os.kill(-1, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            time.sleep(0.01)
            continue


def main():
    # The server's thread may have blocked signals; the kernel's own timeouts need SIGALRM and SIGXCPU.
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    main_pid = os.getpid()
    proto_in, proto_out = _setup_fds()
    signal.signal(signal.SIGALRM, _on_alarm)
    # A file over RLIMIT_FSIZE then fails with EFBIG instead of killing the kernel.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    sys.meta_path.insert(0, _PyplotHook())

    main_module = types.ModuleType("__main__")
    main_module.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = main_module
    namespace = main_module.__dict__
    try:
        os.chdir(DATA_DIR)
    except OSError:
        pass

    _send(proto_out, {"event": "ready", "pid": os.getpid(),
                      "python": "%d.%d.%d" % sys.version_info[:3]})
    for line in proto_in:
        line = line.strip()
        if not line:
            continue
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise ValueError("request is not an object")
        except ValueError as exc:
            _send(proto_out, {"id": None, "status": "error", "stdout": "", "stderr": "",
                              "error": "bad request: %s" % exc, "files": [], "images": [],
                              "duration_ms": 0.0})
            continue
        response = execute(request, namespace)
        if os.getpid() != main_pid:
            # A process the user's code forked must not answer or read requests: only the kernel does.
            os._exit(0)
        _end_strays()
        _send(proto_out, response)


if __name__ == "__main__":
    main()
