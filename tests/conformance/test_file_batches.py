"""Vector store file batches: create (file_ids, files[] with per-file attributes and
chunking), retrieve, list files (filter, pagination), cancel, create_and_poll,
upload_and_poll (NOTES.md §10)."""

import time

import openai
import pytest

from helpers import (check_file_batch, check_list, check_vector_store, check_vs_file, expect_error,
                     expect_http_error, raw, upload_bytes, wait_batch, wait_vector_store)

POLL = {"poll_interval_ms": 50}


@pytest.fixture
def store(client):
    return client.vector_stores.create(name="batches")


def uploads(client, n, prefix="b"):
    return [upload_bytes(client, f"Batch document {i} about {prefix} marmots.".encode(), f"{prefix}{i}.txt")
            for i in range(n)]


def test_create_with_file_ids(client, store):
    files = uploads(client, 4)
    b = client.vector_stores.file_batches.create(vector_store_id=store.id, file_ids=[f.id for f in files],
                                                 attributes={"source": "batch"})
    d = check_file_batch(b, vector_store_id=store.id)
    assert d["file_counts"]["total"] == 4, d
    assert d["status"] in ("in_progress", "completed")
    done = check_file_batch(wait_batch(client, store.id, b.id), status="completed")
    assert done["file_counts"] == {"in_progress": 0, "completed": 4, "failed": 0, "cancelled": 0, "total": 4}
    assert raw(client.vector_stores.file_batches.retrieve(b.id, vector_store_id=store.id)) == done
    listed = [check_vs_file(x, status="completed", attributes={"source": "batch"})
              for x in client.vector_stores.file_batches.list_files(b.id, vector_store_id=store.id)]
    assert sorted(x["id"] for x in listed) == sorted(f.id for f in files)
    vs = check_vector_store(client.vector_stores.retrieve(store.id), status="completed")
    assert vs["file_counts"]["completed"] == 4


def test_create_with_files_per_file_options(client, store, http):
    a, b = uploads(client, 2)
    static = {"type": "static", "static": {"max_chunk_size_tokens": 300, "chunk_overlap_tokens": 100}}
    r = http.post(f"/vector_stores/{store.id}/file_batches", json={"files": [
        {"file_id": a.id, "attributes": {"lang": "en", "year": 2024}},
        {"file_id": b.id, "attributes": {"lang": "de"}, "chunking_strategy": static}]})
    assert r.status_code == 200, r.text
    d = check_file_batch(r.json())
    assert d["file_counts"]["total"] == 2
    wait_batch(client, store.id, d["id"])
    fa = check_vs_file(client.vector_stores.files.retrieve(a.id, vector_store_id=store.id), status="completed")
    fb = check_vs_file(client.vector_stores.files.retrieve(b.id, vector_store_id=store.id), status="completed")
    assert fa["attributes"] == {"lang": "en", "year": 2024}
    assert fb["attributes"] == {"lang": "de"}
    assert fb["chunking_strategy"] == static
    assert fa["chunking_strategy"]["static"] == {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}


def test_file_ids_and_files_are_exclusive(client, store, http):
    (a,) = uploads(client, 1)
    r = http.post(f"/vector_stores/{store.id}/file_batches", json={"file_ids": [a.id], "files": [{"file_id": a.id}]})
    expect_http_error(r, 400, type="invalid_request_error")
    expect_http_error(http.post(f"/vector_stores/{store.id}/file_batches", json={}), 400,
                      type="invalid_request_error")


@pytest.mark.parametrize("body", [{"file_ids": []}, {"files": []}])
def test_empty_batch_rejected(client, store, http, body):
    """CreateVectorStoreFileBatchRequest: file_ids / files have minItems 1."""
    expect_http_error(http.post(f"/vector_stores/{store.id}/file_batches", json=body), 400,
                      type="invalid_request_error")


def test_unknown_file_or_store(client, store, http):
    (a,) = uploads(client, 1)
    r = http.post(f"/vector_stores/{store.id}/file_batches", json={"file_ids": [a.id, "file-nope"]})
    assert r.status_code in (400, 404), r.text
    expect_http_error(r, r.status_code, type="invalid_request_error")
    expect_http_error(http.post("/vector_stores/vs_nope/file_batches", json={"file_ids": [a.id]}), 404)
    expect_http_error(http.get(f"/vector_stores/{store.id}/file_batches/vsfb_nope"), 404)
    expect_http_error(http.get(f"/vector_stores/{store.id}/file_batches/vsfb_nope/files"), 404)
    expect_http_error(http.post(f"/vector_stores/{store.id}/file_batches/vsfb_nope/cancel"), 404)


def test_batch_with_a_failing_file(client, store):
    good = uploads(client, 2)
    bad = upload_bytes(client, b"\x00\x01\x02binary\x00" * 100, "blob.bin")
    b = client.vector_stores.file_batches.create_and_poll(vector_store_id=store.id,
                                                          file_ids=[f.id for f in good] + [bad.id], **POLL)
    d = check_file_batch(b)
    assert d["status"] in ("completed", "failed"), d  # finished; OpenAI reports completed with a failed count
    assert d["file_counts"] == {"in_progress": 0, "completed": 2, "failed": 1, "cancelled": 0, "total": 3}, d
    failed = list(client.vector_stores.file_batches.list_files(b.id, vector_store_id=store.id, filter="failed"))
    assert [x.id for x in failed] == [bad.id]
    assert failed[0].last_error.code == "unsupported_file"
    done = list(client.vector_stores.file_batches.list_files(b.id, vector_store_id=store.id, filter="completed"))
    assert sorted(x.id for x in done) == sorted(f.id for f in good)


def test_list_files_pagination_and_scope(client, store):
    first = uploads(client, 3, "first")
    second = uploads(client, 5, "second")
    b1 = client.vector_stores.file_batches.create_and_poll(vector_store_id=store.id,
                                                           file_ids=[f.id for f in first], **POLL)
    b2 = client.vector_stores.file_batches.create_and_poll(vector_store_id=store.id,
                                                           file_ids=[f.id for f in second], **POLL)
    # a batch lists only its own files
    assert sorted(x.id for x in client.vector_stores.file_batches.list_files(b1.id, vector_store_id=store.id)) == \
        sorted(f.id for f in first)
    page = client.vector_stores.file_batches.list_files(b2.id, vector_store_id=store.id, limit=2)
    d = check_list(page)
    assert len(d["data"]) == 2 and d["has_more"] is True
    all_ids = [x.id for x in client.vector_stores.file_batches.list_files(b2.id, vector_store_id=store.id, limit=2)]
    assert sorted(all_ids) == sorted(f.id for f in second) and len(all_ids) == 5
    assert client.vector_stores.retrieve(store.id).file_counts.total == 8


def test_upload_and_poll(client, store):
    files = [("u1.txt", b"uploaded one: gannets"), ("u2.md", b"# two\n\ngannets again")]
    b = client.vector_stores.file_batches.upload_and_poll(store.id, files=files, **POLL)
    d = check_file_batch(b, status="completed")
    assert d["file_counts"]["completed"] == 2
    hits = client.vector_stores.search(store.id, query="gannets").data
    assert {h.filename for h in hits} == {"u1.txt", "u2.md"}


def test_cancel(client, store):
    # enough files that the batch is still running when the cancel arrives
    text = ("Cancellation filler about puffins and their burrows. " * 400).encode()
    files = [upload_bytes(client, text + str(i).encode(), f"c{i}.txt") for i in range(60)]
    b = client.vector_stores.file_batches.create(vector_store_id=store.id, file_ids=[f.id for f in files])
    c = client.vector_stores.file_batches.cancel(b.id, vector_store_id=store.id)
    d = check_file_batch(c)
    assert d["status"] in ("cancelling", "cancelled", "completed"), d
    final = check_file_batch(wait_batch(client, store.id, b.id, timeout=60))
    counts = final["file_counts"]
    assert counts["in_progress"] == 0 and counts["total"] == 60, final
    if counts["cancelled"]:
        assert final["status"] == "cancelled", final
        cancelled = list(client.vector_stores.file_batches.list_files(b.id, vector_store_id=store.id,
                                                                      filter="cancelled"))
        assert len(cancelled) == counts["cancelled"]
        for x in cancelled:
            check_vs_file(x, status="cancelled")
    vs = check_vector_store(wait_vector_store(client, store.id))
    assert vs["file_counts"]["in_progress"] == 0
    assert vs["file_counts"]["cancelled"] == counts["cancelled"]
    # cancelling a finished batch: an error, or the batch unchanged
    try:
        again = raw(client.vector_stores.file_batches.cancel(b.id, vector_store_id=store.id))
        assert again["status"] == final["status"], again
    except openai.BadRequestError as e:
        assert e.status_code == 400


def test_batch_with_already_attached_file_counts_it(client, store):
    """A file already in the store, sent again in a batch, is one of the batch's files."""
    (a,) = uploads(client, 1)
    client.vector_stores.files.create_and_poll(file_id=a.id, vector_store_id=store.id, **POLL)
    b = client.vector_stores.file_batches.create_and_poll(vector_store_id=store.id, file_ids=[a.id], **POLL)
    d = check_file_batch(b)
    assert d["file_counts"]["total"] == 1, d
    assert client.vector_stores.retrieve(store.id).file_counts.total == 1


def test_tenancy(keyed_server):
    srv, (t1, t2) = keyed_server(2)
    c1, c2 = t1.client(), t2.client()
    f = upload_bytes(c1, b"batch of tenant one", "one.txt")
    vs = c1.vector_stores.create()
    b = c1.vector_stores.file_batches.create_and_poll(vector_store_id=vs.id, file_ids=[f.id], **POLL)
    with expect_error(openai.NotFoundError, status=404):
        c2.vector_stores.file_batches.retrieve(b.id, vector_store_id=vs.id)
    with expect_error(openai.NotFoundError, status=404):
        c2.vector_stores.file_batches.cancel(b.id, vector_store_id=vs.id)
    own = c2.vector_stores.create()
    with pytest.raises((openai.NotFoundError, openai.BadRequestError)):
        c2.vector_stores.file_batches.create(vector_store_id=own.id, file_ids=[f.id])
