"""Fixtures of the conformance suite.

* ``upstream``: the session's scripted chat-completions upstream (upstream.py),
  reset (queue, default reply, recorded requests) before each test.
* ``server``: the session's server (``$ASSISTANTS_SERVER_BIN serve ...``) on a free
  loopback port, SQLite in a temp dir (or ``$ASSISTANTS_TEST_DATABASE_URL``), started
  with a pool of random ``key:project`` pairs in ``ASSISTANTS_API_KEYS`` so that each
  test gets an empty project of its own (``tenant``), even on a shared PostgreSQL.
* ``tenant`` / ``client`` / ``http``: a fresh project, an ``openai.OpenAI`` client for
  it (max_retries=0), and an ``httpx.Client`` with its key, base URL ``.../v1``.
* ``server_factory``: start more servers (own temp dir and database, own keys,
  restart/kill), stopped after the test.

Every server's stdout/stderr go to ``server.log`` in its temp dir; a failing test's
report gets the part of each live server's log written during the test.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Optional

import httpx
import openai
import pytest

from upstream import ScriptedUpstream

warnings.filterwarnings("ignore", category=DeprecationWarning)

REPO = Path(__file__).resolve().parents[2]
SERVER_BIN = Path(os.environ.get("ASSISTANTS_SERVER_BIN") or REPO / ".build" / "debug" / "assistants-server")
TEST_DATABASE_URL = os.environ.get("ASSISTANTS_TEST_DATABASE_URL") or None
UPSTREAM_API_KEY = "sk-upstream-conformance"
READY_TIMEOUT = float(os.environ.get("ASSISTANTS_TEST_READY_TIMEOUT", "60"))
KEY_POOL_SIZE = int(os.environ.get("ASSISTANTS_TEST_KEY_POOL", "400"))

_LIVE_SERVERS: list = []
_LIVE_LOCK = threading.Lock()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def random_keys(n: int, prefix: str = "conf") -> list:
    """n (key, project) pairs with random, unique names."""
    run = secrets.token_hex(4)
    return [(f"sk-{prefix}-{run}-{i}-{secrets.token_hex(6)}", f"proj_{prefix}_{run}_{i}") for i in range(n)]


class ServerProcess:
    """One assistants-server process; start/stop/kill/restart keep the port, the
    database and the data dir."""

    def __init__(self, workdir: Path, *, name: str = "server", api_keys=None,
                 upstream_url: Optional[str] = None, upstream_api_key: Optional[str] = UPSTREAM_API_KEY,
                 database_url: Optional[str] = None, extra_env: Optional[dict] = None,
                 extra_args: Optional[list] = None, port: Optional[int] = None):
        self.name = name
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.workdir / "files"
        self.database_url = database_url or TEST_DATABASE_URL or f"sqlite://{self.workdir / 'assistants.sqlite'}"
        # api_keys: None (no auth), a list of (key, project) or a "k:p,k:p" string
        if isinstance(api_keys, str):
            pairs = [tuple(p.split(":", 1)) for p in api_keys.split(",") if p]
        else:
            pairs = list(api_keys or [])
        self.keys: list = pairs
        self.upstream_url = upstream_url
        self.upstream_api_key = upstream_api_key
        self.extra_env = dict(extra_env or {})
        self.extra_args = list(extra_args or [])
        self.port = port or free_port()
        self.log_path = self.workdir / "server.log"
        self.proc: Optional[subprocess.Popen] = None
        self.starts = 0
        self._log_file = None

    # -- addresses and clients

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return self.base_url + "/v1"

    @property
    def default_key(self) -> str:
        return self.keys[0][0] if self.keys else "sk-no-auth"

    def client(self, api_key: Optional[str] = None, max_retries: int = 0, timeout: float = 60.0) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.api_base, api_key=api_key or self.default_key,
                             max_retries=max_retries, timeout=timeout)

    def http(self, api_key: Optional[str] = None, timeout: float = 60.0) -> httpx.Client:
        key = api_key or self.default_key
        return httpx.Client(base_url=self.api_base, timeout=timeout,
                            headers={"Authorization": f"Bearer {key}", "OpenAI-Beta": "assistants=v2"})

    # -- lifecycle

    def command(self) -> list:
        return [str(SERVER_BIN), "serve", "--host", "127.0.0.1", "--port", str(self.port),
                "--database-url", self.database_url, "--data-dir", str(self.data_dir), *self.extra_args]

    def environment(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANTS_")}
        if self.keys:
            env["ASSISTANTS_API_KEYS"] = ",".join(f"{k}:{p}" for k, p in self.keys)
        if self.upstream_url:
            env["ASSISTANTS_UPSTREAM_URL"] = self.upstream_url
            if self.upstream_api_key:
                env["ASSISTANTS_UPSTREAM_API_KEY"] = self.upstream_api_key
        env.setdefault("ASSISTANTS_LOG_LEVEL", os.environ.get("ASSISTANTS_TEST_LOG_LEVEL", "info"))
        # A machine with the local model installed must not start it for tests that run without an upstream.
        env.setdefault("ASSISTANTS_LOCAL_MODEL", "off")
        env.update(self.extra_env)
        return env

    def start(self, timeout: float = READY_TIMEOUT) -> "ServerProcess":
        if not SERVER_BIN.exists():
            pytest.fail(f"server binary not found: {SERVER_BIN} (build it, or set ASSISTANTS_SERVER_BIN)",
                        pytrace=False)
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.starts += 1
        self._log_file = open(self.log_path, "ab")
        self._log_file.write(f"\n===== conformance: start #{self.starts} of {self.name} on port {self.port} "
                             f"({time.strftime('%H:%M:%S')}) =====\n".encode())
        self._log_file.flush()
        self.proc = subprocess.Popen(self.command(), env=self.environment(), stdin=subprocess.DEVNULL,
                                     stdout=self._log_file, stderr=subprocess.STDOUT, cwd=str(self.workdir),
                                     start_new_session=True)
        with _LIVE_LOCK:
            if self not in _LIVE_SERVERS:
                _LIVE_SERVERS.append(self)
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT):
        deadline = time.monotonic() + timeout
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with code {self.proc.returncode} before it was ready; "
                                   f"log:\n{self.log_tail()}")
            try:
                r = httpx.get(self.base_url + "/health", timeout=2.0)
                if r.status_code == 200:
                    return
                last = f"HTTP {r.status_code}"
            except httpx.HTTPError as e:
                last = repr(e)
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"{self.name} not ready after {timeout}s (last: {last}); log:\n{self.log_tail()}")

    def _close_log(self):
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def stop(self, timeout: float = 15.0) -> Optional[int]:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._close_log()
        return self.proc.returncode

    def kill(self) -> Optional[int]:
        """SIGKILL at once (a crash)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._close_log()
        return self.proc.returncode

    def restart(self, kill: bool = False, timeout: float = READY_TIMEOUT) -> "ServerProcess":
        """Stop (SIGTERM, or SIGKILL with kill=True) and start again on the same
        port, database and data dir."""
        self.kill() if kill else self.stop()
        return self.start(timeout)

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_tail(self, since: int = 0, max_chars: int = 20000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                data = f.read().decode(errors="replace")
        except OSError:
            return "(no log)"
        if len(data) > max_chars:
            data = "...(cut)...\n" + data[-max_chars:]
        return data

    def close(self):
        self.stop()
        with _LIVE_LOCK:
            if self in _LIVE_SERVERS:
                _LIVE_SERVERS.remove(self)


class Tenant:
    """One API key and its project on a server."""

    def __init__(self, server: ServerProcess, key: str, project: str):
        self.server, self.key, self.project = server, key, project

    def client(self, **kw) -> openai.OpenAI:
        return self.server.client(api_key=self.key, **kw)

    def http(self, **kw) -> httpx.Client:
        return self.server.http(api_key=self.key, **kw)


# --------------------------------------------------------------------------- pytest hooks


def pytest_configure(config):
    config.addinivalue_line("markers", "runs: run-engine tests (deselect with -m 'not runs')")
    config.addinivalue_line("markers", "slow: tests that take several seconds")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    with _LIVE_LOCK:
        item._server_log_marks = {id(s): s.log_size() for s in _LIVE_SERVERS}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and call.when in ("setup", "call"):
        marks = getattr(item, "_server_log_marks", {})
        with _LIVE_LOCK:
            servers = list(_LIVE_SERVERS)
        for s in servers:
            tail = s.log_tail(since=marks.get(id(s), 0))
            if tail.strip():
                report.sections.append((f"{s.name} log ({s.log_path})", tail))


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def upstream_session():
    up = ScriptedUpstream().start()
    yield up
    up.stop()


@pytest.fixture
def upstream(upstream_session) -> ScriptedUpstream:
    upstream_session.reset()
    yield upstream_session
    upstream_session.reset()


@pytest.fixture(scope="session")
def _session_dir():
    d = Path(tempfile.mkdtemp(prefix="assistants-conformance-"))
    yield d
    if not os.environ.get("KEEP_TMP"):
        shutil.rmtree(d, ignore_errors=True)


class _KeyPool:
    def __init__(self, keys):
        self.keys = keys
        self.i = 0
        self.lock = threading.Lock()

    def take(self):
        with self.lock:
            k = self.keys[self.i % len(self.keys)]
            self.i += 1
            return k


@pytest.fixture(scope="session")
def server(upstream_session, _session_dir) -> ServerProcess:
    """The shared server: one empty project per test through ``tenant``."""
    s = ServerProcess(_session_dir / "main", name="server", api_keys=random_keys(KEY_POOL_SIZE),
                      upstream_url=upstream_session.base_url)
    s.start()
    s.key_pool = _KeyPool(s.keys)
    yield s
    s.close()


@pytest.fixture
def tenant(server) -> Tenant:
    key, project = server.key_pool.take()
    return Tenant(server, key, project)


@pytest.fixture
def client(tenant) -> openai.OpenAI:
    c = tenant.client()
    yield c
    c.close()


@pytest.fixture
def http(tenant) -> httpx.Client:
    c = tenant.http()
    yield c
    c.close()


@pytest.fixture
def server_factory(tmp_path, upstream_session):
    """``server_factory(**ServerProcess kwargs)`` -> a started ServerProcess with its
    own temp dir (and SQLite database unless ASSISTANTS_TEST_DATABASE_URL is set).
    ``start=False`` returns it unstarted. Upstream: the session's scripted upstream."""
    made = []

    def make(name: str = None, start: bool = True, **kw) -> ServerProcess:
        kw.setdefault("upstream_url", upstream_session.base_url)
        name = name or f"server{len(made) + 2}"
        s = ServerProcess(tmp_path / name, name=name, **kw)
        made.append(s)
        if start:
            s.start()
        return s

    yield make
    for s in made:
        s.close()


@pytest.fixture
def keyed_server(server_factory):
    """``keyed_server(n_projects=2)`` -> (server, [Tenant, ...]): a new server whose
    ASSISTANTS_API_KEYS has one random key per project."""

    def make(n_projects: int = 2, **kw):
        keys = random_keys(n_projects, prefix="ten")
        s = server_factory(api_keys=keys, **kw)
        return s, [Tenant(s, k, p) for k, p in keys]

    return make
