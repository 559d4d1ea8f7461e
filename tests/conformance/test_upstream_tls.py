"""A model upstream behind TLS with a private CA (ASSISTANTS_UPSTREAM_CA_FILE): trusted when
its CA file is given, refused when not, and a missing file stops the server at start."""

import shutil
import ssl
import subprocess

import pytest

from conftest import SERVER_BIN
from helpers import text_of
from upstream import ScriptedUpstream

pytestmark = pytest.mark.runs


def make_certificates(directory):
    """A throwaway CA and a certificate it signed for 127.0.0.1: (ca.pem, server.pem, server.key)."""
    def openssl(*args):
        subprocess.run(["openssl", *args], cwd=directory, check=True, capture_output=True, timeout=60)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=conformance test CA")
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=127.0.0.1")
    (directory / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "server.pem", "-days", "2", "-extfile", "san.ext")
    return directory / "ca.pem", directory / "server.pem", directory / "server.key"


@pytest.fixture
def tls_upstream(tmp_path):
    """A scripted upstream on https://127.0.0.1 whose certificate a private CA signed: (upstream, ca.pem)."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl command to make a test CA")
    ca, certificate, key = make_certificates(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certificate, key)
    up = ScriptedUpstream(mode="instant", default_text="Answered over TLS.", tls=context).start()
    yield up, ca
    up.stop()


def ask(server):
    client = server.client()
    assistant = client.beta.assistants.create(model="gpt-4o-mini", instructions="Answer.")
    run = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": "Hello?"}]}, poll_interval_ms=100)
    return client, run


def test_a_run_reaches_an_upstream_its_ca_file_vouches_for(server_factory, tls_upstream):
    up, ca = tls_upstream
    assert up.base_url.startswith("https://")
    server = server_factory(upstream_url=up.base_url, extra_env={"ASSISTANTS_UPSTREAM_CA_FILE": str(ca)})
    client, run = ask(server)
    assert run.status == "completed", run.last_error
    messages = client.beta.threads.messages.list(thread_id=run.thread_id)
    assert text_of(messages.data[0]) == "Answered over TLS."
    assert "CA certificate(s) from" in server.log_tail()


def test_without_its_ca_file_the_upstream_is_not_trusted(server_factory, tls_upstream):
    up, _ = tls_upstream
    server = server_factory(upstream_url=up.base_url)
    _, run = ask(server)
    assert run.status == "failed"
    assert run.last_error.code == "server_error"
    assert "could not be reached" in run.last_error.message


def test_a_missing_ca_file_stops_the_server_at_start(tmp_path):
    environment = {"PATH": "/usr/bin:/bin", "ASSISTANTS_LOCAL_MODEL": "off",
                   "ASSISTANTS_UPSTREAM_CA_FILE": str(tmp_path / "missing.pem")}
    result = subprocess.run([str(SERVER_BIN), "serve", "--host", "127.0.0.1", "--port", "0",
                             "--database-url", f"sqlite://{tmp_path / 'db.sqlite'}", "--data-dir", str(tmp_path / "files")],
                            env=environment, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "ASSISTANTS_UPSTREAM_CA_FILE" in result.stderr and "missing.pem" in result.stderr
