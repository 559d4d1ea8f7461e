#!/usr/bin/env python3
"""A slow OpenAI-compatible upstream for bench/streams.sh: thousands of chat completions open at once.

POST /v1/chat/completions (stream true) answers with Server-Sent Events over chunked HTTP/1.1:
a role chunk at once, then --deltas content chunks, one every --interval seconds after the
stream began, each ``<t=NANOS>`` where NANOS is ``time.time_ns()`` just before the chunk is
written (the driver subtracts it from the time it sees the delta: same machine, same clock),
then a finish chunk, a usage chunk and ``data: [DONE]``. Connections are kept alive.

GET /health answers ``{"status":"ok"}``; GET /stats the streams open now, the most open at
once, and those completed (JSON).

One asyncio event loop (uvloop when installed), a coroutine per connection, no thread per
connection; the open-files soft limit is raised to the hard one; listens on loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import socket
import sys
import time


class Stats:
    def __init__(self) -> None:
        self.open = 0
        self.most_open = 0
        self.completed = 0
        self.connections = 0
        self.most_connections = 0


def chunk(payload: dict) -> bytes:
    data = b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"
    return b"%x\r\n%s\r\n" % (len(data), data)


async def stream_reply(writer: asyncio.StreamWriter, model: str, args, st: Stats) -> None:
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
                 b"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n")
    writer.write(chunk({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                             "finish_reason": None}]}))
    st.open += 1
    st.most_open = max(st.most_open, st.open)
    loop = asyncio.get_running_loop()
    start = loop.time()
    try:
        for k in range(1, args.deltas + 1):
            delay = start + k * args.interval - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            writer.write(chunk({**base, "choices": [{"index": 0, "delta": {"content": f"<t={time.time_ns()}>"},
                                                     "finish_reason": None}]}))
            if writer.transport.get_write_buffer_size() > 65536:
                await writer.drain()
        writer.write(chunk({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}))
        writer.write(chunk({**base, "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": args.deltas,
                                                             "total_tokens": 10 + args.deltas}}))
        data = b"data: [DONE]\n\n"
        writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(data), data))
        await writer.drain()
        st.completed += 1
    finally:
        st.open -= 1


def simple(writer: asyncio.StreamWriter, status: str, body: bytes) -> None:
    writer.write(f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                 + body)


async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, args, st: Stats) -> None:
    st.connections += 1
    st.most_connections = max(st.most_connections, st.connections)
    try:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            lines = head.decode("latin-1").split("\r\n")
            method, path = lines[0].split(" ")[:2]
            length = 0
            chunked = False
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name == "content-length":
                    length = int(value.strip())
                elif name == "transfer-encoding" and "chunked" in value.lower():
                    chunked = True
            if chunked:
                body = b""
                while True:
                    size = int((await reader.readuntil(b"\r\n")).strip().split(b";")[0], 16)
                    if size == 0:
                        await reader.readuntil(b"\r\n")
                        break
                    body += await reader.readexactly(size + 2)
                    body = body[:-2]
            else:
                body = await reader.readexactly(length) if length else b""
            if method == "GET" and path == "/health":
                simple(writer, "200 OK", b'{"status":"ok"}')
            elif method == "GET" and path == "/stats":
                simple(writer, "200 OK", json.dumps(vars(st)).encode())
            elif method == "POST" and path.endswith("/chat/completions"):
                request = json.loads(body or b"{}")
                if not request.get("stream"):
                    simple(writer, "400 Bad Request", b'{"error":{"message":"this upstream only streams"}}')
                else:
                    await stream_reply(writer, request.get("model", "bench"), args, st)
            else:
                simple(writer, "404 Not Found", b'{"error":{"message":"not found"}}')
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        st.connections -= 1
        writer.close()


def raise_open_files() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


async def main_async(args) -> None:
    st = Stats()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    server = await asyncio.start_server(lambda r, w: handle(r, w, args, st), sock=sock, backlog=args.backlog)
    print(f"streams upstream on 127.0.0.1:{args.port}: {args.deltas} deltas every {args.interval} s, "
          f"open files {raise_open_files()}, loop {type(asyncio.get_running_loop()).__module__}", flush=True)
    async with server:
        await server.serve_forever()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--deltas", type=int, default=60)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--backlog", type=int, default=4096)
    args = ap.parse_args()
    raise_open_files()
    try:
        run_loop(main_async(args))
    except KeyboardInterrupt:
        pass
    return 0


def run_loop(coro):
    """asyncio.run on uvloop when it is installed."""
    try:
        import uvloop  # type: ignore
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


if __name__ == "__main__":
    sys.exit(main())
