"""Vector stores: create/list/retrieve/update/delete, status and file_counts while files
ingest, usage_bytes, expires_after, chunking_strategy validation (NOTES.md §10)."""

import time

import openai
import pytest

from helpers import (check_deleted, check_list, check_vector_store, check_vs_file, expect_error, expect_http_error,
                     raw, upload_bytes, wait_vector_store)

TEXT = ("Vector stores hold the chunks of files for the file_search tool. " * 40).encode()


def test_create_empty_shape(client):
    vs = client.vector_stores.create(name="Support FAQ", metadata={"team": "docs"})
    d = check_vector_store(vs, name="Support FAQ", metadata={"team": "docs"}, usage_bytes=0)
    assert d["status"] == "completed", d  # nothing to ingest: ready at once
    assert d["file_counts"] == {"in_progress": 0, "completed": 0, "failed": 0, "cancelled": 0, "total": 0}
    assert d.get("expires_after") is None and d.get("expires_at") is None
    assert raw(client.vector_stores.retrieve(vs.id)) == d


def test_create_with_files_in_progress_then_completed(client):
    files = [upload_bytes(client, TEXT + f" file {i}".encode(), f"doc{i}.txt") for i in range(3)]
    vs = client.vector_stores.create(name="three", file_ids=[f.id for f in files])
    d = check_vector_store(vs)
    assert d["file_counts"]["total"] == 3, d
    assert d["status"] in ("in_progress", "completed")
    if d["file_counts"]["in_progress"]:
        assert d["status"] == "in_progress", d
    done = check_vector_store(wait_vector_store(client, vs.id), status="completed")
    assert done["file_counts"] == {"in_progress": 0, "completed": 3, "failed": 0, "cancelled": 0, "total": 3}
    assert done["usage_bytes"] > 0
    listed = [check_vs_file(f, status="completed", vector_store_id=vs.id) for f in client.vector_stores.files.list(vs.id)]
    assert sorted(f["id"] for f in listed) == sorted(f.id for f in files)
    # usage_bytes of the store: the files' usage (allow a few bytes of trimming per file)
    total = sum(f["usage_bytes"] for f in listed)
    assert total > 0 and abs(done["usage_bytes"] - total) <= 3 * len(listed), (done["usage_bytes"], total)


def test_create_with_static_chunking_applies_to_files(client):
    f = upload_bytes(client, TEXT, "static.txt")
    strategy = {"type": "static", "static": {"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 50}}
    vs = client.vector_stores.create(file_ids=[f.id], chunking_strategy=strategy)
    wait_vector_store(client, vs.id)
    vf = check_vs_file(client.vector_stores.files.retrieve(f.id, vector_store_id=vs.id))
    assert vf["chunking_strategy"] == strategy


def test_default_chunking_is_auto_800_400(client):
    f = upload_bytes(client, TEXT, "auto.txt")
    vs = client.vector_stores.create(file_ids=[f.id])
    wait_vector_store(client, vs.id)
    vf = check_vs_file(client.vector_stores.files.retrieve(f.id, vector_store_id=vs.id))
    assert vf["chunking_strategy"] == {"type": "static",
                                       "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}}


@pytest.mark.parametrize("static,param", [
    ({"max_chunk_size_tokens": 99, "chunk_overlap_tokens": 0}, "chunking_strategy.static.max_chunk_size_tokens"),
    ({"max_chunk_size_tokens": 4097, "chunk_overlap_tokens": 0}, "chunking_strategy.static.max_chunk_size_tokens"),
    ({"max_chunk_size_tokens": 200, "chunk_overlap_tokens": 101}, "chunking_strategy.static.chunk_overlap_tokens"),
    ({"max_chunk_size_tokens": 200}, None),
])
def test_static_chunking_bounds(client, http, static, param):
    f = upload_bytes(client, TEXT, "bounds.txt")
    r = http.post("/vector_stores", json={"file_ids": [f.id], "chunking_strategy": {"type": "static", "static": static}})
    body = expect_http_error(r, 400, type="invalid_request_error")
    if param:
        assert body["param"] == param, body
    else:
        assert body["param"] and body["param"].startswith("chunking_strategy"), body


def test_static_chunking_extremes_accepted(client):
    f = upload_bytes(client, TEXT, "ext.txt")
    for static in ({"max_chunk_size_tokens": 100, "chunk_overlap_tokens": 50},
                   {"max_chunk_size_tokens": 4096, "chunk_overlap_tokens": 0}):
        vs = client.vector_stores.create(file_ids=[f.id], chunking_strategy={"type": "static", "static": static})
        wait_vector_store(client, vs.id)
        vf = client.vector_stores.files.retrieve(f.id, vector_store_id=vs.id)
        assert vf.status == "completed" and raw(vf)["chunking_strategy"]["static"] == static


def test_unknown_chunking_type_rejected(client, http):
    f = upload_bytes(client, TEXT, "x.txt")
    r = http.post("/vector_stores", json={"file_ids": [f.id], "chunking_strategy": {"type": "semantic"}})
    body = expect_http_error(r, 400, type="invalid_request_error")
    assert (body["param"] or "").startswith("chunking_strategy"), body


def test_expires_after(client, http):
    before = int(time.time())
    vs = client.vector_stores.create(name="exp", expires_after={"anchor": "last_active_at", "days": 2})
    d = check_vector_store(vs)
    assert d["expires_after"] == {"anchor": "last_active_at", "days": 2}
    assert d["last_active_at"] is not None and d["last_active_at"] >= before - 1
    assert d["expires_at"] == d["last_active_at"] + 2 * 86400, d
    for bad, param in (({"anchor": "created_at", "days": 1}, "expires_after.anchor"),
                       ({"anchor": "last_active_at", "days": 0}, "expires_after.days"),
                       ({"anchor": "last_active_at", "days": 366}, "expires_after.days")):
        r = http.post("/vector_stores", json={"expires_after": bad})
        expect_http_error(r, 400, type="invalid_request_error", param=param)


def test_update_name_metadata_expiry(client):
    vs = client.vector_stores.create(name="old", metadata={"a": "1"})
    u = client.vector_stores.update(vs.id, name="new", metadata={"b": "2"},
                                    expires_after={"anchor": "last_active_at", "days": 7})
    d = check_vector_store(u, name="new")
    assert d["metadata"] == {"b": "2"}  # metadata is replaced as a whole
    assert d["expires_after"] == {"anchor": "last_active_at", "days": 7}
    assert d["expires_at"] == d["last_active_at"] + 7 * 86400
    assert raw(client.vector_stores.retrieve(vs.id)) == d
    # clearing the expiry policy
    u2 = raw(client.vector_stores.update(vs.id, expires_after=None))
    assert u2.get("expires_after") is None and u2.get("expires_at") is None, u2


def test_update_rejects_unknown_param(client, http):
    vs = client.vector_stores.create(name="x")
    r = http.post(f"/vector_stores/{vs.id}", json={"file_ids": []})
    expect_http_error(r, 400, type="invalid_request_error")


def test_list_order_and_pagination(client):
    ids = [client.vector_stores.create(name=f"vs{i}").id for i in range(5)]
    page = client.vector_stores.list(limit=2)
    d = check_list(page)
    assert [x["id"] for x in d["data"]] == ids[::-1][:2] and d["has_more"] is True
    for x in d["data"]:
        check_vector_store(x)
    assert [v.id for v in client.vector_stores.list(order="asc")] == ids
    assert [v.id for v in client.vector_stores.list()] == ids[::-1]  # auto-paging, desc by default
    after = client.vector_stores.list(order="asc", after=ids[1], limit=2)
    assert [v.id for v in after.data] == ids[2:4]
    before = client.vector_stores.list(order="asc", before=ids[3])
    assert [v.id for v in before.data] == ids[:3]


def test_delete(client, http):
    f = upload_bytes(client, TEXT, "keep.txt")
    vs = client.vector_stores.create(file_ids=[f.id])
    wait_vector_store(client, vs.id)
    check_deleted(client.vector_stores.delete(vs.id), vs.id, "vector_store.deleted")
    with expect_error(openai.NotFoundError, status=404, type="invalid_request_error"):
        client.vector_stores.retrieve(vs.id)
    with expect_error(openai.NotFoundError, status=404):
        client.vector_stores.delete(vs.id)
    assert vs.id not in [v.id for v in client.vector_stores.list()]
    r = http.post(f"/vector_stores/{vs.id}/search", json={"query": "file_search"})
    expect_http_error(r, 404, type="invalid_request_error")
    # the File itself survives
    assert client.files.retrieve(f.id).id == f.id


def test_create_with_unknown_file(client, http):
    r = http.post("/vector_stores", json={"file_ids": ["file-doesnotexist"]})
    body = expect_http_error(r, 400 if r.status_code == 400 else 404, type="invalid_request_error")
    assert body["param"] in (None, "file_ids", "file_ids[0]"), body


def test_not_found(client, http):
    with expect_error(openai.NotFoundError, status=404, type="invalid_request_error"):
        client.vector_stores.retrieve("vs_doesnotexist")
    expect_http_error(http.post("/vector_stores/vs_doesnotexist", json={"name": "x"}), 404)


def test_usage_and_counts_follow_files(client):
    a = upload_bytes(client, TEXT, "a.txt")
    b = upload_bytes(client, TEXT * 2, "b.txt")
    vs = client.vector_stores.create(file_ids=[a.id, b.id])
    d1 = check_vector_store(wait_vector_store(client, vs.id))
    assert d1["file_counts"]["completed"] == 2
    client.vector_stores.files.delete(b.id, vector_store_id=vs.id)
    d2 = check_vector_store(client.vector_stores.retrieve(vs.id))
    assert d2["file_counts"]["total"] == 1 and d2["file_counts"]["completed"] == 1
    assert 0 < d2["usage_bytes"] < d1["usage_bytes"], (d1["usage_bytes"], d2["usage_bytes"])


def test_file_ids_limit(client, http):
    r = http.post("/vector_stores", json={"file_ids": [f"file-x{i}" for i in range(501)]})
    expect_http_error(r, 400, type="invalid_request_error")


def test_tenancy(server, keyed_server):
    srv, (t1, t2) = keyed_server(2)
    c1, c2 = t1.client(), t2.client()
    f = upload_bytes(c1, b"Tenant one's private retrieval text about ocelots.", "private.txt")
    vs = c1.vector_stores.create(name="mine", file_ids=[f.id])
    wait_vector_store(c1, vs.id)
    assert vs.id not in [v.id for v in c2.vector_stores.list()]
    with expect_error(openai.NotFoundError, status=404):
        c2.vector_stores.retrieve(vs.id)
    with expect_error(openai.NotFoundError, status=404):
        c2.vector_stores.update(vs.id, name="stolen")
    with expect_error(openai.NotFoundError, status=404):
        c2.vector_stores.search(vs.id, query="ocelots")
    with expect_error(openai.NotFoundError, status=404):
        c2.vector_stores.files.list(vs.id)
    with expect_error(openai.NotFoundError, status=404):
        c2.vector_stores.delete(vs.id)
    # the other tenant cannot attach tenant one's file to its own store either
    own = c2.vector_stores.create(name="theirs")
    with pytest.raises((openai.NotFoundError, openai.BadRequestError)):
        c2.vector_stores.files.create(vector_store_id=own.id, file_id=f.id)
    # tenant one still sees everything
    assert c1.vector_stores.retrieve(vs.id).name == "mine"
    assert c1.vector_stores.search(vs.id, query="ocelots").data
