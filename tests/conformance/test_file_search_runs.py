"""The file_search tool in runs: vector stores from the assistant, the thread, inline
`vector_stores`, message attachments; the tool_calls step (results, include[] content);
what the model receives (the needle's chunk, headed 【N†filename】, not the whole file);
file_citation annotations (NOTES.md §10)."""

import json

import pytest

from helpers import (check_run, check_step, check_thread, check_vector_store, make_assistant, marker, poll_kw, raw,
                     text_of, tool_messages, upload_bytes, wait_vector_store)
from upstream import text, tool_call

pytestmark = pytest.mark.runs

INCLUDE_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"
FILE_SEARCH = {"type": "file_search"}


def long_notes(needle: str, n_paragraphs: int = 120) -> str:
    """A long text (~12k words) with the needle sentence in the middle and markers at both ends."""
    paras = [f"Paragraph {i}: the quarterly report discusses logistics, budgets and staffing in region {i}. "
             * 8 for i in range(n_paragraphs)]
    paras[0] = "BEGINNING-OF-FILE-MARKER. " + paras[0]
    paras[-1] = paras[-1] + " END-OF-FILE-MARKER."
    paras.insert(n_paragraphs // 2, needle)
    return "\n\n".join(paras)


def search_then_answer(upstream, mk, queries, answer):
    upstream.enqueue(tool_call("file_search", {"queries": queries}), match=mk)
    upstream.enqueue(text(answer), match=mk)


def file_search_steps(client, thread_id, run_id, **kw):
    steps = [raw(s) for s in client.beta.threads.runs.steps.list(run_id, thread_id=thread_id, order="asc", **kw)]
    return [s for s in steps if s["type"] == "tool_calls"], steps


def last_tool_message(upstream, mk) -> str:
    reqs = upstream.requests_containing(mk)
    tms = [m for r in reqs for m in tool_messages(r.body)]
    assert tms, f"no tool message reached the model: {[r.body for r in reqs]}"
    c = tms[-1]["content"]
    return c if isinstance(c, str) else "".join(p.get("text", "") for p in c)


@pytest.fixture
def needle_store(client):
    needle = "The secret code of project X-123 is ZEBRA-9931."
    f = upload_bytes(client, long_notes(needle).encode(), "notes.txt")
    vs = client.vector_stores.create(name="notes", file_ids=[f.id])
    wait_vector_store(client, vs.id)
    vs.file = f
    return vs


def test_needle_from_assistant_store(client, upstream, needle_store):
    f = needle_store.file
    asst = make_assistant(client, tools=[FILE_SEARCH],
                          tool_resources={"file_search": {"vector_store_ids": [needle_store.id]}})
    mk = marker("fs")
    t = client.beta.threads.create(messages=[{"role": "user", "content": f"What is the code of project X-123? {mk}"}])
    answer = "The code is ZEBRA-9931 【0†notes.txt】."
    search_then_answer(upstream, mk, ["secret code project X-123"], answer)
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=asst.id, **poll_kw())
    check_run(run, status="completed")

    # the model was offered a file_search function and got the needle's chunk back, not the whole file
    first = upstream.requests_containing(mk)[0].body
    names = [x.get("function", {}).get("name") for x in first.get("tools") or []]
    assert "file_search" in names, first.get("tools")
    tool_text = last_tool_message(upstream, mk)
    assert "ZEBRA-9931" in tool_text
    assert "【" in tool_text and "†notes.txt】" in tool_text, tool_text[:300]
    assert "BEGINNING-OF-FILE-MARKER" not in tool_text or "END-OF-FILE-MARKER" not in tool_text
    assert len(tool_text) < len(long_notes("x")) / 3, len(tool_text)

    # the tool_calls step: a file_search call with results (no content by default)
    tc_steps, steps = file_search_steps(client, t.id, run.id)
    assert [s["type"] for s in steps] == ["tool_calls", "message_creation"]
    s = check_step(tc_steps[0], status="completed")
    (call,) = s["step_details"]["tool_calls"]
    assert call["type"] == "file_search" and call["id"]
    results = call["file_search"]["results"]
    assert results, call
    for r in results:
        assert r["file_id"] == f.id and r["file_name"] == "notes.txt", r
        assert 0 <= r["score"] <= 1
        assert "content" not in r or r["content"] in (None, []), r
    ro = call["file_search"].get("ranking_options")
    if ro is not None:
        assert ro["ranker"] in ("auto", "default_2024_08_21") and 0 <= ro["score_threshold"] <= 1, ro

    # the answer: the citation marker became a file_citation annotation
    (msg,) = [m for m in client.beta.threads.messages.list(t.id) if m.role == "assistant"]
    d = raw(msg)
    part = d["content"][0]
    assert part["type"] == "text"
    value = part["text"]["value"]
    (ann,) = part["text"]["annotations"]
    assert ann["type"] == "file_citation"
    assert ann["file_citation"]["file_id"] == f.id
    assert value[ann["start_index"]:ann["end_index"]] == ann["text"], (value, ann)
    assert ann["text"] == "【0†notes.txt】" or ann["text"] in answer, ann


def test_include_content(client, upstream, needle_store):
    asst = make_assistant(client, tools=[FILE_SEARCH],
                          tool_resources={"file_search": {"vector_store_ids": [needle_store.id]}})
    mk = marker("inc")
    t = client.beta.threads.create(messages=[{"role": "user", "content": f"code of X-123? {mk}"}])
    search_then_answer(upstream, mk, ["secret code X-123"], "ZEBRA-9931 【0†notes.txt】")
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=asst.id,
                                                   include=[INCLUDE_CONTENT], **poll_kw())
    check_run(run, status="completed")
    with_content, _ = file_search_steps(client, t.id, run.id, include=[INCLUDE_CONTENT])
    results = with_content[0]["step_details"]["tool_calls"][0]["file_search"]["results"]
    assert results and all(isinstance(r.get("content"), list) and r["content"] for r in results), results
    for r in results:
        for c in r["content"]:
            assert c["type"] == "text" and isinstance(c["text"], str)
    assert any("ZEBRA-9931" in c["text"] for r in results for c in r["content"])
    # retrieve one step with and without include
    sid = with_content[0]["id"]
    one = raw(client.beta.threads.runs.steps.retrieve(sid, thread_id=t.id, run_id=run.id, include=[INCLUDE_CONTENT]))
    assert one["step_details"]["tool_calls"][0]["file_search"]["results"][0]["content"]
    plain = raw(client.beta.threads.runs.steps.retrieve(sid, thread_id=t.id, run_id=run.id))
    for r in plain["step_details"]["tool_calls"][0]["file_search"]["results"]:
        assert "content" not in r or r["content"] in (None, []), r


def test_thread_store_and_inline_vector_stores(client, upstream):
    fa = upload_bytes(client, b"Thread store fact: the lighthouse keeper is named Agatha.", "keeper.txt")
    fb = upload_bytes(client, b"Assistant store fact: the ferry leaves at 7:15.", "ferry.txt")
    asst = make_assistant(client, tools=[FILE_SEARCH],
                          tool_resources={"file_search": {"vector_stores": [{"file_ids": [fb.id]}]}})
    a = raw(asst)
    (asst_vs,) = a["tool_resources"]["file_search"]["vector_store_ids"]
    assert asst_vs.startswith("vs_")
    check_vector_store(wait_vector_store(client, asst_vs))
    mk = marker("thr")
    t = client.beta.threads.create(
        messages=[{"role": "user", "content": f"Who keeps the lighthouse, and when does the ferry leave? {mk}"}],
        tool_resources={"file_search": {"vector_stores": [{"file_ids": [fa.id]}]}})
    (thread_vs,) = check_thread(t)["tool_resources"]["file_search"]["vector_store_ids"]
    assert thread_vs.startswith("vs_") and thread_vs != asst_vs
    wait_vector_store(client, thread_vs)
    search_then_answer(upstream, mk, ["lighthouse keeper", "ferry leaves"], "Agatha 【0†keeper.txt】, 7:15 【1†ferry.txt】")
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=asst.id, **poll_kw())
    check_run(run, status="completed")
    tool_text = last_tool_message(upstream, mk)
    assert "Agatha" in tool_text and "7:15" in tool_text, tool_text  # both stores searched
    tc, _ = file_search_steps(client, t.id, run.id)
    got = {r["file_id"] for r in tc[0]["step_details"]["tool_calls"][0]["file_search"]["results"]}
    assert {fa.id, fb.id} <= got
    (msg,) = [m for m in client.beta.threads.messages.list(t.id) if m.role == "assistant"]
    anns = raw(msg)["content"][0]["text"]["annotations"]
    assert sorted(x["file_citation"]["file_id"] for x in anns) == sorted([fa.id, fb.id]), anns


def test_attachment_goes_into_thread_store(client, upstream):
    f = upload_bytes(client, b"Attached memo: the vault combination is 31-7-44.", "memo.txt")
    asst = make_assistant(client, tools=[FILE_SEARCH])
    mk = marker("att")
    t = client.beta.threads.create(messages=[{
        "role": "user", "content": f"What is the vault combination? {mk}",
        "attachments": [{"file_id": f.id, "tools": [FILE_SEARCH]}]}])
    d = check_thread(client.beta.threads.retrieve(t.id))
    ids = (d["tool_resources"].get("file_search") or {}).get("vector_store_ids") or []
    assert len(ids) == 1, d["tool_resources"]
    vs = check_vector_store(wait_vector_store(client, ids[0]))
    assert vs["file_counts"]["completed"] == 1
    assert [x.id for x in client.vector_stores.files.list(ids[0])] == [f.id]
    search_then_answer(upstream, mk, ["vault combination"], "It is 31-7-44 【0†memo.txt】.")
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=asst.id, **poll_kw())
    check_run(run, status="completed")
    assert "31-7-44" in last_tool_message(upstream, mk)
    (msg,) = [m for m in client.beta.threads.messages.list(t.id) if m.role == "assistant"]
    (ann,) = raw(msg)["content"][0]["text"]["annotations"]
    assert ann["type"] == "file_citation" and ann["file_citation"]["file_id"] == f.id


def test_attachment_on_added_message_uses_same_thread_store(client, upstream):
    f1 = upload_bytes(client, b"First attachment: owls hoot.", "one.txt")
    f2 = upload_bytes(client, b"Second attachment: wolves howl.", "two.txt")
    t = client.beta.threads.create(messages=[{"role": "user", "content": "one",
                                              "attachments": [{"file_id": f1.id, "tools": [FILE_SEARCH]}]}])
    client.beta.threads.messages.create(t.id, role="user", content="two",
                                        attachments=[{"file_id": f2.id, "tools": [FILE_SEARCH]}])
    ids = raw(client.beta.threads.retrieve(t.id))["tool_resources"]["file_search"]["vector_store_ids"]
    assert len(ids) == 1, ids
    wait_vector_store(client, ids[0])
    assert sorted(x.id for x in client.vector_stores.files.list(ids[0])) == sorted([f1.id, f2.id])


def test_run_level_tool_resources_and_no_results(client, upstream):
    f = upload_bytes(client, b"Nothing relevant here: just tulips.", "tulips.txt")
    vs = client.vector_stores.create(file_ids=[f.id])
    wait_vector_store(client, vs.id)
    asst = make_assistant(client, tools=[FILE_SEARCH])
    mk = marker("none")
    t = client.beta.threads.create(messages=[{"role": "user", "content": f"quantum chromodynamics? {mk}"}],
                                   tool_resources={"file_search": {"vector_store_ids": [vs.id]}})
    search_then_answer(upstream, mk, ["quantum chromodynamics"], "I found nothing.")
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=asst.id, **poll_kw())
    check_run(run, status="completed")
    tc, _ = file_search_steps(client, t.id, run.id)
    assert tc[0]["step_details"]["tool_calls"][0]["file_search"]["results"] == []
    (msg,) = [m for m in client.beta.threads.messages.list(t.id) if m.role == "assistant"]
    assert raw(msg)["content"][0]["text"]["annotations"] == []


def test_max_num_results_of_the_tool(client, upstream):
    files = [upload_bytes(client, f"Report {i}: the walrus population grew.".encode(), f"r{i}.txt") for i in range(8)]
    vs = client.vector_stores.create(file_ids=[x.id for x in files])
    wait_vector_store(client, vs.id)
    asst = make_assistant(client, tools=[{"type": "file_search", "file_search": {"max_num_results": 3}}],
                          tool_resources={"file_search": {"vector_store_ids": [vs.id]}})
    mk = marker("max")
    t = client.beta.threads.create(messages=[{"role": "user", "content": f"walrus? {mk}"}])
    search_then_answer(upstream, mk, ["walrus population"], "It grew.")
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=asst.id, **poll_kw())
    check_run(run, status="completed")
    tc, _ = file_search_steps(client, t.id, run.id)
    assert len(tc[0]["step_details"]["tool_calls"][0]["file_search"]["results"]) == 3
    assert last_tool_message(upstream, mk).count("†") == 3


def test_citation_of_unknown_index_is_not_annotated(client, upstream, needle_store):
    asst = make_assistant(client, tools=[FILE_SEARCH],
                          tool_resources={"file_search": {"vector_store_ids": [needle_store.id]}})
    mk = marker("bad")
    t = client.beta.threads.create(messages=[{"role": "user", "content": f"X-123? {mk}"}])
    search_then_answer(upstream, mk, ["X-123 code"], "See 【0†notes.txt】 and 【42†ghost.txt】.")
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=asst.id, **poll_kw())
    check_run(run, status="completed")
    (msg,) = [m for m in client.beta.threads.messages.list(t.id) if m.role == "assistant"]
    part = raw(msg)["content"][0]["text"]
    for ann in part["annotations"]:
        assert ann["file_citation"]["file_id"] == needle_store.file.id, part
        assert part["value"][ann["start_index"]:ann["end_index"]] == ann["text"]


def test_unicode_before_citation_indexes(client, upstream, needle_store):
    """start_index/end_index count Python string (code point) positions, not UTF-8 bytes."""
    asst = make_assistant(client, tools=[FILE_SEARCH],
                          tool_resources={"file_search": {"vector_store_ids": [needle_store.id]}})
    mk = marker("uni")
    t = client.beta.threads.create(messages=[{"role": "user", "content": f"X-123? {mk}"}])
    search_then_answer(upstream, mk, ["X-123"], "Ünïcödé ✓ 日本語: ZEBRA-9931 【0†notes.txt】 done")
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=asst.id, **poll_kw())
    check_run(run, status="completed")
    (msg,) = [m for m in client.beta.threads.messages.list(t.id) if m.role == "assistant"]
    part = raw(msg)["content"][0]["text"]
    (ann,) = part["annotations"]
    assert part["value"][ann["start_index"]:ann["end_index"]] == ann["text"], part
