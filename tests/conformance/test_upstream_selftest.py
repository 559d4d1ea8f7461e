"""Self-test of the scripted upstream (upstream.py) with the openai client; no server needed."""

import json
import threading

import httpx
import openai
import pytest

from upstream import (PRIMES_25, ScriptedUpstream, error, gate, length, rate_limited, slow, text, tool_call,
                      tool_calls)


@pytest.fixture
def up():
    u = ScriptedUpstream().start()
    yield u
    u.stop()


@pytest.fixture
def oc(up):
    return openai.OpenAI(base_url=up.base_url, api_key="k", max_retries=0)


MSG = [{"role": "user", "content": "hi"}]


def test_stream_text_with_usage(up, oc):
    up.enqueue(text("Hello there friend", usage={"prompt_tokens": 5, "completion_tokens": 3}))
    parts, usage = [], None
    for ch in oc.chat.completions.create(model="m", messages=MSG, stream=True,
                                         stream_options={"include_usage": True}):
        if ch.choices:
            parts.append(ch.choices[0].delta.content or "")
        if ch.usage:
            usage = ch.usage
    assert "".join(parts) == "Hello there friend"
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (5, 3, 8)


def test_stream_tool_calls(up, oc):
    up.enqueue(tool_calls(("add", {"a": 1}, "call_1"), ("mul", {"b": [1, 2]}, "call_2")))
    calls, finish = {}, None
    for ch in oc.chat.completions.create(model="m", messages=MSG, stream=True):
        for tc in ch.choices[0].delta.tool_calls or []:
            d = calls.setdefault(tc.index, {"id": None, "name": "", "args": ""})
            d["id"] = tc.id or d["id"]
            d["name"] += (tc.function.name or "") if tc.function else ""
            d["args"] += (tc.function.arguments or "") if tc.function else ""
        finish = ch.choices[0].finish_reason or finish
    assert calls == {0: {"id": "call_1", "name": "add", "args": '{"a":1}'},
                     1: {"id": "call_2", "name": "mul", "args": '{"b":[1,2]}'}}
    assert finish == "tool_calls"


def test_non_stream_replies(up, oc):
    up.enqueue(text("abc"), length(), tool_call("add_prime_numbers", {"prime_numbers": PRIMES_25}))
    r = oc.chat.completions.create(model="m", messages=MSG)
    assert r.choices[0].message.content == "abc" and r.usage.total_tokens > 0
    assert oc.chat.completions.create(model="m", messages=MSG).choices[0].finish_reason == "length"
    r = oc.chat.completions.create(model="m", messages=MSG)
    assert r.choices[0].finish_reason == "tool_calls"
    assert json.loads(r.choices[0].message.tool_calls[0].function.arguments) == {"prime_numbers": PRIMES_25}
    assert oc.chat.completions.create(model="m", messages=MSG).choices[0].message.content == "ok"
    assert len(up.requests) == 4


def test_errors(up, oc):
    up.enqueue(error(500), rate_limited())
    with pytest.raises(openai.InternalServerError):
        oc.chat.completions.create(model="m", messages=MSG)
    with pytest.raises(openai.RateLimitError) as ei:
        oc.chat.completions.create(model="m", messages=MSG)
    assert ei.value.body["code"] == "rate_limit_exceeded"


def test_match_default_and_gate(up, oc):
    up.enqueue(text("for B"), match="BBB")
    up.enqueue(text("generic"))
    assert oc.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}]) \
        .choices[0].message.content == "generic"
    assert oc.chat.completions.create(model="m", messages=[{"role": "user", "content": "BBB"}]) \
        .choices[0].message.content == "for B"
    up.set_default(text("changed"))
    assert oc.chat.completions.create(model="m", messages=MSG).choices[0].message.content == "changed"
    g = gate(text("late"))
    up.enqueue(g)
    out = {}
    th = threading.Thread(target=lambda: out.setdefault(
        "r", oc.chat.completions.create(model="m", messages=[{"role": "user", "content": "gated"}])))
    th.start()
    up.wait_for_requests(1, containing="gated", timeout=10)
    assert "r" not in out
    g.event.set()
    th.join(10)
    assert out["r"].choices[0].message.content == "late"


def test_slow_stream_and_models(up, oc):
    up.enqueue(slow("a b c d", chunks=4, delay=0.01))
    got = "".join(ch.choices[0].delta.content or "" for ch in
                  oc.chat.completions.create(model="m", messages=MSG, stream=True) if ch.choices)
    assert got == "a b c d"
    assert "gpt-4o-mini" in [m.id for m in oc.models.list()]
    r = httpx.post(up.base_url + "/chat/completions", json={"model": "m", "messages": MSG, "stream": True})
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.text.rstrip().endswith("data: [DONE]")


def test_tool_round_trip_mode():
    with ScriptedUpstream(mode="instant", tool_round_trip=True) as u:
        oc = openai.OpenAI(base_url=u.base_url, api_key="k", max_retries=0)
        tools = [{"type": "function", "function": {"name": "add_prime_numbers", "parameters": {"type": "object"}}}]
        r = oc.chat.completions.create(model="m", messages=MSG, tools=tools)
        call = r.choices[0].message.tool_calls[0]
        assert call.function.name == "add_prime_numbers"
        r = oc.chat.completions.create(model="m", tools=tools, messages=MSG + [
            {"role": "assistant", "tool_calls": [{"id": call.id, "type": "function", "function": {
                "name": "add_prime_numbers", "arguments": call.function.arguments}}]},
            {"role": "tool", "tool_call_id": call.id, "content": "1060"}])
        assert r.choices[0].message.content == "The result is 1060."
