"""Threads: create (with initial messages) / retrieve / modify / delete."""

import openai
import pytest

from helpers import check_deleted, check_message, check_thread, expect_error, expect_http_error, raw, text_of


def test_create_empty_thread_shape(client):
    t = client.beta.threads.create()
    d = check_thread(t)
    assert d["metadata"] in ({}, None)
    assert d["tool_resources"] in (None, {}) or isinstance(d["tool_resources"], dict)
    assert raw(client.beta.threads.retrieve(t.id)) == d


def test_create_with_metadata_and_retrieve(client):
    t = client.beta.threads.create(metadata={"user": "jane", "plan": "premium"})
    check_thread(t, metadata={"user": "jane", "plan": "premium"})
    assert raw(client.beta.threads.retrieve(t.id))["metadata"] == {"user": "jane", "plan": "premium"}


def test_create_with_initial_messages(client):
    t = client.beta.threads.create(messages=[
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "second"},
        {"role": "user", "content": [{"type": "text", "text": "third"}], "metadata": {"n": "3"}},
    ])
    msgs = list(client.beta.threads.messages.list(t.id, order="asc"))
    assert [text_of(m) for m in msgs] == ["first", "second", "third"]
    assert [m.role for m in msgs] == ["user", "assistant", "user"]
    for m in msgs:
        check_message(m, thread_id=t.id, assistant_id=None, run_id=None, status="completed")
    assert raw(msgs[2])["metadata"] == {"n": "3"}
    # desc (default) is the reverse
    assert [m.id for m in client.beta.threads.messages.list(t.id)] == [m.id for m in reversed(msgs)]


def test_create_with_invalid_initial_message(http):
    r = http.post("/threads", json={"messages": [{"role": "system", "content": "x"}]})
    body = expect_http_error(r, 400, type="invalid_request_error")
    assert body["param"] and "role" in body["param"], body
    r = http.post("/threads", json={"messages": [{"role": "user"}]})
    body = expect_http_error(r, 400, type="invalid_request_error")
    assert body["param"] and "content" in body["param"], body


def test_invalid_initial_message_creates_nothing(client, http):
    r = http.post("/threads", json={"messages": [{"role": "user", "content": "ok"},
                                                 {"role": "robot", "content": "bad"}]})
    assert r.status_code == 400
    # nothing to list threads with; at least the request did not half-succeed with an id
    assert "id" not in r.json()


def test_modify_replaces_metadata(client):
    t = client.beta.threads.create(metadata={"a": "1", "b": "2"})
    m = client.beta.threads.update(t.id, metadata={"c": "3"})
    check_thread(m, id=t.id, metadata={"c": "3"}, created_at=t.created_at)
    assert raw(client.beta.threads.retrieve(t.id))["metadata"] == {"c": "3"}


def test_modify_metadata_limits(client):
    t = client.beta.threads.create()
    with expect_error(openai.BadRequestError, type="invalid_request_error", param="metadata"):
        client.beta.threads.update(t.id, metadata={f"k{i}": "v" for i in range(17)})
    with expect_error(openai.BadRequestError, param="metadata"):
        client.beta.threads.create(metadata={"k": "v" * 513})


def test_delete_thread_removes_messages(client):
    t = client.beta.threads.create(messages=[{"role": "user", "content": "hello"}])
    m = client.beta.threads.messages.create(t.id, role="user", content="again")
    check_deleted(client.beta.threads.delete(t.id), t.id, "thread.deleted")
    with expect_error(openai.NotFoundError, message_contains=t.id):
        client.beta.threads.retrieve(t.id)
    with expect_error(openai.NotFoundError):
        client.beta.threads.messages.retrieve(m.id, thread_id=t.id)
    with expect_error(openai.NotFoundError):
        client.beta.threads.messages.list(t.id)
    with expect_error(openai.NotFoundError):
        client.beta.threads.messages.create(t.id, role="user", content="x")
    with expect_error(openai.NotFoundError):
        client.beta.threads.delete(t.id)
    with expect_error(openai.NotFoundError):
        client.beta.threads.update(t.id, metadata={})


def test_unknown_thread_404(client):
    with expect_error(openai.NotFoundError, status=404, type="invalid_request_error",
                      message_contains="thread_nope"):
        client.beta.threads.retrieve("thread_nope")


@pytest.mark.parametrize("body", [{"metadata": 3}, {"messages": "hi"}, {"messages": [3]}])
def test_create_wrong_types(http, body):
    r = http.post("/threads", json=body)
    b = expect_http_error(r, 400, type="invalid_request_error")
    assert b["param"] is not None and b["param"].split(".")[0].split("[")[0] in body, b
