"""What an operator reads: request ids, readiness, JSON logs."""
import json

import httpx


def test_an_incoming_request_id_is_kept_and_echoed(server, tenant):
    with tenant.http() as h:
        r = h.get("/assistants", headers={"X-Request-Id": "client-req-42"})
        assert r.status_code == 200 and r.headers["x-request-id"] == "client-req-42"
        missing = h.get("/assistants/asst_missing", headers={"X-Request-Id": "client-req-43"})
        assert missing.status_code == 404 and missing.headers["x-request-id"] == "client-req-43"
        own = {h.get("/assistants").headers["x-request-id"] for _ in range(3)}
        assert len(own) == 3 and all(own), "one id per request when the caller sends none"
        # a header value that is not a sane id is not echoed
        odd = h.get("/assistants", headers={"X-Request-Id": "x" * 300})
        assert odd.headers["x-request-id"] != "x" * 300


def test_ready_needs_no_key_and_says_ready(server):
    r = httpx.get(server.base_url + "/ready", timeout=10)
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ready"}
    assert httpx.get(server.base_url + "/health", timeout=10).status_code == 200


def test_json_logs_are_one_object_a_line(server_factory):
    s = server_factory(extra_env={"ASSISTANTS_LOG_FORMAT": "json"})
    httpx.get(s.base_url + "/ready", timeout=10)
    s.stop()
    lines = [line for line in s.log_tail().splitlines() if line.strip() and not line.startswith("=====")]
    assert lines, "the server logged nothing"
    for line in lines:
        entry = json.loads(line)
        assert {"time", "level", "message", "label", "source"} <= entry.keys(), entry
    assert any(json.loads(line).get("message", "").startswith("open files") for line in lines)


def test_metrics_in_prometheus_text_without_ids_or_keys(server, tenant, client, upstream):
    from helpers import make_assistant, new_thread_with_marker, poll_kw
    from upstream import text

    a = make_assistant(client)
    t, mk = new_thread_with_marker(client)
    upstream.enqueue(text("Counted."), match=mk)
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id, **poll_kw())
    assert run.status == "completed"
    r = httpx.get(server.base_url + "/metrics", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    body = r.text
    assert 'assistants_run_transitions_total{status="completed"}' in body
    assert "assistants_model_calls_total{" in body and 'outcome="ok"' in body
    assert "assistants_model_call_duration_seconds_bucket{" in body
    assert 'http_route="/v1/threads/{thread_id}/runs/{run_id}"' in body, "routes are patterns"
    for secret in (tenant.key, tenant.project, a.id, t.id, run.id):
        assert secret not in body


def test_metrics_can_be_turned_off(server_factory):
    s = server_factory(extra_env={"ASSISTANTS_METRICS": "off"})
    assert httpx.get(s.base_url + "/metrics", timeout=10).status_code == 404


def test_a_runs_log_lines_carry_its_id_and_the_creating_request_id(server_factory, upstream):
    from helpers import make_assistant, new_thread_with_marker, wait_run
    from upstream import error

    s = server_factory(extra_env={"ASSISTANTS_LOG_FORMAT": "json"})
    c = s.client()
    a = make_assistant(c)
    t, mk = new_thread_with_marker(c)
    upstream.enqueue(error(400, "no such model (scripted)"), match=mk)
    with s.http() as h:
        r = h.post(f"/threads/{t.id}/runs", json={"assistant_id": a.id}, headers={"X-Request-Id": "create-run-77"})
    assert r.status_code == 200 and r.headers["x-request-id"] == "create-run-77"
    run_id = r.json()["id"]
    assert wait_run(c, t.id, run_id).status == "failed"
    s.stop()
    entries = [json.loads(line) for line in s.log_tail().splitlines() if line.startswith("{")]
    failed = [e for e in entries if e["message"] == "run failed"]
    assert failed, entries[-5:]
    assert failed[0]["metadata"]["run_id"] == run_id
    assert failed[0]["metadata"]["hb.request.id"] == "create-run-77"
