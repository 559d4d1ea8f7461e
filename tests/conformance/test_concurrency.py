"""Many runs at once: all complete, each with its own reply."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers import ADD_PRIME_NUMBERS, make_assistant, marker, text_of, wait_run
from upstream import text, tool_call

pytestmark = pytest.mark.runs

N_RUNS = 64


def test_64_concurrent_runs(tenant, upstream):
    c = tenant.client(timeout=120)
    a = make_assistant(c)
    tag = marker("conc")
    for i in range(N_RUNS):
        upstream.enqueue(text(f"reply number {i}", chunks=3, delay=0.02), match=f"{tag}-{i:02d}]")

    def one(i):
        cl = tenant.client(timeout=120)
        t = cl.beta.threads.create(messages=[{"role": "user", "content": f"question [{tag}-{i:02d}]"}])
        run = cl.beta.threads.runs.create(thread_id=t.id, assistant_id=a.id)
        run = wait_run(cl, t.id, run.id, timeout=120, interval=0.2)
        msgs = list(cl.beta.threads.messages.list(t.id))
        return i, run.status, text_of(msgs[0]) if msgs and msgs[0].role == "assistant" else None

    with ThreadPoolExecutor(max_workers=N_RUNS) as pool:
        results = list(pool.map(one, range(N_RUNS)))
    bad = [(i, st, txt) for i, st, txt in results if st != "completed" or txt != f"reply number {i}"]
    assert not bad, f"{len(bad)} runs went wrong: {bad[:5]}"
    assert len(upstream.requests_containing(tag)) == N_RUNS


def test_concurrent_tool_round_trips(tenant, upstream):
    c = tenant.client(timeout=120)
    a = make_assistant(c, tools=[ADD_PRIME_NUMBERS])
    tag = marker("tool")
    n = 16
    for i in range(n):
        upstream.enqueue(tool_call("add_prime_numbers", {"prime_numbers": [2, i]}, f"call_{i:02d}"),
                         text(f"sum {2 + i}"), match=f"{tag}-{i:02d}]")

    def one(i):
        cl = tenant.client(timeout=120)
        t = cl.beta.threads.create(messages=[{"role": "user", "content": f"add [{tag}-{i:02d}]"}])
        run = cl.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id, poll_interval_ms=100)
        assert run.status == "requires_action", run.status
        run = cl.beta.threads.runs.submit_tool_outputs_and_poll(
            tool_outputs=[{"tool_call_id": f"call_{i:02d}", "output": str(2 + i)}], run_id=run.id, thread_id=t.id,
            poll_interval_ms=100)
        return run.status, text_of(list(cl.beta.threads.messages.list(t.id))[0])

    with ThreadPoolExecutor(max_workers=n) as pool:
        results = list(pool.map(one, range(n)))
    assert results == [("completed", f"sum {2 + i}") for i in range(n)]
