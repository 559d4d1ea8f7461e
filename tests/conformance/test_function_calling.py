"""Function calling: requires_action, submit_tool_outputs, parallel calls, errors."""

import json

import openai
import pytest

from helpers import (ADD_PRIME_NUMBERS, check_run, check_step, collapse, expect_error, fn_tool, make_assistant,
                     new_thread_with_marker, poll_kw, raw, text_of, tool_messages, wait_run)
from upstream import PRIMES_25, text, tool_call, tool_calls

pytestmark = pytest.mark.runs


@pytest.fixture
def tutor(client):
    return make_assistant(client, name="AI Math Tutor", tools=[ADD_PRIME_NUMBERS],
                          instructions="You are a personal math tutor. Answer questions briefly, in a sentence or less.")


def start_requires_action(client, upstream, asst, reply, text_="Add some primes"):
    t, mk = new_thread_with_marker(client, text_)
    upstream.enqueue(reply, match=mk)
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=asst.id, **poll_kw())
    return t, mk, run


def test_add_prime_numbers_flow(client, upstream, tutor):
    t, mk, run = start_requires_action(client, upstream, tutor,
                                       tool_call("add_prime_numbers", {"prime_numbers": PRIMES_25},
                                                 call_id="call_primes001"))
    d = check_run(run, status="requires_action")
    ra = d["required_action"]
    assert ra["type"] == "submit_tool_outputs"
    (call,) = ra["submit_tool_outputs"]["tool_calls"]
    assert call["id"] == "call_primes001"
    assert call["type"] == "function"
    assert call["function"]["name"] == "add_prime_numbers"
    assert json.loads(call["function"]["arguments"]) == {"prime_numbers": PRIMES_25}
    assert d["expires_at"] is not None

    # the tool_calls step stays in_progress while waiting
    steps = list(client.beta.threads.runs.steps.list(run.id, thread_id=t.id))
    assert len(steps) == 1
    s = check_step(steps[0], type="tool_calls", status="in_progress")
    (tc,) = s["step_details"]["tool_calls"]
    assert tc["id"] == "call_primes001" and tc["type"] == "function"
    assert tc["function"]["name"] == "add_prime_numbers" and tc["function"]["output"] is None

    total = sum(PRIMES_25)
    upstream.enqueue(text(f"The sum is {total}, Jane Doe."), match=mk)
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        tool_outputs=[{"tool_call_id": "call_primes001", "output": str(total)}],
        run_id=run.id, thread_id=t.id, **poll_kw())
    d = check_run(run, status="completed", required_action=None)
    assert d["usage"]["total_tokens"] == d["usage"]["prompt_tokens"] + d["usage"]["completion_tokens"]

    steps = list(client.beta.threads.runs.steps.list(run.id, thread_id=t.id, order="asc"))
    assert [x.type for x in steps] == ["tool_calls", "message_creation"]
    s = check_step(steps[0], status="completed")
    assert s["step_details"]["tool_calls"][0]["function"]["output"] == str(total)
    assert s["completed_at"] is not None
    usage_sum = sum(raw(x)["usage"]["total_tokens"] for x in steps)
    assert usage_sum == d["usage"]["total_tokens"], "run usage is the sum over its steps"

    msgs = list(client.beta.threads.messages.list(t.id))
    assert text_of(msgs[0]) == f"The sum is {total}, Jane Doe."
    assert msgs[0].run_id == run.id and msgs[0].role == "assistant"
    assert len(msgs) == 2, "tool calls are not thread messages"

    # the second upstream request carries the assistant tool call and the tool output
    reqs = upstream.requests_containing(mk)
    assert len(reqs) == 2
    body = reqs[1].body
    assistant_turns = [m for m in body["messages"] if m.get("role") == "assistant" and m.get("tool_calls")]
    assert assistant_turns and assistant_turns[-1]["tool_calls"][0]["id"] == "call_primes001"
    assert assistant_turns[-1]["tool_calls"][0]["function"]["name"] == "add_prime_numbers"
    (tm,) = tool_messages(body)
    assert tm["tool_call_id"] == "call_primes001" and tm["content"] == str(total)
    assert body["tools"][0]["function"]["name"] == "add_prime_numbers"


def test_parallel_tool_calls(client, upstream):
    a = make_assistant(client, tools=[fn_tool("get_weather", "Weather", {"city": {"type": "string"}}),
                                      fn_tool("get_time", "Time", {"tz": {"type": "string"}})])
    t, mk, run = start_requires_action(client, upstream, a, tool_calls(
        ("get_weather", {"city": "Paris"}, "call_w"), ("get_time", {"tz": "CET"}, "call_t")))
    calls = raw(run)["required_action"]["submit_tool_outputs"]["tool_calls"]
    assert [(c["id"], c["function"]["name"]) for c in calls] == [("call_w", "get_weather"), ("call_t", "get_time")]
    assert json.loads(calls[0]["function"]["arguments"]) == {"city": "Paris"}
    upstream.enqueue(text("Sunny at noon."), match=mk)
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        tool_outputs=[{"tool_call_id": "call_t", "output": "12:00"}, {"tool_call_id": "call_w", "output": "sunny"}],
        run_id=run.id, thread_id=t.id, **poll_kw())
    assert run.status == "completed"
    body = upstream.requests_containing(mk)[-1].body
    outs = {m["tool_call_id"]: m["content"] for m in tool_messages(body)}
    assert outs == {"call_w": "sunny", "call_t": "12:00"}
    step = list(client.beta.threads.runs.steps.list(run.id, thread_id=t.id, order="asc"))[0]
    got = {c["id"]: c["function"]["output"] for c in raw(step)["step_details"]["tool_calls"]}
    assert got == {"call_w": "sunny", "call_t": "12:00"}


def test_two_rounds_of_tools(client, upstream, tutor):
    t, mk, run = start_requires_action(client, upstream, tutor, tool_call("add_prime_numbers",
                                                                          {"prime_numbers": [2, 3]}, "call_r1"))
    upstream.enqueue(tool_call("add_prime_numbers", {"prime_numbers": [5, 7]}, "call_r2"), match=mk)
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        tool_outputs=[{"tool_call_id": "call_r1", "output": "5"}], run_id=run.id, thread_id=t.id, **poll_kw())
    assert run.status == "requires_action"
    assert run.required_action.submit_tool_outputs.tool_calls[0].id == "call_r2"
    upstream.enqueue(text("5 and 12."), match=mk)
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        tool_outputs=[{"tool_call_id": "call_r2", "output": "12"}], run_id=run.id, thread_id=t.id, **poll_kw())
    assert run.status == "completed"
    steps = list(client.beta.threads.runs.steps.list(run.id, thread_id=t.id, order="asc"))
    assert [s.type for s in steps] == ["tool_calls", "tool_calls", "message_creation"]
    assert [tool_messages(r.body) and tool_messages(r.body)[-1]["content"] for r in
            upstream.requests_containing(mk)] == [[], "5", "12"]


def test_submit_missing_output_is_400(client, upstream):
    a = make_assistant(client, tools=[fn_tool("a"), fn_tool("b")])
    t, mk, run = start_requires_action(client, upstream, a, tool_calls(("a", {}, "call_a"), ("b", {}, "call_b")))
    with expect_error(openai.BadRequestError, type="invalid_request_error"):
        client.beta.threads.runs.submit_tool_outputs(run_id=run.id, thread_id=t.id,
                                                     tool_outputs=[{"tool_call_id": "call_a", "output": "1"}])
    assert client.beta.threads.runs.retrieve(run.id, thread_id=t.id).status == "requires_action"
    with expect_error(openai.BadRequestError):
        client.beta.threads.runs.submit_tool_outputs(run_id=run.id, thread_id=t.id, tool_outputs=[])
    # the run still waits, and a complete set is accepted
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        tool_outputs=[{"tool_call_id": "call_a", "output": "1"}, {"tool_call_id": "call_b", "output": "2"}],
        run_id=run.id, thread_id=t.id, **poll_kw())
    assert run.status == "completed"


def test_submit_unknown_call_id_is_400(client, upstream, tutor):
    t, mk, run = start_requires_action(client, upstream, tutor, tool_call("add_prime_numbers",
                                                                          {"prime_numbers": [2]}, "call_known"))
    with expect_error(openai.BadRequestError, type="invalid_request_error"):
        client.beta.threads.runs.submit_tool_outputs(
            run_id=run.id, thread_id=t.id,
            tool_outputs=[{"tool_call_id": "call_known", "output": "2"}, {"tool_call_id": "call_bogus", "output": "x"}])
    with expect_error(openai.BadRequestError):
        client.beta.threads.runs.submit_tool_outputs(
            run_id=run.id, thread_id=t.id, tool_outputs=[{"tool_call_id": "call_bogus", "output": "x"}])
    assert client.beta.threads.runs.retrieve(run.id, thread_id=t.id).status == "requires_action"
    client.beta.threads.runs.cancel(run.id, thread_id=t.id)
    wait_run(client, t.id, run.id)


def test_submit_when_not_waiting_is_400(client, upstream, tutor):
    t, mk = new_thread_with_marker(client)
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=tutor.id, **poll_kw())
    assert run.status == "completed"
    with expect_error(openai.BadRequestError, type="invalid_request_error"):
        client.beta.threads.runs.submit_tool_outputs(run_id=run.id, thread_id=t.id,
                                                     tool_outputs=[{"tool_call_id": "call_x", "output": "1"}])


def test_double_submit_is_400(client, upstream, tutor):
    t, mk, run = start_requires_action(client, upstream, tutor, tool_call("add_prime_numbers",
                                                                          {"prime_numbers": [2]}, "call_once"))
    client.beta.threads.runs.submit_tool_outputs(run_id=run.id, thread_id=t.id,
                                                 tool_outputs=[{"tool_call_id": "call_once", "output": "2"}])
    with expect_error(openai.BadRequestError):
        client.beta.threads.runs.submit_tool_outputs(run_id=run.id, thread_id=t.id,
                                                     tool_outputs=[{"tool_call_id": "call_once", "output": "2"}])
    assert wait_run(client, t.id, run.id).status == "completed"


def test_message_blocked_while_requires_action(client, upstream, tutor):
    t, mk, run = start_requires_action(client, upstream, tutor, tool_call("add_prime_numbers",
                                                                          {"prime_numbers": [2]}))
    with expect_error(openai.BadRequestError, message_contains=run.id):
        client.beta.threads.messages.create(t.id, role="user", content="hurry up")
    with expect_error(openai.BadRequestError, message_contains=run.id):
        client.beta.threads.runs.create(thread_id=t.id, assistant_id=tutor.id)
    c = client.beta.threads.runs.cancel(run.id, thread_id=t.id)
    assert c.status in ("cancelling", "cancelled")
    assert wait_run(client, t.id, run.id, timeout=10).status == "cancelled"
    steps = list(client.beta.threads.runs.steps.list(run.id, thread_id=t.id))
    assert steps[0].status == "cancelled"


def test_stream_function_call_round_trip(client, upstream, tutor):
    t, mk = new_thread_with_marker(client)
    upstream.enqueue(tool_call("add_prime_numbers", {"prime_numbers": [2, 3, 5]}, "call_s1"), match=mk)
    names = []
    with client.beta.threads.runs.stream(thread_id=t.id, assistant_id=tutor.id) as stream:
        for ev in stream:
            names.append(ev.event)
        run = stream.current_run
    assert collapse(names) == ["thread.run.created", "thread.run.queued", "thread.run.in_progress",
                               "thread.run.step.created", "thread.run.step.in_progress", "thread.run.step.delta",
                               "thread.run.requires_action"]
    assert run.status == "requires_action"
    call = run.required_action.submit_tool_outputs.tool_calls[0]
    assert call.id == "call_s1" and json.loads(call.function.arguments) == {"prime_numbers": [2, 3, 5]}

    upstream.enqueue(text("Ten."), match=mk)
    names = []
    with client.beta.threads.runs.submit_tool_outputs_stream(
            tool_outputs=[{"tool_call_id": "call_s1", "output": "10"}], run_id=run.id, thread_id=t.id) as stream:
        for ev in stream:
            names.append(ev.event)
        final = stream.get_final_messages()
    assert collapse(names) == ["thread.run.step.completed", "thread.run.queued", "thread.run.in_progress",
                               "thread.run.step.created", "thread.run.step.in_progress", "thread.message.created",
                               "thread.message.in_progress", "thread.message.delta", "thread.message.completed",
                               "thread.run.step.completed", "thread.run.completed"]
    assert text_of(final[0]) == "Ten."
