"""Runs: text replies, overrides forwarded to the upstream, one active run per thread,
create_and_run, list/retrieve/modify, streaming."""

import json
import threading

import httpx
import openai
import pytest

from conftest import UPSTREAM_API_KEY
from helpers import (ADD_PRIME_NUMBERS, MODEL, ACTIVE, TERMINAL, check_message, check_run, check_step, collapse,
                     expect_error, expect_http_error, fn_tool, make_assistant, new_thread_with_marker, poll_kw, raw,
                     text_of, wait_run)
from upstream import chat_messages, gate, system_prompt, text

pytestmark = pytest.mark.runs

INSTR = "You are a personal math tutor. Answer questions briefly, in a sentence or less."


@pytest.fixture
def asst(client):
    return make_assistant(client, name="Run tester", instructions=INSTR)


def test_create_and_poll_text_reply(client, upstream, asst):
    t, mk = new_thread_with_marker(client, "What is 2+2?")
    upstream.enqueue(text("Two plus two is four.", usage={"prompt_tokens": 31, "completion_tokens": 7}), match=mk)
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=asst.id, **poll_kw())
    d = check_run(run, status="completed", thread_id=t.id, assistant_id=asst.id, model=MODEL,
                  instructions=INSTR, last_error=None, required_action=None, incomplete_details=None)
    assert d["started_at"] is not None and d["completed_at"] is not None
    assert d["completed_at"] >= d["started_at"] >= d["created_at"]
    assert d["expires_at"] is None, "terminal runs have expires_at null"
    assert d["usage"] == {"prompt_tokens": 31, "completion_tokens": 7, "total_tokens": 38}

    msgs = list(client.beta.threads.messages.list(t.id))
    assert len(msgs) == 2
    reply = msgs[0]
    check_message(reply, role="assistant", run_id=run.id, assistant_id=asst.id, thread_id=t.id,
                  status="completed")
    assert text_of(reply) == "Two plus two is four."
    assert raw(reply)["content"][0]["text"]["annotations"] == []
    assert msgs[1].run_id is None

    steps = list(client.beta.threads.runs.steps.list(run.id, thread_id=t.id))
    assert len(steps) == 1
    s = check_step(steps[0], type="message_creation", status="completed", run_id=run.id, thread_id=t.id,
                   assistant_id=asst.id)
    assert s["step_details"]["message_creation"]["message_id"] == reply.id
    assert s["usage"] == d["usage"]

    # what the upstream got
    (req,) = upstream.requests_containing(mk)
    assert req.path.endswith("/chat/completions")
    assert req.headers.get("authorization") == f"Bearer {UPSTREAM_API_KEY}"
    body = req.body
    assert body["model"] == MODEL
    assert INSTR in system_prompt(body)
    convo = chat_messages(body)
    assert convo[-1]["role"] == "user" and mk in json.dumps(convo[-1]["content"])
    assert "tools" not in body or not body["tools"]


def test_run_object_on_create(client, upstream, asst):
    t, mk = new_thread_with_marker(client)
    run = client.beta.threads.runs.create(thread_id=t.id, assistant_id=asst.id)
    d = check_run(run, thread_id=t.id, assistant_id=asst.id, model=MODEL, instructions=INSTR,
                  tools=[], metadata={}, usage=None, max_prompt_tokens=None, max_completion_tokens=None,
                  parallel_tool_calls=True, tool_choice="auto", response_format="auto")
    assert d["status"] in ("queued", "in_progress", "completed")
    if d["status"] == "queued":
        assert d["expires_at"] == d["created_at"] + 600
    assert d["truncation_strategy"] == {"type": "auto", "last_messages": None}
    assert d["temperature"] in (1, 1.0) and d["top_p"] in (1, 1.0)
    wait_run(client, t.id, run.id)


def test_instructions_override(client, upstream, asst):
    t, mk = new_thread_with_marker(client)
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=asst.id,
                                                   instructions="Only speak French.", **poll_kw())
    assert run.status == "completed"
    assert run.instructions == "Only speak French."
    sp = system_prompt(upstream.requests_containing(mk)[0].body)
    assert "Only speak French." in sp
    assert INSTR not in sp


def test_additional_instructions(client, upstream, asst):
    t, mk = new_thread_with_marker(client)
    run = client.beta.threads.runs.create_and_poll(
        thread_id=t.id, assistant_id=asst.id,
        additional_instructions="Please address the user as Jane Doe. The user has a premium account.",
        **poll_kw())
    assert run.status == "completed"
    sp = system_prompt(upstream.requests_containing(mk)[0].body)
    assert INSTR in sp and "Please address the user as Jane Doe." in sp
    assert sp.index(INSTR) < sp.index("Jane Doe"), "additional instructions are appended"


def test_additional_messages(client, upstream, asst):
    t, mk = new_thread_with_marker(client, "first")
    run = client.beta.threads.runs.create_and_poll(
        thread_id=t.id, assistant_id=asst.id,
        additional_messages=[{"role": "user", "content": "extra question", "metadata": {"x": "1"}}], **poll_kw())
    assert run.status == "completed"
    msgs = list(client.beta.threads.messages.list(t.id, order="asc"))
    assert [m.role for m in msgs] == ["user", "user", "assistant"]
    assert text_of(msgs[1]) == "extra question"
    convo = chat_messages(upstream.requests_containing(mk)[0].body)
    assert "extra question" in json.dumps(convo[-1]["content"])


def test_overrides_forwarded(client, upstream, asst):
    t, mk = new_thread_with_marker(client)
    run = client.beta.threads.runs.create_and_poll(
        thread_id=t.id, assistant_id=asst.id, model="gpt-4o", temperature=0.25, top_p=0.5,
        tools=[fn_tool("lookup", "Look up", {"q": {"type": "string"}})], metadata={"case": "overrides"},
        **poll_kw())
    d = check_run(run, status="completed", model="gpt-4o", metadata={"case": "overrides"})
    assert d["temperature"] == pytest.approx(0.25) and d["top_p"] == pytest.approx(0.5)
    assert [x["function"]["name"] for x in d["tools"]] == ["lookup"]
    body = upstream.requests_containing(mk)[0].body
    assert body["model"] == "gpt-4o"
    assert body.get("temperature") == pytest.approx(0.25)
    assert body.get("top_p") == pytest.approx(0.5)
    assert [x["function"]["name"] for x in body["tools"]] == ["lookup"]
    assert body["tools"][0]["type"] == "function"
    assert body["tools"][0]["function"]["parameters"]["properties"] == {"q": {"type": "string"}}


@pytest.mark.parametrize("choice,expected", [
    ("none", "none"),
    ("required", "required"),
    ("auto", "auto"),
    ({"type": "function", "function": {"name": "add_prime_numbers"}},
     {"type": "function", "function": {"name": "add_prime_numbers"}}),
])
def test_tool_choice_forwarded(client, upstream, choice, expected):
    a = make_assistant(client, tools=[ADD_PRIME_NUMBERS])
    t, mk = new_thread_with_marker(client)
    upstream.enqueue(text("fine"), match=mk)  # a text reply even when a call was required
    run = client.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id, tool_choice=choice)
    assert raw(run)["tool_choice"] == choice
    wait_run(client, t.id, run.id)
    body = upstream.requests_containing(mk)[0].body
    if expected == "none":
        assert body.get("tool_choice") == "none" or not body.get("tools"), body
    elif expected == "auto":
        assert body.get("tool_choice") in (None, "auto")
        assert body["tools"][0]["function"]["name"] == "add_prime_numbers"
    else:
        assert body.get("tool_choice") == expected, body.get("tool_choice")


def test_create_and_run_poll(client, upstream, asst):
    from helpers import marker
    mk = marker("car")
    upstream.enqueue(text("Created and ran."), match=mk)
    run = client.beta.threads.create_and_run_poll(
        assistant_id=asst.id, thread={"messages": [{"role": "user", "content": f"hi {mk}"}],
                                      "metadata": {"via": "create_and_run"}},
        metadata={"r": "1"}, **poll_kw())
    d = check_run(run, status="completed", assistant_id=asst.id, metadata={"r": "1"})
    t = client.beta.threads.retrieve(d["thread_id"])
    assert raw(t)["metadata"] == {"via": "create_and_run"}
    msgs = list(client.beta.threads.messages.list(t.id, order="asc"))
    assert [m.role for m in msgs] == ["user", "assistant"]
    assert text_of(msgs[1]) == "Created and ran."


def test_runs_list_retrieve_modify(client, upstream, asst):
    t, mk = new_thread_with_marker(client)
    r1 = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=asst.id, **poll_kw())
    r2 = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=asst.id, **poll_kw())
    assert [r.id for r in client.beta.threads.runs.list(t.id)] == [r2.id, r1.id]
    assert [r.id for r in client.beta.threads.runs.list(t.id, order="asc", limit=1)] == [r1.id, r2.id]
    got = client.beta.threads.runs.retrieve(r1.id, thread_id=t.id)
    assert raw(got) == raw(r1)
    upd = client.beta.threads.runs.update(r1.id, thread_id=t.id, metadata={"rated": "5"})
    check_run(upd, id=r1.id, metadata={"rated": "5"}, status="completed")
    assert raw(client.beta.threads.runs.retrieve(r1.id, thread_id=t.id))["metadata"] == {"rated": "5"}
    with expect_error(openai.BadRequestError, param="metadata"):
        client.beta.threads.runs.update(r1.id, thread_id=t.id, metadata={f"k{i}": "v" for i in range(17)})


def test_message_run_id_filter(client, upstream, asst):
    t, mk = new_thread_with_marker(client)
    r1 = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=asst.id, **poll_kw())
    client.beta.threads.messages.create(t.id, role="user", content="again")
    r2 = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=asst.id, **poll_kw())
    m1 = list(client.beta.threads.messages.list(t.id, run_id=r1.id))
    m2 = list(client.beta.threads.messages.list(t.id, run_id=r2.id))
    assert len(m1) == 1 and m1[0].run_id == r1.id and m1[0].role == "assistant"
    assert len(m2) == 1 and m2[0].run_id == r2.id
    assert len(list(client.beta.threads.messages.list(t.id))) == 4


def test_one_active_run_per_thread(client, upstream, asst, http):
    t, mk = new_thread_with_marker(client)
    g = gate(text("released"))
    upstream.enqueue(g, match=mk)
    run = client.beta.threads.runs.create(thread_id=t.id, assistant_id=asst.id)
    try:
        upstream.wait_for_requests(1, containing=mk, timeout=30)
        with expect_error(openai.BadRequestError, type="invalid_request_error", message_contains=run.id):
            client.beta.threads.runs.create(thread_id=t.id, assistant_id=asst.id)
        with expect_error(openai.BadRequestError, type="invalid_request_error", message_contains=run.id):
            client.beta.threads.messages.create(t.id, role="user", content="interrupt")
        assert client.beta.threads.runs.retrieve(run.id, thread_id=t.id).status in ACTIVE
    finally:
        g.event.set()
    done = wait_run(client, t.id, run.id)
    assert done.status == "completed"
    # the thread is free again
    client.beta.threads.messages.create(t.id, role="user", content="now it works")
    r2 = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=asst.id, **poll_kw())
    assert r2.status == "completed"


def test_cancel_terminal_run_is_400(client, upstream, asst):
    t, mk = new_thread_with_marker(client)
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=asst.id, **poll_kw())
    with expect_error(openai.BadRequestError, type="invalid_request_error"):
        client.beta.threads.runs.cancel(run.id, thread_id=t.id)


def test_not_found(client, asst):
    t = client.beta.threads.create()
    with expect_error(openai.NotFoundError, message_contains="asst_nope"):
        client.beta.threads.runs.create(thread_id=t.id, assistant_id="asst_nope")
    with expect_error(openai.NotFoundError, message_contains="thread_nope"):
        client.beta.threads.runs.create(thread_id="thread_nope", assistant_id=asst.id)
    with expect_error(openai.NotFoundError, message_contains="run_nope"):
        client.beta.threads.runs.retrieve("run_nope", thread_id=t.id)
    with expect_error(openai.NotFoundError):
        client.beta.threads.runs.cancel("run_nope", thread_id=t.id)


def test_run_validation(client, http, asst):
    t = client.beta.threads.create(messages=[{"role": "user", "content": "x"}])
    expect_http_error(http.post(f"/threads/{t.id}/runs", json={}), 400, param="assistant_id")
    expect_http_error(http.post(f"/threads/{t.id}/runs", json={"assistant_id": asst.id, "temperature": 3}), 400,
                      param="temperature")
    expect_http_error(http.post(f"/threads/{t.id}/runs", json={
        "assistant_id": asst.id, "truncation_strategy": {"type": "last_messages", "last_messages": 0}}), 400)
    expect_http_error(http.post(f"/threads/{t.id}/runs", json={
        "assistant_id": asst.id, "additional_messages": [{"role": "system", "content": "x"}]}), 400)
    expect_http_error(http.post(f"/threads/{t.id}/runs", json={
        "assistant_id": asst.id, "tool_choice": "sometimes"}), 400, param="tool_choice")
    # nothing was started by the rejected requests
    assert list(client.beta.threads.runs.list(t.id)) == []


# --------------------------------------------------------------------------- streaming

TEXT_EVENTS = ["thread.run.created", "thread.run.queued", "thread.run.in_progress", "thread.run.step.created",
               "thread.run.step.in_progress", "thread.message.created", "thread.message.in_progress",
               "thread.message.delta", "thread.message.completed", "thread.run.step.completed",
               "thread.run.completed"]


def test_stream_text_run(client, upstream, asst):
    t, mk = new_thread_with_marker(client)
    upstream.enqueue(text("Hello there, streamed friend.", chunks=5), match=mk)
    names, deltas = [], []
    with client.beta.threads.runs.stream(thread_id=t.id, assistant_id=asst.id) as stream:
        for ev in stream:
            names.append(ev.event)
            if ev.event == "thread.message.delta":
                for part in ev.data.delta.content or []:
                    deltas.append(part.text.value)
        final = stream.get_final_messages()
        run = stream.current_run
    assert collapse(names) == TEXT_EVENTS
    assert "".join(deltas) == "Hello there, streamed friend."
    assert len(final) == 1 and text_of(final[0]) == "Hello there, streamed friend."
    assert run.status == "completed"
    stored = client.beta.threads.messages.retrieve(final[0].id, thread_id=t.id)
    assert text_of(stored) == "Hello there, streamed friend."


def test_stream_create_and_run_starts_with_thread_created(client, upstream, asst):
    from helpers import marker
    mk = marker("scr")
    names = []
    with client.beta.threads.create_and_run_stream(
            assistant_id=asst.id, thread={"messages": [{"role": "user", "content": f"hi {mk}"}]}) as stream:
        for ev in stream:
            names.append(ev.event)
    assert names[0] == "thread.created"
    assert collapse(names[1:]) == TEXT_EVENTS


def test_stream_sse_framing(tenant, client, upstream, asst):
    t, mk = new_thread_with_marker(client)
    with tenant.http() as h:
        with h.stream("POST", f"/threads/{t.id}/runs", json={"assistant_id": asst.id, "stream": True}) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            body = r.read().decode()
    blocks = [b for b in body.split("\n\n") if b.strip() and not b.startswith(":")]
    events = []
    for b in blocks:
        lines = [ln for ln in b.split("\n") if not ln.startswith(":")]
        ev = [ln[len("event: "):] for ln in lines if ln.startswith("event: ")]
        data = [ln[len("data: "):] for ln in lines if ln.startswith("data: ")]
        assert len(ev) == 1 and len(data) == 1, b
        events.append((ev[0], data[0]))
    assert events[-1] == ("done", "[DONE]")
    for name, data in events[:-1]:
        obj = json.loads(data)
        if name.startswith("thread.run.step.") and not name.endswith("delta"):
            assert obj["object"] == "thread.run.step"
        elif name.startswith("thread.run.") and not name.startswith("thread.run.step"):
            assert obj["object"] == "thread.run"
        elif name.startswith("thread.message.") and not name.endswith("delta"):
            assert obj["object"] == "thread.message"
        elif name == "thread.message.delta":
            assert obj["object"] == "thread.message.delta" and obj["id"].startswith("msg_")


def test_stream_validation_error_is_json(tenant, client, asst):
    t = client.beta.threads.create()
    with tenant.http() as h:
        r = h.post(f"/threads/{t.id}/runs", json={"assistant_id": "asst_missing", "stream": True})
    expect_http_error(r, 404)
