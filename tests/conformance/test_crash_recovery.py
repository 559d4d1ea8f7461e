"""kill -9 of the server during a run, then a restart on the same database: the run
ends in a terminal state (or keeps waiting for tool outputs), never stuck."""

import pytest

from helpers import (ACTIVE, ADD_PRIME_NUMBERS, TERMINAL, check_run, make_assistant, new_thread_with_marker,
                     poll_kw, text_of, wait_run)
from upstream import slow, tool_call

pytestmark = pytest.mark.runs


@pytest.fixture
def own(keyed_server):
    s, (t,) = keyed_server(1)
    return s, t


def test_kill_mid_run_then_restart(own, upstream):
    s, tenant = own
    c = tenant.client()
    a = make_assistant(c)
    t, mk = new_thread_with_marker(c)
    upstream.enqueue(slow(" ".join(["slow"] * 200), chunks=200, delay=0.05), match=mk)  # ~10 s
    run = c.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id)
    upstream.wait_for_requests(1, containing=mk, timeout=30)
    s.kill()
    s.start()
    c = tenant.client()
    done = wait_run(c, t.id, run.id, timeout=60, interval=0.2)
    d = check_run(done)
    assert d["status"] in ("completed", "failed", "cancelled", "expired", "incomplete"), d["status"]
    if d["status"] == "completed":
        msgs = [m for m in c.beta.threads.messages.list(t.id) if m.role == "assistant"]
        assert len(msgs) == 1 and msgs[0].status == "completed" and text_of(msgs[0])
    elif d["status"] == "failed":
        assert d["last_error"] and d["last_error"]["code"] in ("server_error", "rate_limit_exceeded")
        assert d["last_error"]["message"]
    # no step or message is left open
    for st in c.beta.threads.runs.steps.list(run.id, thread_id=t.id):
        assert st.status != "in_progress", f"step {st.id} left in_progress"
    for m in c.beta.threads.messages.list(t.id):
        assert m.status != "in_progress", f"message {m.id} left in_progress"
    # the thread takes a new run
    c.beta.threads.messages.create(t.id, role="user", content="after the crash")
    r2 = c.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id, **poll_kw())
    assert r2.status == "completed"


def test_kill_while_queued_runs(own, upstream):
    """Several runs in flight at the kill: all end terminal after the restart."""
    s, tenant = own
    c = tenant.client()
    a = make_assistant(c)
    started = []
    for i in range(4):
        t, mk = new_thread_with_marker(c, f"run {i}")
        upstream.enqueue(slow("z " * 40, chunks=40, delay=0.1), match=mk)
        started.append((t.id, c.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id).id))
    s.kill()
    s.start()
    c = tenant.client()
    for thread_id, run_id in started:
        assert wait_run(c, thread_id, run_id, timeout=60, interval=0.2).status in TERMINAL


def test_kill_while_requires_action(own, upstream):
    s, tenant = own
    c = tenant.client()
    a = make_assistant(c, tools=[ADD_PRIME_NUMBERS])
    t, mk = new_thread_with_marker(c)
    upstream.enqueue(tool_call("add_prime_numbers", {"prime_numbers": [2, 3]}, "call_crash"), match=mk)
    run = c.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id, **poll_kw())
    assert run.status == "requires_action"
    s.kill()
    s.start()
    c = tenant.client()
    again = c.beta.threads.runs.retrieve(run.id, thread_id=t.id)
    assert again.status == "requires_action"
    assert again.required_action.submit_tool_outputs.tool_calls[0].id == "call_crash"
    done = c.beta.threads.runs.submit_tool_outputs_and_poll(
        tool_outputs=[{"tool_call_id": "call_crash", "output": "5"}], run_id=run.id, thread_id=t.id, **poll_kw())
    assert done.status == "completed"


def test_sigterm_mid_run(own, upstream):
    s, tenant = own
    c = tenant.client()
    a = make_assistant(c)
    t, mk = new_thread_with_marker(c)
    upstream.enqueue(slow("x " * 60, chunks=60, delay=0.05), match=mk)
    run = c.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id)
    upstream.wait_for_requests(1, containing=mk, timeout=30)
    s.stop()
    s.start()
    c = tenant.client()
    done = wait_run(c, t.id, run.id, timeout=60, interval=0.2)
    assert done.status in TERMINAL and done.status not in ACTIVE
