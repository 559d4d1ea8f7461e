"""Files: multipart upload, retrieve, byte-exact download, list (purpose filter), delete."""

import hashlib
import io
import os

import openai
import pytest

from helpers import check_deleted, check_file, expect_error, expect_http_error, raw


def upload(client, data: bytes, name: str = "notes.txt", purpose: str = "assistants"):
    return client.files.create(file=(name, io.BytesIO(data)), purpose=purpose)


def test_upload_shape_and_retrieve(client):
    data = b"The quick brown fox jumps over the lazy dog.\n"
    f = upload(client, data, "fox.txt")
    d = check_file(f, bytes=len(data), filename="fox.txt", purpose="assistants", status="processed")
    assert raw(client.files.retrieve(f.id)) == d


def test_download_exact_text(client):
    data = "héllo wörld ✓\r\nline two\n".encode()
    f = upload(client, data, "utf8.txt")
    got = client.files.content(f.id)
    assert got.content == data
    assert got.response.status_code == 200


def test_download_binary_all_byte_values(client):
    data = bytes(range(256)) * 64 + b"\x00\x00\xff\xfe"
    f = upload(client, data, "blob.bin")
    assert f.bytes == len(data)
    assert client.files.content(f.id).content == data


def test_download_5mb(client):
    data = os.urandom(5 * 1024 * 1024 + 17)
    f = upload(client, data, "big.bin")
    assert f.bytes == len(data)
    got = client.files.content(f.id).content
    assert len(got) == len(data)
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()


def test_empty_file(client, http):
    r = http.post("/files", files={"file": ("empty.txt", b"")}, data={"purpose": "assistants"})
    # an empty upload is either stored (0 bytes) or rejected as a validation error; never a 5xx
    assert r.status_code in (200, 400), r.text
    if r.status_code == 200:
        d = check_file(r.json(), bytes=0)
        assert client.files.content(d["id"]).content == b""
    else:
        expect_http_error(r, 400, type="invalid_request_error")


@pytest.mark.parametrize("purpose", ["assistants", "vision", "batch", "fine-tune", "user_data"])
def test_purposes(client, purpose):
    name = "batch.jsonl" if purpose in ("batch", "fine-tune") else "x.txt"
    data = b'{"a": 1}\n' if name.endswith("jsonl") else b"purpose test"
    f = upload(client, data, name, purpose=purpose)
    check_file(f, purpose=purpose)


def test_filename_with_spaces_and_unicode(client):
    f = upload(client, b"x", "my report – final (2).txt")
    assert f.filename == "my report – final (2).txt"
    assert client.files.retrieve(f.id).filename == "my report – final (2).txt"


def test_list_and_purpose_filter(client):
    a = upload(client, b"a", "a.txt", "assistants")
    v = upload(client, b"v", "v.png", "vision")
    all_ids = [x.id for x in client.files.list()]
    assert a.id in all_ids and v.id in all_ids
    # default order desc
    assert all_ids.index(v.id) < all_ids.index(a.id)
    only_vision = list(client.files.list(purpose="vision"))
    assert v.id in [x.id for x in only_vision]
    assert a.id not in [x.id for x in only_vision]
    assert all(x.purpose == "vision" for x in only_vision)
    asc = [x.id for x in client.files.list(order="asc")]
    assert asc.index(a.id) < asc.index(v.id)


def test_list_shape(http, client):
    f = upload(client, b"x", "x.txt")
    body = http.get("/files").json()
    assert body["object"] == "list"
    for k in ("data", "has_more", "first_id", "last_id"):
        assert k in body, body
    assert f.id in [x["id"] for x in body["data"]]
    for x in body["data"]:
        check_file(x)


def test_delete_file(client):
    f = upload(client, b"bye", "bye.txt")
    check_deleted(client.files.delete(f.id), f.id, "file")
    with expect_error(openai.NotFoundError, message_contains=f.id):
        client.files.retrieve(f.id)
    with expect_error(openai.NotFoundError):
        client.files.content(f.id)
    with expect_error(openai.NotFoundError):
        client.files.delete(f.id)
    assert f.id not in [x.id for x in client.files.list()]


def test_unknown_file_404(client):
    with expect_error(openai.NotFoundError, status=404, type="invalid_request_error",
                      message_contains="file-doesnotexist"):
        client.files.retrieve("file-doesnotexist")


def test_upload_missing_purpose(http):
    r = http.post("/files", files={"file": ("a.txt", b"abc")})
    expect_http_error(r, 400, type="invalid_request_error", param="purpose")


def test_upload_invalid_purpose(http):
    r = http.post("/files", files={"file": ("a.txt", b"abc")}, data={"purpose": "nonsense"})
    expect_http_error(r, 400, type="invalid_request_error", param="purpose")


def test_upload_missing_file(http):
    r = http.post("/files", files={"other": ("a.txt", b"abc")}, data={"purpose": "assistants"})
    expect_http_error(r, 400, type="invalid_request_error", param="file")


def test_upload_not_multipart(http):
    r = http.post("/files", json={"purpose": "assistants", "file": "abc"})
    expect_http_error(r, 400, type="invalid_request_error")


def test_content_type_of_download(client, http):
    f = upload(client, b"\x00\x01binary", "b.bin")
    r = http.get(f"/files/{f.id}/content")
    assert r.status_code == 200
    assert r.content == b"\x00\x01binary"
    assert r.headers.get("content-length") in (None, str(len(b"\x00\x01binary")))
