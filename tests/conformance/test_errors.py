"""Error classes and bodies: SDK exception mapping, malformed input, no 5xx on garbage."""

import json

import openai
import pytest

from helpers import MODEL, check_error_body, expect_error, expect_http_error


def test_not_found_error_class_and_body(client):
    with pytest.raises(openai.NotFoundError) as ei:
        client.beta.assistants.retrieve("asst_missing123")
    e = ei.value
    assert e.status_code == 404
    body = check_error_body(e.body, type="invalid_request_error", code="<any>")
    assert body["message"] == "No assistant found with id 'asst_missing123'."
    assert "json" in e.response.headers["content-type"]


@pytest.mark.parametrize("call,kind,oid", [
    (lambda c: c.beta.threads.retrieve("thread_missing1"), "thread", "thread_missing1"),
    (lambda c: c.files.retrieve("file-missing1"), "file", "file-missing1"),
])
def test_not_found_messages(client, call, kind, oid):
    with pytest.raises(openai.NotFoundError) as ei:
        call(client)
    assert oid in ei.value.body["message"]
    assert kind in ei.value.body["message"]


def test_bad_request_error_class_and_body(client):
    with pytest.raises(openai.BadRequestError) as ei:
        client.beta.assistants.create(model=MODEL, temperature=9)
    e = ei.value
    assert e.status_code == 400
    check_error_body(e.body, type="invalid_request_error", param="temperature")


def test_authentication_error_class(keyed_server):
    s, (t,) = keyed_server(1)
    bad = s.client(api_key="sk-wrong")
    with expect_error(openai.AuthenticationError, status=401, code="invalid_api_key"):
        bad.beta.assistants.list()


def test_full_error_envelope_over_http(http):
    r = http.get("/assistants/asst_nothere")
    assert r.status_code == 404
    body = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) >= {"message", "type", "param", "code"}


def _post_raw(http, path, content: bytes, ctype="application/json"):
    return http.post(path, content=content, headers={"Content-Type": ctype})


@pytest.mark.parametrize("path", ["/assistants", "/threads"])
def test_malformed_json(http, path):
    r = _post_raw(http, path, b'{"model": "gpt-4o-mini",')
    expect_http_error(r, 400, type="invalid_request_error")


@pytest.mark.parametrize("payload", [b"[]", b"[1,2]", b'"a string"', b"42", b"null", b"true"])
def test_non_object_json(http, payload):
    r = _post_raw(http, "/assistants", payload)
    expect_http_error(r, 400, type="invalid_request_error")


def test_malformed_json_on_message_and_modify(client, http):
    t = client.beta.threads.create()
    expect_http_error(_post_raw(http, f"/threads/{t.id}/messages", b"{role: user}"), 400)
    a = client.beta.assistants.create(model=MODEL)
    expect_http_error(_post_raw(http, f"/assistants/{a.id}", b"{{{"), 400)
    expect_http_error(_post_raw(http, f"/threads/{t.id}", b"[]"), 400)


GARBAGE = [
    b"",
    b"\x00\x01\x02\xff\xfe",
    b"{" * 5000,
    b'{"model": "' + b"\xff\xfe" + b'"}',
    json.dumps({"model": MODEL, "metadata": {"a": {"b": {"c": [1, 2, {"d": None}]}}}}).encode(),
    json.dumps({"model": MODEL, "tools": [{"type": "function"}]}).encode(),
    json.dumps({"model": MODEL, "tools": [{"type": "function", "function": {}}]}).encode(),
    json.dumps({"model": MODEL, "tools": [None]}).encode(),
    b'{"model": "gpt-4o-mini", "temperature": 1e999}',
    json.dumps({"model": ""}).encode(),
    json.dumps({"model": MODEL, "name": None, "response_format": {"type": "weird"}}).encode(),
]


@pytest.mark.parametrize("i", range(len(GARBAGE)))
def test_no_5xx_on_garbage_assistant_create(http, i):
    r = _post_raw(http, "/assistants", GARBAGE[i])
    assert r.status_code < 500, f"{r.status_code}: {r.text[:300]}"
    if r.status_code >= 400:
        check_error_body(r.json())


@pytest.mark.parametrize("body", [
    {"role": "user", "content": [{"type": "text"}]},
    {"role": "user", "content": [{"type": "text", "text": 5}]},
    {"role": "user", "content": [{"type": "image_file"}]},
    {"role": "user", "content": [{"type": "image_url", "image_url": {}}]},
    {"role": "user", "content": []},
    {"role": "user", "content": "x", "attachments": "nope"},
    {"role": "user", "content": "x", "attachments": [{"tools": []}]},
    {"role": 5, "content": "x"},
])
def test_no_5xx_on_bad_messages(client, http, body):
    t = client.beta.threads.create()
    r = http.post(f"/threads/{t.id}/messages", json=body)
    assert 400 <= r.status_code < 500, f"{r.status_code}: {r.text[:300]}"
    check_error_body(r.json())


@pytest.mark.parametrize("path", ["/assistants/%00", "/assistants/" + "a" * 5000, "/threads/'%3B--",
                                  "/files/..%2F..%2Fetc%2Fpasswd", "/files/..%2F..%2Fetc%2Fpasswd/content"])
def test_no_5xx_on_weird_ids(http, path):
    r = http.get(path)
    assert 400 <= r.status_code < 500, f"{r.status_code}: {r.text[:300]}"


def test_unknown_route_is_json_404(http):
    r = http.get("/no_such_thing")
    assert r.status_code == 404
    check_error_body(r.json())


def test_wrong_method(http):
    r = http.put("/assistants", json={"model": MODEL})
    assert r.status_code in (404, 405), r.status_code
    assert r.status_code < 500


def test_wrong_content_type_json_body(http):
    r = http.post("/assistants", content=b"model=gpt-4o-mini", headers={"Content-Type": "text/plain"})
    assert 400 <= r.status_code < 500, r.text
