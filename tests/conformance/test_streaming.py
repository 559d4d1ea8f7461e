"""Streaming (SSE) of runs, NOTES.md section 8: exact event sequences through the SDK's
``AssistantEventHandler`` (runs.stream, submit_tool_outputs_stream, create_and_run_stream)
and the raw frames through httpx.

test_runs.py already covers a short text stream, create_and_run_stream's first event,
basic framing and the JSON 4xx of a stream request that fails validation."""

from __future__ import annotations

import json
import threading
import time
from typing import Optional

import openai
import pytest
from openai import AssistantEventHandler

from helpers import (TERMINAL, check_message, check_run, check_step, fn_tool, make_assistant, marker,
                     new_thread_with_marker, raw, text_of, wait_run)
from upstream import error, gate, slow, text, tool_call, tool_calls

pytestmark = pytest.mark.runs

WEATHER = fn_tool("get_current_weather", "Current weather in a city",
                  {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}})
TIME_TOOL = fn_tool("get_local_time", "Local time in a city", {"city": {"type": "string"}})

RUN_HEAD = ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]
MESSAGE_STEP_OPEN = ["thread.run.step.created", "thread.run.step.in_progress",
                     "thread.message.created", "thread.message.in_progress"]
MESSAGE_STEP_CLOSE = ["thread.message.completed", "thread.run.step.completed"]
MAX_UPSTREAM_TRIES = 20


# --------------------------------------------------------------------------- helpers


class Recorder(AssistantEventHandler):
    """Records every event (name, raw JSON) and what the SDK's callbacks saw."""

    def __init__(self):
        super().__init__()
        self.events: list = []            # [(name, dict)]
        self.text_deltas: list = []       # on_text_delta values
        self.text_done: list = []         # on_text_done values
        self.messages_done: list = []     # on_message_done messages
        self.tool_calls_done: list = []   # on_tool_call_done tool calls (raw dicts)
        self.steps_done: list = []        # on_run_step_done steps
        self.exceptions: list = []
        self.on_first_delta = None        # callable, called once at the first message delta

    def on_event(self, event):
        self.events.append((event.event, raw(event.data)))
        if event.event == "thread.message.delta" and self.on_first_delta is not None:
            cb, self.on_first_delta = self.on_first_delta, None
            cb()

    def on_text_delta(self, delta, snapshot):
        self.text_deltas.append(delta.value or "")

    def on_text_done(self, text):
        self.text_done.append(text.value)

    def on_message_done(self, message):
        self.messages_done.append(message)

    def on_tool_call_done(self, tool_call):
        self.tool_calls_done.append(raw(tool_call))

    def on_run_step_done(self, run_step):
        self.steps_done.append(run_step)

    def on_exception(self, exception):
        self.exceptions.append(exception)

    # views

    @property
    def names(self) -> list:
        return [n for n, _ in self.events]

    def of(self, name: str) -> list:
        return [d for n, d in self.events if n == name]


def expect_sequence(names: list, expected: list):
    assert names == expected, ("event sequence differs\n  got:      " + " ".join(names) +
                               "\n  expected: " + " ".join(expected))


def text_run_events(n_deltas: int) -> list:
    return (RUN_HEAD + MESSAGE_STEP_OPEN + ["thread.message.delta"] * n_deltas + MESSAGE_STEP_CLOSE +
            ["thread.run.completed"])


def parse_sse(body: str):
    """(events [(name, data_str)], comments [str]) of a whole SSE body; every block must
    be exactly one `event:` line and one `data:` line (comments aside)."""
    assert "\r" not in body, "frames use \\n line ends"
    events, comments = [], []
    assert body.endswith("\n\n"), repr(body[-60:])
    for block in body.split("\n\n")[:-1]:
        lines = block.split("\n")
        comments += [ln for ln in lines if ln.startswith(":")]
        lines = [ln for ln in lines if not ln.startswith(":")]
        if not lines:
            continue
        assert len(lines) == 2 and lines[0].startswith("event: ") and lines[1].startswith("data: "), repr(block)
        events.append((lines[0][len("event: "):], lines[1][len("data: "):]))
    return events, comments


def expected_object(name: str) -> Optional[str]:
    if name == "thread.created":
        return "thread"
    if name == "thread.message.delta":
        return "thread.message.delta"
    if name == "thread.run.step.delta":
        return "thread.run.step.delta"
    if name.startswith("thread.run.step."):
        return "thread.run.step"
    if name.startswith("thread.run."):
        return "thread.run"
    if name.startswith("thread.message."):
        return "thread.message"
    return None


def check_frames(events: list) -> list:
    """Frame-level checks; returns [(name, obj)] without the final done."""
    assert events, "no events"
    assert events[-1] == ("done", "[DONE]"), events[-1]
    assert [n for n, _ in events].count("done") == 1
    out = []
    for name, data in events[:-1]:
        obj = json.loads(data)
        want = expected_object(name)
        assert want is not None, f"unexpected event name {name!r}"
        assert obj.get("object") == want, f"{name}: object {obj.get('object')!r}, expected {want!r}"
        out.append((name, obj))
    return out


def sse_request(h, method: str, path: str, body: dict):
    """A whole streamed response through httpx: (status, headers, events, comments)."""
    with h.stream(method, path, json=body) as r:
        data = r.read().decode()
        status, headers = r.status_code, r.headers
    assert status == 200, data[:500]
    events, comments = parse_sse(data)
    return status, headers, events, comments


def tool_call_deltas(step_deltas: list) -> dict:
    """index -> list of tool-call delta dicts, from thread.run.step.delta payloads."""
    by_index: dict = {}
    for d in step_deltas:
        sd = d["delta"]["step_details"]
        assert sd["type"] == "tool_calls", d
        for tc in sd["tool_calls"]:
            by_index.setdefault(tc["index"], []).append(tc)
    return by_index


@pytest.fixture
def asst(client):
    return make_assistant(client, name="Stream tester")


@pytest.fixture
def tool_asst(client):
    return make_assistant(client, name="Stream tool tester", tools=[WEATHER, TIME_TOOL])


# --------------------------------------------------------------------------- plain text


def test_text_run_exact_events_one_delta_per_chunk(client, upstream, asst):
    t, mk = new_thread_with_marker(client, "Stream me a greeting")
    reply = "Hello there, this answer arrives in exactly eight upstream chunks."
    upstream.enqueue(text(reply, chunks=8, usage={"prompt_tokens": 21, "completion_tokens": 13}), match=mk)
    h = Recorder()
    before = time.time()
    with client.beta.threads.runs.stream(thread_id=t.id, assistant_id=asst.id, event_handler=h) as stream:
        stream.until_done()
        final_messages = stream.get_final_messages()
        final_run = stream.get_final_run()
        snapshot = stream.current_message_snapshot
    assert not h.exceptions, h.exceptions
    expect_sequence(h.names, text_run_events(8))

    ev = dict(h.events[:3])
    created = check_run(h.events[0][1], status="queued", thread_id=t.id, assistant_id=asst.id)
    assert created["expires_at"] is not None and created["started_at"] is None
    assert h.events[1][1]["status"] == "queued"
    in_progress = ev["thread.run.in_progress"]
    assert in_progress["status"] == "in_progress" and in_progress["started_at"] is not None
    run_id = created["id"]
    assert all(d["id"] == run_id for n, d in h.events if n.startswith("thread.run.") and "step" not in n)

    step = check_step(h.of("thread.run.step.created")[0], type="message_creation", status="in_progress",
                      run_id=run_id, thread_id=t.id)
    msg_id = step["step_details"]["message_creation"]["message_id"]
    assert msg_id.startswith("msg_")
    assert h.of("thread.run.step.in_progress")[0]["id"] == step["id"]
    m_created = check_message(h.of("thread.message.created")[0], role="assistant", status="in_progress",
                              content=[], run_id=run_id, assistant_id=asst.id, id=msg_id)
    assert m_created["thread_id"] == t.id
    assert h.of("thread.message.in_progress")[0]["id"] == msg_id

    deltas = h.of("thread.message.delta")
    values = []
    for i, d in enumerate(deltas):
        assert d["id"] == msg_id and d["object"] == "thread.message.delta"
        (part,) = d["delta"]["content"]
        assert part["index"] == 0 and part["type"] == "text", part
        assert part["text"]["value"], "no empty deltas"
        if i == 0:
            assert part["text"].get("annotations") == [], part
        values.append(part["text"]["value"])
    assert "".join(values) == reply
    assert h.text_deltas == values
    assert h.text_done == [reply]

    m_done = check_message(h.of("thread.message.completed")[0], status="completed", id=msg_id)
    assert text_of(m_done) == reply and m_done["completed_at"] is not None
    s_done = check_step(h.of("thread.run.step.completed")[0], status="completed", id=step["id"])
    assert s_done["usage"] and s_done["usage"]["completion_tokens"] == 13, s_done["usage"]
    r_done = check_run(h.of("thread.run.completed")[0], status="completed", id=run_id)
    assert r_done["completed_at"] is not None and r_done["expires_at"] is None
    assert r_done["usage"] == {"prompt_tokens": 21, "completion_tokens": 13, "total_tokens": 34}, r_done["usage"]
    assert r_done["completed_at"] >= int(before) - 1

    # the SDK's view agrees with the events and with the stored message
    assert [m.id for m in final_messages] == [msg_id] and text_of(final_messages[0]) == reply
    assert snapshot.id == msg_id and text_of(snapshot) == reply
    assert final_run.id == run_id and final_run.status == "completed"
    stored = client.beta.threads.messages.retrieve(msg_id, thread_id=t.id)
    assert text_of(stored) == reply and stored.status == "completed"
    assert client.beta.threads.runs.retrieve(run_id, thread_id=t.id).status == "completed"


def test_text_stream_single_chunk_and_iteration(client, upstream, asst):
    """A one-chunk reply gives exactly one delta; plain iteration (no handler) sees the same events."""
    t, mk = new_thread_with_marker(client)
    upstream.enqueue(text("Single.", chunks=1), match=mk)
    names, texts = [], []
    with client.beta.threads.runs.stream(thread_id=t.id, assistant_id=asst.id) as stream:
        for ev in stream:
            names.append(ev.event)
        for m in stream.get_final_messages():
            texts.append(text_of(m))
    expect_sequence(names, text_run_events(1))
    assert texts == ["Single."]


# --------------------------------------------------------------------------- function calls


def test_tool_call_stream_then_submit_tool_outputs_stream(client, upstream, tool_asst):
    t, mk = new_thread_with_marker(client, "Weather in Paris?")
    args = {"location": "Paris, France", "unit": "c"}
    full_args = json.dumps(args, separators=(",", ":"))
    upstream.enqueue(tool_call("get_current_weather", args, call_id="call_streamweather0001"), match=mk)
    h = Recorder()
    with client.beta.threads.runs.stream(thread_id=t.id, assistant_id=tool_asst.id, event_handler=h) as stream:
        stream.until_done()
        step_snapshot = stream.current_run_step_snapshot
    assert not h.exceptions, h.exceptions
    n_deltas = h.names.count("thread.run.step.delta")
    assert n_deltas >= 2, h.names
    expect_sequence(h.names, RUN_HEAD + ["thread.run.step.created", "thread.run.step.in_progress"] +
                    ["thread.run.step.delta"] * n_deltas + ["thread.run.requires_action"])
    run_id = h.events[0][1]["id"]
    step = check_step(h.of("thread.run.step.created")[0], type="tool_calls", status="in_progress", run_id=run_id)
    assert step["step_details"] == {"type": "tool_calls", "tool_calls": []}, step["step_details"]

    deltas = h.of("thread.run.step.delta")
    assert all(d["id"] == step["id"] and d["object"] == "thread.run.step.delta" for d in deltas)
    by_index = tool_call_deltas(deltas)
    assert list(by_index) == [0], by_index
    first, *rest = by_index[0]
    assert first["id"] == "call_streamweather0001" and first["type"] == "function", first
    assert first["function"]["name"] == "get_current_weather"
    assert first["function"].get("arguments", "") == ""
    assert "output" in first["function"] and first["function"]["output"] is None, first
    for tc in rest:  # id and name only in the first delta
        assert "id" not in tc and "name" not in tc.get("function", {}), tc
    got_args = "".join(tc["function"].get("arguments", "") for tc in by_index[0])
    assert got_args == full_args

    ra = check_run(h.of("thread.run.requires_action")[0], status="requires_action", id=run_id)
    (call,) = ra["required_action"]["submit_tool_outputs"]["tool_calls"]
    assert call == {"id": "call_streamweather0001", "type": "function",
                    "function": {"name": "get_current_weather", "arguments": full_args}}, call
    # the step is not completed by the first stream
    assert "thread.run.step.completed" not in h.names
    assert client.beta.threads.runs.steps.retrieve(step["id"], thread_id=t.id, run_id=run_id).status == "in_progress"
    # the SDK accumulated the arguments
    assert step_snapshot is not None and step_snapshot.id == step["id"]
    assert step_snapshot.step_details.tool_calls[0].function.arguments == full_args
    assert [tc["function"]["arguments"] for tc in h.tool_calls_done] == [full_args]

    # second half: submit_tool_outputs_stream
    upstream.enqueue(text("It is 18 degrees in Paris.", chunks=4), match="18C cloudy")
    h2 = Recorder()
    with client.beta.threads.runs.submit_tool_outputs_stream(
            thread_id=t.id, run_id=run_id, event_handler=h2,
            tool_outputs=[{"tool_call_id": "call_streamweather0001", "output": "18C cloudy"}]) as stream:
        stream.until_done()
        final_messages = stream.get_final_messages()
    assert not h2.exceptions, h2.exceptions
    expect_sequence(h2.names, ["thread.run.step.completed", "thread.run.queued", "thread.run.in_progress"] +
                    MESSAGE_STEP_OPEN + ["thread.message.delta"] * 4 + MESSAGE_STEP_CLOSE +
                    ["thread.run.completed"])
    tool_step = check_step(h2.events[0][1], type="tool_calls", status="completed", id=step["id"])
    (tc,) = tool_step["step_details"]["tool_calls"]
    assert tc["id"] == "call_streamweather0001"
    assert tc["function"] == {"name": "get_current_weather", "arguments": full_args, "output": "18C cloudy"}, tc
    assert h2.events[1][1]["status"] == "queued" and h2.events[2][1]["status"] == "in_progress"
    assert h2.events[1][1]["required_action"] is None
    msg_step = check_step(h2.of("thread.run.step.created")[0], type="message_creation", run_id=run_id)
    assert msg_step["id"] != step["id"]
    assert "".join(h2.text_deltas) == "It is 18 degrees in Paris."
    assert [text_of(m) for m in final_messages] == ["It is 18 degrees in Paris."]
    check_run(h2.of("thread.run.completed")[0], status="completed", id=run_id)
    stored = client.beta.threads.messages.retrieve(final_messages[0].id, thread_id=t.id)
    assert text_of(stored) == "It is 18 degrees in Paris."
    # the tool output reached the upstream
    body = upstream.requests_containing("18C cloudy")[0].body
    tools_msgs = [m for m in body["messages"] if m.get("role") == "tool"]
    assert tools_msgs and tools_msgs[-1]["tool_call_id"] == "call_streamweather0001"


def test_parallel_tool_calls_streamed(client, upstream, tool_asst):
    t, mk = new_thread_with_marker(client, "Weather and time in Oslo?")
    a0 = {"location": "Oslo", "unit": "c"}
    a1 = {"city": "Oslo"}
    upstream.enqueue(tool_calls(("get_current_weather", a0, "call_parallel0000000000a"),
                                ("get_local_time", a1, "call_parallel0000000000b")), match=mk)
    h = Recorder()
    with client.beta.threads.runs.stream(thread_id=t.id, assistant_id=tool_asst.id, event_handler=h) as stream:
        stream.until_done()
        snap = stream.current_run_step_snapshot
    assert not h.exceptions, h.exceptions
    n = h.names.count("thread.run.step.delta")
    expect_sequence(h.names, RUN_HEAD + ["thread.run.step.created", "thread.run.step.in_progress"] +
                    ["thread.run.step.delta"] * n + ["thread.run.requires_action"])
    by_index = tool_call_deltas(h.of("thread.run.step.delta"))
    assert sorted(by_index) == [0, 1], by_index
    want = {0: ("call_parallel0000000000a", "get_current_weather", json.dumps(a0, separators=(",", ":"))),
            1: ("call_parallel0000000000b", "get_local_time", json.dumps(a1, separators=(",", ":")))}
    for i, (cid, name, args) in want.items():
        parts = by_index[i]
        assert [tc.get("id") for tc in parts if "id" in tc] == [cid], parts  # id sent once
        assert [tc["function"]["name"] for tc in parts if "name" in tc.get("function", {})] == [name]
        assert parts[0].get("id") == cid and parts[0]["type"] == "function"
        assert "".join(tc["function"].get("arguments", "") for tc in parts) == args
    # index 0 is introduced before index 1 (indices contiguous from 0)
    first_seen = [tc["index"] for d in h.of("thread.run.step.delta") for tc in d["delta"]["step_details"]["tool_calls"]]
    assert first_seen.index(0) < first_seen.index(1)
    calls = h.of("thread.run.requires_action")[0]["required_action"]["submit_tool_outputs"]["tool_calls"]
    assert [(c["id"], c["function"]["name"], c["function"]["arguments"]) for c in calls] == list(want.values())
    assert [(tc.id, tc.function.name, tc.function.arguments) for tc in snap.step_details.tool_calls] == \
        list(want.values())

    run_id = h.events[0][1]["id"]
    upstream.enqueue(text("Oslo: 3C, 14:05.", chunks=3), match="14:05 local")
    h2 = Recorder()
    with client.beta.threads.runs.submit_tool_outputs_stream(
            thread_id=t.id, run_id=run_id, event_handler=h2,
            tool_outputs=[{"tool_call_id": "call_parallel0000000000b", "output": "14:05 local"},
                          {"tool_call_id": "call_parallel0000000000a", "output": "3C"}]) as stream:
        stream.until_done()
    expect_sequence(h2.names, ["thread.run.step.completed", "thread.run.queued", "thread.run.in_progress"] +
                    MESSAGE_STEP_OPEN + ["thread.message.delta"] * 3 + MESSAGE_STEP_CLOSE +
                    ["thread.run.completed"])
    outs = [(tc["id"], tc["function"]["output"]) for tc in h2.events[0][1]["step_details"]["tool_calls"]]
    assert outs == [("call_parallel0000000000a", "3C"), ("call_parallel0000000000b", "14:05 local")]


def test_create_and_run_stream_tool_call(client, upstream, tool_asst):
    """createThreadAndRun with stream: thread.created first, then the run's events (spec example)."""
    mk = marker("carstream")
    upstream.enqueue(tool_call("get_current_weather", {"location": "Rome"}), match=mk)
    h = Recorder()
    with client.beta.threads.create_and_run_stream(
            assistant_id=tool_asst.id, event_handler=h,
            thread={"messages": [{"role": "user", "content": f"Weather in Rome? {mk}"}]}) as stream:
        stream.until_done()
    assert not h.exceptions, h.exceptions
    n = h.names.count("thread.run.step.delta")
    expect_sequence(h.names, ["thread.created"] + RUN_HEAD + ["thread.run.step.created", "thread.run.step.in_progress"]
                    + ["thread.run.step.delta"] * n + ["thread.run.requires_action"])
    thread = h.events[0][1]
    assert thread["object"] == "thread" and thread["id"].startswith("thread_")
    assert all(d["thread_id"] == thread["id"] for _, d in h.events[1:] if "thread_id" in d)
    # the thread exists with the user message
    msgs = list(client.beta.threads.messages.list(thread["id"]))
    assert [m.role for m in msgs] == ["user"] and mk in text_of(msgs[0])
    run_id = h.events[1][1]["id"]
    client.beta.threads.runs.cancel(run_id, thread_id=thread["id"])


def test_create_and_run_stream_text(client, upstream, asst):
    mk = marker("cartext")
    upstream.enqueue(text("A new thread, streamed.", chunks=3), match=mk)
    h = Recorder()
    with client.beta.threads.create_and_run_stream(
            assistant_id=asst.id, event_handler=h,
            thread={"messages": [{"role": "user", "content": f"hello {mk}"}]}) as stream:
        stream.until_done()
        final = stream.get_final_messages()
    expect_sequence(h.names, ["thread.created"] + text_run_events(3))
    assert [text_of(m) for m in final] == ["A new thread, streamed."]
    assert final[0].thread_id == h.events[0][1]["id"]


# --------------------------------------------------------------------------- failures and cancel


def test_stream_upstream_500_ends_with_run_failed(client, tenant, upstream, asst):
    t, mk = new_thread_with_marker(client)
    upstream.enqueue(*[error(500) for _ in range(MAX_UPSTREAM_TRIES)], match=mk)
    h = Recorder()
    with client.beta.threads.runs.stream(thread_id=t.id, assistant_id=asst.id, event_handler=h,
                                         timeout=120) as stream:
        stream.until_done()  # no exception
        final_run = stream.get_final_run()
    assert not h.exceptions, h.exceptions
    assert h.names[:3] == RUN_HEAD, h.names
    assert h.names[-1] == "thread.run.failed", h.names
    # nothing but run-level events (no message/step was opened before the upstream answered)
    allowed = set(RUN_HEAD) | {"thread.run.failed", "thread.run.step.created", "thread.run.step.in_progress",
                               "thread.run.step.failed", "thread.message.created", "thread.message.in_progress",
                               "thread.message.incomplete"}
    assert set(h.names) <= allowed, h.names
    failed = check_run(h.of("thread.run.failed")[0], status="failed")
    assert failed["last_error"]["code"] == "server_error" and failed["last_error"]["message"], failed
    assert failed["failed_at"] is not None and failed["completed_at"] is None
    assert final_run.status == "failed" and final_run.last_error.code == "server_error"
    assert client.beta.threads.runs.retrieve(failed["id"], thread_id=t.id).status == "failed"


def test_stream_upstream_500_raw_status_and_done(client, tenant, upstream, asst):
    t, mk = new_thread_with_marker(client)
    upstream.enqueue(*[error(500) for _ in range(MAX_UPSTREAM_TRIES)], match=mk)
    with tenant.http(timeout=120) as h:
        status, headers, events, _ = sse_request(h, "POST", f"/threads/{t.id}/runs",
                                                 {"assistant_id": asst.id, "stream": True})
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    objs = check_frames(events)
    assert objs[-1][0] == "thread.run.failed"
    assert objs[-1][1]["last_error"]["code"] == "server_error"
    assert "error" not in [n for n, _ in events]


def _stream_and_cancel_raw(tenant, client, thread_id: str, assistant_id: str):
    """Stream a run with httpx, cancel it after the first message delta (from the reading
    thread, on another connection); returns ([(name, obj)], the cancel response, seconds)."""
    objs, cancel_status = [], None
    start = time.monotonic()
    with tenant.http() as h:
        with h.stream("POST", f"/threads/{thread_id}/runs", json={"assistant_id": assistant_id, "stream": True}) as r:
            assert r.status_code == 200
            event = None
            for line in r.iter_lines():
                if line.startswith("event: "):
                    event = line[len("event: "):]
                elif line.startswith("data: "):
                    data = line[len("data: "):]
                    objs.append((event, data if event == "done" else json.loads(data)))
                    if event == "thread.message.delta" and cancel_status is None:
                        run_id = objs[0][1]["id"]
                        cancel_status = client.beta.threads.runs.cancel(run_id, thread_id=thread_id).status
    return objs, cancel_status, time.monotonic() - start


def test_stream_cancel_while_streaming(tenant, client, upstream, asst):
    """Cancel during a slow reply: the stream ends with [thread.run.cancelling],
    thread.message.incomplete (run_cancelled), thread.run.step.cancelled, thread.run.cancelled, done."""
    t, mk = new_thread_with_marker(client)
    upstream.enqueue(slow(" ".join(["tick"] * 200), chunks=200, delay=0.05), match=mk)  # ~10 s
    objs, cancel_status, took = _stream_and_cancel_raw(tenant, client, t.id, asst.id)
    assert cancel_status in ("cancelling", "cancelled")
    assert objs[-1] == ("done", "[DONE]")
    names = [n for n, _ in objs[:-1]]
    assert took < 8, f"the stream ran {took:.1f}s after a cancel"
    i = names.index("thread.message.delta")
    assert names[:i] == RUN_HEAD + MESSAGE_STEP_OPEN, names
    tail = [n for n in names[i:] if n != "thread.message.delta"]
    expected_tail = ["thread.run.cancelling", "thread.message.incomplete", "thread.run.step.cancelled",
                     "thread.run.cancelled"]
    if "thread.run.cancelling" not in tail:
        expected_tail = expected_tail[1:]
    assert tail == expected_tail, names
    assert "thread.message.delta" not in names[names.index(tail[0]):], "no deltas after the cancel took effect"
    ev = {n: o for n, o in objs[:-1]}
    if "thread.run.cancelling" in ev:
        assert ev["thread.run.cancelling"]["status"] == "cancelling"
    inc = ev["thread.message.incomplete"]
    assert inc["status"] == "incomplete" and inc["incomplete_details"] == {"reason": "run_cancelled"}, inc
    assert inc["incomplete_at"] is not None
    step = check_step(ev["thread.run.step.cancelled"], status="cancelled")
    assert step["cancelled_at"] is not None
    run = check_run(ev["thread.run.cancelled"], status="cancelled")
    assert run["cancelled_at"] is not None and run["completed_at"] is None
    assert client.beta.threads.runs.retrieve(run["id"], thread_id=t.id).status == "cancelled"


def test_stream_cancel_keeps_streamed_text_sdk(client, upstream, asst):
    """Through the SDK: cancelling mid-stream must not break the event handler, and the
    incomplete message (event and stored) holds the text streamed so far."""
    t, mk = new_thread_with_marker(client)
    upstream.enqueue(slow(" ".join(["tick"] * 200), chunks=200, delay=0.05), match=mk)
    h = Recorder()
    canceller = client.with_options()
    cancelled = {}

    def do_cancel():
        cancelled["run"] = canceller.beta.threads.runs.cancel(h.events[0][1]["id"], thread_id=t.id)

    h.on_first_delta = do_cancel
    with client.beta.threads.runs.stream(thread_id=t.id, assistant_id=asst.id, event_handler=h) as stream:
        stream.until_done()
        final_run = stream.get_final_run()
    assert not h.exceptions, h.exceptions
    assert h.names[-1] == "thread.run.cancelled" and final_run.status == "cancelled"
    streamed = "".join(h.text_deltas)
    assert streamed
    inc = h.of("thread.message.incomplete")[0]
    assert text_of(inc) == streamed
    stored = client.beta.threads.messages.retrieve(inc["id"], thread_id=t.id)
    assert stored.status == "incomplete" and text_of(stored) == streamed


# --------------------------------------------------------------------------- raw frames


def test_raw_frames_every_event_tool_round_trip(tenant, client, upstream, tool_asst):
    """Every frame is `event: NAME` + `data: ONE-LINE-JSON`, object matches the event, on
    createThreadAndRun, createRun and submit_tool_outputs; deltas reference created objects."""
    mk = marker("frames")
    upstream.enqueue(tool_call("get_current_weather", {"location": "Lima", "unit": "f"}), match=mk)
    with tenant.http() as h:
        _, headers, events, _ = sse_request(h, "POST", "/threads/runs", {
            "assistant_id": tool_asst.id, "stream": True,
            "thread": {"messages": [{"role": "user", "content": f"Lima? {mk}"}]}})
        assert headers["content-type"].startswith("text/event-stream")
        objs = check_frames(events)
        assert objs[0][0] == "thread.created" and objs[-1][0] == "thread.run.requires_action"
        thread_id, run = objs[0][1]["id"], objs[-1][1]
        step_ids = {o["id"] for n, o in objs if n == "thread.run.step.created"}
        assert {o["id"] for n, o in objs if n == "thread.run.step.delta"} <= step_ids
        call_id = run["required_action"]["submit_tool_outputs"]["tool_calls"][0]["id"]

        upstream.enqueue(text("Lima is 64F.", chunks=3), match="64F-sunny")
        _, headers, events, _ = sse_request(h, "POST", f"/threads/{thread_id}/runs/{run['id']}/submit_tool_outputs",
                                            {"stream": True,
                                             "tool_outputs": [{"tool_call_id": call_id, "output": "64F-sunny"}]})
        assert headers["content-type"].startswith("text/event-stream")
        objs = check_frames(events)
        assert objs[-1][0] == "thread.run.completed"
        msg_ids = {o["id"] for n, o in objs if n == "thread.message.created"}
        assert len(msg_ids) == 1
        assert {o["id"] for n, o in objs if n == "thread.message.delta"} == msg_ids
        for n, o in objs:
            if n == "thread.message.delta":
                assert set(o) == {"id", "object", "delta"}, o
            if n == "thread.run.step.delta":
                assert set(o) == {"id", "object", "delta"}, o

        # createRun on the same thread, plain text
        upstream.enqueue(text("Second turn.", chunks=2), match="second-turn")
        h.post(f"/threads/{thread_id}/messages", json={"role": "user", "content": "second-turn"}).raise_for_status()
        _, headers, events, comments = sse_request(h, "POST", f"/threads/{thread_id}/runs",
                                                   {"assistant_id": tool_asst.id, "stream": True})
        assert headers["content-type"].startswith("text/event-stream")
        objs = check_frames(events)
        assert [n for n, _ in objs] == text_run_events(2)
        assert all(c == ": keep-alive" for c in comments), comments


def test_raw_stream_data_is_single_line_json(tenant, client, upstream, asst):
    """Text with newlines, quotes and non-ASCII still travels as one-line JSON per frame."""
    t, mk = new_thread_with_marker(client)
    reply = 'Line one\nline "two"\n\n  indented\u00e9 \u2603 data: not-a-frame\n\nevent: fake'
    upstream.enqueue(text(reply, chunks=6), match=mk)
    with tenant.http() as h:
        _, _, events, _ = sse_request(h, "POST", f"/threads/{t.id}/runs", {"assistant_id": asst.id, "stream": True})
    objs = check_frames(events)
    assert [n for n, _ in objs] == text_run_events(6)
    got = "".join(o["delta"]["content"][0]["text"]["value"] for n, o in objs if n == "thread.message.delta")
    assert got == reply
    assert text_of([o for n, o in objs if n == "thread.message.completed"][0]) == reply


# --------------------------------------------------------------------------- disconnect


def test_client_disconnect_after_first_delta_run_completes(tenant, client, upstream, asst):
    t, mk = new_thread_with_marker(client)
    words = [f"w{i}" for i in range(30)]
    reply = " ".join(words)
    upstream.enqueue(slow(reply, chunks=30, delay=0.05), match=mk)  # ~1.5 s
    seen = []
    with tenant.http() as h:
        with h.stream("POST", f"/threads/{t.id}/runs", json={"assistant_id": asst.id, "stream": True}) as r:
            assert r.status_code == 200
            event = None
            for line in r.iter_lines():
                if line.startswith("event: "):
                    event = line[len("event: "):]
                elif line.startswith("data: "):
                    seen.append((event, json.loads(line[len("data: "):])))
                    if event == "thread.message.delta":
                        break
        # leaving the block closes the connection mid-stream
    assert seen[-1][0] == "thread.message.delta"
    run_id = seen[0][1]["id"]
    msg_id = seen[-1][1]["id"]
    run = wait_run(client, t.id, run_id, timeout=30)
    assert run.status == "completed", raw(run)
    stored = client.beta.threads.messages.retrieve(msg_id, thread_id=t.id)
    assert stored.status == "completed" and text_of(stored) == reply
    assert not [d for d in upstream.disconnects if mk in d.text()], "the upstream call was not cut"
    # the thread is free: a new streamed run works
    upstream.enqueue(text("again", chunks=1), match="after-disconnect")
    client.beta.threads.messages.create(t.id, role="user", content="after-disconnect")
    names = []
    with client.beta.threads.runs.stream(thread_id=t.id, assistant_id=asst.id) as stream:
        for ev in stream:
            names.append(ev.event)
    expect_sequence(names, text_run_events(1))


# --------------------------------------------------------------------------- keep-alive


@pytest.mark.slow
def test_keep_alive_comment_during_silence(tenant, client, upstream, asst):
    """A model that stays silent for more than 15 s: `: keep-alive` comments, then the events."""
    t, mk = new_thread_with_marker(client)
    g = gate(text("finally", chunks=1))
    upstream.enqueue(g, match=mk)
    timer = threading.Timer(16.5, g.event.set)
    timer.start()
    try:
        with tenant.http(timeout=60) as h:
            _, _, events, comments = sse_request(h, "POST", f"/threads/{t.id}/runs",
                                                 {"assistant_id": asst.id, "stream": True})
    finally:
        timer.cancel()
        g.event.set()
    assert comments and all(c == ": keep-alive" for c in comments), comments
    objs = check_frames(events)
    assert [n for n, _ in objs] == text_run_events(1)
