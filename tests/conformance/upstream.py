"""A scripted OpenAI-compatible chat-completions upstream, for tests and benches.

Serves, on 127.0.0.1 only:

* ``POST /v1/chat/completions``: ``stream: false`` (a ``chat.completion`` JSON body)
  and ``stream: true`` (``chat.completion.chunk`` SSE events ending in
  ``data: [DONE]``, plus a final usage chunk with ``choices: []`` when
  ``stream_options.include_usage`` is true; tool calls are streamed as
  ``tool_calls`` deltas with ``index``/``id``/``function.name`` in the first delta
  of a call and ``function.arguments`` in fragments).
* ``GET /v1/models``.
* ``GET /health``.

In-process use (tests)::

    up = ScriptedUpstream().start()
    up.enqueue(text("hello"))                       # next request gets "hello"
    up.enqueue(tool_call("add", {"a": 1}))          # then a tool call
    up.enqueue(text("only for me"), match="MARKER") # only requests that mention MARKER
    up.set_default(error(500))                      # when no script applies (reset() restores "ok")
    ... up.requests  # every request received: Recorded(path, headers, body, ...)
    up.stop()

Replies (factories below): ``text``, ``tool_call``, ``tool_calls``, ``slow``,
``length``, ``error``, ``rate_limited``, ``gate`` (held until released).

Standalone (benches)::

    python upstream.py --port 8099 [--mode instant|echo|scripted] [--tool-round-trip]
                       [--text "ok"] [--delay-ms 0] [--quiet]
                       [--stream-chunks N] [--stamp] [--nodelay]

``--mode instant`` answers every request with ``--text`` at once; ``--tool-round-trip``
answers a request whose last message is from the user and that offers tools with a
call to the first tool (arguments made from its JSON schema; primes for
``add_prime_numbers``), and a request whose last message is a tool result with a
text reply quoting it.

Latency benches (bench/stream.sh): ``--stamp --stream-chunks N`` makes every streamed
reply N content chunks, each one ``<t=NANOS>`` with ``time.time_ns()`` taken just before
that chunk is written (``--delay-ms`` between chunks); ``--nodelay`` sets TCP_NODELAY on
accepted connections so small chunks are not held back by Nagle's algorithm.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import random
import string
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional

__all__ = [
    "ScriptedUpstream",
    "Reply",
    "Recorded",
    "text",
    "tool_call",
    "tool_calls",
    "slow",
    "length",
    "error",
    "rate_limited",
    "gate",
    "stamped",
    "system_prompt",
    "chat_messages",
    "PRIMES_25",
]

PRIMES_25 = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97]

_ids = itertools.count(1)


def _rand(n: int = 24) -> str:
    return "".join(random.choices(string.ascii_letters + string.digits, k=n))


# --------------------------------------------------------------------------- replies


@dataclass
class Reply:
    """One scripted answer.

    kind: "text" | "tool_calls" | "error"
    content: the text (for "text"); split into ``chunks`` stream deltas.
    calls: [(name, arguments_json_string, call_id)] for "tool_calls".
    finish_reason: "stop" / "length" / "tool_calls" (derived when None).
    delay: seconds slept before each streamed chunk (for non-stream requests: the
        total, chunks * delay, before answering).
    status / error_body / headers: for "error" replies.
    usage: override {"prompt_tokens","completion_tokens","total_tokens"}.
    event: a threading.Event the reply waits for (``gate``) before answering.
    """

    kind: str = "text"
    content: str = "ok"
    calls: list = field(default_factory=list)
    finish_reason: Optional[str] = None
    chunks: Optional[int] = None
    delay: float = 0.0
    status: int = 200
    error_body: Optional[dict] = None
    headers: dict = field(default_factory=dict)
    usage: Optional[dict] = None
    event: Optional[threading.Event] = None
    event_timeout: float = 120.0
    stamp: bool = False  # stream ``chunks`` pieces "<t=time_ns>" stamped at send time (benches)


def text(content: str = "ok", *, chunks: Optional[int] = None, delay: float = 0.0,
         finish_reason: str = "stop", usage: Optional[dict] = None) -> Reply:
    return Reply(kind="text", content=content, chunks=chunks, delay=delay,
                 finish_reason=finish_reason, usage=usage)


def tool_calls(*calls: tuple, delay: float = 0.0, content: Optional[str] = None,
               usage: Optional[dict] = None) -> Reply:
    """Several tool calls in one turn: each call is (name, arguments) or
    (name, arguments, call_id); arguments is a dict (JSON-encoded) or a string."""
    norm = []
    for c in calls:
        name, args = c[0], c[1]
        call_id = c[2] if len(c) > 2 else f"call_{_rand(24)}"
        if not isinstance(args, str):
            args = json.dumps(args, separators=(",", ":"))
        norm.append((name, args, call_id))
    return Reply(kind="tool_calls", calls=norm, content=content or "", delay=delay,
                 finish_reason="tool_calls", usage=usage)


def tool_call(name: str, arguments: Any = None, call_id: Optional[str] = None, **kw) -> Reply:
    args = {} if arguments is None else arguments
    return tool_calls((name, args, call_id or f"call_{_rand(24)}"), **kw)


def slow(content: str = "This answer is streamed slowly.", *, chunks: int = 50, delay: float = 0.1,
         finish_reason: str = "stop") -> Reply:
    """A text reply in ``chunks`` pieces with ``delay`` seconds before each."""
    return Reply(kind="text", content=content, chunks=chunks, delay=delay, finish_reason=finish_reason)


def stamped(chunks: int = 100, *, delay: float = 0.0) -> Reply:
    """A streamed text reply of ``chunks`` pieces ``<t=NANOS>``, each stamped with
    ``time.time_ns()`` just before it is written (for latency benches)."""
    return Reply(kind="text", content="<t=0>" * chunks, chunks=chunks, delay=delay, stamp=True)


def length(content: str = "This reply was cut off because it ran out of tokens " * 4,
           **kw) -> Reply:
    """A long text that ends with finish_reason "length"."""
    return text(content, finish_reason="length", **kw)


def error(status: int = 500, message: Optional[str] = None, *, type: Optional[str] = None,
          code: Optional[str] = None, headers: Optional[dict] = None) -> Reply:
    if type is None:
        type = {400: "invalid_request_error", 401: "invalid_request_error",
                429: "requests", 500: "server_error"}.get(status, "server_error")
    body = {"error": {"message": message or f"The upstream failed with HTTP {status} (scripted).",
                      "type": type, "param": None, "code": code}}
    return Reply(kind="error", status=status, error_body=body, headers=dict(headers or {}))


def rate_limited(message: str = "Rate limit reached (scripted).") -> Reply:
    return error(429, message, type="requests", code="rate_limit_exceeded",
                 headers={"retry-after": "0", "retry-after-ms": "10", "x-ratelimit-remaining-requests": "0"})


def gate(reply: Optional[Reply] = None, event: Optional[threading.Event] = None,
         timeout: float = 120.0) -> Reply:
    """``reply`` (default text "ok"), held until ``event`` is set (or ``timeout``)."""
    r = copy.copy(reply or text("ok"))
    r.event = event or threading.Event()
    r.event_timeout = timeout
    return r


# --------------------------------------------------------------------------- helpers on bodies


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for part in content:
            if isinstance(part, dict):
                if part.get("type") == "text":
                    out.append(str(part.get("text", "")))
            elif isinstance(part, str):
                out.append(part)
        return "".join(out)
    return str(content)


def system_prompt(body: dict) -> str:
    """The text of every system/developer message of a request body, joined by newlines."""
    return "\n".join(_content_text(m.get("content")) for m in body.get("messages", [])
                     if m.get("role") in ("system", "developer"))


def chat_messages(body: dict) -> list:
    """The non-system messages of a request body."""
    return [m for m in body.get("messages", []) if m.get("role") not in ("system", "developer")]


def _estimate_tokens(s: str) -> int:
    return max(1, len(s) // 4)


# --------------------------------------------------------------------------- the server


def _embed(text: str, dimensions: int = 64) -> list:
    """A deterministic bag-of-words vector: each word adds to a hashed dimension."""
    import hashlib
    vector = [0.0] * dimensions
    for word in "".join(c.lower() if c.isalnum() else " " for c in text).split():
        vector[int(hashlib.sha256(word.encode()).hexdigest(), 16) % dimensions] += 1.0
    return vector


def _embeddings(body) -> dict:
    """`POST /v1/embeddings`, OpenAI-shaped, for file_search's vector ranking."""
    inputs = body.get("input") if isinstance(body, dict) else None
    if isinstance(inputs, str):
        inputs = [inputs]
    inputs = inputs if isinstance(inputs, list) else []
    return {"object": "list", "model": (body or {}).get("model", "embed"),
            "data": [{"object": "embedding", "index": i, "embedding": _embed(str(t))} for i, t in enumerate(inputs)],
            "usage": {"prompt_tokens": 0, "total_tokens": 0}}


@dataclass
class Recorded:
    path: str
    method: str
    headers: dict
    body: Any
    received_at: float

    def text(self) -> str:
        return json.dumps(self.body, ensure_ascii=False)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ScriptedUpstream/1.0"

    # quiet unless asked
    def log_message(self, fmt, *args):  # noqa: N802
        if self.server.upstream.verbose:
            super().log_message(fmt, *args)

    @property
    def up(self) -> "ScriptedUpstream":
        return self.server.upstream

    @property
    def disable_nagle_algorithm(self) -> bool:  # read by StreamRequestHandler.setup()
        return self.server.upstream.nodelay

    def _read_body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            return self.rfile.read(n)
        if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
            data = b""
            while True:
                line = self.rfile.readline().strip()
                size = int(line.split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
            return data
        return b""

    def _send_json(self, status: int, obj: Any, headers: Optional[dict] = None):
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        path = self.path.split("?")[0]
        if path in ("/health", "/"):
            return self._send_json(200, {"status": "ok"})
        if path.rstrip("/").endswith("/models"):
            models = sorted(self.up.models)
            return self._send_json(200, {"object": "list", "data": [
                {"id": m, "object": "model", "created": 1700000000, "owned_by": "scripted"} for m in models]})
        self._send_json(404, {"error": {"message": f"Unknown path {path}", "type": "invalid_request_error",
                                        "param": None, "code": "unknown_url"}})

    def do_POST(self):  # noqa: N802
        path = self.path.split("?")[0]
        raw = self._read_body()
        try:
            body = json.loads(raw.decode() or "null")
        except Exception:  # noqa: BLE001
            body = {"_unparsed": raw.decode(errors="replace")}
        rec = Recorded(path=path, method="POST", headers={k.lower(): v for k, v in self.headers.items()},
                       body=body, received_at=time.time())
        if path.rstrip("/").endswith("/embeddings"):
            self.up._record(rec)
            return self._send_json(200, _embeddings(body))
        if not path.rstrip("/").endswith("/chat/completions"):
            return self._send_json(404, {"error": {"message": f"Unknown path {path}", "type": "invalid_request_error",
                                                   "param": None, "code": "unknown_url"}})
        self.up._record(rec)
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return self._send_json(400, {"error": {"message": "'messages' is required", "type": "invalid_request_error",
                                                   "param": "messages", "code": None}})
        reply = self.up._next_reply(body)
        try:
            self._answer(body, reply)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.up._note_disconnect(rec)
            self.close_connection = True

    # -- answering

    def _usage(self, body: dict, reply: Reply, completion_text: str) -> dict:
        if reply.usage:
            u = dict(reply.usage)
            u.setdefault("total_tokens", u.get("prompt_tokens", 0) + u.get("completion_tokens", 0))
            return u
        prompt = _estimate_tokens(json.dumps(body.get("messages", [])))
        completion = _estimate_tokens(completion_text)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _answer(self, body: dict, reply: Reply):
        if reply.event is not None:
            reply.event.wait(reply.event_timeout)
        if reply.kind == "error":
            if reply.delay:
                time.sleep(reply.delay)
            return self._send_json(reply.status, reply.error_body, reply.headers)
        model = body.get("model") or "scripted-model"
        cid = f"chatcmpl-{_rand(29)}"
        created = int(time.time())
        finish = reply.finish_reason or ("tool_calls" if reply.kind == "tool_calls" else "stop")
        completion_text = reply.content + "".join(c[1] for c in reply.calls)
        usage = self._usage(body, reply, completion_text)
        if body.get("stream"):
            include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            return self._stream(cid, created, model, reply, finish, usage, include_usage)
        # non-streaming: wait as long as the stream would have taken
        n = reply.chunks or 1
        if reply.delay:
            time.sleep(reply.delay * n)
        message: dict = {"role": "assistant", "content": reply.content if reply.kind == "text" else (reply.content or None),
                         "refusal": None}
        if reply.kind == "tool_calls":
            message["tool_calls"] = [{"id": cid_, "type": "function", "function": {"name": name, "arguments": args}}
                                     for (name, args, cid_) in reply.calls]
        self._send_json(200, {
            "id": cid, "object": "chat.completion", "created": created, "model": model,
            "system_fingerprint": None,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": usage,
        })

    def _stream(self, cid, created, model, reply: Reply, finish, usage, include_usage):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def write_chunk(data: bytes):
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

        def event(delta: dict, finish_reason=None, *, choices=True, usage_obj="absent"):
            obj: dict = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                         "system_fingerprint": None}
            if choices:
                obj["choices"] = [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
            else:
                obj["choices"] = []
            if include_usage:
                obj["usage"] = None if usage_obj == "absent" else usage_obj
            write_chunk(b"data: " + json.dumps(obj).encode() + b"\n\n")

        def pause():
            if reply.delay:
                time.sleep(reply.delay)

        if reply.kind == "text" and reply.stamp:
            pause()
            event({"role": "assistant", "content": "", "refusal": None})
            for _ in range(max(1, reply.chunks or 1)):
                pause()
                event({"content": f"<t={time.time_ns()}>"})
            event({}, finish)
        elif reply.kind == "text":
            pieces = _split(reply.content, reply.chunks)
            pause()
            event({"role": "assistant", "content": "", "refusal": None})
            for p in pieces:
                pause()
                event({"content": p})
            event({}, finish)
        else:
            pause()
            first: dict = {"role": "assistant", "content": None, "refusal": None}
            if reply.content:
                first["content"] = reply.content
            event(first)
            for index, (name, args, call_id) in enumerate(reply.calls):
                pause()
                event({"tool_calls": [{"index": index, "id": call_id, "type": "function",
                                       "function": {"name": name, "arguments": ""}}]})
                for frag in _split(args, max(1, min(4, len(args)))):
                    pause()
                    event({"tool_calls": [{"index": index, "function": {"arguments": frag}}]})
            event({}, finish)
        if include_usage:
            event({}, choices=False, usage_obj=usage)
        write_chunk(b"data: [DONE]\n\n")
        write_chunk(b"")  # terminating zero-length chunk


def _split(s: str, n: Optional[int]) -> list:
    """Split s into n non-empty pieces (word-ish boundaries when n is None)."""
    if not s:
        return []
    if n is None:
        words = s.split(" ")
        return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words) if w or i < len(words) - 1] or [s]
    n = max(1, min(n, len(s)))
    size, rem = divmod(len(s), n)
    out, i = [], 0
    for k in range(n):
        j = i + size + (1 if k < rem else 0)
        out.append(s[i:j])
        i = j
    return [p for p in out if p]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def handle_error(self, request, client_address):
        import sys
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, TimeoutError)):
            return  # the client went away: normal when a run is cancelled or the server is killed
        super().handle_error(request, client_address)


class ScriptedUpstream:
    """The scripted upstream; see the module docstring."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, mode: str = "scripted",
                 default_text: str = "ok", tool_round_trip: bool = False, delay: float = 0.0,
                 verbose: bool = False, models: Optional[list] = None, stream_chunks: Optional[int] = None,
                 stamp: bool = False, nodelay: bool = False, tls: Optional["ssl.SSLContext"] = None):
        if host not in ("127.0.0.1", "localhost", "::1") and not host.startswith("127."):
            raise ValueError("the scripted upstream listens on loopback only")
        self.host = host
        self.port = port
        self.mode = mode  # "scripted" (queue, then default), "instant" (always default_text), "echo"
        self.default_text = default_text
        self.tool_round_trip = tool_round_trip
        self.delay = delay
        self.verbose = verbose
        self.stream_chunks = stream_chunks  # instant mode: chunks per reply (None: word-split)
        self.stamp = stamp                  # instant mode: stamped chunks (see stamped())
        self.nodelay = nodelay              # TCP_NODELAY on accepted connections
        self.tls = tls                      # a server-side SSLContext: HTTPS (HTTP/1.1) instead of HTTP
        self.models = set(models or ["gpt-4o-mini", "gpt-4o", "scripted-model"])
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._queue: list = []  # [(match or None, Reply)]
        self._default: Optional[Reply] = None
        self._requests: list = []
        self._disconnects: list = []
        self._httpd: Optional[_Server] = None
        self._thread: Optional[threading.Thread] = None

    # -- lifecycle

    def start(self) -> "ScriptedUpstream":
        self._httpd = _Server((self.host, self.port), _Handler)
        self._httpd.upstream = self
        if self.tls is not None:
            self._httpd.socket = self.tls.wrap_socket(self._httpd.socket, server_side=True)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                        name=f"scripted-upstream-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible base URL, ending in /v1."""
        return f"{'https' if self.tls is not None else 'http'}://{self.host}:{self.port}/v1"

    url = base_url

    # -- scripting

    def reset(self):
        """Forget the queue, the default override and the recorded requests."""
        with self._lock:
            self._queue.clear()
            self._default = None
            self._requests.clear()
            self._disconnects.clear()

    def enqueue(self, *replies: Reply, match: Optional[str] = None) -> "ScriptedUpstream":
        """Queue replies, used in order. With ``match``, a reply only answers a request
        whose JSON body contains that string (scripted replies with a match win over
        unmatched ones)."""
        with self._lock:
            for r in replies:
                self._queue.append((match, r))
        return self

    def set_default(self, reply: Optional[Reply]):
        """The reply used when no queued reply applies (None: text(default_text))."""
        with self._lock:
            self._default = reply

    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def _next_reply(self, body: dict) -> Reply:
        if self.mode == "instant":
            if self.stamp:
                return stamped(self.stream_chunks or 100, delay=self.delay)
            if self.tool_round_trip:
                return self._auto_reply(body)
            return Reply(content=self.default_text, chunks=self.stream_chunks)
        blob = json.dumps(body, ensure_ascii=False)
        with self._lock:
            chosen = None
            for i, (m, r) in enumerate(self._queue):
                if m is not None and m in blob:
                    chosen = i
                    break
            if chosen is None:
                for i, (m, r) in enumerate(self._queue):
                    if m is None:
                        chosen = i
                        break
            if chosen is not None:
                return self._queue.pop(chosen)[1]
            default = self._default
        if default is not None:
            return default
        if self.tool_round_trip:
            return self._auto_reply(body)
        if self.mode == "echo":
            msgs = chat_messages(body)
            last = _content_text(msgs[-1].get("content")) if msgs else ""
            return Reply(content=f"echo: {last}" if last else self.default_text, delay=self.delay)
        return Reply(content=self.default_text, delay=self.delay)

    def _auto_reply(self, body: dict) -> Reply:
        msgs = body.get("messages") or []
        last = msgs[-1] if msgs else {}
        tools = [t for t in (body.get("tools") or []) if t.get("type") == "function"]
        if self.tool_round_trip and last.get("role") == "user" and tools and body.get("tool_choice") != "none":
            fn = tools[0]["function"]
            return tool_call(fn["name"], _args_for(fn))
        if last.get("role") == "tool":
            return Reply(content=f"The result is {_content_text(last.get('content'))}.", delay=self.delay)
        return Reply(content=self.default_text, delay=self.delay)

    # -- recording

    def _record(self, rec: Recorded):
        with self._cond:
            self._requests.append(rec)
            if len(self._requests) > 100_000:  # bounded for long benches
                del self._requests[:50_000]
            self._cond.notify_all()

    def _note_disconnect(self, rec: Recorded):
        with self._lock:
            self._disconnects.append(rec)

    @property
    def requests(self) -> list:
        """Every chat-completions request received since the last reset (copies)."""
        with self._lock:
            return list(self._requests)

    @property
    def bodies(self) -> list:
        return [r.body for r in self.requests]

    @property
    def disconnects(self) -> list:
        with self._lock:
            return list(self._disconnects)

    def requests_containing(self, needle: str) -> list:
        return [r for r in self.requests if needle in r.text()]

    def wait_for_requests(self, n: int = 1, timeout: float = 30.0, containing: Optional[str] = None) -> list:
        """Block until at least n matching requests arrived; returns them (raises on time-out)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                got = [r for r in self._requests if containing is None or containing in r.text()]
                if len(got) >= n:
                    return got
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"upstream got {len(got)} of {n} expected requests"
                                       f"{' containing ' + repr(containing) if containing else ''} in {timeout}s")
                self._cond.wait(min(left, 0.5))


def _args_for(fn: dict) -> dict:
    """Arguments for a function from its JSON schema (primes for add_prime_numbers)."""
    if fn.get("name") == "add_prime_numbers":
        return {"prime_numbers": PRIMES_25}
    return _example(fn.get("parameters") or {"type": "object", "properties": {}}) or {}


def _example(schema: dict, depth: int = 0) -> Any:
    if depth > 6 or not isinstance(schema, dict):
        return None
    if "enum" in schema and schema["enum"]:
        return schema["enum"][0]
    t = schema.get("type")
    if isinstance(t, list):
        t = next((x for x in t if x != "null"), "string")
    if t == "object" or "properties" in schema:
        props = schema.get("properties") or {}
        return {k: _example(v, depth + 1) for k, v in props.items()}
    if t == "array":
        return [_example(schema.get("items") or {"type": "string"}, depth + 1)]
    if t == "integer":
        return 2
    if t == "number":
        return 1.5
    if t == "boolean":
        return True
    return "x"


def main(argv=None):
    ap = argparse.ArgumentParser(description="Scripted OpenAI-compatible chat-completions upstream (loopback).")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0: pick a free port (printed)")
    ap.add_argument("--mode", choices=["instant", "echo", "scripted"], default="instant")
    ap.add_argument("--text", default="ok", help="the fixed reply text")
    ap.add_argument("--tool-round-trip", action="store_true",
                    help="answer a user turn that offers tools with a call to the first tool, "
                         "and a tool result with a text reply")
    ap.add_argument("--delay-ms", type=float, default=0.0, help="delay before each streamed chunk")
    ap.add_argument("--verbose", action="store_true", help="log each request")
    ap.add_argument("--stream-chunks", type=int, default=None,
                    help="instant mode: content chunks per streamed reply (default: one per word)")
    ap.add_argument("--stamp", action="store_true",
                    help="instant mode: every chunk is '<t=NANOS>', time.time_ns() at its send (latency benches)")
    ap.add_argument("--nodelay", action="store_true", help="TCP_NODELAY on accepted connections")
    args = ap.parse_args(argv)
    up = ScriptedUpstream(args.host, args.port, mode=args.mode, default_text=args.text,
                          tool_round_trip=args.tool_round_trip, delay=args.delay_ms / 1000.0,
                          verbose=args.verbose, stream_chunks=args.stream_chunks, stamp=args.stamp,
                          nodelay=args.nodelay)
    up.start()
    print(f"scripted upstream listening on {up.base_url} (mode {args.mode}"
          f"{', tool round trip' if args.tool_round_trip else ''})", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        up.stop()


if __name__ == "__main__":
    main()
