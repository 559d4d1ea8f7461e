"""Requests the HTTP parser itself rejects (issue 11, point 6): a bad Content-Length,
an oversized header, an unknown method, a broken request line or header line. Each
answer is a 4xx with the OpenAI error body (today: an empty body), and the server
stays alive."""

from __future__ import annotations

import httpx
import pytest

from rawhttp import NoResponse, check_openai_error, exchange


def _auth(srv) -> bytes:
    return f"Authorization: Bearer {srv.key}\r\n".encode()


CASES = {
    "content-length-abc": lambda s: (b"POST /v1/assistants HTTP/1.1\r\nHost: 127.0.0.1\r\n" + _auth(s)
                                     + b"Content-Type: application/json\r\nContent-Length: abc\r\n\r\n{}"),
    "content-length-negative": lambda s: (b"POST /v1/assistants HTTP/1.1\r\nHost: 127.0.0.1\r\n" + _auth(s)
                                          + b"Content-Type: application/json\r\nContent-Length: -5\r\n\r\n{}"),
    "content-length-conflict": lambda s: (b"POST /v1/assistants HTTP/1.1\r\nHost: 127.0.0.1\r\n" + _auth(s)
                                          + b"Content-Type: application/json\r\nContent-Length: 2\r\n"
                                            b"Content-Length: 3\r\n\r\n{}"),
    "header-100KB": lambda s: (b"GET /v1/assistants HTTP/1.1\r\nHost: 127.0.0.1\r\n" + _auth(s)
                               + b"X-Big: " + b"a" * 100_000 + b"\r\n\r\n"),
    "many-headers-100KB": lambda s: (b"GET /v1/assistants HTTP/1.1\r\nHost: 127.0.0.1\r\n" + _auth(s)
                                     + b"".join(b"X-H%d: %s\r\n" % (i, b"b" * 90) for i in range(1100)) + b"\r\n"),
    "unknown-method": lambda s: b"BREW / HTTP/1.1\r\nHost: 127.0.0.1\r\n" + _auth(s) + b"\r\n",
    "unknown-method-v1": lambda s: b"BREW /v1/assistants HTTP/1.1\r\nHost: 127.0.0.1\r\n" + _auth(s) + b"\r\n",
    "garbage-request-line": lambda s: b"this is not http\r\n\r\n",
    "header-without-colon": lambda s: (b"GET /v1/assistants HTTP/1.1\r\nHost: 127.0.0.1\r\n" + _auth(s)
                                       + b"this line has no colon\r\n\r\n"),
    "bad-chunk-size": lambda s: (b"POST /v1/assistants HTTP/1.1\r\nHost: 127.0.0.1\r\n" + _auth(s)
                                 + b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                                   b"zz\r\n{}\r\n0\r\n\r\n"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_parser_error_has_openai_body(victim, case):
    raw = CASES[case](victim)
    try:
        resp = exchange(victim.port, raw, timeout=15)
    except NoResponse as e:
        pytest.fail(f"{case}: no response ({e.why}); server "
                    + ("alive" if victim.is_running() else f"dead, exit {victim.proc.returncode}"))
    assert 400 <= resp.status < 500 or resp.status == 501, f"{case}: {resp!r}"
    err = check_openai_error(resp, case)
    assert err["type"] == "invalid_request_error" or resp.status == 501, err
    assert victim.is_running(), f"{case}: server died"
    assert httpx.get(victim.base_url + "/health", timeout=5).status_code == 200
