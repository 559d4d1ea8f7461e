"""Vector store files: attach (create, create_and_poll, upload_and_poll), list with filter and
pagination, retrieve, update attributes, detach, parsed content; ingestion of each supported
format, failures (unsupported binary, corrupt PDF) isolated from the other files, chunking
bounds, and deleting a File removes it from every store (NOTES.md §10)."""

import re
import zlib

import openai
import pytest

from helpers import (check_deleted, check_list, check_vector_store, check_vs_file, expect_error, expect_http_error,
                     make_docx, make_pdf, raw, upload_bytes, wait_vector_store, wait_vs_file)

POLL = {"poll_interval_ms": 50}


@pytest.fixture
def store(client):
    return client.vector_stores.create(name="files-test")


def words(n: int, prefix: str = "w") -> str:
    """n distinct one-token words (<= 6 characters each): w0001 w0002 ..."""
    return " ".join(f"{prefix}{i:04d}" for i in range(1, n + 1))


def chunk_texts(client, vs_id: str, file_id: str, query: str) -> list:
    """All the chunks of a file whose text has `query` (search, 50 results max)."""
    page = client.vector_stores.search(vs_id, query=query, max_num_results=50)
    return [c.text for r in page.data if r.file_id == file_id for c in r.content]


def test_create_shape_and_completion(client, store):
    f = upload_bytes(client, b"Plain text about lighthouses and their keepers.", "light.txt")
    vf = client.vector_stores.files.create(vector_store_id=store.id, file_id=f.id, attributes={"topic": "sea"})
    d = check_vs_file(vf, id=f.id, vector_store_id=store.id, attributes={"topic": "sea"})
    assert d["status"] in ("in_progress", "completed")
    done = check_vs_file(wait_vs_file(client, store.id, f.id), status="completed", last_error=None)
    assert done["usage_bytes"] > 0
    assert client.vector_stores.retrieve(store.id).usage_bytes == done["usage_bytes"]  # the store's is its files' sum
    assert done["chunking_strategy"] == {"type": "static",
                                         "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}}
    assert raw(client.vector_stores.files.retrieve(f.id, vector_store_id=store.id)) == done


def test_create_and_poll_and_upload_and_poll(client, store):
    f = upload_bytes(client, b"Create and poll: penguins.", "p.txt")
    vf = client.vector_stores.files.create_and_poll(file_id=f.id, vector_store_id=store.id, **POLL)
    check_vs_file(vf, status="completed")
    vf2 = client.vector_stores.files.upload_and_poll(vector_store_id=store.id,
                                                     file=("u.md", b"# Upload and poll\n\nwalruses"), **POLL)
    d = check_vs_file(vf2, status="completed")
    assert client.files.retrieve(d["id"]).filename == "u.md"
    vs = check_vector_store(client.vector_stores.retrieve(store.id), status="completed")
    assert vs["file_counts"]["completed"] == 2 and vs["file_counts"]["total"] == 2


def test_attach_twice_is_idempotent_or_rejected(client, store, http):
    f = upload_bytes(client, b"twice", "twice.txt")
    client.vector_stores.files.create_and_poll(file_id=f.id, vector_store_id=store.id, **POLL)
    r = http.post(f"/vector_stores/{store.id}/files", json={"file_id": f.id})
    assert r.status_code in (200, 400), r.text
    assert client.vector_stores.retrieve(store.id).file_counts.total == 1


def test_create_errors(client, store, http):
    expect_http_error(http.post(f"/vector_stores/{store.id}/files", json={}), 400, type="invalid_request_error",
                      param="file_id")
    r = http.post(f"/vector_stores/{store.id}/files", json={"file_id": "file-nope"})
    assert r.status_code in (400, 404), r.text
    expect_http_error(r, r.status_code, type="invalid_request_error")
    f = upload_bytes(client, b"x", "x.txt")
    expect_http_error(http.post("/vector_stores/vs_nope/files", json={"file_id": f.id}), 404)
    r = http.post(f"/vector_stores/{store.id}/files", json={
        "file_id": f.id, "chunking_strategy": {"type": "static", "static": {"max_chunk_size_tokens": 50,
                                                                         "chunk_overlap_tokens": 0}}})
    expect_http_error(r, 400, type="invalid_request_error")


@pytest.mark.parametrize("attrs", [
    {f"k{i}": i for i in range(17)},          # more than 16 pairs
    {"k" * 65: "v"},                            # key longer than 64
    {"k": "v" * 513},                           # string value longer than 512
    {"k": {"nested": 1}},                       # not a string, number or boolean
    {"k": [1, 2]},
])
def test_attributes_validation(client, store, http, attrs):
    f = upload_bytes(client, b"attrs", "a.txt")
    r = http.post(f"/vector_stores/{store.id}/files", json={"file_id": f.id, "attributes": attrs})
    body = expect_http_error(r, 400, type="invalid_request_error")
    assert (body["param"] or "").startswith("attributes"), body


def test_update_attributes(client, store, http):
    f = upload_bytes(client, b"attribute update", "attr.txt")
    client.vector_stores.files.create_and_poll(file_id=f.id, vector_store_id=store.id,
                                               attributes={"a": "x", "n": 1}, **POLL)
    u = client.vector_stores.files.update(f.id, vector_store_id=store.id,
                                          attributes={"b": True, "n": 2.5, "s": "str"})
    d = check_vs_file(u, attributes={"b": True, "n": 2.5, "s": "str"})
    assert d["status"] == "completed"
    assert raw(client.vector_stores.files.retrieve(f.id, vector_store_id=store.id))["attributes"] == d["attributes"]
    expect_http_error(http.post(f"/vector_stores/{store.id}/files/{f.id}", json={"attributes": {}, "status": "x"}),
                      400, type="invalid_request_error")
    # search results carry the new attributes
    hit = client.vector_stores.search(store.id, query="attribute update").data[0]
    assert hit.attributes == {"b": True, "n": 2.5, "s": "str"}


def test_update_attributes_requires_attributes(client, store, http):
    """UpdateVectorStoreFileAttributesRequest: `attributes` is required."""
    f = upload_bytes(client, b"attribute update", "attr.txt")
    client.vector_stores.files.create_and_poll(file_id=f.id, vector_store_id=store.id, attributes={"a": "x"}, **POLL)
    expect_http_error(http.post(f"/vector_stores/{store.id}/files/{f.id}", json={}), 400,
                      type="invalid_request_error", param="attributes")


def test_list_pagination_and_filter(client, store, http):
    ids = []
    for i in range(5):
        f = upload_bytes(client, f"document number {i} about herons".encode(), f"h{i}.txt")
        client.vector_stores.files.create(vector_store_id=store.id, file_id=f.id)
        ids.append(f.id)
    bad = upload_bytes(client, bytes(range(256)) * 4, "blob.bin")
    client.vector_stores.files.create(vector_store_id=store.id, file_id=bad.id)
    wait_vector_store(client, store.id)
    page = client.vector_stores.files.list(store.id, limit=2, order="asc")
    d = check_list(page)
    assert [x["id"] for x in d["data"]] == ids[:2] and d["has_more"] is True
    nxt = client.vector_stores.files.list(store.id, limit=2, order="asc", after=ids[1])
    assert [x.id for x in nxt.data] == ids[2:4]
    assert [x.id for x in client.vector_stores.files.list(store.id)] == [bad.id] + ids[::-1]
    completed = [x.id for x in client.vector_stores.files.list(store.id, filter="completed")]
    assert sorted(completed) == sorted(ids)
    failed = list(client.vector_stores.files.list(store.id, filter="failed"))
    assert [x.id for x in failed] == [bad.id]
    assert list(client.vector_stores.files.list(store.id, filter="in_progress")) == []
    assert list(client.vector_stores.files.list(store.id, filter="cancelled")) == []
    expect_http_error(http.get(f"/vector_stores/{store.id}/files", params={"filter": "bogus"}), 400,
                      type="invalid_request_error", param="filter")


def test_detach_keeps_the_file(client, store):
    f = upload_bytes(client, b"Detach me: capybaras.", "d.txt")
    client.vector_stores.files.create_and_poll(file_id=f.id, vector_store_id=store.id, **POLL)
    assert client.vector_stores.search(store.id, query="capybaras").data
    check_deleted(client.vector_stores.files.delete(f.id, vector_store_id=store.id), f.id, "vector_store.file.deleted")
    with expect_error(openai.NotFoundError, status=404):
        client.vector_stores.files.retrieve(f.id, vector_store_id=store.id)
    assert client.vector_stores.search(store.id, query="capybaras").data == []
    assert client.files.retrieve(f.id).id == f.id  # the File stays
    assert client.vector_stores.retrieve(store.id).file_counts.total == 0
    with expect_error(openai.NotFoundError, status=404):
        client.vector_stores.files.delete(f.id, vector_store_id=store.id)


def test_deleting_file_removes_it_from_every_store(client):
    f = upload_bytes(client, b"Shared between stores: narwhals.", "shared.txt")
    other = upload_bytes(client, b"Stays: dolphins.", "other.txt")
    a = client.vector_stores.create(file_ids=[f.id, other.id])
    b = client.vector_stores.create(file_ids=[f.id])
    wait_vector_store(client, a.id)
    wait_vector_store(client, b.id)
    assert client.vector_stores.search(b.id, query="narwhals").data
    client.files.delete(f.id)
    for vs in (a, b):
        assert f.id not in [x.id for x in client.vector_stores.files.list(vs.id)]
        assert client.vector_stores.search(vs.id, query="narwhals").data == []
        with expect_error(openai.NotFoundError, status=404):
            client.vector_stores.files.retrieve(f.id, vector_store_id=vs.id)
    da = check_vector_store(client.vector_stores.retrieve(a.id))
    assert da["file_counts"]["total"] == 1 and da["file_counts"]["completed"] == 1
    assert check_vector_store(client.vector_stores.retrieve(b.id))["file_counts"]["total"] == 0
    assert client.vector_stores.search(a.id, query="dolphins").data


def test_content_endpoint(client, store, http):
    text = "First paragraph about owls.\n\nSecond paragraph about ravens."
    f = upload_bytes(client, text.encode(), "birds.txt")
    client.vector_stores.files.create_and_poll(file_id=f.id, vector_store_id=store.id, **POLL)
    r = http.get(f"/vector_stores/{store.id}/files/{f.id}/content")
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["object"] == "vector_store.file_content.page", d
    for k in ("data", "has_more", "next_page"):
        assert k in d, d
    assert all(p["type"] == "text" for p in d["data"])
    joined = "".join(p["text"] for p in d["data"])
    assert "owls" in joined and "ravens" in joined
    sdk = list(client.vector_stores.files.content(f.id, vector_store_id=store.id))
    assert "".join(p.text for p in sdk) == joined
    expect_http_error(http.get(f"/vector_stores/{store.id}/files/file-nope/content"), 404)


# --------------------------------------------------------------------------- formats


def ingest(client, store, data: bytes, name: str):
    f = upload_bytes(client, data, name)
    client.vector_stores.files.create(vector_store_id=store.id, file_id=f.id)
    return f, check_vs_file(wait_vs_file(client, store.id, f.id))


FORMATS = {
    "notes.txt": lambda t: t.encode(),
    "notes.md": lambda t: f"# Heading\n\n* item\n\n{t}\n".encode(),
    "notes.json": lambda t: ('{"title": "x", "body": "%s"}' % t).encode(),
    "notes.csv": lambda t: f"id,text\n1,{t}\n".encode(),
    "page.html": lambda t: (f"<!DOCTYPE html><html><head><title>T</title><script>var hiddenjs = 1;</script></head>"
                            f"<body><h1>Title</h1><p>{t}</p></body></html>").encode(),
    "doc.docx": lambda t: make_docx(["Intro paragraph.", t]),
    "doc.pdf": lambda t: make_pdf("Intro line.\n" + t),
    "utf8-bom.txt": lambda t: b"\xef\xbb\xbf" + t.encode(),
}


@pytest.mark.parametrize("name", list(FORMATS))
def test_formats_are_extracted(client, store, name):
    needle = f"The quokka named Kip{abs(hash(name)) % 10000:04d} lives on Rottnest"
    f, d = ingest(client, store, FORMATS[name](needle), name)
    assert d["status"] == "completed", d
    text = "".join(p.text for p in client.vector_stores.files.content(f.id, vector_store_id=store.id))
    assert re.sub(r"\s+", " ", needle) in re.sub(r"\s+", " ", text), text[:500]
    if name.endswith(".html"):
        assert "<p>" not in text and "hiddenjs" not in text, text
    if name.endswith(".docx"):
        assert "w:document" not in text and "<w:" not in text, text
    hits = client.vector_stores.search(store.id, query=f"quokka Kip{abs(hash(name)) % 10000:04d}").data
    assert hits and hits[0].file_id == f.id and hits[0].filename == name


def test_unsupported_binary_fails(client, store):
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)) * 8
    f, d = ingest(client, store, png, "image.png")
    assert d["status"] == "failed", d
    assert d["last_error"]["code"] == "unsupported_file", d
    assert d["last_error"]["message"]


def test_zip_that_is_not_docx_is_unsupported(client, store):
    import io
    import zipfile
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("readme.txt", "not a word document")
    f, d = ingest(client, store, buf.getvalue(), "archive.zip")
    assert d["status"] == "failed" and d["last_error"]["code"] == "unsupported_file", d


def test_corrupt_pdf_fails_and_others_complete(client, store):
    good = make_pdf("A healthy PDF about axolotls.")
    corrupt = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\n" + zlib.compress(b"garbage" * 50) + b"\n%%EO"
    fc = upload_bytes(client, corrupt, "broken.pdf")
    fg = upload_bytes(client, good, "good.pdf")
    ft = upload_bytes(client, b"A text file about axolotls too.", "good.txt")
    vs = client.vector_stores.create(name="mixed", file_ids=[fc.id, fg.id, ft.id])
    done = check_vector_store(wait_vector_store(client, vs.id))
    assert done["status"] == "completed", done  # ready: nothing in progress, even with a failure
    assert done["file_counts"] == {"in_progress": 0, "completed": 2, "failed": 1, "cancelled": 0, "total": 3}, done
    bad = check_vs_file(client.vector_stores.files.retrieve(fc.id, vector_store_id=vs.id), status="failed")
    assert bad["last_error"]["code"] == "invalid_file", bad
    for f in (fg, ft):
        check_vs_file(client.vector_stores.files.retrieve(f.id, vector_store_id=vs.id), status="completed",
                      last_error=None)
    ids = {r.file_id for r in client.vector_stores.search(vs.id, query="axolotls").data}
    assert ids == {fg.id, ft.id}


def test_empty_text_file(client, store):
    f = upload_bytes(client, b"   \n", "blank.txt")
    client.vector_stores.files.create(vector_store_id=store.id, file_id=f.id)
    d = check_vs_file(wait_vs_file(client, store.id, f.id))
    # either indexed with no chunks or failed with a reason; never stuck
    assert d["status"] in ("completed", "failed"), d


# --------------------------------------------------------------------------- chunking


def test_static_chunks_respect_size_and_overlap(client, store):
    # 1000 one-token words, every 10th "beta" (so that one query finds every chunk):
    # 100/0 -> 10 chunks of exactly 100 tokens; 100/50 -> 19; auto 800/400 -> 2; 4096/0 -> 1
    toks = ["beta" if i % 10 == 0 else f"w{i:04d}" for i in range(1, 1001)]
    text = " ".join(toks)
    for (size, overlap), expect_chunks in (((100, 0), 10), ((100, 50), 19), ((800, 400), 2), ((4096, 0), 1)):
        f = upload_bytes(client, text.encode(), f"c{size}_{overlap}.txt")
        client.vector_stores.files.create(vector_store_id=store.id, file_id=f.id, chunking_strategy={
            "type": "static", "static": {"max_chunk_size_tokens": size, "chunk_overlap_tokens": overlap}})
        assert wait_vs_file(client, store.id, f.id).status == "completed"
        chunks = chunk_texts(client, store.id, f.id, "beta")
        sizes = sorted(len(c.split()) for c in chunks)
        assert len(chunks) == expect_chunks, ((size, overlap), len(chunks), sizes)
        assert max(sizes) <= size, ((size, overlap), sizes)
        assert sum(sizes) == 1000 + overlap * (expect_chunks - 1), ((size, overlap), sizes)

        def start(c):
            first = c.split()[0]
            n = int(re.search(r"w(\d{4})", c).group(1))
            return n - 1 if first == "beta" else n
        starts = sorted(start(c) for c in chunks)
        assert starts[0] == 1
        assert all(b - a == size - overlap for a, b in zip(starts, starts[1:])), ((size, overlap), starts)
        client.vector_stores.files.delete(f.id, vector_store_id=store.id)


def test_tenancy_of_files(keyed_server):
    srv, (t1, t2) = keyed_server(2)
    c1, c2 = t1.client(), t2.client()
    f = upload_bytes(c1, b"secret of tenant one: okapis", "one.txt")
    vs = c1.vector_stores.create(file_ids=[f.id])
    wait_vector_store(c1, vs.id)
    with expect_error(openai.NotFoundError, status=404):
        c2.vector_stores.files.retrieve(f.id, vector_store_id=vs.id)
    with expect_error(openai.NotFoundError, status=404):
        c2.vector_stores.files.delete(f.id, vector_store_id=vs.id)
    with expect_error(openai.NotFoundError, status=404):
        list(c2.vector_stores.files.content(f.id, vector_store_id=vs.id))
    assert c1.vector_stores.files.retrieve(f.id, vector_store_id=vs.id).status == "completed"
