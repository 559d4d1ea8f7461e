"""At most one active run per thread, also under concurrent creates spread over two servers on
one database: exactly one create wins, every other one gets the API's 400."""
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from helpers import make_assistant
from upstream import gate, text

pytestmark = pytest.mark.runs

ROUNDS = 6
CREATES = 32


def race(servers, tenant, thread_id, assistant_id):
    """CREATES run creates on one thread, sent together (connections made first), over `servers`."""
    clients = [httpx.Client(base_url=servers[i % len(servers)].api_base, timeout=30,
                            headers={"Authorization": f"Bearer {tenant.key}", "OpenAI-Beta": "assistants=v2"})
               for i in range(CREATES)]
    for h in clients:
        h.get("/models")  # opens the connection; any answer will do
    barrier = threading.Barrier(CREATES)

    def create(h):
        barrier.wait()
        return h.post(f"/threads/{thread_id}/runs", json={"assistant_id": assistant_id})

    try:
        with ThreadPoolExecutor(CREATES) as pool:
            return list(pool.map(create, clients))
    finally:
        for h in clients:
            h.close()


def test_concurrent_run_creates_start_one_run(keyed_server, server_factory, upstream):
    tag = secrets.token_hex(3)
    a, (tenant,) = keyed_server(1, extra_env={"ASSISTANTS_NODE_ID": f"race-a-{tag}"})
    b = server_factory(api_keys=a.keys, database_url=a.database_url, extra_env={"ASSISTANTS_NODE_ID": f"race-b-{tag}"})
    c = a.client(api_key=tenant.key)
    asst = make_assistant(c)
    release = gate(text("done"), timeout=60)
    upstream.set_default(release)  # every run stays active while the creates race
    try:
        for _ in range(ROUNDS):
            thread = c.beta.threads.create(messages=[{"role": "user", "content": "race"}])
            answers = race([a, b], tenant, thread.id, asst.id)
            statuses = sorted(r.status_code for r in answers)
            assert statuses.count(200) == 1, statuses
            assert statuses.count(400) == CREATES - 1, statuses
            for r in answers:
                if r.status_code == 400:
                    error = r.json()["error"]
                    assert error["type"] == "invalid_request_error" and "already has an active run" in error["message"]
            assert len(list(c.beta.threads.runs.list(thread.id))) == 1
    finally:
        release.event.set()
        upstream.set_default(None)
