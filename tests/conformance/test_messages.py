"""Messages: content forms, attachments, metadata, delete, role validation, filters."""

import io
import time

import openai
import pytest

from helpers import check_deleted, check_message, expect_error, expect_http_error, raw, text_of

PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082")


@pytest.fixture
def thread(client):
    return client.beta.threads.create()


def upload(client, data: bytes = b"hello", name: str = "a.txt", purpose: str = "assistants"):
    return client.files.create(file=(name, io.BytesIO(data)), purpose=purpose)


def test_create_string_content_shape(client, thread):
    m = client.beta.threads.messages.create(thread.id, role="user", content="Hello there")
    d = check_message(m, thread_id=thread.id, role="user", assistant_id=None, run_id=None, status="completed",
                      incomplete_details=None, incomplete_at=None)
    assert d["content"] == [{"type": "text", "text": {"value": "Hello there", "annotations": []}}]
    assert d["attachments"] in ([], None)
    assert d["metadata"] in ({}, None)
    assert d["completed_at"] is None or isinstance(d["completed_at"], int)
    assert raw(client.beta.threads.messages.retrieve(m.id, thread_id=thread.id)) == d


def test_assistant_role_message(client, thread):
    m = client.beta.threads.messages.create(thread.id, role="assistant", content="I am the assistant")
    check_message(m, role="assistant", assistant_id=None, run_id=None)
    assert text_of(m) == "I am the assistant"


def test_array_content_text_parts(client, thread):
    m = client.beta.threads.messages.create(thread.id, role="user", content=[
        {"type": "text", "text": "part one"}, {"type": "text", "text": "part two"}])
    d = check_message(m)
    assert d["content"] == [
        {"type": "text", "text": {"value": "part one", "annotations": []}},
        {"type": "text", "text": {"value": "part two", "annotations": []}},
    ]


def test_image_url_and_image_file_parts(client, thread):
    f = upload(client, PNG_1PX, "pixel.png", purpose="vision")
    m = client.beta.threads.messages.create(thread.id, role="user", content=[
        {"type": "text", "text": "What is in these images?"},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "high"}},
        {"type": "image_file", "image_file": {"file_id": f.id, "detail": "low"}},
    ])
    d = check_message(m)
    assert [p["type"] for p in d["content"]] == ["text", "image_url", "image_file"]
    assert d["content"][1]["image_url"]["url"] == "https://example.com/cat.png"
    assert d["content"][1]["image_url"]["detail"] == "high"
    assert d["content"][2]["image_file"]["file_id"] == f.id
    assert d["content"][2]["image_file"]["detail"] == "low"
    assert raw(client.beta.threads.messages.retrieve(m.id, thread_id=thread.id))["content"] == d["content"]


def test_image_url_without_detail(client, thread):
    m = client.beta.threads.messages.create(thread.id, role="user", content=[
        {"type": "image_url", "image_url": {"url": "https://example.com/dog.jpg"}}])
    part = raw(m)["content"][0]
    assert part["type"] == "image_url"
    assert part["image_url"]["url"] == "https://example.com/dog.jpg"
    assert part["image_url"].get("detail") in (None, "auto")


def test_attachments_round_trip(client, thread):
    f1 = upload(client, b"data 1", "one.csv")
    f2 = upload(client, b"data 2", "two.py")
    att = [{"file_id": f1.id, "tools": [{"type": "code_interpreter"}]},
           {"file_id": f2.id, "tools": [{"type": "code_interpreter"}]}]
    m = client.beta.threads.messages.create(thread.id, role="user", content="see files", attachments=att)
    d = check_message(m)
    assert d["attachments"] == att
    assert raw(client.beta.threads.messages.retrieve(m.id, thread_id=thread.id))["attachments"] == att


def test_metadata_and_modify_replaces(client, thread):
    m = client.beta.threads.messages.create(thread.id, role="user", content="x", metadata={"a": "1", "b": "2"})
    assert raw(m)["metadata"] == {"a": "1", "b": "2"}
    u = client.beta.threads.messages.update(m.id, thread_id=thread.id, metadata={"c": "3"})
    d = check_message(u, id=m.id, metadata={"c": "3"})
    assert d["content"] == raw(m)["content"]
    assert raw(client.beta.threads.messages.retrieve(m.id, thread_id=thread.id))["metadata"] == {"c": "3"}


def test_delete_message(client, thread):
    m1 = client.beta.threads.messages.create(thread.id, role="user", content="keep")
    m2 = client.beta.threads.messages.create(thread.id, role="user", content="drop")
    check_deleted(client.beta.threads.messages.delete(m2.id, thread_id=thread.id), m2.id,
                  "thread.message.deleted")
    with expect_error(openai.NotFoundError, message_contains=m2.id):
        client.beta.threads.messages.retrieve(m2.id, thread_id=thread.id)
    assert [m.id for m in client.beta.threads.messages.list(thread.id)] == [m1.id]


def test_message_of_other_thread_is_404(client, thread):
    other = client.beta.threads.create()
    m = client.beta.threads.messages.create(other.id, role="user", content="elsewhere")
    with expect_error(openai.NotFoundError):
        client.beta.threads.messages.retrieve(m.id, thread_id=thread.id)


def test_unknown_thread_and_message(client, thread):
    with expect_error(openai.NotFoundError, message_contains="thread_missing"):
        client.beta.threads.messages.create("thread_missing", role="user", content="x")
    with expect_error(openai.NotFoundError, message_contains="msg_missing"):
        client.beta.threads.messages.retrieve("msg_missing", thread_id=thread.id)


def test_run_id_filter(client, thread):
    client.beta.threads.messages.create(thread.id, role="user", content="not from a run")
    page = client.beta.threads.messages.list(thread.id, run_id="run_doesnotexist")
    assert page.data == []
    assert page.has_more is False


def test_list_order_and_created_at(client, thread):
    made = [client.beta.threads.messages.create(thread.id, role="user", content=f"m{i}") for i in range(5)]
    asc = [m.id for m in client.beta.threads.messages.list(thread.id, order="asc")]
    assert asc == [m.id for m in made]
    ts = [m.created_at for m in made]
    assert ts == sorted(ts)
    assert all(abs(t - time.time()) < 300 for t in ts)


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("role", ["system", "tool", "developer", "", "USER"])
def test_invalid_role(client, thread, role):
    with expect_error(openai.BadRequestError, type="invalid_request_error", param="role"):
        client.beta.threads.messages.create(thread.id, role=role, content="x")


def test_missing_fields(http, thread):
    expect_http_error(http.post(f"/threads/{thread.id}/messages", json={"content": "x"}), 400, param="role")
    expect_http_error(http.post(f"/threads/{thread.id}/messages", json={"role": "user"}), 400, param="content")


@pytest.mark.parametrize("content", [5, {"type": "text"}, None])
def test_content_wrong_type(http, thread, content):
    r = http.post(f"/threads/{thread.id}/messages", json={"role": "user", "content": content})
    expect_http_error(r, 400, type="invalid_request_error", param="content")


def test_unknown_content_part_type(http, thread):
    r = http.post(f"/threads/{thread.id}/messages",
                  json={"role": "user", "content": [{"type": "video", "video": {}}]})
    body = expect_http_error(r, 400, type="invalid_request_error")
    assert body["param"] and body["param"].startswith("content"), body


def test_text_too_long(client, thread):
    with expect_error(openai.BadRequestError, param="content"):
        client.beta.threads.messages.create(thread.id, role="user", content="x" * 256001)
    m = client.beta.threads.messages.create(thread.id, role="user", content="y" * 256000)
    assert len(text_of(m)) == 256000


def test_metadata_limits(client, thread):
    with expect_error(openai.BadRequestError, param="metadata"):
        client.beta.threads.messages.create(thread.id, role="user", content="x",
                                            metadata={f"k{i}": "v" for i in range(17)})
    m = client.beta.threads.messages.create(thread.id, role="user", content="x")
    with expect_error(openai.BadRequestError, param="metadata"):
        client.beta.threads.messages.update(m.id, thread_id=thread.id, metadata={"k" * 65: "v"})
