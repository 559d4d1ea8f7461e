"""Shared checks for the conformance tests (shapes from assistants-openapi.yaml and
NOTES.md)."""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from typing import Any, Iterable, Optional

import openai

MODEL = "gpt-4o-mini"

# Required keys of each object, from the spec's `required` lists.
ASSISTANT_KEYS = {"id", "object", "created_at", "name", "description", "model", "instructions", "tools",
                  "metadata"}
THREAD_KEYS = {"id", "object", "created_at", "tool_resources", "metadata"}
MESSAGE_KEYS = {"id", "object", "created_at", "thread_id", "status", "incomplete_details", "completed_at",
                "incomplete_at", "role", "content", "assistant_id", "run_id", "attachments", "metadata"}
FILE_KEYS = {"id", "object", "bytes", "created_at", "filename", "purpose", "status"}
RUN_KEYS = {"id", "object", "created_at", "thread_id", "assistant_id", "status", "required_action", "last_error",
            "expires_at", "started_at", "cancelled_at", "failed_at", "completed_at", "model", "instructions",
            "tools", "metadata", "usage", "incomplete_details", "max_prompt_tokens", "max_completion_tokens",
            "truncation_strategy", "tool_choice", "parallel_tool_calls", "response_format"}
STEP_KEYS = {"id", "object", "created_at", "assistant_id", "thread_id", "run_id", "type", "status",
             "step_details", "last_error", "expired_at", "cancelled_at", "failed_at", "completed_at", "metadata",
             "usage"}
LIST_KEYS = {"object", "data", "first_id", "last_id", "has_more"}
DELETE_KEYS = {"id", "object", "deleted"}

TERMINAL = {"completed", "failed", "cancelled", "expired", "incomplete"}
ACTIVE = {"queued", "in_progress", "requires_action", "cancelling"}

ADD_PRIME_NUMBERS = {
    "type": "function",
    "function": {
        "name": "add_prime_numbers",
        "description": "Add prime numbers",
        "parameters": {
            "type": "object",
            "properties": {
                "prime_numbers": {
                    "type": "array",
                    "items": {"type": "integer", "description": "A list of prime numbers"},
                    "description": "An array of prime numbers",
                }
            },
            "required": ["prime_numbers"],
        },
    },
}


def fn_tool(name: str, description: str = "", properties: Optional[dict] = None) -> dict:
    return {"type": "function", "function": {
        "name": name, "description": description or name,
        "parameters": {"type": "object", "properties": properties or {}}}}


def marker(prefix: str = "m") -> str:
    """A unique token to put in a message, to find the upstream requests of one test."""
    return f"{prefix}-{secrets.token_hex(6)}"


def raw(obj: Any) -> dict:
    """The JSON the server sent for an SDK object (extra keys included)."""
    if isinstance(obj, dict):
        return obj
    return obj.model_dump(mode="json", exclude_unset=False, by_alias=True) if not hasattr(obj, "to_dict") \
        else json.loads(obj.to_json())


def is_ts(v: Any, *, near: Optional[float] = None, slack: float = 300) -> bool:
    """An integer unix-seconds timestamp (not ms), within `slack` of `near` when given."""
    if not isinstance(v, int) or isinstance(v, bool):
        return False
    if not (1_600_000_000 <= v <= 4_000_000_000):
        return False
    if near is not None and abs(v - near) > slack:
        return False
    return True


def check_keys(d: dict, required: Iterable[str], what: str):
    missing = set(required) - set(d)
    assert not missing, f"{what} lacks required keys {sorted(missing)}: {d}"


def check_assistant(a, **expect) -> dict:
    d = raw(a)
    check_keys(d, ASSISTANT_KEYS, "assistant")
    assert d["object"] == "assistant"
    assert d["id"].startswith("asst_"), d["id"]
    assert is_ts(d["created_at"], near=time.time()), d["created_at"]
    assert isinstance(d["tools"], list)
    assert d["metadata"] is None or isinstance(d["metadata"], dict)
    for k, v in expect.items():
        assert d[k] == v, f"assistant.{k}: expected {v!r}, got {d[k]!r}"
    return d


def check_thread(t, **expect) -> dict:
    d = raw(t)
    check_keys(d, THREAD_KEYS, "thread")
    assert d["object"] == "thread"
    assert d["id"].startswith("thread_"), d["id"]
    assert is_ts(d["created_at"], near=time.time())
    for k, v in expect.items():
        assert d[k] == v, f"thread.{k}: expected {v!r}, got {d[k]!r}"
    return d


def check_message(m, **expect) -> dict:
    d = raw(m)
    check_keys(d, MESSAGE_KEYS, "message")
    assert d["object"] == "thread.message"
    assert d["id"].startswith("msg_"), d["id"]
    assert d["thread_id"].startswith("thread_")
    assert is_ts(d["created_at"], near=time.time())
    assert d["role"] in ("user", "assistant")
    assert d["status"] in ("in_progress", "incomplete", "completed")
    assert isinstance(d["content"], list)
    for k, v in expect.items():
        assert d[k] == v, f"message.{k}: expected {v!r}, got {d[k]!r}"
    return d


def check_file(f, **expect) -> dict:
    d = raw(f)
    check_keys(d, FILE_KEYS, "file")
    assert d["object"] == "file"
    assert d["id"].startswith("file-"), d["id"]
    assert is_ts(d["created_at"], near=time.time())
    assert isinstance(d["bytes"], int)
    for k, v in expect.items():
        assert d[k] == v, f"file.{k}: expected {v!r}, got {d[k]!r}"
    return d


def check_run(r, **expect) -> dict:
    d = raw(r)
    check_keys(d, RUN_KEYS, "run")
    assert d["object"] == "thread.run"
    assert d["id"].startswith("run_"), d["id"]
    assert d["thread_id"].startswith("thread_")
    assert d["assistant_id"].startswith("asst_")
    assert is_ts(d["created_at"], near=time.time())
    for k in ("started_at", "cancelled_at", "failed_at", "completed_at"):
        assert d[k] is None or is_ts(d[k], near=time.time()), (k, d[k])
    for k, v in expect.items():
        assert d[k] == v, f"run.{k}: expected {v!r}, got {d[k]!r}"
    return d


def check_step(s, **expect) -> dict:
    d = raw(s)
    check_keys(d, STEP_KEYS, "run step")
    assert d["object"] == "thread.run.step"
    assert d["id"].startswith("step_"), d["id"]
    assert d["type"] in ("message_creation", "tool_calls")
    assert d["step_details"]["type"] == d["type"]
    for k, v in expect.items():
        assert d[k] == v, f"step.{k}: expected {v!r}, got {d[k]!r}"
    return d


def check_list(page, *, object_prefix: Optional[str] = None) -> dict:
    d = raw(page)
    check_keys(d, LIST_KEYS, "list")
    assert d["object"] == "list"
    assert isinstance(d["has_more"], bool)
    if d["data"]:
        assert d["first_id"] == d["data"][0]["id"]
        assert d["last_id"] == d["data"][-1]["id"]
    else:
        assert d["first_id"] is None and d["last_id"] is None, d
        assert d["has_more"] is False
    return d


def check_deleted(resp, obj_id: str, object_name: str):
    d = raw(resp)
    check_keys(d, DELETE_KEYS, "delete response")
    assert d == {"id": obj_id, "object": object_name, "deleted": True} or (
        d["id"] == obj_id and d["object"] == object_name and d["deleted"] is True), d


def check_error_body(body: Any, *, type: Optional[str] = None, param: Any = "<any>", code: Any = "<any>",
                     message_contains: Optional[str] = None) -> dict:
    """The SDK's ``e.body`` is the inner ``error`` object; an httpx body has it under "error"."""
    if isinstance(body, dict) and set(body) == {"error"}:
        body = body["error"]
    assert isinstance(body, dict), body
    for k in ("message", "type", "param", "code"):
        assert k in body, f"error body lacks {k!r}: {body}"
    assert isinstance(body["message"], str) and body["message"], body
    if type is not None:
        assert body["type"] == type, body
    if param != "<any>":
        assert body["param"] == param, f"param: expected {param!r}, got {body['param']!r} ({body})"
    if code != "<any>":
        assert body["code"] == code, f"code: expected {code!r}, got {body['code']!r} ({body})"
    if message_contains is not None:
        assert message_contains in body["message"], body
    return body


@contextlib.contextmanager
def expect_error(exc_type, *, status: Optional[int] = None, type: Optional[str] = None, param: Any = "<any>",
                 code: Any = "<any>", message_contains: Optional[str] = None):
    """``with expect_error(openai.BadRequestError, param="model"): ...``"""
    try:
        yield
    except exc_type as e:
        if status is not None:
            assert e.status_code == status
        check_error_body(e.body, type=type, param=param, code=code, message_contains=message_contains)
        ct = e.response.headers.get("content-type", "")
        assert "json" in ct, f"error content-type {ct!r}"
        return
    raise AssertionError(f"expected {exc_type.__name__}")


def expect_http_error(resp, status: int, **kw) -> dict:
    assert resp.status_code == status, f"expected HTTP {status}, got {resp.status_code}: {resp.text[:500]}"
    assert "json" in resp.headers.get("content-type", ""), resp.headers
    return check_error_body(resp.json(), **kw)


def text_of(message) -> str:
    d = raw(message)
    return "".join(p["text"]["value"] for p in d["content"] if p.get("type") == "text")


# --------------------------------------------------------------------------- runs


def wait_run(client: openai.OpenAI, thread_id: str, run_id: str, statuses: Iterable[str] = tuple(TERMINAL),
             timeout: float = 30.0, interval: float = 0.05):
    """Poll a run until its status is in ``statuses``; fails with the last run on time-out."""
    statuses = set(statuses)
    deadline = time.monotonic() + timeout
    run = None
    while time.monotonic() < deadline:
        run = client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        if run.status in statuses:
            return run
        time.sleep(interval)
    raise AssertionError(f"run {run_id} not in {sorted(statuses)} after {timeout}s: "
                         f"{run.status if run else None} {raw(run) if run else ''}")


def poll_kw() -> dict:
    return {"poll_interval_ms": 50}


def make_assistant(client: openai.OpenAI, **kw):
    kw.setdefault("model", MODEL)
    kw.setdefault("instructions", "You are a conformance test assistant.")
    return client.beta.assistants.create(**kw)


def new_thread_with_marker(client: openai.OpenAI, text: str = "Hello", prefix: str = "run"):
    """A thread with one user message that carries a unique marker; returns (thread, marker)."""
    mk = marker(prefix)
    t = client.beta.threads.create(messages=[{"role": "user", "content": f"{text} [{mk}]"}])
    return t, mk


def collapse(names: Iterable[str]) -> list:
    """Event names with runs of the same delta event collapsed to one."""
    out = []
    for n in names:
        if out and n == out[-1] and n.endswith(".delta"):
            continue
        out.append(n)
    return out


def tool_messages(body: dict) -> list:
    return [m for m in body.get("messages", []) if m.get("role") == "tool"]


# --------------------------------------------------------------------------- vector stores and documents

VECTOR_STORE_KEYS = {"id", "object", "usage_bytes", "created_at", "status", "last_active_at", "name",
                     "file_counts", "metadata"}
VECTOR_STORE_FILE_KEYS = {"id", "object", "usage_bytes", "created_at", "vector_store_id", "status", "last_error"}
FILE_BATCH_KEYS = {"id", "object", "created_at", "vector_store_id", "status", "file_counts"}
FILE_COUNT_KEYS = {"in_progress", "completed", "failed", "cancelled", "total"}
SEARCH_PAGE_KEYS = {"object", "search_query", "data", "has_more", "next_page"}
SEARCH_ITEM_KEYS = {"file_id", "filename", "score", "attributes", "content"}


def upload_bytes(client: openai.OpenAI, data: bytes, name: str = "notes.txt", purpose: str = "assistants"):
    import io
    return client.files.create(file=(name, io.BytesIO(data)), purpose=purpose)


def _check_counts(counts: dict, what: str):
    check_keys(counts, FILE_COUNT_KEYS, what + ".file_counts")
    assert all(isinstance(counts[k], int) and counts[k] >= 0 for k in FILE_COUNT_KEYS), counts
    assert counts["total"] == sum(counts[k] for k in ("in_progress", "completed", "failed", "cancelled")), counts


def check_vector_store(vs, **expect) -> dict:
    d = raw(vs)
    check_keys(d, VECTOR_STORE_KEYS, "vector store")
    assert d["object"] == "vector_store", d
    assert d["id"].startswith("vs_"), d["id"]
    assert is_ts(d["created_at"], near=time.time()), d["created_at"]
    assert d["status"] in ("in_progress", "completed", "expired"), d
    assert isinstance(d["usage_bytes"], int) and d["usage_bytes"] >= 0, d
    assert d["last_active_at"] is None or is_ts(d["last_active_at"], near=time.time()), d
    assert d.get("expires_at") is None or is_ts(d["expires_at"]), d
    assert d["metadata"] is None or isinstance(d["metadata"], dict)
    _check_counts(d["file_counts"], "vector store")
    for k, v in expect.items():
        assert d[k] == v, f"vector_store.{k}: expected {v!r}, got {d[k]!r}"
    return d


def check_vs_file(f, **expect) -> dict:
    d = raw(f)
    check_keys(d, VECTOR_STORE_FILE_KEYS, "vector store file")
    assert d["object"] == "vector_store.file", d
    assert d["id"].startswith("file-"), d["id"]
    assert d["vector_store_id"].startswith("vs_"), d
    assert is_ts(d["created_at"], near=time.time()), d
    assert d["status"] in ("in_progress", "completed", "cancelled", "failed"), d
    assert isinstance(d["usage_bytes"], int) and d["usage_bytes"] >= 0, d
    if d["last_error"] is not None:
        check_keys(d["last_error"], {"code", "message"}, "vector store file last_error")
        assert d["last_error"]["code"] in ("server_error", "unsupported_file", "invalid_file"), d
    if d["status"] == "failed":
        assert d["last_error"] is not None, d
    cs = d.get("chunking_strategy")
    if cs is not None:
        assert cs["type"] in ("static", "other"), cs
        if cs["type"] == "static":
            s = cs["static"]
            assert 100 <= s["max_chunk_size_tokens"] <= 4096, cs
            assert 0 <= s["chunk_overlap_tokens"] <= s["max_chunk_size_tokens"] // 2, cs
    attrs = d.get("attributes")
    assert attrs is None or isinstance(attrs, dict), d
    for k, v in expect.items():
        assert d[k] == v, f"vector_store.file.{k}: expected {v!r}, got {d[k]!r}"
    return d


def check_file_batch(b, **expect) -> dict:
    d = raw(b)
    check_keys(d, FILE_BATCH_KEYS, "file batch")
    # the spec's enum says vector_store.files_batch (its description: vector_store.file_batch)
    assert d["object"] in ("vector_store.files_batch", "vector_store.file_batch"), d
    assert d["id"].startswith("vsfb_"), d["id"]
    assert d["vector_store_id"].startswith("vs_"), d
    assert is_ts(d["created_at"], near=time.time()), d
    assert d["status"] in ("in_progress", "completed", "cancelled", "failed"), d
    _check_counts(d["file_counts"], "file batch")
    for k, v in expect.items():
        assert d[k] == v, f"file_batch.{k}: expected {v!r}, got {d[k]!r}"
    return d


def check_search_page(page) -> dict:
    d = raw(page)
    check_keys(d, SEARCH_PAGE_KEYS, "search results page")
    assert d["object"] == "vector_store.search_results.page", d
    assert isinstance(d["search_query"], list) and all(isinstance(q, str) for q in d["search_query"]), d
    assert isinstance(d["has_more"], bool)
    assert d["next_page"] is None or isinstance(d["next_page"], str)
    for item in d["data"]:
        check_keys(item, SEARCH_ITEM_KEYS, "search result")
        assert item["file_id"].startswith("file-"), item
        assert isinstance(item["score"], (int, float)) and 0 <= item["score"] <= 1, item
        assert item["attributes"] is None or isinstance(item["attributes"], dict), item
        assert isinstance(item["content"], list) and item["content"], item
        for c in item["content"]:
            assert c["type"] == "text" and isinstance(c["text"], str), c
    scores = [i["score"] for i in d["data"]]
    assert scores == sorted(scores, reverse=True), f"results not ordered by score: {scores}"
    return d


def _wait(fetch, done, what: str, timeout: float, interval: float):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fetch()
        if done(last):
            return last
        time.sleep(interval)
    raise AssertionError(f"{what} not done after {timeout}s: {raw(last) if last is not None else None}")


def wait_vector_store(client: openai.OpenAI, vs_id: str, timeout: float = 30.0, interval: float = 0.05):
    """Poll a vector store until no file is in progress (status completed or expired)."""
    return _wait(lambda: client.vector_stores.retrieve(vs_id),
                 lambda v: v.status != "in_progress" and v.file_counts.in_progress == 0,
                 f"vector store {vs_id}", timeout, interval)


def wait_vs_file(client: openai.OpenAI, vs_id: str, file_id: str, timeout: float = 30.0, interval: float = 0.05):
    """Poll a vector store file until it leaves in_progress."""
    return _wait(lambda: client.vector_stores.files.retrieve(file_id, vector_store_id=vs_id),
                 lambda f: f.status != "in_progress", f"vector store file {file_id}", timeout, interval)


def wait_ingested(client: openai.OpenAI, vs_id: str, timeout: float, interval: float):
    """Poll a vector store until none of its files is in progress (whatever the store's status)."""
    return _wait(lambda: client.vector_stores.retrieve(vs_id), lambda v: v.file_counts.in_progress == 0,
                 f"ingestion into vector store {vs_id}", timeout, interval)


def wait_batch(client: openai.OpenAI, vs_id: str, batch_id: str, timeout: float = 30.0, interval: float = 0.05):
    return _wait(lambda: client.vector_stores.file_batches.retrieve(batch_id, vector_store_id=vs_id),
                 lambda b: b.status != "in_progress", f"file batch {batch_id}", timeout, interval)


def make_pdf(text: str, *, width: int = 90, lines_per_page: int = 50) -> bytes:
    """A small valid PDF (Helvetica text objects, a correct xref table) whose text
    `pdftotext` extracts: ``text`` wrapped at ``width`` characters (words are never
    split), ``lines_per_page`` lines a page. ASCII text only."""
    import textwrap
    lines: list = []
    for para in text.split("\n"):
        lines.extend(textwrap.wrap(para, width, break_long_words=False, break_on_hyphens=False) or [""])
    pages = [lines[i:i + lines_per_page] for i in range(0, len(lines), lines_per_page)] or [[]]

    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    objects: list = []  # bodies of objects 1..n
    n_pages = len(pages)
    page_ids = [4 + 2 * i for i in range(n_pages)]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(("<< /Type /Pages /Kids [" + " ".join(f"{p} 0 R" for p in page_ids)
                    + f"] /Count {n_pages} >>").encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    for i, page_lines in enumerate(pages):
        ops = ["BT", "/F1 10 Tf", "12 TL", "50 780 Td"]
        for ln in page_lines:
            ops.append(f"({esc(ln)}) Tj T*")
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1", errors="replace")
        objects.append((f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                        f"/Resources << /Font << /F1 3 0 R >> >> /Contents {page_ids[i] + 1} 0 R >>").encode())
        objects.append(f"<< /Length {len(stream)} >>\nstream\n".encode() + stream + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for num, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{num} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def make_docx(paragraphs: Iterable[str]) -> bytes:
    """A minimal Word .docx (a ZIP with word/document.xml, one w:p per paragraph)."""
    import io
    import zipfile
    from xml.sax.saxutils import escape
    body = "".join(f'<w:p><w:r><w:t xml:space="preserve">{escape(p)}</w:t></w:r></w:p>' for p in paragraphs)
    document = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
                f'<w:body>{body}</w:body></w:document>')
    content_types = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                     '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
                     '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
                     '<Default Extension="xml" ContentType="application/xml"/>'
                     '<Override PartName="/word/document.xml" ContentType="application/'
                     'vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>')
    rels = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            'officeDocument" Target="word/document.xml"/></Relationships>')
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", content_types)
        z.writestr("_rels/.rels", rels)
        z.writestr("word/document.xml", document)
    return buf.getvalue()
