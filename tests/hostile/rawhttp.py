"""Raw-socket HTTP/1.1 helpers for the hostile suite: send exact bytes, read one
response (Content-Length, chunked or until close), see whether the server closed a
connection. Bounded in time everywhere."""

from __future__ import annotations

import json
import resource
import select
import socket
import time
from dataclasses import dataclass, field
from typing import Optional


@dataclass
class RawResponse:
    status: int
    reason: str
    headers: dict = field(default_factory=dict)  # lower-case names, last value wins
    body: bytes = b""
    complete: bool = True  # False when the connection ended before the body did

    def json(self):
        return json.loads(self.body.decode())

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    def __repr__(self):
        return f"<HTTP {self.status} {self.headers.get('content-type', '')!r} {self.body[:300]!r}>"


class NoResponse(Exception):
    """The connection ended (or timed out) before a response head arrived."""

    def __init__(self, why: str, received: bytes = b""):
        super().__init__(f"{why} (received {received[:200]!r})")
        self.why = why
        self.received = received


def connect(port: int, timeout: float = 5.0, host: str = "127.0.0.1") -> socket.socket:
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def _recv(sock: socket.socket, deadline: float) -> bytes:
    """One recv before ``deadline``: b"" on EOF or reset; raises TimeoutError."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError
    sock.settimeout(left)
    try:
        return sock.recv(65536)
    except (socket.timeout, TimeoutError):
        raise TimeoutError
    except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
        return b""


def read_response(sock: socket.socket, timeout: float = 10.0, head_request: bool = False) -> RawResponse:
    """Read one response from ``sock``; raises NoResponse when the connection ends or
    times out before the head is complete."""
    deadline = time.monotonic() + timeout
    buf = b""
    while b"\r\n\r\n" not in buf:
        try:
            chunk = _recv(sock, deadline)
        except TimeoutError:
            raise NoResponse("timed out waiting for a response", buf)
        if not chunk:
            raise NoResponse("connection closed before a response", buf)
        buf += chunk
        if len(buf) > 1 << 20:
            raise NoResponse("response head over 1 MiB", buf)
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1])
    reason = parts[2] if len(parts) > 2 else ""
    headers = {}
    for ln in lines[1:]:
        if ":" in ln:
            k, v = ln.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    resp = RawResponse(status, reason, headers, b"")
    if head_request or status in (204, 304) or 100 <= status < 200:
        return resp
    if "content-length" in headers:
        n = int(headers["content-length"])
        while len(rest) < n:
            try:
                chunk = _recv(sock, deadline)
            except TimeoutError:
                chunk = b""
            if not chunk:
                resp.complete = False
                break
            rest += chunk
        resp.body = rest[:n]
        return resp
    if "chunked" in headers.get("transfer-encoding", "").lower():
        body = b""
        data = rest
        while True:
            while b"\r\n" not in data:
                try:
                    chunk = _recv(sock, deadline)
                except TimeoutError:
                    chunk = b""
                if not chunk:
                    resp.complete = False
                    resp.body = body
                    return resp
                data += chunk
            line, data = data.split(b"\r\n", 1)
            size = int(line.split(b";")[0].strip() or b"0", 16)
            while len(data) < size + 2:
                try:
                    chunk = _recv(sock, deadline)
                except TimeoutError:
                    chunk = b""
                if not chunk:
                    resp.complete = False
                    resp.body = body + data[:size]
                    return resp
                data += chunk
            if size == 0:
                resp.body = body
                return resp
            body += data[:size]
            data = data[size + 2:]
    # no framing: until close
    while True:
        try:
            chunk = _recv(sock, deadline)
        except TimeoutError:
            resp.complete = False
            break
        if not chunk:
            break
        rest += chunk
    resp.body = rest
    return resp


def exchange(port: int, data: bytes, timeout: float = 10.0, shut_wr: bool = False,
             close_after_send: bool = False) -> RawResponse:
    """Open a connection, send ``data`` (then half-close when ``shut_wr``), read one
    response. Raises NoResponse (connection ended or timed out without a head)."""
    s = connect(port, timeout=min(timeout, 5.0))
    try:
        try:
            s.sendall(data)
        except (BrokenPipeError, ConnectionResetError) as e:
            raise NoResponse(f"send failed: {e!r}")
        if shut_wr:
            try:
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
        if close_after_send:
            raise NoResponse("closed by the client")
        return read_response(s, timeout)
    finally:
        s.close()


def request_bytes(method: str, path: str, *, headers: Optional[dict] = None, body: bytes = b"",
                  content_length: Optional[int] = None, host: str = "127.0.0.1") -> bytes:
    """An HTTP/1.1 request; ``content_length`` overrides the real length (None: len(body),
    -1: no Content-Length header)."""
    h = {"Host": host}
    h.update(headers or {})
    if content_length is None:
        content_length = len(body)
    if content_length >= 0 and not any(k.lower() == "content-length" for k in h) \
            and not any(k.lower() == "transfer-encoding" for k in h):
        h["Content-Length"] = str(content_length)
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
    return head.encode("latin-1") + body


def wait_closed(sock: socket.socket, timeout: float) -> Optional[float]:
    """Seconds until the peer closes ``sock`` (EOF or reset; data that arrives first,
    such as a 408, is read and ignored), or None if still open after ``timeout``."""
    t0 = time.monotonic()
    deadline = t0 + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        r, _, _ = select.select([sock], [], [], min(left, 0.5))
        if r:
            try:
                data = sock.recv(65536)
            except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
                return time.monotonic() - t0
            except (BlockingIOError, InterruptedError):
                continue
            if not data:
                return time.monotonic() - t0


def is_open(sock: socket.socket) -> bool:
    """True when the peer has not closed ``sock`` (pending data is read and ignored)."""
    while True:
        r, _, _ = select.select([sock], [], [], 0)
        if not r:
            return True
        try:
            data = sock.recv(65536)
        except (ConnectionResetError, ConnectionAbortedError, BrokenPipeError):
            return False
        except (BlockingIOError, InterruptedError):
            return True
        if not data:
            return False


def check_openai_error(resp: RawResponse, what: str = "") -> dict:
    """The body is JSON {"error": {"message", "type", "param", "code"}}; returns error."""
    assert resp.body, f"{what}: empty body with HTTP {resp.status} ({resp.headers})"
    assert "json" in resp.content_type, f"{what}: content-type {resp.content_type!r}: {resp!r}"
    try:
        obj = resp.json()
    except Exception as e:  # noqa: BLE001
        raise AssertionError(f"{what}: body is not JSON ({e}): {resp.body[:300]!r}")
    err = obj.get("error") if isinstance(obj, dict) else None
    assert isinstance(err, dict), f"{what}: no error object: {obj}"
    missing = {"message", "type", "param", "code"} - set(err)
    assert not missing, f"{what}: error lacks {sorted(missing)}: {obj}"
    assert isinstance(err["message"], str) and err["message"], obj
    assert isinstance(err["type"], str) and err["type"], obj
    return err


def raise_nofile(want: int) -> int:
    """Raise this process's soft RLIMIT_NOFILE towards ``want`` (at most the hard
    limit); returns the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]
