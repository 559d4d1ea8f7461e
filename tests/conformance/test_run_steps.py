"""Run steps: shapes, list/retrieve, order, 404s."""

import openai
import pytest

from helpers import (ADD_PRIME_NUMBERS, check_list, check_step, expect_error, make_assistant,
                     new_thread_with_marker, poll_kw, raw)
from upstream import text, tool_call

pytestmark = pytest.mark.runs


def test_message_creation_step_shape(client, upstream):
    a = make_assistant(client)
    t, mk = new_thread_with_marker(client)
    upstream.enqueue(text("step test", usage={"prompt_tokens": 10, "completion_tokens": 3}), match=mk)
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id, **poll_kw())
    (s,) = list(client.beta.threads.runs.steps.list(run.id, thread_id=t.id))
    d = check_step(s, run_id=run.id, thread_id=t.id, assistant_id=a.id, type="message_creation",
                   status="completed", last_error=None, expired_at=None, cancelled_at=None, failed_at=None)
    assert isinstance(d["completed_at"], int) and d["completed_at"] >= d["created_at"]
    assert d["usage"] == {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}
    assert d["metadata"] in ({}, None)
    msg_id = d["step_details"]["message_creation"]["message_id"]
    assert msg_id.startswith("msg_")
    assert client.beta.threads.messages.retrieve(msg_id, thread_id=t.id).run_id == run.id
    got = client.beta.threads.runs.steps.retrieve(s.id, thread_id=t.id, run_id=run.id)
    assert raw(got) == d


def test_steps_list_shape_and_order(client, upstream, http):
    a = make_assistant(client, tools=[ADD_PRIME_NUMBERS])
    t, mk = new_thread_with_marker(client)
    upstream.enqueue(tool_call("add_prime_numbers", {"prime_numbers": [2, 3]}, "call_st"), text("5"), match=mk)
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id, **poll_kw())
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        tool_outputs=[{"tool_call_id": "call_st", "output": "5"}], run_id=run.id, thread_id=t.id, **poll_kw())
    assert run.status == "completed"
    body = check_list(http.get(f"/threads/{t.id}/runs/{run.id}/steps").json())
    assert [x["type"] for x in body["data"]] == ["message_creation", "tool_calls"], "default order desc"
    for x in body["data"]:
        check_step(x)
    asc = check_list(http.get(f"/threads/{t.id}/runs/{run.id}/steps", params={"order": "asc", "limit": 1}).json())
    assert len(asc["data"]) == 1 and asc["has_more"] is True and asc["data"][0]["type"] == "tool_calls"
    nxt = check_list(http.get(f"/threads/{t.id}/runs/{run.id}/steps",
                              params={"order": "asc", "after": asc["last_id"]}).json())
    assert [x["type"] for x in nxt["data"]] == ["message_creation"] and nxt["has_more"] is False
    tc = body["data"][1]["step_details"]["tool_calls"][0]
    assert tc == {"id": "call_st", "type": "function",
                  "function": {"name": "add_prime_numbers", "arguments": '{"prime_numbers":[2,3]}', "output": "5"}} \
        or (tc["id"] == "call_st" and tc["function"]["output"] == "5")


def test_step_usage_null_while_in_progress(client, upstream):
    a = make_assistant(client, tools=[ADD_PRIME_NUMBERS])
    t, mk = new_thread_with_marker(client)
    upstream.enqueue(tool_call("add_prime_numbers", {"prime_numbers": [2]}, "call_u"), match=mk)
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id, **poll_kw())
    (s,) = list(client.beta.threads.runs.steps.list(run.id, thread_id=t.id))
    assert s.status == "in_progress" and s.usage is None and s.completed_at is None
    client.beta.threads.runs.cancel(run.id, thread_id=t.id)


def test_steps_404(client, upstream):
    a = make_assistant(client)
    t, mk = new_thread_with_marker(client)
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id, **poll_kw())
    with expect_error(openai.NotFoundError, message_contains="step_nope"):
        client.beta.threads.runs.steps.retrieve("step_nope", thread_id=t.id, run_id=run.id)
    with expect_error(openai.NotFoundError):
        client.beta.threads.runs.steps.list("run_nope", thread_id=t.id)
    other = client.beta.threads.create()
    (s,) = list(client.beta.threads.runs.steps.list(run.id, thread_id=t.id))
    with expect_error(openai.NotFoundError):
        client.beta.threads.runs.steps.retrieve(s.id, thread_id=other.id, run_id=run.id)
