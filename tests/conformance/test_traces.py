"""Traces (issue 14, point 2): with OTEL_EXPORTER_OTLP_ENDPOINT pointing at a collector stand-in
on loopback (OTLP/HTTP, JSON), the server exports spans for the HTTP request (honouring an
incoming W3C traceparent), the run (a child of the request that created it), each model call
(model, route, tokens; its traceparent reaches the upstream), each tool execution and each
ingestion, each store transaction. Without OTEL_* variables nothing is exported."""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from helpers import fn_tool, make_assistant, marker, poll_kw, upload_bytes, wait_vector_store
from upstream import text, tool_call

pytestmark = pytest.mark.runs


class Collector:
    """An OTLP/HTTP collector stand-in: keeps every span POSTed to /v1/traces as JSON."""

    def __init__(self):
        self.spans: list = []
        self.content_types: list = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                collector.content_types.append((self.path, self.headers.get("Content-Type")))
                if self.path == "/v1/traces":
                    payload = json.loads(body or b"{}")
                    for resource in payload.get("resourceSpans", []):
                        for scope in resource.get("scopeSpans", []):
                            for span in scope.get("spans", []):
                                span["_resource"] = resource.get("resource", {})
                                for key in ("traceId", "spanId", "parentSpanId"):
                                    span[key] = hex_id(span.get(key))
                                collector.spans.append(span)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def wait_for(self, predicate, timeout: float = 20.0) -> list:
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = [s for s in list(self.spans) if predicate(s)]
            if found:
                return found
            time.sleep(0.1)
        names = sorted({s.get("name") for s in self.spans})
        raise AssertionError(f"no such span among {len(self.spans)}: {names}")

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def hex_id(value) -> str:
    """A span or trace id as hex: OTLP/JSON says hex, swift-otel's JSON (SwiftProtobuf) sends base64."""
    if not value:
        return ""
    if all(c in "0123456789abcdef" for c in value) and len(value) in (16, 32):
        return value
    return base64.b64decode(value).hex()


def attributes(span: dict) -> dict:
    out = {}
    for a in span.get("attributes", []):
        value = a.get("value", {})
        out[a["key"]] = next(iter(value.values()), None) if value else None
    return out


def new_trace() -> tuple[str, dict]:
    """A fresh trace id, and the headers that make a request its root's child."""
    trace_id = secrets.token_hex(16)
    return trace_id, {"traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01"}


def store_transactions(collector: Collector, trace_id: str) -> list:
    """The `db transaction` spans of a trace whose run has ended (its span ends after its last
    write; the exporter sends every 100 ms, hence the wait for stragglers)."""
    collector.wait_for(lambda s: s.get("traceId") == trace_id and s.get("name") == "run")
    time.sleep(0.5)
    return [s for s in list(collector.spans) if s.get("traceId") == trace_id and s.get("name") == "db transaction"]


@pytest.fixture
def collector():
    c = Collector()
    yield c
    c.close()


@pytest.fixture
def traced(collector, server_factory):  # the collector outlives the server, which flushes at shutdown
    s = server_factory(name="traced", extra_env={
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.endpoint,
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json",
        "OTEL_SERVICE_NAME": "assistants-conformance",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    })
    with s.client() as c:
        yield s, c


def test_request_run_model_call_and_upstream_share_one_trace(traced, collector, upstream):
    server, client = traced
    asst = make_assistant(client)
    mk = marker("trace")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": f"Hello [{mk}]"}])
    upstream.enqueue(text("Hi there."), match=mk)
    trace_id = secrets.token_hex(16)
    caller_span = secrets.token_hex(8)
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=asst.id, extra_headers={"traceparent": f"00-{trace_id}-{caller_span}-01"}, **poll_kw())
    assert run.status == "completed", run.last_error

    # The HTTP request's span continues the caller's trace.
    http = collector.wait_for(lambda s: s.get("traceId") == trace_id and s.get("parentSpanId") == caller_span)[0]
    assert "runs" in http["name"], http["name"]
    svc = {a["key"]: a["value"].get("stringValue") for a in http["_resource"].get("attributes", [])}
    assert svc.get("service.name") == "assistants-conformance", svc
    # The run's span is a child of the request that created it, the model call a child of the run.
    run_span = collector.wait_for(lambda s: s.get("name") == "run" and s.get("parentSpanId") == http["spanId"])[0]
    assert attributes(run_span).get("assistants.run_id") == run.id
    chat = collector.wait_for(lambda s: s.get("name", "").startswith("chat ") and s.get("parentSpanId") == run_span["spanId"])[0]
    attrs = attributes(chat)
    assert attrs.get("gen_ai.request.model"), attrs
    assert attrs.get("assistants.upstream.route"), attrs
    assert int(attrs.get("gen_ai.usage.input_tokens")) > 0, attrs
    assert int(attrs.get("gen_ai.usage.output_tokens")) > 0, attrs
    assert chat["traceId"] == trace_id
    # The upstream received a traceparent in the same trace.
    reqs = upstream.requests_containing(mk)
    assert reqs, "the upstream got no request"
    traceparent = reqs[-1].headers.get("traceparent")
    assert traceparent, reqs[-1].headers
    version, tid, parent, _flags = traceparent.split("-")
    assert (version, tid) == ("00", trace_id)
    # It names the model call's span, or AsyncHTTPClient's client span inside it (url, status).
    client_span = collector.wait_for(lambda s: s.get("spanId") == parent)[0]
    assert parent == chat["spanId"] or client_span.get("parentSpanId") == chat["spanId"], client_span
    assert all(path == "/v1/traces" and "json" in (ctype or "") for path, ctype in collector.content_types), collector.content_types
    # Store transactions: the run create's own write is a child of its request.
    db = collector.wait_for(lambda s: s.get("name") == "db transaction" and s.get("parentSpanId") == http["spanId"])[0]
    assert attributes(db).get("db.system.name") in ("sqlite", "postgresql")


def test_a_streamed_answer_is_three_store_transactions(traced, collector, upstream):
    """A streamed run that answers with one message is written three times: created and started
    together (the server picks a streamed run up at once), its message, its end. Its events still
    say queued first, then in_progress."""
    _, client = traced
    asst = make_assistant(client)
    mk = marker("txns")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": f"Hello [{mk}]"}])
    upstream.enqueue(text("Hi there, in a few chunks."), match=mk)
    trace_id, headers = new_trace()
    names = []
    with client.beta.threads.runs.stream(thread_id=thread.id, assistant_id=asst.id, extra_headers=headers) as stream:
        for event in stream:
            names.append((event.event, getattr(event.data, "status", None)))
    assert names[:3] == [("thread.run.created", "queued"), ("thread.run.queued", "queued"),
                         ("thread.run.in_progress", "in_progress")], names[:3]
    assert names[-1] == ("thread.run.completed", "completed"), names[-1]
    writes = store_transactions(collector, trace_id)
    assert len(writes) == 3, [s.get("parentSpanId") for s in writes]


def test_streamed_tool_outputs_and_answer_are_three_store_transactions(traced, collector, upstream):
    """Tool outputs submitted with stream: true are recorded and the run picked up in one
    transaction; the answer's message and the run's end are the other two. The run is announced
    queued (its started_at kept from its first start), then in_progress."""
    _, client = traced
    asst = make_assistant(client, tools=[fn_tool("lookup", "Looks a word up", {"word": {"type": "string"}})])
    mk = marker("outputs")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": f"Look it up [{mk}]"}])
    upstream.enqueue(tool_call("lookup", {"word": "vault"}, call_id="call_traceoutputs01"), match=mk)
    upstream.enqueue(text("It means a safe room."), match=mk)
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=asst.id, **poll_kw())
    assert run.status == "requires_action", run.last_error
    trace_id, headers = new_trace()
    events = []
    with client.beta.threads.runs.submit_tool_outputs_stream(
            thread_id=thread.id, run_id=run.id, tool_outputs=[{"tool_call_id": "call_traceoutputs01", "output": "a safe room"}],
            extra_headers=headers) as stream:
        for event in stream:
            events.append((event.event, event.data))
    names = [name for name, _ in events]
    assert names[:3] == ["thread.run.step.completed", "thread.run.queued", "thread.run.in_progress"], names
    assert names[-1] == "thread.run.completed", names
    queued, in_progress = events[1][1], events[2][1]
    assert queued.status == "queued" and queued.started_at == run.started_at, queued
    assert in_progress.status == "in_progress" and in_progress.started_at == run.started_at, in_progress
    writes = store_transactions(collector, trace_id)
    assert len(writes) == 3, [s.get("parentSpanId") for s in writes]


def test_tool_and_ingestion_spans(traced, collector, upstream):
    _, client = traced
    f = upload_bytes(client, b"The vault combination is 31-7-44.", "memo.txt")
    store = client.vector_stores.create(name="memos", file_ids=[f.id])
    wait_vector_store(client, store.id)
    ingestion = collector.wait_for(lambda s: s.get("name") == "file ingestion"
                                   and attributes(s).get("assistants.file_id") == f.id)[0]
    # Queued by the vector store create: its span is the request's child.
    parent = collector.wait_for(lambda s: s.get("spanId") == ingestion.get("parentSpanId"))[0]
    assert "vector_stores" in parent["name"], parent["name"]

    asst = make_assistant(client, tools=[{"type": "file_search"}],
                          tool_resources={"file_search": {"vector_store_ids": [store.id]}})
    mk = marker("tool")
    thread = client.beta.threads.create(messages=[{"role": "user", "content": f"Combination? [{mk}]"}])
    upstream.enqueue(tool_call("file_search", {"queries": ["vault combination"]}), match=mk)
    upstream.enqueue(text("31-7-44"), match=mk)
    run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=asst.id, **poll_kw())
    assert run.status == "completed", run.last_error
    tool = collector.wait_for(lambda s: s.get("name") == "tool file_search"
                              and attributes(s).get("assistants.run_id") == run.id)[0]
    run_span = collector.wait_for(lambda s: s.get("name") == "run" and attributes(s).get("assistants.run_id") == run.id)[0]
    assert tool["parentSpanId"] == run_span["spanId"]
    assert len(collector.wait_for(lambda s: s.get("name", "").startswith("chat ") and s.get("parentSpanId") == run_span["spanId"])) == 2


def test_no_otel_variables_no_traceparent(server_factory, upstream):
    s = server_factory(name="untraced")
    with s.client() as client:
        asst = make_assistant(client)
        mk = marker("notrace")
        thread = client.beta.threads.create(messages=[{"role": "user", "content": f"Hello [{mk}]"}])
        upstream.enqueue(text("Hi."), match=mk)
        run = client.beta.threads.runs.create_and_poll(thread_id=thread.id, assistant_id=asst.id, **poll_kw())
        assert run.status == "completed"
        assert "traceparent" not in upstream.requests_containing(mk)[-1].headers
