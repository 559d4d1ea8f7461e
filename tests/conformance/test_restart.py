"""Durability: a restart (SIGTERM or SIGKILL) on the same database and data dir keeps
every acknowledged write, file bytes included."""

import hashlib
import io
import os

import openai
import pytest

from helpers import MODEL, expect_error, raw, text_of


@pytest.fixture
def own(keyed_server):
    s, (t,) = keyed_server(1)
    return s, t


def _snapshot(c, asst_id, thread_id, file_id):
    return {
        "assistant": raw(c.beta.assistants.retrieve(asst_id)),
        "thread": raw(c.beta.threads.retrieve(thread_id)),
        "messages": [raw(m) for m in c.beta.threads.messages.list(thread_id, order="asc")],
        "file": raw(c.files.retrieve(file_id)),
    }


@pytest.mark.parametrize("kill", [False, True], ids=["sigterm", "sigkill"])
def test_restart_keeps_everything(own, kill):
    s, t = own
    c = t.client()
    a = c.beta.assistants.create(model=MODEL, name="durable", instructions="persist me",
                                 metadata={"k": "v"}, temperature=0.5,
                                 tools=[{"type": "function", "function": {"name": "f", "parameters": {
                                     "type": "object", "properties": {}}}}])
    th = c.beta.threads.create(metadata={"t": "1"}, messages=[{"role": "user", "content": "first"}])
    c.beta.threads.messages.create(th.id, role="assistant", content="second")
    data = os.urandom(300_000) + bytes(range(256))
    f = c.files.create(file=("data.bin", io.BytesIO(data)), purpose="assistants")
    deleted = c.beta.assistants.create(model=MODEL, name="to delete")
    c.beta.assistants.delete(deleted.id)
    before = _snapshot(c, a.id, th.id, f.id)

    s.restart(kill=kill)

    c = t.client()
    after = _snapshot(c, a.id, th.id, f.id)
    assert after == before
    got = c.files.content(f.id).content
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
    with expect_error(openai.NotFoundError):
        c.beta.assistants.retrieve(deleted.id)
    # new writes still work, with fresh ids, after the old ones in list order
    a2 = c.beta.assistants.create(model=MODEL, name="after restart")
    assert a2.id != a.id
    assert [x.id for x in c.beta.assistants.list(order="asc")] == [a.id, a2.id]


def test_sigkill_right_after_writes(own):
    """Every write that got a 200 is there after a SIGKILL that follows at once."""
    s, t = own
    c = t.client()
    th = c.beta.threads.create()
    ids = []
    for i in range(20):
        ids.append(c.beta.threads.messages.create(th.id, role="user", content=f"write {i}").id)
    a = c.beta.assistants.create(model=MODEL, name="last write")
    upd = c.beta.threads.update(th.id, metadata={"final": "yes"})
    payload = os.urandom(64 * 1024)
    f = c.files.create(file=("k.bin", io.BytesIO(payload)), purpose="assistants")
    s.kill()  # no grace period
    s.start()
    c = t.client()
    assert [m.id for m in c.beta.threads.messages.list(th.id, order="asc", limit=100)] == ids
    assert [text_of(m) for m in c.beta.threads.messages.list(th.id, order="asc", limit=100)] == [
        f"write {i}" for i in range(20)]
    assert c.beta.assistants.retrieve(a.id).name == "last write"
    assert raw(c.beta.threads.retrieve(th.id))["metadata"] == {"final": "yes"} == raw(upd)["metadata"]
    assert c.files.content(f.id).content == payload


def test_several_restarts(own):
    s, t = own
    made = []
    for round_ in range(3):
        c = t.client()
        made.append(c.beta.assistants.create(model=MODEL, name=f"r{round_}").id)
        s.restart(kill=(round_ % 2 == 1))
    c = t.client()
    assert [x.id for x in c.beta.assistants.list(order="asc")] == made


def test_sigterm_exits_cleanly(own):
    s, t = own
    t.client().beta.assistants.create(model=MODEL)
    code = s.stop()
    assert code == 0, f"SIGTERM should shut down gracefully with exit code 0, got {code}"
    s.start()
