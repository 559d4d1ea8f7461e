"""A minimal HTTP/1.1 keep-alive client for the benchmark drivers, on asyncio streams.

httpx spends about 2 ms of CPU per request; at a few hundred runs per second the driver then
needs a whole core of this 2-core machine and the server under test sees its requests trickle
in one at a time. This client does only what the drivers need (one connection per worker,
JSON bodies, Content-Length or chunked responses) and costs a fraction of that.
Loopback only; no TLS, no redirects, no proxies.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import urlsplit


class Response:
    """A response: status, raw body, and the body parsed as JSON on demand."""

    def __init__(self, status: int, body: bytes) -> None:
        self.status_code = status
        self.content = body

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.content)


class Connection:
    """One persistent connection to the server; one request at a time."""

    def __init__(self, base_url: str, headers: dict[str, str], timeout: float = 30.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError(f"loopback http only: {base_url}")
        self.host = parts.hostname
        self.port = parts.port or 80
        self.prefix = parts.path.rstrip("/")
        fixed = {"Host": f"{self.host}:{self.port}", "Accept": "application/json", **headers}
        self.fixed_headers = "".join(f"{k}: {v}\r\n" for k, v in fixed.items()).encode()
        self.timeout = timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None

    async def get(self, path: str) -> Response:
        return await self.request("GET", path)

    async def post(self, path: str, json=None) -> Response:  # noqa: A002 (httpx's keyword)
        return await self.request("POST", path, json)

    async def request(self, method: str, path: str, json_body=None) -> Response:
        body = b"" if json_body is None else json.dumps(json_body).encode()
        head = f"{method} {self.prefix}{path} HTTP/1.1\r\n".encode() + self.fixed_headers
        if json_body is not None or method == "POST":
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n".encode()
        message = head + b"\r\n" + body
        # A kept-alive connection the server closed meanwhile is opened again once.
        for attempt in (1, 2):
            fresh = self.writer is None
            if fresh:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            try:
                self.writer.write(message)
                return await asyncio.wait_for(self._read_response(), self.timeout)
            except (ConnectionError, asyncio.IncompleteReadError):
                await self.close()
                if fresh or attempt == 2:
                    raise
            except BaseException:
                await self.close()
                raise
        raise ConnectionError("unreachable")

    async def _read_response(self) -> Response:
        reader = self.reader
        assert reader is not None
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
            body = b"".join(chunks)
        else:
            body = await reader.read()
            await self.close()
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return Response(status, body)
