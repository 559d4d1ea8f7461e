"""Hostile multipart uploads to POST /v1/files (issue 11, points 1 and 6).

Every request is sent byte for byte on a raw socket (``Connection: close``) to a
keyed server of this module (``victim``, restarted when a test killed it). A request
must never crash the server, never get a 5xx, never lose its connection; a 4xx has
the OpenAI error body; a rejected upload stores nothing."""

from __future__ import annotations

import random
import time

import httpx
import pytest

from rawhttp import NoResponse, check_openai_error, exchange, request_bytes

BOUNDARY = "B"
MAX_RESTARTS = 3  # per test: after that many crashes a sweep stops and reports

# RFC 7230 tchar: the bytes a header name may hold.
TCHAR = set(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def part(headers: list, content: bytes) -> bytes:
    """One body part: header lines (bytes or str) and its content, without delimiters."""
    hs = b"".join((h.encode("latin-1") if isinstance(h, str) else h) + b"\r\n" for h in headers)
    return hs + b"\r\n" + content


def multipart(parts: list, boundary: str = BOUNDARY, close: bool = True) -> bytes:
    b = boundary.encode("latin-1")
    out = b"".join(b"--" + b + b"\r\n" + p + b"\r\n" for p in parts)
    return out + (b"--" + b + b"--\r\n" if close else b"")


def purpose_part(value: str = "assistants") -> bytes:
    return part(['Content-Disposition: form-data; name="purpose"'], value.encode())


def file_part(filename: str = "a.txt", content: bytes = b"hello", extra: list = (), disposition: str = None) -> bytes:
    disp = disposition or f'Content-Disposition: form-data; name="file"; filename="{filename}"'
    return part([disp, "Content-Type: text/plain", *extra], content)


def upload_request(srv, body: bytes, boundary: str = BOUNDARY, content_type: bytes = None,
                   content_length=None, extra_headers: dict = None) -> bytes:
    ct = content_type if content_type is not None else f"multipart/form-data; boundary={boundary}".encode("latin-1")
    h = {"Authorization": f"Bearer {srv.key}", "Connection": "close"}
    h.update(extra_headers or {})
    head = request_bytes("POST", "/v1/files", headers=h, body=b"", content_length=-1)
    head = head[:-2]  # drop the blank line: add Content-Type (raw bytes) and the length
    head += b"Content-Type: " + ct + b"\r\n"
    if content_length != -1:
        head += f"Content-Length: {len(body) if content_length is None else content_length}\r\n".encode()
    return head + b"\r\n" + body


def file_ids(srv) -> set:
    r = httpx.get(srv.api_base + "/files", params={"limit": 10000}, headers=srv.headers(), timeout=10)
    assert r.status_code == 200, r.text
    return {f["id"] for f in r.json()["data"]}


def assert_alive(srv, what: str = ""):
    assert srv.is_running(), f"{what}: the server died (exit code {srv.proc.returncode}); log:\n{srv.log_tail()[-3000:]}"
    r = httpx.get(srv.base_url + "/health", timeout=5)
    assert r.status_code == 200, f"{what}: GET /health -> {r.status_code}"


def assert_nothing_stored(srv, before: set, what: str):
    time.sleep(0.3)  # a cut connection is handled asynchronously
    new = file_ids(srv) - before
    assert not new, f"{what}: rejected upload stored {sorted(new)}"


class Sweep:
    """Send many requests; collect every problem (5xx, lost connection, crash, a 4xx
    without the OpenAI body, a 2xx where a 4xx was required); restart the server after
    a crash (at most MAX_RESTARTS times)."""

    def __init__(self, srv):
        self.srv = srv
        self.problems: list = []
        self.crashes = 0
        self.sent = 0
        self.statuses: dict = {}

    def send(self, label: str, raw: bytes, must_reject: bool = False) -> bool:
        """False when the sweep should stop (too many crashes)."""
        self.sent += 1
        try:
            resp = exchange(self.srv.port, raw, timeout=15)
        except NoResponse as e:
            running = self.srv.is_running()
            self.problems.append(f"{label}: no response ({e.why}); server "
                                 + ("alive" if running else f"DEAD, exit code {self.srv.proc.returncode}"))
            if not running:
                self.crashes += 1
                if self.crashes > MAX_RESTARTS:
                    self.problems.append(f"stopped after {self.crashes} crashes ({self.sent} requests sent)")
                    return False
                self.srv.start()
            return True
        except OSError as e:  # connect refused: the server is gone
            self.problems.append(f"{label}: {e!r}")
            if not self.srv.is_running():
                self.crashes += 1
                if self.crashes > MAX_RESTARTS:
                    return False
                self.srv.start()
            return True
        self.statuses[resp.status] = self.statuses.get(resp.status, 0) + 1
        if resp.status >= 500:
            self.problems.append(f"{label}: HTTP {resp.status}: {resp.body[:200]!r}")
        elif resp.status >= 400:
            try:
                check_openai_error(resp, label)
            except AssertionError as e:
                self.problems.append(str(e))
        elif must_reject:
            self.problems.append(f"{label}: HTTP {resp.status}, a 4xx was required: {resp.body[:200]!r}")
        return True

    def finish(self, what: str):
        alive_problem = None
        try:
            assert_alive(self.srv, what)
        except AssertionError as e:
            alive_problem = str(e)
        problems = self.problems + ([alive_problem] if alive_problem else [])
        assert not problems, (f"{what}: {len(problems)} problem(s) in {self.sent} requests "
                              f"(statuses {self.statuses}):\n" + "\n".join(problems[:40]))


def _hexb(b: int) -> str:
    return f"0x{b:02x}"


# --------------------------------------------------------------------------- every byte value


def test_every_byte_in_part_header_name(victim):
    """A byte 0..255 inside a part's header name (``X-H<b>: v``). Bytes that cannot be
    in a header name (controls, >= 0x80) must get a 4xx; none may crash the server
    (today a byte >= 0x80 kills it with SIGILL)."""
    sw = Sweep(victim)
    for b in range(256):
        name = b"X-H" + bytes([b])
        body = multipart([purpose_part(), file_part(extra=[name + b": v"])])
        must = (b < 0x20 and b != 0x09) or b >= 0x7F
        if not sw.send(f"header name byte {_hexb(b)}", upload_request(victim, body), must_reject=must):
            break
    sw.finish("header-name byte sweep")


def test_every_byte_in_part_header_value(victim):
    """A byte 0..255 inside a part's header value (``X-V: a<b>b``): never a crash or 5xx;
    a 4xx has the OpenAI body."""
    sw = Sweep(victim)
    for b in range(256):
        body = multipart([purpose_part(), file_part(extra=[b"X-V: a" + bytes([b]) + b"b"])])
        if not sw.send(f"header value byte {_hexb(b)}", upload_request(victim, body)):
            break
    sw.finish("header-value byte sweep")


def test_every_byte_in_boundary_line(victim):
    """A byte 0..255 after the opening delimiter (``--B<b>\\r\\n``): the line is no longer a
    delimiter (except for transport padding, space or tab), so there is no file part:
    a 4xx with the OpenAI body; never a crash or 5xx."""
    sw = Sweep(victim)
    for b in range(256):
        body = multipart([purpose_part(), file_part()])
        body = b"--B" + bytes([b]) + body[len(b"--B"):]
        must = b not in (0x20, 0x09)
        if not sw.send(f"boundary line byte {_hexb(b)}", upload_request(victim, body), must_reject=must):
            break
    sw.finish("boundary-line byte sweep")


def test_every_byte_in_content_disposition_name(victim):
    """A byte 0..255 in the header name of the Content-Disposition line itself
    (``Content-Dispositio<b>``) and as the first byte of a header line: never a crash or 5xx."""
    sw = Sweep(victim)
    for b in range(256):
        body = multipart([purpose_part(), file_part(
            disposition='Content-Dispositio' + chr(b) + ': form-data; name="file"; filename="a.txt"')])
        if not sw.send(f"Content-Disposition name byte {_hexb(b)}", upload_request(victim, body),
                       must_reject=(b not in (ord("n"), ord("N")))):
            break
        body = multipart([purpose_part(), file_part(extra=[bytes([b]) + b"X: v"])])
        if not sw.send(f"first byte of a header line {_hexb(b)}", upload_request(victim, body)):
            break
    sw.finish("Content-Disposition byte sweep")


def test_issue_reproducer_40_bytes(victim):
    """The issue's 40-byte body: ``--B\\r\\n\\xff: x\\r\\n\\r\\nabc\\r\\n--B--\\r\\n`` -> 400, alive."""
    resp = exchange(victim.port, upload_request(victim, b"--B\r\n\xff: x\r\n\r\nabc\r\n--B--\r\n"), timeout=15)
    assert 400 <= resp.status < 500, resp
    check_openai_error(resp, "40-byte reproducer")
    assert_alive(victim, "40-byte reproducer")


def test_utf8_header_name(victim):
    """An ordinary UTF-8 header name (``été: x``) in a part: 400, alive."""
    body = multipart([purpose_part(), file_part(extra=["été: x".encode()])])
    resp = exchange(victim.port, upload_request(victim, body), timeout=15)
    assert 400 <= resp.status < 500, resp
    check_openai_error(resp, "UTF-8 header name")
    assert_alive(victim, "UTF-8 header name")


# --------------------------------------------------------------------------- random bodies


def _random_bytes(rng: random.Random, n: int) -> bytes:
    return bytes(rng.randrange(256) for _ in range(n))


def _mutate(rng: random.Random, data: bytes) -> bytes:
    data = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(7)
        pos = rng.randrange(len(data) + 1) if data else 0
        if op == 0 and data:  # flip a byte
            data[min(pos, len(data) - 1)] = rng.randrange(256)
        elif op == 1:  # insert random bytes
            data[pos:pos] = _random_bytes(rng, rng.randint(1, 8))
        elif op == 2 and data:  # delete a range
            del data[pos:pos + rng.randint(1, 16)]
        elif op == 3 and data:  # duplicate a range
            end = min(len(data), pos + rng.randint(1, 40))
            data[pos:pos] = data[pos:end]
        elif op == 4:  # structural tokens
            data[pos:pos] = rng.choice([b"\r\n", b"\r", b"\n", b"--B", b"\r\n--B\r\n", b"\r\n--B--", b":",
                                        b'"', b";", b"\\", b"=", b"\x00", b"\xff\xfe", "é".encode()])
        elif op == 5:  # truncate
            del data[pos:]
        else:  # a random header line after a delimiter
            idx = data.find(b"--B\r\n", rng.randrange(len(data) + 1)) if data else -1
            if idx >= 0:
                at = idx + 5
                data[at:at] = _random_bytes(rng, rng.randint(0, 6)) + b":" + _random_bytes(rng, rng.randint(0, 6)) + b"\r\n"
    return bytes(data)


def _random_case(rng: random.Random) -> tuple:
    """(label, body, boundary bytes for the Content-Type)."""
    kind = rng.randrange(5)
    base = multipart([purpose_part(), file_part(filename=rng.choice(["a.txt", "r;v2.pdf", "x y.md", "é.txt"]),
                                                content=_random_bytes(rng, rng.randint(0, 64)))])
    if kind == 0:
        return "mutated", _mutate(rng, base), b"B"
    if kind == 1:
        return "random bytes", _random_bytes(rng, rng.randint(0, 300)), b"B"
    if kind == 2:
        cut = rng.randrange(len(base))
        return f"truncated at {cut}", base[:cut], b"B"
    if kind == 3:  # odd boundary in the Content-Type
        bnd = rng.choice([b"", b'""', b'"B"', b"B" * 200, b"B" * 71, _random_bytes(rng, 5).replace(b"\r", b"").replace(b"\n", b""),
                          b"\xe9t\xe9", b"B; boundary=C", b"B\x00", b" B ", b"--", b"B\"", b"\"B"])
        return f"boundary {bnd[:20]!r}", base, bnd
    # many parts
    parts = [purpose_part()] + [file_part(filename=f"f{i}.txt") if rng.random() < 0.3
                                else part([f'Content-Disposition: form-data; name="n{i}"'], _random_bytes(rng, 8))
                                for i in range(rng.randint(0, 40))]
    return "many parts", _mutate(rng, multipart(parts)) if rng.random() < 0.5 else multipart(parts), b"B"


def test_random_multipart_bodies(victim):
    """200 random multipart bodies from random.Random(1234) (mutations of a valid upload,
    random bytes, truncations, odd boundaries, many parts): never a 5xx, never a lost
    connection, a 4xx has the OpenAI body, the server stays alive."""
    rng = random.Random(1234)
    sw = Sweep(victim)
    for i in range(200):
        label, body, bnd = _random_case(rng)
        raw = upload_request(victim, body, content_type=b"multipart/form-data; boundary=" + bnd)
        if not sw.send(f"random #{i} ({label})", raw):
            break
        if i % 25 == 24 and victim.is_running():
            try:
                assert_alive(victim, f"after random #{i}")
            except AssertionError as e:
                sw.problems.append(str(e))
    sw.finish("random multipart bodies")


# --------------------------------------------------------------------------- cut short, unterminated, two files


def _expect_400_or_closed(srv, raw: bytes, what: str, *, shut_wr=False, close_after_send=False):
    before = file_ids(srv)
    try:
        resp = exchange(srv.port, raw, timeout=15, shut_wr=shut_wr, close_after_send=close_after_send)
    except NoResponse as e:
        resp = None
        why = e.why
    if resp is not None:
        assert resp.status == 400, f"{what}: expected 400, got {resp!r}"
        check_openai_error(resp, what)
    else:
        assert close_after_send or shut_wr, f"{what}: no response ({why})"
    assert_alive(srv, what)
    assert_nothing_stored(srv, before, what)


def test_upload_cut_short_half_close(victim):
    """Content-Length larger than what is sent, then the client half-closes: 400 (today 500)
    or a closed connection; nothing stored, server alive."""
    body = multipart([purpose_part(), file_part(content=b"x" * 2000)])
    raw = upload_request(victim, body[:1000], content_length=len(body))
    _expect_400_or_closed(victim, raw, "upload cut short (half-close)", shut_wr=True)


def test_upload_cut_short_close(victim):
    """Content-Length larger than what is sent, then the client closes: nothing stored,
    server alive."""
    body = multipart([purpose_part(), file_part(content=b"y" * 2000)])
    raw = upload_request(victim, body[:1000], content_length=len(body))
    _expect_400_or_closed(victim, raw, "upload cut short (close)", close_after_send=True)


def test_upload_cut_short_chunked(victim):
    """A chunked upload whose chunk stream ends early (no last chunk), then half-close:
    400 or a closed connection; nothing stored, server alive."""
    body = multipart([purpose_part(), file_part(content=b"z" * 2000)])
    half = body[:1200]
    chunked = f"{len(half):x}\r\n".encode() + half + b"\r\n"
    raw = upload_request(victim, chunked, content_length=-1, extra_headers={"Transfer-Encoding": "chunked"})
    _expect_400_or_closed(victim, raw, "chunked upload cut short", shut_wr=True)


def test_upload_cut_short_inside_chunk(victim):
    """A chunk announced at 4,096 bytes of which 100 arrive, then half-close."""
    body = multipart([purpose_part(), file_part(content=b"w" * 5000)])
    chunked = b"1000\r\n" + body[:100]
    raw = upload_request(victim, chunked, content_length=-1, extra_headers={"Transfer-Encoding": "chunked"})
    _expect_400_or_closed(victim, raw, "chunk cut short", shut_wr=True)


@pytest.mark.parametrize("ending", ["after content", "after CRLF", "after delimiter", "after delimiter CRLF",
                                    "chunked, complete"])
def test_no_closing_boundary(victim, ending):
    """A well-framed body whose multipart has no closing boundary: 400, nothing stored
    (today it is stored as if complete)."""
    body = multipart([purpose_part(), file_part(content=b"unterminated")], close=False)
    body = body[:-2]  # ends right after the file's content
    body += {"after content": b"", "after CRLF": b"\r\n", "after delimiter": b"\r\n--B",
             "after delimiter CRLF": b"\r\n--B\r\n", "chunked, complete": b""}[ending]
    if ending.startswith("chunked"):
        chunked = f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
        raw = upload_request(victim, chunked, content_length=-1, extra_headers={"Transfer-Encoding": "chunked"})
    else:
        raw = upload_request(victim, body)
    _expect_400_or_closed(victim, raw, f"no closing boundary ({ending})")


def test_two_file_parts(victim):
    """Two ``file`` parts: 400, nothing stored (today: first part's bytes, second's name)."""
    body = multipart([purpose_part(), file_part("first.txt", b"first bytes"), file_part("second.txt", b"second")])
    _expect_400_or_closed(victim, upload_request(victim, body), "two file parts")


def test_two_file_parts_purpose_between(victim):
    body = multipart([file_part("first.txt", b"first bytes"), purpose_part(), file_part("second.txt", b"second")])
    _expect_400_or_closed(victim, upload_request(victim, body), "two file parts around purpose")


# --------------------------------------------------------------------------- filenames


@pytest.mark.parametrize("disposition,expected", [
    ('form-data; name="file"; filename="report;v2.pdf"', "report;v2.pdf"),
    ('form-data; name="file"; filename="a; b=c.txt"', "a; b=c.txt"),
    ("form-data; name=\"file\"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt", "résumé.txt"),
    ("form-data; name=\"file\"; filename=\"resume.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9.txt", "résumé.txt"),
    ('form-data; filename="x;y.txt"; name="file"', "x;y.txt"),
], ids=["semicolon", "semicolon-equals", "filename-star", "filename-and-star", "filename-first"])
def test_quoted_filename(victim, disposition, expected):
    """Quoted filenames per RFC 7578 / RFC 6266: a ``;`` inside quotes is part of the
    name (today ``report;v2.pdf`` is stored as ``"report``); ``filename*`` is decoded."""
    body = multipart([purpose_part(), part(["Content-Disposition: " + disposition, "Content-Type: text/plain"],
                                           b"named")])
    resp = exchange(victim.port, upload_request(victim, body), timeout=15)
    assert resp.status == 200, resp
    fid = resp.json()["id"]
    r = httpx.get(f"{victim.api_base}/files/{fid}", headers=victim.headers(), timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["filename"] == expected, r.json()
    assert resp.json()["filename"] == expected, resp.json()


@pytest.mark.parametrize("name", ["a\rb.txt", "a\nb.txt", "a\r\nb.txt", "a\x00b.txt", "a\x01b.txt",
                                  "a\x1bb.txt", "a\x7fb.txt", "star:a%0Ab.txt", "star:a%00b.txt"],
                         ids=["CR", "LF", "CRLF", "NUL", "SOH", "ESC", "DEL", "star-LF", "star-NUL"])
def test_filename_with_control_character(victim, name):
    """A filename holding a control character (raw, or %-encoded in ``filename*``): 400,
    nothing stored."""
    if name.startswith("star:"):
        disp = "Content-Disposition: form-data; name=\"file\"; filename*=UTF-8''" + name[5:]
    else:
        disp = f'Content-Disposition: form-data; name="file"; filename="{name}"'
    body = multipart([purpose_part(), part([disp.encode("latin-1"), b"Content-Type: text/plain"], b"ctl")])
    _expect_400_or_closed(victim, upload_request(victim, body), f"filename {name!r}")


def test_valid_upload_still_works(victim):
    """The control: a well-formed raw upload is stored with its bytes."""
    body = multipart([purpose_part(), file_part("ok.txt", b"fine")])
    resp = exchange(victim.port, upload_request(victim, body), timeout=15)
    assert resp.status == 200, resp
    d = resp.json()
    assert d["filename"] == "ok.txt" and d["bytes"] == 4, d
    r = httpx.get(f"{victim.api_base}/files/{d['id']}/content", headers=victim.headers(), timeout=10)
    assert r.content == b"fine"
