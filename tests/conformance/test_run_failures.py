"""Runs that do not simply complete: upstream errors, token limits, cancel, truncation,
expiry."""

import json
import time

import pytest

from helpers import (ADD_PRIME_NUMBERS, check_run, make_assistant, new_thread_with_marker, poll_kw, raw, text_of,
                     wait_run)
from upstream import chat_messages, error, length, rate_limited, slow, tool_call

pytestmark = pytest.mark.runs

MAX_UPSTREAM_TRIES = 20  # more scripted failures than any sane retry budget


def test_upstream_500_fails_run(client, upstream):
    a = make_assistant(client)
    t, mk = new_thread_with_marker(client)
    upstream.enqueue(*[error(500) for _ in range(MAX_UPSTREAM_TRIES)], match=mk)
    run = client.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id)
    run = wait_run(client, t.id, run.id, timeout=90)
    d = check_run(run, status="failed")
    assert d["last_error"]["code"] == "server_error"
    assert d["last_error"]["message"]
    assert isinstance(d["failed_at"], int) and d["completed_at"] is None
    tries = len(upstream.requests_containing(mk))
    assert 1 <= tries < MAX_UPSTREAM_TRIES, f"bounded retries, got {tries}"
    steps = list(client.beta.threads.runs.steps.list(run.id, thread_id=t.id))
    for s in steps:
        assert s.status in ("failed", "cancelled", "completed"), s.status
    # no completed assistant message was left behind
    for m in client.beta.threads.messages.list(t.id):
        if m.role == "assistant":
            assert m.status == "incomplete"
    # the thread is usable again
    client.beta.threads.messages.create(t.id, role="user", content="retry later")


def test_upstream_429_is_rate_limit_exceeded(client, upstream):
    a = make_assistant(client)
    t, mk = new_thread_with_marker(client)
    upstream.enqueue(*[rate_limited() for _ in range(MAX_UPSTREAM_TRIES)], match=mk)
    run = client.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id)
    run = wait_run(client, t.id, run.id, timeout=90)
    d = check_run(run, status="failed")
    assert d["last_error"]["code"] == "rate_limit_exceeded"
    assert len(upstream.requests_containing(mk)) < MAX_UPSTREAM_TRIES


def test_transient_500_is_retried(client, upstream):
    a = make_assistant(client)
    t, mk = new_thread_with_marker(client)
    upstream.enqueue(error(500), match=mk)  # then the default "ok"
    run = client.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id)
    run = wait_run(client, t.id, run.id, timeout=60)
    assert run.status in ("completed", "failed")
    if run.status == "completed":
        assert len(upstream.requests_containing(mk)) == 2
    else:
        assert run.last_error.code == "server_error"


def test_finish_reason_length_is_incomplete(client, upstream):
    a = make_assistant(client)
    t, mk = new_thread_with_marker(client)
    upstream.enqueue(length(usage={"prompt_tokens": 40, "completion_tokens": 256}), match=mk)
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id, max_completion_tokens=256,
                                                   **poll_kw())
    d = check_run(run, status="incomplete", max_completion_tokens=256)
    assert d["incomplete_details"] == {"reason": "max_completion_tokens"}
    body = upstream.requests_containing(mk)[0].body
    limit = body.get("max_completion_tokens", body.get("max_tokens"))
    assert limit is not None and limit <= 256, body
    (m,) = [m for m in client.beta.threads.messages.list(t.id) if m.role == "assistant"]
    assert m.status == "incomplete"
    assert raw(m)["incomplete_details"] == {"reason": "max_tokens"}
    assert text_of(m).startswith("This reply was cut off")


def test_route_output_cap_bounds_each_call(server_factory, upstream, tmp_path):
    """A models-file route's max_output_tokens caps every call; a reply cut off there ends
    the run incomplete, not running on until the model's context is full."""
    models = tmp_path / "models.json"
    models.write_text(json.dumps({"models": [{"name": "capped-model", "max_output_tokens": 400}]}))
    s = server_factory(extra_env={"ASSISTANTS_MODELS_CONFIG": str(models)})
    c = s.client()
    a = c.beta.assistants.create(model="capped-model", instructions="Be brief.")
    t, mk = new_thread_with_marker(c)
    upstream.enqueue(length(usage={"prompt_tokens": 40, "completion_tokens": 400}), match=mk)
    run = c.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id, **poll_kw())
    d = check_run(run, status="incomplete", max_completion_tokens=None)
    assert d["incomplete_details"] == {"reason": "max_completion_tokens"}
    body = upstream.requests_containing(mk)[0].body
    assert body.get("max_completion_tokens", body.get("max_tokens")) == 400, body
    # a tighter limit of the run's own wins
    t2, mk2 = new_thread_with_marker(c)
    c.beta.threads.runs.create_and_poll(thread_id=t2.id, assistant_id=a.id, max_completion_tokens=300, **poll_kw())
    body = upstream.requests_containing(mk2)[0].body
    assert body.get("max_completion_tokens", body.get("max_tokens")) == 300, body


def test_cancel_while_model_answers(client, upstream):
    a = make_assistant(client)
    t, mk = new_thread_with_marker(client)
    upstream.enqueue(slow(" ".join(["word"] * 300), chunks=300, delay=0.05), match=mk)  # ~15 s
    run = client.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id)
    upstream.wait_for_requests(1, containing=mk, timeout=30)
    time.sleep(0.3)
    c = client.beta.threads.runs.cancel(run.id, thread_id=t.id)
    assert c.status in ("cancelling", "cancelled"), c.status
    start = time.monotonic()
    done = wait_run(client, t.id, run.id, timeout=10)
    took = time.monotonic() - start
    d = check_run(done, status="cancelled")
    assert took < 3.0, f"cancel took {took:.1f}s"
    assert isinstance(d["cancelled_at"], int)
    for s in client.beta.threads.runs.steps.list(run.id, thread_id=t.id):
        assert s.status in ("cancelled", "completed"), s.status
    for m in client.beta.threads.messages.list(t.id):
        if m.role == "assistant":
            assert m.status in ("incomplete", "completed")
            if m.status == "incomplete":
                assert raw(m)["incomplete_details"] == {"reason": "run_cancelled"}
    # free again
    client.beta.threads.messages.create(t.id, role="user", content="after cancel")


def test_cancel_queued_or_fast_run(client, upstream):
    a = make_assistant(client)
    t, mk = new_thread_with_marker(client)
    run = client.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id)
    try:
        client.beta.threads.runs.cancel(run.id, thread_id=t.id)
    except Exception:  # noqa: BLE001 - it may already be terminal (400)
        pass
    done = wait_run(client, t.id, run.id, timeout=10)
    assert done.status in ("cancelled", "completed")


def test_truncation_last_messages(client, upstream):
    a = make_assistant(client)
    t, mk = new_thread_with_marker(client, "message zero")
    for i in range(1, 6):
        client.beta.threads.messages.create(t.id, role="user" if i % 2 else "assistant", content=f"message {i}")
    run = client.beta.threads.runs.create_and_poll(
        thread_id=t.id, assistant_id=a.id, truncation_strategy={"type": "last_messages", "last_messages": 2},
        additional_instructions=mk, **poll_kw())
    d = check_run(run, status="completed")
    assert d["truncation_strategy"] == {"type": "last_messages", "last_messages": 2}
    body = upstream.requests_containing(mk)[0].body
    convo = chat_messages(body)
    assert len(convo) == 2, convo
    assert "message 4" in json.dumps(convo[0]["content"]) and "message 5" in json.dumps(convo[1]["content"])


def test_requires_action_expires(server_factory, upstream):
    s = server_factory(api_keys=None, extra_env={"ASSISTANTS_RUN_EXPIRY_SECONDS": "2"})
    c = s.client()
    a = make_assistant(c, tools=[ADD_PRIME_NUMBERS])
    t, mk = new_thread_with_marker(c)
    upstream.enqueue(tool_call("add_prime_numbers", {"prime_numbers": [2]}, "call_exp"), match=mk)
    run = c.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id, **poll_kw())
    assert run.status == "requires_action"
    assert run.expires_at is not None and run.expires_at - run.created_at == 2
    done = wait_run(c, t.id, run.id, timeout=20, interval=0.2)
    assert done.status == "expired"
    (step,) = list(c.beta.threads.runs.steps.list(run.id, thread_id=t.id))
    assert step.status == "expired" and step.expired_at is not None
    # the thread is free again
    c.beta.threads.messages.create(t.id, role="user", content="still there?")
