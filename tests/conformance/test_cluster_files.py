"""File bytes every node can read (issue 13, points 4-5): two servers on one PostgreSQL
database, each with its own data folder, as two machines would have. A file uploaded through
one is read, downloaded byte for byte, ingested and searched, staged into /mnt/data and deleted
through the other; the bytes live in the database (`ASSISTANTS_BLOB_STORE=postgres`, the default
there), never only in the folder of the node that took the upload."""
import json
import os
import secrets
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import SERVER_BIN, TEST_DATABASE_URL
from helpers import make_assistant, marker, raw, text_of, upload_bytes, wait_run, wait_vector_store
from upstream import text, tool_call

pytestmark = pytest.mark.runs
on_postgres = pytest.mark.skipif(not (TEST_DATABASE_URL or "").startswith("postgres"),
                                 reason="several servers share one database only on PostgreSQL")


@pytest.fixture
def two_nodes(keyed_server, server_factory):
    """Servers A and B on one PostgreSQL database with separate data folders; one tenant with a key for both."""
    tag = secrets.token_hex(3)
    a, (tenant,) = keyed_server(1, extra_env={"ASSISTANTS_NODE_ID": f"files-a-{tag}"})
    b = server_factory(api_keys=a.keys, database_url=a.database_url,
                       extra_env={"ASSISTANTS_NODE_ID": f"files-b-{tag}"})
    assert a.data_dir != b.data_dir
    return a, b, tenant


@on_postgres
def test_upload_on_one_node_downloads_byte_identical_on_the_other(two_nodes):
    a, b, tenant = two_nodes
    ca, cb = a.client(api_key=tenant.key), b.client(api_key=tenant.key)
    small = b"hello from node A\n"
    # ~5.3 MiB of incompressible bytes: spans several 1 MiB chunks, and a partial last one.
    big = os.urandom(5 * 1024 * 1024 + 12345)
    for data, name in [(small, "small.txt"), (big, "big.bin"), (b"", "empty.txt")]:
        f = upload_bytes(ca, data, name)
        got = cb.files.retrieve(f.id)
        assert got.bytes == len(data) and got.filename == name
        with b.http(api_key=tenant.key) as hb:
            r = hb.get(f"/files/{f.id}/content")
            assert r.status_code == 200, r.text[:300]
            assert r.headers["content-length"] == str(len(data))
            assert r.content == data, f"{name}: {len(r.content)} bytes, expected {len(data)}"
        # and through the SDK
        assert cb.files.content(f.id).read() == data


@on_postgres
def test_delete_on_one_node_is_404_on_the_other(two_nodes):
    a, b, tenant = two_nodes
    ca, cb = a.client(api_key=tenant.key), b.client(api_key=tenant.key)
    f = upload_bytes(ca, b"short-lived bytes", "gone.txt")
    assert cb.files.content(f.id).read() == b"short-lived bytes"  # B may keep a local copy now
    assert ca.files.delete(f.id).deleted
    with b.http(api_key=tenant.key) as hb:
        assert hb.get(f"/files/{f.id}").status_code == 404
        assert hb.get(f"/files/{f.id}/content").status_code == 404


@on_postgres
def test_vector_store_on_the_other_node_ingests_and_searches(two_nodes, upstream):
    a, b, tenant = two_nodes
    ca, cb = a.client(api_key=tenant.key), b.client(api_key=tenant.key)
    needle = f"The launch code of project Y-{secrets.token_hex(3)} is OCELOT-{secrets.randbelow(10**6)}."
    filler = "\n\n".join(f"Paragraph {i}: minutes of the weekly meeting about budgets in region {i}. " * 6
                         for i in range(80))
    f = upload_bytes(ca, (filler + "\n\n" + needle + "\n\n" + filler).encode(), "minutes.txt")
    vs = cb.vector_stores.create(name="minutes", file_ids=[f.id])
    done = wait_vector_store(cb, vs.id, timeout=60)
    assert done.file_counts.completed == 1, raw(done)
    vsf = cb.vector_stores.files.retrieve(f.id, vector_store_id=vs.id)
    assert vsf.status == "completed", raw(vsf)

    asst = make_assistant(cb, tools=[{"type": "file_search"}],
                          tool_resources={"file_search": {"vector_store_ids": [vs.id]}})
    mk = marker("cf")
    t = cb.beta.threads.create(messages=[{"role": "user", "content": f"What is the launch code? {mk}"}])
    upstream.enqueue(tool_call("file_search", {"queries": ["launch code of project"]}), text("Found it."), match=mk)
    run = cb.beta.threads.runs.create(thread_id=t.id, assistant_id=asst.id)
    run = wait_run(cb, t.id, run.id, timeout=60)
    assert run.status == "completed", raw(run)
    steps = [raw(s) for s in cb.beta.threads.runs.steps.list(run.id, thread_id=t.id, order="asc",
                                                             include=["step_details.tool_calls[*].file_search.results[*].content"])]
    results = [r for s in steps if s["type"] == "tool_calls"
               for c in s["step_details"]["tool_calls"] for r in c["file_search"]["results"]]
    assert results and all(r["file_id"] == f.id for r in results), results
    found = " ".join(p["text"] for r in results for p in r.get("content") or [])
    assert needle in found, found[:500]


def _code_run_logs(client, upstream, thread_id, assistant_id, mk, code, reply):
    """A run of the thread through `client` in which the model (scripted for marker `mk`) runs
    `code` with code_interpreter, then answers `reply`; the run must complete. Returns the logs
    of its code_interpreter calls."""
    upstream.enqueue(tool_call("code_interpreter", {"code": code}), text(reply), match=mk)
    run = client.beta.threads.runs.create(thread_id=thread_id, assistant_id=assistant_id)
    run = wait_run(client, thread_id, run.id, timeout=90)
    assert run.status == "completed", raw(run)
    steps = [raw(s) for s in client.beta.threads.runs.steps.list(run.id, thread_id=thread_id, order="asc")]
    return "\n".join(o["logs"] for s in steps if s["type"] == "tool_calls"
                     for c in s["step_details"]["tool_calls"] for o in c["code_interpreter"]["outputs"]
                     if o["type"] == "logs")


@on_postgres
def test_code_interpreter_on_the_other_node_sees_the_file(two_nodes, upstream):
    a, b, tenant = two_nodes
    ca, cb = a.client(api_key=tenant.key), b.client(api_key=tenant.key)
    token = secrets.token_hex(8)
    f = upload_bytes(ca, f"item,amount\nwidgets,{len(token)}\ntoken,{token}\n".encode(), "sheet.csv")
    asst = make_assistant(cb, tools=[{"type": "code_interpreter"}], instructions="You can run Python code.")
    mk = marker("ci")
    t = cb.beta.threads.create(messages=[{"role": "user", "content": f"Read the sheet [{mk}]",
                                          "attachments": [{"file_id": f.id, "tools": [{"type": "code_interpreter"}]}]}])
    code = "import os\nprint(sorted(os.listdir('/mnt/data')))\nprint(open('/mnt/data/sheet.csv').read())"
    logs = _code_run_logs(cb, upstream, t.id, asst.id, mk, code, "Read.")
    assert "sheet.csv" in logs and f"token,{token}" in logs, logs

    # a file the code saves on B is downloadable through A
    mk2 = marker("ci")
    cb.beta.threads.messages.create(t.id, role="user", content=f"Save a file [{mk2}]")
    logs2 = _code_run_logs(cb, upstream, t.id, asst.id, mk2,
                           f"open('/mnt/data/out.txt','w').write('made on B {token}')", "Saved.")
    saved = [line for line in logs2.splitlines() if line.startswith("[saved /mnt/data/out.txt as ")]
    assert saved, logs2
    file_id = saved[0][len("[saved /mnt/data/out.txt as "):-1]
    assert ca.files.content(file_id).read() == f"made on B {token}".encode()


class HangingEmbeddings:
    """An embeddings upstream whose first request hangs (its node is then killed mid-ingestion)
    and whose later requests are answered: vectors of 8 floats."""

    def __init__(self):
        self.requests = 0
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                outer.requests += 1
                if outer.requests == 1:
                    outer.release.wait(120)
                    return
                inputs = body.get("input") or []
                inputs = [inputs] if isinstance(inputs, str) else inputs
                data = [{"object": "embedding", "index": i, "embedding": [float((len(t) + k) % 7) + 0.5 for k in range(8)]}
                        for i, t in enumerate(inputs)]
                out = json.dumps({"object": "list", "data": data, "model": body.get("model"),
                                  "usage": {"prompt_tokens": 1, "total_tokens": 1}}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self):
        self.release.set()
        self.httpd.shutdown()


@on_postgres
def test_a_dead_nodes_ingestion_is_taken_over(keyed_server, server_factory, tmp_path):
    embeddings = HangingEmbeddings()
    try:
        models = tmp_path / "models.yaml"
        models.write_text(f"models:\n  - name: embed-hang\n    upstream_url: {embeddings.url}\n")
        tag = secrets.token_hex(3)
        env = {"ASSISTANTS_NODE_TIMEOUT": "3", "ASSISTANTS_EMBEDDING_MODEL": "embed-hang",
               "ASSISTANTS_MODELS_CONFIG": str(models)}
        a, (tenant,) = keyed_server(1, extra_env={**env, "ASSISTANTS_NODE_ID": f"ingest-a-{tag}"})
        b = server_factory(api_keys=a.keys, database_url=a.database_url,
                           extra_env={**env, "ASSISTANTS_NODE_ID": f"ingest-b-{tag}"})
        ca, cb = a.client(api_key=tenant.key), b.client(api_key=tenant.key)
        needle = f"The vault combination is {secrets.randbelow(10**8)}."
        f = upload_bytes(ca, f"Notes of the day.\n\n{needle}\n".encode(), "vault.txt")
        vs = ca.vector_stores.create(name="vault", file_ids=[f.id])
        deadline = time.monotonic() + 30
        while embeddings.requests < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert embeddings.requests == 1, "A did not start ingesting"
        # A is alive (it beats) though its claim is older than the timeout: B leaves the job alone.
        time.sleep(5)
        assert embeddings.requests == 1
        assert cb.vector_stores.files.retrieve(f.id, vector_store_id=vs.id).status == "in_progress"
        a.kill()
        # A beats no more: B takes the job over and finishes it.
        done = wait_vector_store(cb, vs.id, timeout=60)
        assert done.file_counts.completed == 1, raw(done)
        assert embeddings.requests >= 2
        hits = cb.vector_stores.search(vs.id, query="vault combination")
        assert any(needle in p.text for r in hits.data for p in r.content), raw(hits)
    finally:
        embeddings.close()


def test_postgres_blob_store_with_sqlite_is_a_start_up_error(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANTS_")}
    env["ASSISTANTS_LOCAL_MODEL"] = "off"
    common = ["--database-url", f"sqlite://{tmp_path / 'a.sqlite'}", "--data-dir", str(tmp_path / "data")]
    # `config` names the choice and where it came from, and the effective store by default.
    out = subprocess.run([str(SERVER_BIN), "config", *common, "--blob-store", "postgres"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "ASSISTANTS_BLOB_STORE=postgres  # flag" in out.stdout, out.stdout + out.stderr
    out = subprocess.run([str(SERVER_BIN), "config", *common], env=env, capture_output=True, text=True, timeout=60)
    assert "blob store file" in out.stdout, out.stdout
    bad = subprocess.run([str(SERVER_BIN), "config", *common], env={**env, "ASSISTANTS_BLOB_STORE": "s3"},
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "invalid ASSISTANTS_BLOB_STORE 's3'" in bad.stderr, bad.stderr
    # `serve` refuses to start: the bytes of a cluster cannot live in a SQLite file.
    run = subprocess.run([str(SERVER_BIN), "serve", "--port", "0", *common], env={**env, "ASSISTANTS_BLOB_STORE": "postgres"},
                         capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    assert "ASSISTANTS_BLOB_STORE=postgres needs a PostgreSQL database" in run.stdout + run.stderr, run.stdout + run.stderr
