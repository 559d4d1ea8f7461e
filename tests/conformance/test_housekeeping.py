"""Housekeeping (issue 14, point 7): a deleted thread's own vector store goes with it (a store the
caller attached stays), and the background sweep (ASSISTANTS_SWEEP_SECONDS=1 here) closes the
deleted thread's code_interpreter session and removes its folder. Expiry of files and vector
stores (at least an hour away through the API) is covered by the Swift HousekeepingTests."""

from __future__ import annotations

import glob
import time

import pytest

from helpers import upload_bytes, wait_vector_store
from test_code_interpreter import ci_assistant, code_run

FILE_SEARCH = {"type": "file_search"}


@pytest.fixture
def sweeping(server_factory):
    s = server_factory(name="sweeping", extra_env={"ASSISTANTS_SWEEP_SECONDS": "1"})
    with s.client() as c:
        yield s, c


def session_folders(server, thread_id: str) -> list:
    roots = [str(server.data_dir / "sandbox" / "sessions"), *glob.glob("/tmp/assistants-sandbox-*/sessions")]
    return [p for root in roots for p in glob.glob(f"{root}/*_{thread_id}")]


def test_deleting_a_thread_removes_its_own_vector_store_only(sweeping):
    _, client = sweeping
    mine = client.vector_stores.create(name="team docs")
    f = upload_bytes(client, b"Owls hoot at night.", "owls.txt")
    t = client.beta.threads.create(
        messages=[{"role": "user", "content": "hi", "attachments": [{"file_id": f.id, "tools": [FILE_SEARCH]}]}])
    own = client.beta.threads.retrieve(t.id).tool_resources.file_search.vector_store_ids[0]
    wait_vector_store(client, own)
    t2 = client.beta.threads.create(tool_resources={"file_search": {"vector_store_ids": [mine.id]}})
    client.beta.threads.delete(t.id)
    client.beta.threads.delete(t2.id)
    ids = {v.id for v in client.vector_stores.list(limit=100)}
    assert own not in ids
    assert mine.id in ids
    assert client.files.retrieve(f.id).id == f.id  # the file itself is the caller's


def test_sweep_closes_a_deleted_threads_session(sweeping, upstream):
    server, client = sweeping
    asst = ci_assistant(client)
    cr = code_run(client, upstream, asst.id, "open('/mnt/data/kept.txt', 'w').write('x')\nprint('ok')")
    if "unavailable" in cr.logs:
        pytest.skip("code_interpreter is unavailable on this machine")
    folders = session_folders(server, cr.thread_id)
    assert len(folders) == 1, folders
    client.beta.threads.delete(cr.thread_id)
    deadline = time.time() + 15
    while session_folders(server, cr.thread_id) and time.time() < deadline:
        time.sleep(0.2)
    assert session_folders(server, cr.thread_id) == [], server.log_tail()
    assert "closed the code_interpreter session of deleted thread" in server.log_tail()
