"""Connections (issue 11, point 4): descriptor exhaustion, idle and slow connections,
the connection cap, and SSE streams that must survive the idle timeout.

Server settings under test: ASSISTANTS_IDLE_TIMEOUT_SECONDS (idle keep-alive and slow
heads), ASSISTANTS_SLOW_REQUEST_SECONDS (after that long a body still arriving must
average >= 1 KiB/s), ASSISTANTS_MAX_CONNECTIONS (past it: a fast 503 with the OpenAI
error body, or a refused connection; GET /health and /ready always answer), and the
soft RLIMIT_NOFILE raised to the hard limit at start."""

from __future__ import annotations

import json
import select
import socket
import threading
import time

import httpx
import pytest

from helpers import MODEL, marker
from rawhttp import (NoResponse, check_openai_error, connect, exchange, raise_nofile, read_response, request_bytes,
                     wait_closed)
from upstream import slow

pytestmark = pytest.mark.connections


def _health(srv, timeout: float = 1.0):
    """(status or error text, seconds) of GET /health on a new connection."""
    t0 = time.monotonic()
    try:
        r = httpx.get(srv.base_url + "/health", timeout=timeout, headers={"Connection": "close"})
        return r.status_code, time.monotonic() - t0
    except httpx.HTTPError as e:
        return repr(e), time.monotonic() - t0


def _open_many(port: int, n: int, deadline: float, partial_every: int = 0) -> tuple:
    """Open up to ``n`` connections before ``deadline``; every ``partial_every``-th
    sends half a request head. Returns (sockets, failures)."""
    socks, failures = [], 0
    for i in range(n):
        if time.monotonic() > deadline:
            failures += n - i
            break
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=2.0)
            if partial_every and i % partial_every == 0:
                s.sendall(b"POST /v1/assistants HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-")
            socks.append(s)
        except OSError:
            failures += 1
    return socks, failures


def _close_all(socks):
    for s in socks:
        try:
            s.close()
        except OSError:
            pass


# --------------------------------------------------------------------------- descriptors


def test_2000_idle_connections_health_stays_fast(hostile_server):
    """2,000 idle and half-sent connections with no key, to a server started with a
    soft descriptor limit of 1,024 (as on a default machine): GET /health, polled 50
    times on new connections meanwhile, answers 200 within 1 s every time (today it
    fails: the process keeps 1,024 descriptors)."""
    got = raise_nofile(4096)
    assert got >= 2300, f"the test needs ~2,300 descriptors; soft limit is {got}"
    srv = hostile_server(nofile_soft=1024)
    socks, failures = _open_many(srv.port, 2000, time.monotonic() + 60, partial_every=20)
    try:
        # The kernel queues the 2,000 connections at once (0.2 s); the server then takes each in
        # turn, and a first poll waits behind them all (1.5 s for a debug build on a 2-core VM).
        # It must still be answered: a server out of descriptors never takes it. The 50 polls
        # then show that the connections it holds cost /health nothing.
        st, dt = _health(srv, timeout=10.0)
        assert st == 200, f"/health behind {len(socks)} new connections: {st} after {dt:.1f} s"
        results = []
        for _ in range(50):
            results.append(_health(srv, timeout=1.0))
            time.sleep(0.05)
        bad = [(i, st, round(dt, 3)) for i, (st, dt) in enumerate(results) if st != 200 or dt > 1.0]
        assert srv.is_running(), f"server died (exit {srv.proc.returncode}); log:\n{srv.log_tail()[-3000:]}"
        assert not bad, (f"{len(bad)}/50 health polls failed or took > 1 s with {len(socks)} connections open "
                         f"({failures} could not be opened): {bad[:10]}")
    finally:
        _close_all(socks)
    time.sleep(0.5)
    st, dt = _health(srv, timeout=5.0)
    assert st == 200, f"after closing the connections: {st}"
    assert srv.is_running()


# --------------------------------------------------------------------------- idle and slow


def test_idle_and_slow_head_closed(hostile_server):
    """With ASSISTANTS_IDLE_TIMEOUT_SECONDS=2 the server closes, each within ~5 s: an
    idle keep-alive connection after a response, a connection that never sends a byte,
    and one that trickles its request head at 1 byte/s (today none is ever closed)."""
    srv = hostile_server(env={"ASSISTANTS_IDLE_TIMEOUT_SECONDS": "2"})
    results = {}

    def keep_alive():
        s = connect(srv.port)
        try:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            r = read_response(s, timeout=5)
            assert r.status == 200
            results["keep-alive after a response"] = wait_closed(s, 8.0)
        finally:
            s.close()

    def silent():
        s = connect(srv.port)
        try:
            results["no byte sent"] = wait_closed(s, 8.0)
        finally:
            s.close()

    def trickle():
        s = connect(srv.port)
        head = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 100
        t0 = time.monotonic()
        closed = None
        try:
            for b in head:
                try:
                    s.sendall(bytes([b]))
                except OSError:
                    closed = time.monotonic() - t0
                    break
                w = wait_closed(s, 1.0)
                if w is not None:
                    closed = time.monotonic() - t0
                    break
                if time.monotonic() - t0 > 8.0:
                    break
        finally:
            s.close()
        results["head at 1 byte/s"] = closed

    threads = [threading.Thread(target=f, daemon=True) for f in (keep_alive, silent, trickle)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    assert len(results) == 3, f"a probe did not finish: {results}"
    late = {k: v for k, v in results.items() if v is None or v > 5.5}
    assert not late, f"not closed within ~5 s (seconds, None = still open after 8 s): {results}"
    assert _health(srv, 2.0)[0] == 200


def _trickle_body(srv, total: int, rate_bytes_per_s: float, limit_s: float, path: str = "/v1/assistants"):
    """Send a JSON POST whose body (``total`` bytes) arrives at ``rate_bytes_per_s``.
    Returns ("closed", seconds), ("response", status, seconds) or ("open", seconds)."""
    pad = total - len(json.dumps({"model": MODEL, "instructions": ""}))
    body = json.dumps({"model": MODEL, "instructions": "x" * pad}).encode()
    head = request_bytes("POST", path, headers={"Authorization": f"Bearer {srv.key}",
                                                "Content-Type": "application/json"}, content_length=len(body))
    s = connect(srv.port)
    t0 = time.monotonic()

    def answer():
        try:
            r = read_response(s, timeout=10)
            return ("response", r.status, time.monotonic() - t0)
        except NoResponse:
            return ("closed", time.monotonic() - t0)

    try:
        s.sendall(head)
        sent = 0
        step = max(1, int(rate_bytes_per_s / 10))  # 10 writes a second
        while sent < len(body):
            if time.monotonic() - t0 > limit_s:
                return ("open", time.monotonic() - t0)
            try:
                s.sendall(body[sent:sent + step])
            except OSError:
                return ("closed", time.monotonic() - t0)
            sent += step
            if sent < len(body):
                r, _, _ = select.select([s], [], [], step / rate_bytes_per_s)
                if r:  # closed, or answered (e.g. 408) before the body was complete
                    return answer()
        return answer()
    finally:
        s.close()


def test_slow_body_closed(hostile_server):
    """With ASSISTANTS_SLOW_REQUEST_SECONDS=2 a body trickled at 1 byte/s is closed within
    ~8 s (today it is never closed), while a body sent at 8 KiB/s over ~3 s is answered 200."""
    srv = hostile_server(env={"ASSISTANTS_SLOW_REQUEST_SECONDS": "2"})
    results = {}

    def slow_one():
        results["1 byte/s"] = _trickle_body(srv, 10_000, 1.0, 12.0)

    def fast_enough():
        results["8 KiB/s"] = _trickle_body(srv, 24_000, 8192.0, 30.0)

    threads = [threading.Thread(target=f, daemon=True) for f in (slow_one, fast_enough)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(40)
    slow_r = results.get("1 byte/s")
    assert slow_r is not None and slow_r[0] == "closed" and slow_r[-1] <= 8.5, \
        f"a body at 1 byte/s was not closed within ~8 s: {slow_r}"
    ok = results.get("8 KiB/s")
    assert ok is not None and ok[0] == "response" and ok[1] == 200, f"a body at 8 KiB/s was not answered 200: {ok}"


# --------------------------------------------------------------------------- the cap


def test_connection_cap(hostile_server):
    """ASSISTANTS_MAX_CONNECTIONS=50 and 60 open connections: a request to /v1/assistants
    on a new connection gets a fast 503 with the OpenAI error body (or is refused), GET
    /health still answers 200 within 1 s, and once the connections close, requests are
    served again."""
    raise_nofile(1024)
    srv = hostile_server(env={"ASSISTANTS_MAX_CONNECTIONS": "50"})
    socks, failures = _open_many(srv.port, 60, time.monotonic() + 30)
    try:
        time.sleep(0.5)
        raw = request_bytes("GET", "/v1/assistants", headers={"Authorization": f"Bearer {srv.key}",
                                                              "OpenAI-Beta": "assistants=v2", "Connection": "close"})
        t0 = time.monotonic()
        try:
            resp = exchange(srv.port, raw, timeout=5)
        except (NoResponse, ConnectionRefusedError, ConnectionResetError) as e:
            resp = None
            refused = repr(e)
        dt = time.monotonic() - t0
        if resp is not None:
            assert resp.status == 503, f"past the cap (60 open of 50): expected 503 or refused, got {resp!r}"
            check_openai_error(resp, "503 past the cap")
            assert dt < 2.0, f"the 503 took {dt:.2f}s"
        else:
            assert dt < 2.0, f"refusal took {dt:.2f}s ({refused})"
        for path in ("/health",):
            st, hdt = _health(srv, timeout=1.0)
            assert st == 200 and hdt <= 1.0, f"GET {path} past the cap: {st} in {hdt:.2f}s"
        r = httpx.get(srv.base_url + "/ready", timeout=1.0)
        assert r.status_code in (200, 404), f"GET /ready past the cap: {r.status_code}"
    finally:
        _close_all(socks)
    deadline = time.monotonic() + 5
    status = None
    while time.monotonic() < deadline:
        try:
            status = httpx.get(srv.api_base + "/assistants", headers=srv.headers(), timeout=2).status_code
        except httpx.HTTPError as e:
            status = repr(e)
        if status == 200:
            break
        time.sleep(0.2)
    assert status == 200, f"after closing the connections: {status}"


# --------------------------------------------------------------------------- SSE survives


def _stream_run(srv, upstream, reply, timeout: float = 30.0) -> tuple:
    h = httpx.Client(base_url=srv.api_base, headers=srv.headers(), timeout=timeout)
    try:
        a = h.post("/assistants", json={"model": MODEL}).json()
        mk = marker("sse")
        t = h.post("/threads", json={"messages": [{"role": "user", "content": f"stream {mk}"}]}).json()
        upstream.enqueue(reply, match=mk)
        events, done = [], False
        t0 = time.monotonic()
        with h.stream("POST", f"/threads/{t['id']}/runs", json={"assistant_id": a["id"], "stream": True}) as r:
            assert r.status_code == 200, r.read()
            for line in r.iter_lines():
                if line.startswith("event:"):
                    events.append(line.split(":", 1)[1].strip())
                elif line.strip() == "data: [DONE]":
                    done = True
        return events, done, time.monotonic() - t0
    finally:
        h.close()


def test_sse_stream_not_closed_by_idle_timeout(hostile_server, upstream):
    """With a 2 s idle timeout, a run streamed over ~6 s (an event every second) is not cut."""
    srv = hostile_server(env={"ASSISTANTS_IDLE_TIMEOUT_SECONDS": "2"})
    events, done, dt = _stream_run(srv, upstream, slow("one two three four five six", chunks=6, delay=1.0))
    assert dt >= 4.0, f"the stream took only {dt:.1f}s: the slow reply was not used"
    assert "thread.run.completed" in events and done, f"stream cut after {dt:.1f}s: {events}"


def test_sse_stream_with_pause_not_closed(hostile_server, upstream):
    """With a 2 s idle timeout, a streamed run whose upstream pauses 3 s before each of its
    2 chunks is not cut: a connection with a request in progress is not idle."""
    srv = hostile_server(env={"ASSISTANTS_IDLE_TIMEOUT_SECONDS": "2"})
    events, done, dt = _stream_run(srv, upstream, slow("paused reply", chunks=2, delay=3.0))
    assert "thread.run.completed" in events and done, f"stream cut after {dt:.1f}s: {events}"


# --------------------------------------------------------------------------- the listen backlog


def _listen_backlog(port: int) -> int | None:
    """The backlog of the socket listening on ``port`` (ss's Send-Q for a listener), or None without ss."""
    import shutil
    import subprocess

    if shutil.which("ss") is None:
        return None
    out = subprocess.run(["ss", "-ltnH", f"sport = :{port}"], capture_output=True, text=True, timeout=10).stdout
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[0] == "LISTEN":
            return int(fields[2])
    raise AssertionError(f"no listener on port {port} in ss's output: {out!r}")


def test_listen_backlog(hostile_server):
    """The listening socket's backlog is ASSISTANTS_LISTEN_BACKLOG (4096 by default, capped by
    net.core.somaxconn), not NIO's 256: a client opening a few hundred streams a second
    overflowed 256 while the server was busy, and its dropped SYNs were retried seconds later."""
    somaxconn = int(open("/proc/sys/net/core/somaxconn").read())
    srv = hostile_server()
    backlog = _listen_backlog(srv.port)
    if backlog is None:
        pytest.skip("no ss (iproute2) to read the listen backlog")
    assert backlog == min(4096, somaxconn), f"default listen backlog: {backlog}"
    srv = hostile_server(env={"ASSISTANTS_LISTEN_BACKLOG": "1000"})
    assert _listen_backlog(srv.port) == min(1000, somaxconn)
