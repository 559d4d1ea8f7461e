"""Several servers on one database (issue 3's crash safety with more than one node): each run
is executed by the server that owns it; a server starting up leaves a live server's runs alone,
and the live servers adopt, once, the runs of a server that died."""
import secrets

import pytest

from helpers import make_assistant, new_thread_with_marker, text_of, wait_run
from upstream import slow, text

pytestmark = pytest.mark.runs


@pytest.fixture
def two_nodes(keyed_server, server_factory):
    """Servers A and B on A's database, with a 3 s node timeout; a tenant with a key for both."""
    tag = secrets.token_hex(3)
    env = {"ASSISTANTS_NODE_TIMEOUT": "3"}
    a, (tenant,) = keyed_server(1, extra_env={**env, "ASSISTANTS_NODE_ID": f"node-a-{tag}"})
    b = server_factory(api_keys=a.keys, database_url=a.database_url,
                       extra_env={**env, "ASSISTANTS_NODE_ID": f"node-b-{tag}"})
    return a, b, tenant


def test_starting_server_leaves_a_live_servers_run_alone(two_nodes, upstream):
    a, b, tenant = two_nodes
    ca = a.client(api_key=tenant.key)
    asst = make_assistant(ca)
    t, mk = new_thread_with_marker(ca)
    upstream.enqueue(slow("still " * 60, chunks=60, delay=0.1), match=mk)  # ~6 s on A
    run = ca.beta.threads.runs.create(thread_id=t.id, assistant_id=asst.id)
    upstream.wait_for_requests(1, containing=mk, timeout=30)
    # B restarts while A's model call is under way: neither its start nor its later looks take the run.
    b.stop()
    b.start()
    done = wait_run(b.client(api_key=tenant.key), t.id, run.id, timeout=60, interval=0.2)
    assert done.status == "completed"
    assert len(upstream.requests_containing(mk)) == 1, "the run was executed by both servers"
    replies = [m for m in ca.beta.threads.messages.list(t.id) if m.role == "assistant"]
    assert len(replies) == 1 and text_of(replies[0]).startswith("still")


def test_live_server_adopts_the_runs_of_a_dead_one(two_nodes, upstream):
    a, b, tenant = two_nodes
    ca = a.client(api_key=tenant.key)
    asst = make_assistant(ca)
    t, mk = new_thread_with_marker(ca)
    upstream.enqueue(slow("lost " * 200, chunks=200, delay=0.05), text("Adopted and answered."), match=mk)
    run = ca.beta.threads.runs.create(thread_id=t.id, assistant_id=asst.id)
    upstream.wait_for_requests(1, containing=mk, timeout=30)
    a.kill()
    # A beats no more: after the node timeout, B takes the run over and answers it.
    cb = b.client(api_key=tenant.key)
    done = wait_run(cb, t.id, run.id, timeout=60, interval=0.2)
    assert done.status == "completed", done.last_error
    assert len(upstream.requests_containing(mk)) == 2
    replies = [m for m in cb.beta.threads.messages.list(t.id) if m.role == "assistant"]
    assert len(replies) == 1 and replies[0].status == "completed"
    assert text_of(replies[0]) == "Adopted and answered."
    for st in cb.beta.threads.runs.steps.list(run.id, thread_id=t.id):
        assert st.status == "completed"
