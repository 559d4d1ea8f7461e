"""API keys (ASSISTANTS_API_KEYS) and project isolation."""

import io
import secrets

import httpx
import openai
import pytest

from helpers import MODEL, check_error_body, expect_error, text_of


def _assert_401(r: httpx.Response):
    assert r.status_code == 401, f"{r.status_code}: {r.text[:300]}"
    body = check_error_body(r.json(), code="invalid_api_key")
    assert body["type"] in ("invalid_request_error", "authentication_error"), body


@pytest.fixture
def two(keyed_server):
    s, (a, b) = keyed_server(2)
    return s, a, b


def test_missing_and_wrong_keys_are_401(two):
    s, a, _ = two
    base = s.api_base
    _assert_401(httpx.get(base + "/assistants"))
    _assert_401(httpx.get(base + "/assistants", headers={"Authorization": "Bearer sk-wrong"}))
    _assert_401(httpx.get(base + "/assistants", headers={"Authorization": f"Basic {a.key}"}))
    _assert_401(httpx.get(base + "/assistants", headers={"Authorization": "Bearer"}))
    _assert_401(httpx.post(base + "/files", files={"file": ("a", b"a")}, data={"purpose": "assistants"}))
    _assert_401(httpx.get(base + "/files/file-x/content"))
    with expect_error(openai.AuthenticationError, code="invalid_api_key"):
        s.client(api_key="sk-nope").beta.threads.create()
    # a right key works, and /health needs none
    assert httpx.get(base + "/assistants", headers={"Authorization": f"Bearer {a.key}"}).status_code == 200
    assert httpx.get(s.base_url + "/health").status_code == 200


def test_projects_do_not_see_each_other(two):
    s, a, b = two
    ca, cb = a.client(), b.client()
    asst = ca.beta.assistants.create(model=MODEL, name="A's")
    thread = ca.beta.threads.create(messages=[{"role": "user", "content": "secret of A"}])
    msg = ca.beta.threads.messages.create(thread.id, role="user", content="more secrets")
    f = ca.files.create(file=("a.txt", io.BytesIO(b"A's bytes")), purpose="assistants")

    # B: 404 on every id of A
    for call in (lambda: cb.beta.assistants.retrieve(asst.id),
                 lambda: cb.beta.assistants.update(asst.id, name="pwned"),
                 lambda: cb.beta.assistants.delete(asst.id),
                 lambda: cb.beta.threads.retrieve(thread.id),
                 lambda: cb.beta.threads.update(thread.id, metadata={"x": "y"}),
                 lambda: cb.beta.threads.delete(thread.id),
                 lambda: cb.beta.threads.messages.list(thread.id),
                 lambda: cb.beta.threads.messages.retrieve(msg.id, thread_id=thread.id),
                 lambda: cb.beta.threads.messages.create(thread.id, role="user", content="hi"),
                 lambda: cb.files.retrieve(f.id),
                 lambda: cb.files.content(f.id),
                 lambda: cb.files.delete(f.id)):
        with expect_error(openai.NotFoundError):
            call()

    # ... and none of them in B's lists
    assert asst.id not in [x.id for x in cb.beta.assistants.list(limit=100)]
    assert f.id not in [x.id for x in cb.files.list()]
    assert list(cb.beta.assistants.list()) == []
    assert list(cb.files.list()) == []

    # A still has everything, unchanged
    assert ca.beta.assistants.retrieve(asst.id).name == "A's"
    assert [text_of(m) for m in ca.beta.threads.messages.list(thread.id, order="asc")] == [
        "secret of A", "more secrets"]
    assert ca.files.content(f.id).content == b"A's bytes"


def test_b_cannot_attach_a_file_or_use_a_thread(two):
    s, a, b = two
    ca, cb = a.client(), b.client()
    f = ca.files.create(file=("a.png", io.BytesIO(b"\x89PNG")), purpose="vision")
    t = cb.beta.threads.create()
    r = b.http().post(f"/threads/{t.id}/messages", json={
        "role": "user", "content": [{"type": "image_file", "image_file": {"file_id": f.id}}]})
    # referencing another project's file must not succeed silently
    assert r.status_code in (400, 404), r.text


def test_same_names_in_two_projects_are_separate(two):
    s, a, b = two
    x = a.client().beta.assistants.create(model=MODEL, name="same")
    y = b.client().beta.assistants.create(model=MODEL, name="same")
    assert x.id != y.id
    assert [i.id for i in a.client().beta.assistants.list()] == [x.id]
    assert [i.id for i in b.client().beta.assistants.list()] == [y.id]


def test_two_keys_one_project(server_factory):
    run = secrets.token_hex(4)
    keys = [("sk-first-key-1", f"proj_shared_{run}"), ("sk-second-key-2", f"proj_shared_{run}"),
            ("sk-other-3", f"proj_other_{run}")]
    s = server_factory(api_keys=keys)
    one = s.client(api_key="sk-first-key-1").beta.assistants.create(model=MODEL)
    assert s.client(api_key="sk-second-key-2").beta.assistants.retrieve(one.id).id == one.id
    with expect_error(openai.NotFoundError):
        s.client(api_key="sk-other-3").beta.assistants.retrieve(one.id)


def test_no_keys_means_open(server_factory):
    s = server_factory(api_keys=None)
    a = s.client(api_key="anything").beta.assistants.create(model=MODEL)
    assert s.client(api_key="something-else").beta.assistants.retrieve(a.id).id == a.id
    r = httpx.get(s.api_base + f"/assistants/{a.id}")  # no Authorization at all
    assert r.status_code == 200, r.text
