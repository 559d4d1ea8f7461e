"""The v1 dialect (``OpenAI-Beta: assistants=v1``) through the real ``openai==1.20.0``
SDK, the last release that speaks it (NOTES.md §12, §13; assistants-v1-openapi.yaml):
``retrieval`` tools, assistant and message ``file_ids``, the ``/assistants/{id}/files``
and ``/threads/{tid}/messages/{mid}/files`` endpoints, runs with ``file_ids``, run steps
with ``retrieval`` tool calls and ``file_citation`` annotations with a ``quote``.

The server stores all of this in v2 shapes; the ``http`` fixture (v2 header) looks at
that storage where the v1 API has no way to (vector stores, their ingestion)."""

from __future__ import annotations

import time

import openai
import pytest

from helpers import MODEL, is_ts, make_pdf, marker, poll_kw, raw, tool_messages, upload_bytes, wait_run
from upstream import text, tool_call

# v1 required keys (assistants-v1-openapi.yaml)
ASSISTANT_V1_KEYS = {"id", "object", "created_at", "name", "description", "model", "instructions", "tools",
                     "file_ids", "metadata"}
THREAD_V1_KEYS = {"id", "object", "created_at", "metadata"}
MESSAGE_V1_KEYS = {"id", "object", "created_at", "thread_id", "role", "content", "assistant_id", "run_id",
                   "file_ids", "metadata"}
RUN_V1_KEYS = {"id", "object", "created_at", "thread_id", "assistant_id", "status", "required_action",
               "last_error", "expires_at", "started_at", "cancelled_at", "failed_at", "completed_at", "model",
               "instructions", "tools", "file_ids", "metadata", "usage"}
RETRIEVAL = {"type": "retrieval"}


# --------------------------------------------------------------------------- helpers


def check_keys(d: dict, keys, what: str):
    missing = set(keys) - set(d)
    assert not missing, f"{what} lacks v1 keys {sorted(missing)}: {d}"


def v1_assistant(a, **expect) -> dict:
    d = raw(a)
    check_keys(d, ASSISTANT_V1_KEYS, "assistant")
    assert d["object"] == "assistant" and d["id"].startswith("asst_"), d
    assert "tool_resources" not in d, f"v1 assistant has tool_resources: {d}"
    assert isinstance(d["file_ids"], list), d
    assert all(t["type"] != "file_search" for t in d["tools"]), d["tools"]
    for k, v in expect.items():
        assert d[k] == v, f"assistant.{k}: expected {v!r}, got {d[k]!r}"
    return d


def v1_thread(t, **expect) -> dict:
    d = raw(t)
    check_keys(d, THREAD_V1_KEYS, "thread")
    assert d["object"] == "thread" and d["id"].startswith("thread_"), d
    assert "tool_resources" not in d, f"v1 thread has tool_resources: {d}"
    for k, v in expect.items():
        assert d[k] == v, f"thread.{k}: expected {v!r}, got {d[k]!r}"
    return d


def v1_message(m, **expect) -> dict:
    d = raw(m)
    check_keys(d, MESSAGE_V1_KEYS, "message")
    assert d["object"] == "thread.message" and d["id"].startswith("msg_"), d
    assert "attachments" not in d, f"v1 message has attachments: {d}"
    assert isinstance(d["file_ids"], list), d
    for k, v in expect.items():
        assert d[k] == v, f"message.{k}: expected {v!r}, got {d[k]!r}"
    return d


def v1_run(r, **expect) -> dict:
    d = raw(r)
    check_keys(d, RUN_V1_KEYS, "run")
    assert d["object"] == "thread.run" and d["id"].startswith("run_"), d
    assert isinstance(d["file_ids"], list), d
    assert "tool_resources" not in d, d
    assert all(t["type"] != "file_search" for t in d["tools"]), d["tools"]
    for k, v in expect.items():
        assert d[k] == v, f"run.{k}: expected {v!r}, got {d[k]!r}"
    return d


def check_assistant_file(f, file_id: str, assistant_id: str) -> dict:
    d = raw(f)
    assert set(d) == {"id", "object", "created_at", "assistant_id"}, d
    assert d["id"] == file_id and d["object"] == "assistant.file" and d["assistant_id"] == assistant_id, d
    assert is_ts(d["created_at"], near=time.time()), d
    return d


def check_message_file(f, file_id: str, message_id: str) -> dict:
    d = raw(f)
    assert set(d) == {"id", "object", "created_at", "message_id"}, d
    assert d["id"] == file_id and d["object"] == "thread.message.file" and d["message_id"] == message_id, d
    assert is_ts(d["created_at"], near=time.time()), d
    return d


def upload(client, data: bytes, name: str):
    return upload_bytes(client, data, name)


def v2_get(http, path: str) -> dict:
    r = http.get(path)
    assert r.status_code == 200, f"GET {path} (v2): HTTP {r.status_code} {r.text[:500]}"
    return r.json()


def wait_store_ready(http, vs_id: str, timeout: float = 30.0) -> dict:
    """Poll the v2 /vector_stores/{id} until nothing is in progress."""
    deadline = time.monotonic() + timeout
    vs = None
    while time.monotonic() < deadline:
        vs = v2_get(http, f"/vector_stores/{vs_id}")
        if vs["status"] != "in_progress" and vs["file_counts"]["in_progress"] == 0:
            return vs
        time.sleep(0.05)
    raise AssertionError(f"vector store {vs_id} not ready after {timeout}s: {vs}")


def store_file_ids(http, vs_id: str) -> list:
    return sorted(f["id"] for f in v2_get(http, f"/vector_stores/{vs_id}/files?limit=100")["data"])


def assistant_store(http, assistant_id: str):
    a = v2_get(http, f"/assistants/{assistant_id}")
    ids = ((a.get("tool_resources") or {}).get("file_search") or {}).get("vector_store_ids") or []
    assert len(ids) <= 1, a
    return ids[0] if ids else None


def thread_store(http, thread_id: str):
    t = v2_get(http, f"/threads/{thread_id}")
    ids = ((t.get("tool_resources") or {}).get("file_search") or {}).get("vector_store_ids") or []
    return ids[0] if ids else None


def pdf_with_needle(needle: str) -> bytes:
    filler = [f"Section {i}. The annual review covers shipping schedules, budgets and staffing for depot {i}."
              for i in range(40)]
    filler.insert(20, needle)
    return make_pdf("\n".join(filler))


def last_tool_text(upstream, mk) -> str:
    reqs = upstream.requests_containing(mk)
    tms = [m for r in reqs for m in tool_messages(r.body)]
    assert tms, f"no tool message reached the model: {[r.body for r in reqs]}"
    c = tms[-1]["content"]
    return c if isinstance(c, str) else "".join(p.get("text", "") for p in c)


# --------------------------------------------------------------------------- assistants


def test_sdk_sends_v1_header(client, server):
    # not a server check: makes sure the suite really runs the v1 SDK
    assert openai.__version__ == "1.20.0", openai.__version__
    resp = client.beta.assistants.with_raw_response.list()
    assert resp.http_request.headers.get("OpenAI-Beta") == "assistants=v1"


def test_assistant_v1_shape(client, http):
    f1 = upload(client, b"alpha notes", "alpha.txt")
    f2 = upload(client, b"beta notes", "beta.txt")
    a = client.beta.assistants.create(model=MODEL, name="v1", tools=[RETRIEVAL, {"type": "code_interpreter"}],
                                      file_ids=[f1.id, f2.id])
    d = v1_assistant(a, file_ids=[f1.id, f2.id], tools=[RETRIEVAL, {"type": "code_interpreter"}], name="v1")
    v1_assistant(client.beta.assistants.retrieve(a.id), file_ids=[f1.id, f2.id], tools=d["tools"])
    (listed,) = [x for x in client.beta.assistants.list() if x.id == a.id]
    v1_assistant(listed, file_ids=[f1.id, f2.id])

    # stored as v2: code_interpreter files, and a vector store of them for retrieval
    v2 = v2_get(http, f"/assistants/{a.id}")
    assert [t["type"] for t in v2["tools"]] == ["file_search", "code_interpreter"], v2["tools"]
    assert v2["tool_resources"]["code_interpreter"]["file_ids"] == [f1.id, f2.id], v2
    vs = assistant_store(http, a.id)
    assert vs and vs.startswith("vs_"), v2
    wait_store_ready(http, vs)
    assert store_file_ids(http, vs) == sorted([f1.id, f2.id])

    # no file_ids, no retrieval: file_ids is [] (required in v1), no store
    b = client.beta.assistants.create(model=MODEL, tools=[{"type": "code_interpreter"}])
    v1_assistant(b, file_ids=[], tools=[{"type": "code_interpreter"}])
    assert assistant_store(http, b.id) is None


def test_assistant_update_file_ids_and_tools(client, http):
    f1 = upload(client, b"one", "one.txt")
    f2 = upload(client, b"two", "two.txt")
    a = client.beta.assistants.create(model=MODEL, tools=[RETRIEVAL], file_ids=[f1.id, f2.id])
    u = client.beta.assistants.update(a.id, file_ids=[f2.id])
    v1_assistant(u, file_ids=[f2.id], tools=[RETRIEVAL])
    v1_assistant(client.beta.assistants.retrieve(a.id), file_ids=[f2.id])
    # the retrieval store follows the files
    vs = assistant_store(http, a.id)
    assert vs, v2_get(http, f"/assistants/{a.id}")
    wait_store_ready(http, vs)
    assert store_file_ids(http, vs) == [f2.id]
    # updating other fields keeps the files
    u = client.beta.assistants.update(a.id, name="renamed", tools=[RETRIEVAL, {"type": "code_interpreter"}])
    v1_assistant(u, name="renamed", file_ids=[f2.id], tools=[RETRIEVAL, {"type": "code_interpreter"}])


def test_assistant_file_ids_limit(client):
    ids = [upload(client, f"f{i}".encode(), f"f{i}.txt").id for i in range(21)]
    with pytest.raises(openai.BadRequestError) as e:
        client.beta.assistants.create(model=MODEL, tools=[RETRIEVAL], file_ids=ids)
    assert e.value.body["param"] == "file_ids", e.value.body
    a = client.beta.assistants.create(model=MODEL, tools=[RETRIEVAL], file_ids=ids[:20])
    v1_assistant(a, file_ids=ids[:20])
    # a 21st through /files is refused too
    with pytest.raises(openai.BadRequestError):
        client.beta.assistants.files.create(a.id, file_id=ids[20])


def test_assistant_files_crud(client, http):
    f1 = upload(client, b"The harbour opens at dawn.", "harbour.txt")
    f2 = upload(client, b"The market closes at dusk.", "market.txt")
    a = client.beta.assistants.create(model=MODEL, tools=[RETRIEVAL])
    v1_assistant(a, file_ids=[])

    c1 = client.beta.assistants.files.create(a.id, file_id=f1.id)
    check_assistant_file(c1, f1.id, a.id)
    c2 = client.beta.assistants.files.create(a.id, file_id=f2.id)
    check_assistant_file(c2, f2.id, a.id)
    # adding the same file again changes nothing
    check_assistant_file(client.beta.assistants.files.create(a.id, file_id=f1.id), f1.id, a.id)
    v1_assistant(client.beta.assistants.retrieve(a.id), file_ids=[f1.id, f2.id])

    page = client.beta.assistants.files.list(a.id)
    d = raw(page)
    assert d["object"] == "list" and isinstance(d["has_more"], bool), d
    assert {x["id"] for x in d["data"]} == {f1.id, f2.id}, d
    for x in d["data"]:
        check_assistant_file(x, x["id"], a.id)
    asc = [x.id for x in client.beta.assistants.files.list(a.id, order="asc")]
    assert asc == [f1.id, f2.id], asc
    first = client.beta.assistants.files.list(a.id, order="asc", limit=1)
    assert [x.id for x in first.data] == [f1.id] and first.has_more is True

    check_assistant_file(client.beta.assistants.files.retrieve(f2.id, assistant_id=a.id), f2.id, a.id)

    # with retrieval, the files are in the assistant's store (v2 view)
    vs = assistant_store(http, a.id)
    assert vs, v2_get(http, f"/assistants/{a.id}")
    wait_store_ready(http, vs)
    assert store_file_ids(http, vs) == sorted([f1.id, f2.id])

    deleted = client.beta.assistants.files.delete(f1.id, assistant_id=a.id)
    assert raw(deleted) == {"id": f1.id, "object": "assistant.file.deleted", "deleted": True}, raw(deleted)
    assert [x.id for x in client.beta.assistants.files.list(a.id)] == [f2.id]
    v1_assistant(client.beta.assistants.retrieve(a.id), file_ids=[f2.id])
    assert store_file_ids(http, vs) == [f2.id]
    # the file itself is not deleted
    assert client.files.retrieve(f1.id).id == f1.id

    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.files.retrieve(f1.id, assistant_id=a.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.files.delete(f1.id, assistant_id=a.id)
    with pytest.raises(openai.BadRequestError) as e:
        client.beta.assistants.files.create(a.id, file_id="file-doesnotexist")
    assert e.value.body["param"] == "file_id", e.value.body
    with pytest.raises(openai.NotFoundError):
        client.beta.assistants.files.list("asst_doesnotexist")


# --------------------------------------------------------------------------- threads and messages


def test_thread_and_message_v1_shapes(client, http):
    f = upload(client, b"thread file", "t.txt")
    t = client.beta.threads.create(messages=[{"role": "user", "content": "hi", "file_ids": [f.id]}],
                                   metadata={"k": "v"})
    v1_thread(t, metadata={"k": "v"})
    v1_thread(client.beta.threads.retrieve(t.id))
    v1_thread(client.beta.threads.update(t.id, metadata={"k": "w"}), metadata={"k": "w"})
    (m,) = client.beta.threads.messages.list(t.id)
    v1_message(m, file_ids=[f.id], role="user")
    assert m.content[0].type == "text" and m.content[0].text.value == "hi"
    m2 = client.beta.threads.messages.create(t.id, role="user", content="no files")
    v1_message(m2, file_ids=[])
    v1_message(client.beta.threads.messages.retrieve(m2.id, thread_id=t.id), file_ids=[])
    v1_message(client.beta.threads.messages.update(m2.id, thread_id=t.id, metadata={"a": "b"}),
               metadata={"a": "b"}, file_ids=[])
    # v2 storage: attachments for both tools
    v2m = v2_get(http, f"/threads/{t.id}/messages/{m.id}")
    assert v2m["attachments"] == [{"file_id": f.id, "tools": [{"type": "file_search"},
                                                               {"type": "code_interpreter"}]}], v2m


def test_message_files(client, http):
    f1 = upload(client, b"first attachment", "a1.txt")
    f2 = upload(client, b"second attachment", "a2.txt")
    f3 = upload(client, b"not attached", "a3.txt")
    t = client.beta.threads.create()
    m = client.beta.threads.messages.create(t.id, role="user", content="see files", file_ids=[f1.id, f2.id])
    v1_message(m, file_ids=[f1.id, f2.id])

    page = client.beta.threads.messages.files.list(m.id, thread_id=t.id)
    d = raw(page)
    assert d["object"] == "list" and isinstance(d["has_more"], bool), d
    assert {x["id"] for x in d["data"]} == {f1.id, f2.id}, d
    for x in d["data"]:
        check_message_file(x, x["id"], m.id)
    assert [x.id for x in client.beta.threads.messages.files.list(m.id, thread_id=t.id, order="asc")] == [f1.id, f2.id]
    check_message_file(client.beta.threads.messages.files.retrieve(f2.id, thread_id=t.id, message_id=m.id), f2.id, m.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.files.retrieve(f3.id, thread_id=t.id, message_id=m.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.files.list("msg_doesnotexist", thread_id=t.id)

    # a message without files has an empty list
    m2 = client.beta.threads.messages.create(t.id, role="user", content="plain")
    assert client.beta.threads.messages.files.list(m2.id, thread_id=t.id).data == []

    # the files went into the thread's vector store (v2 view), and the thread still shows no tool_resources
    vs = thread_store(http, t.id)
    assert vs, v2_get(http, f"/threads/{t.id}")
    wait_store_ready(http, vs)
    assert store_file_ids(http, vs) == sorted([f1.id, f2.id])
    v1_thread(client.beta.threads.retrieve(t.id))


def test_message_file_ids_limit(client):
    ids = [upload(client, f"m{i}".encode(), f"m{i}.txt").id for i in range(11)]
    t = client.beta.threads.create()
    with pytest.raises(openai.BadRequestError):
        client.beta.threads.messages.create(t.id, role="user", content="too many", file_ids=ids)
    m = client.beta.threads.messages.create(t.id, role="user", content="ten", file_ids=ids[:10])
    v1_message(m, file_ids=ids[:10])


# --------------------------------------------------------------------------- runs


@pytest.mark.runs
def test_run_v1_shape(client, upstream):
    a = client.beta.assistants.create(model=MODEL, instructions="Be brief.")
    mk = marker("v1run")
    t = client.beta.threads.create(messages=[{"role": "user", "content": f"Hello {mk}"}])
    upstream.enqueue(text("Hi there."), match=mk)
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id, **poll_kw())
    v1_run(run, status="completed", tools=[], file_ids=[])
    v1_run(client.beta.threads.runs.retrieve(run.id, thread_id=t.id), status="completed")
    (listed,) = client.beta.threads.runs.list(t.id)
    v1_run(listed)
    msgs = [m for m in client.beta.threads.messages.list(t.id) if m.role == "assistant"]
    assert len(msgs) == 1
    v1_message(msgs[0], file_ids=[], run_id=run.id, assistant_id=a.id)
    assert msgs[0].content[0].text.value == "Hi there."

    # a run whose tools override the assistant's: retrieval in, retrieval out
    upstream.enqueue(text("Again."), match=mk)
    run2 = client.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id, tools=[RETRIEVAL])
    v1_run(run2, tools=[RETRIEVAL])
    run2 = wait_run(client, t.id, run2.id)
    v1_run(run2, status="completed", tools=[RETRIEVAL])


@pytest.mark.runs
def test_create_thread_and_run_v1(client, upstream):
    f = upload(client, b"Inline thread note.", "inline.txt")
    a = client.beta.assistants.create(model=MODEL, tools=[RETRIEVAL])
    mk = marker("v1tar")
    upstream.enqueue(text("Done."), match=mk)
    run = client.beta.threads.create_and_run(
        assistant_id=a.id, thread={"messages": [{"role": "user", "content": f"Hi {mk}", "file_ids": [f.id]}]})
    v1_run(run, tools=[RETRIEVAL])
    run = wait_run(client, run.thread_id, run.id)
    v1_run(run, status="completed")
    v1_thread(client.beta.threads.retrieve(run.thread_id))
    user = [m for m in client.beta.threads.messages.list(run.thread_id) if m.role == "user"]
    v1_message(user[0], file_ids=[f.id])


def _retrieval_round(client, http, upstream, *, assistant_id, thread_id, mk, file_id, filename, needle, answer):
    """Script file_search + a cited answer, run, and check the v1 run, steps and citation."""
    upstream.enqueue(tool_call("file_search", {"queries": ["secret code of the depot"]}), match=mk)
    upstream.enqueue(text(answer), match=mk)
    run = client.beta.threads.runs.create_and_poll(thread_id=thread_id, assistant_id=assistant_id, **poll_kw())
    v1_run(run, status="completed", tools=[RETRIEVAL])

    # the model was offered file_search and got the PDF's needle back
    first = upstream.requests_containing(mk)[0].body
    assert "file_search" in [x.get("function", {}).get("name") for x in first.get("tools") or []], first.get("tools")
    tool_text = last_tool_text(upstream, mk)
    assert needle in tool_text, tool_text[:1000]
    assert f"†{filename}】" in tool_text, tool_text[:300]

    # steps: a tool_calls step with a v1 retrieval call, then the message
    steps = [raw(s) for s in client.beta.threads.runs.steps.list(run.id, thread_id=thread_id, order="asc")]
    assert [s["type"] for s in steps] == ["tool_calls", "message_creation"], steps
    for s in steps:
        assert s["object"] == "thread.run.step" and s["status"] == "completed", s
    (call,) = steps[0]["step_details"]["tool_calls"]
    assert call == {"id": call["id"], "type": "retrieval", "retrieval": {}}, call
    assert call["id"], call
    one = raw(client.beta.threads.runs.steps.retrieve(steps[0]["id"], thread_id=thread_id, run_id=run.id))
    assert one["step_details"]["tool_calls"] == [call], one

    # the answer cites the file: file_citation with file_id and quote (v1)
    msg_id = steps[1]["step_details"]["message_creation"]["message_id"]
    m = client.beta.threads.messages.retrieve(msg_id, thread_id=thread_id)
    d = v1_message(m, role="assistant", run_id=run.id)
    part = d["content"][0]
    assert part["type"] == "text", part
    value = part["text"]["value"]
    anns = part["text"]["annotations"]
    assert anns, part
    (ann,) = anns
    assert ann["type"] == "file_citation", ann
    assert ann["file_citation"]["file_id"] == file_id, ann
    assert isinstance(ann["file_citation"].get("quote"), str), f"v1 file_citation lacks a quote: {ann}"
    assert value[ann["start_index"]:ann["end_index"]] == ann["text"], (value, ann)
    # the SDK parses it as a v1 annotation
    sdk_ann = m.content[0].text.annotations[0]
    assert sdk_ann.type == "file_citation" and sdk_ann.file_citation.file_id == file_id
    assert isinstance(sdk_ann.file_citation.quote, str)
    # also in the thread's message list
    listed = [raw(x) for x in client.beta.threads.messages.list(thread_id) if x.id == msg_id]
    assert listed and "quote" in listed[0]["content"][0]["text"]["annotations"][0]["file_citation"], listed
    return run


@pytest.mark.runs
def test_retrieval_assistant_answers_from_pdf(client, http, upstream):
    """The issue's flow: an assistant with `retrieval` and `file_ids` answers from a PDF."""
    needle = "The secret code of depot 77 is HERON-4512."
    pdf = upload(client, pdf_with_needle(needle), "report.pdf")
    a = client.beta.assistants.create(model=MODEL, name="pdf reader", instructions="Answer from the files.",
                                      tools=[RETRIEVAL], file_ids=[pdf.id])
    v1_assistant(a, tools=[RETRIEVAL], file_ids=[pdf.id])
    vs = assistant_store(http, a.id)
    assert vs, v2_get(http, f"/assistants/{a.id}")
    ready = wait_store_ready(http, vs)
    assert ready["file_counts"]["completed"] == 1, ready

    mk = marker("v1pdf")
    t = client.beta.threads.create(messages=[{"role": "user", "content": f"What is the code of depot 77? {mk}"}])
    _retrieval_round(client, http, upstream, assistant_id=a.id, thread_id=t.id, mk=mk, file_id=pdf.id,
                     filename="report.pdf", needle="HERON-4512",
                     answer="The code of depot 77 is HERON-4512 【0†report.pdf】.")


@pytest.mark.runs
def test_retrieval_from_message_file(client, http, upstream):
    """A PDF given as a message's file_ids is searched by a retrieval assistant without files."""
    needle = "The secret code of depot 12 is OSPREY-2207."
    pdf = upload(client, pdf_with_needle(needle), "memo.pdf")
    a = client.beta.assistants.create(model=MODEL, tools=[RETRIEVAL])
    mk = marker("v1msg")
    t = client.beta.threads.create()
    client.beta.threads.messages.create(t.id, role="user", content=f"What is the code of depot 12? {mk}",
                                        file_ids=[pdf.id])
    vs = thread_store(http, t.id)
    if vs:  # attachments may also be indexed only when the run starts
        wait_store_ready(http, vs)
    _retrieval_round(client, http, upstream, assistant_id=a.id, thread_id=t.id, mk=mk, file_id=pdf.id,
                     filename="memo.pdf", needle="OSPREY-2207",
                     answer="Depot 12 uses OSPREY-2207 【0†memo.pdf】.")
