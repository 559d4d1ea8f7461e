"""Invalid values must not be accepted and echoed back (issue 11, points 4 and 6).

The project's rule is to be never stricter than the real API, so where the response
echoes the value the check is: a 400 whose ``error.param`` names the field, or a 200
whose echoed object satisfies the spec's response schema (the value was dropped or
normalised, not stored as sent). Where nothing is echoed (``include[]``, search
filters) or the value is plainly invalid (``model: ""``), a 400 naming the param is
required. Each invalid case has a valid control that must still be accepted.

Spec facts (../shared/spec/assistants-openapi.yaml): ``tool_resources.code_interpreter``,
``tools[].file_search`` and ``json_schema.schema`` are ``type: object`` (not nullable);
``image_url.url`` is ``format: uri``; ``include[]`` items are an enum of one value;
a ComparisonFilter ``value`` is a string, number, boolean or array of strings/numbers.
"""

from __future__ import annotations

import pytest

from helpers import MODEL
from spec import component, schema_errors


def _json(r):
    try:
        return r.json()
    except Exception:  # noqa: BLE001
        return None


def expect_400_param(r, prefix: str, what: str) -> dict:
    body = _json(r)
    assert r.status_code == 400, f"{what}: expected 400 naming {prefix!r}, got {r.status_code}: {r.text[:500]}"
    assert isinstance(body, dict) and isinstance(body.get("error"), dict), f"{what}: {r.text[:500]}"
    err = body["error"]
    assert err.get("type") == "invalid_request_error", f"{what}: {err}"
    param = err.get("param")
    assert isinstance(param, str) and param, f"{what}: error.param is not set: {err}"
    assert param.replace("[]", "").startswith(prefix), f"{what}: error.param {param!r} does not name {prefix!r}"
    return err


def expect_rejected_or_valid_echo(r, prefix: str, pointer: str, pick, what: str, extra_check=None):
    """400 naming ``prefix``, or 200 whose ``pick(body)`` validates against the schema
    at ``pointer`` (and passes ``extra_check``)."""
    if r.status_code == 400:
        expect_400_param(r, prefix, what)
        return
    assert r.status_code == 200, f"{what}: expected 400 or 200, got {r.status_code}: {r.text[:500]}"
    echoed = pick(r.json())
    errors = schema_errors(echoed, pointer)
    assert not errors, (f"{what}: accepted (200) and echoed {echoed!r}, which breaks the response schema "
                        f"{pointer}:\n" + "\n".join(errors[:10]))
    if extra_check:
        extra_check(echoed)


ASSISTANT = component("AssistantObject")


def _assistant(http, **kw):
    kw.setdefault("model", MODEL)
    r = http.post("/assistants", json=kw)
    assert r.status_code == 200, r.text
    return r.json()


def _thread(http, **kw):
    r = http.post("/threads", json=kw)
    assert r.status_code == 200, r.text
    return r.json()


# --------------------------------------------------------------------------- model


def test_assistant_empty_model(http):
    """``model: ""`` -> 400 naming ``model`` (today: 200 and stored)."""
    expect_400_param(http.post("/assistants", json={"model": ""}), "model", 'model ""')


def test_assistant_model_control(http):
    assert http.post("/assistants", json={"model": MODEL}).status_code == 200


# --------------------------------------------------------------------------- include[]


def test_run_create_bogus_include(http, upstream):
    a = _assistant(http)
    t = _thread(http)
    r = http.post(f"/threads/{t['id']}/runs", params={"include[]": "bogus"}, json={"assistant_id": a["id"]})
    expect_400_param(r, "include", "createRun include[]=bogus")


def test_run_steps_list_bogus_include(http, upstream):
    a = _assistant(http)
    t = _thread(http, messages=[{"role": "user", "content": "hi"}])
    run = http.post(f"/threads/{t['id']}/runs", json={"assistant_id": a["id"]})
    assert run.status_code == 200, run.text
    r = http.get(f"/threads/{t['id']}/runs/{run.json()['id']}/steps", params={"include[]": "bogus"})
    expect_400_param(r, "include", "listRunSteps include[]=bogus")


def test_include_valid_value_control(http, upstream):
    """The one value the spec allows is accepted on both."""
    a = _assistant(http)
    t = _thread(http, messages=[{"role": "user", "content": "hi"}])
    inc = {"include[]": "step_details.tool_calls[*].file_search.results[*].content"}
    run = http.post(f"/threads/{t['id']}/runs", params=inc, json={"assistant_id": a["id"]})
    assert run.status_code == 200, run.text
    r = http.get(f"/threads/{t['id']}/runs/{run.json()['id']}/steps", params=inc)
    assert r.status_code == 200, r.text


# --------------------------------------------------------------------------- tool_resources


@pytest.mark.parametrize("value", [{"code_interpreter": None}, {"file_search": None},
                                   {"code_interpreter": {"file_ids": None}}],
                         ids=["code_interpreter-null", "file_search-null", "file_ids-null"])
def test_assistant_tool_resources_null(http, value):
    r = http.post("/assistants", json={"model": MODEL, "tool_resources": value})
    expect_rejected_or_valid_echo(r, "tool_resources", ASSISTANT + "/properties/tool_resources",
                                  lambda d: d.get("tool_resources"), f"assistant tool_resources {value}")


def test_thread_tool_resources_null(http):
    r = http.post("/threads", json={"tool_resources": {"code_interpreter": None}})
    expect_rejected_or_valid_echo(r, "tool_resources", component("ThreadObject") + "/properties/tool_resources",
                                  lambda d: d.get("tool_resources"), "thread tool_resources.code_interpreter null")


def test_assistant_modify_tool_resources_null(http):
    a = _assistant(http)
    r = http.post(f"/assistants/{a['id']}", json={"tool_resources": {"code_interpreter": None}})
    expect_rejected_or_valid_echo(r, "tool_resources", ASSISTANT + "/properties/tool_resources",
                                  lambda d: d.get("tool_resources"), "modify assistant code_interpreter null")


def test_tool_resources_control(http):
    d = _assistant(http, tool_resources={"code_interpreter": {"file_ids": []}})
    assert not schema_errors(d.get("tool_resources"), ASSISTANT + "/properties/tool_resources")


# --------------------------------------------------------------------------- tools


def test_tools_file_search_null(http):
    r = http.post("/assistants", json={"model": MODEL, "tools": [{"type": "file_search", "file_search": None}]})
    expect_rejected_or_valid_echo(r, "tools", ASSISTANT + "/properties/tools", lambda d: d.get("tools"),
                                  "tools[].file_search null",
                                  lambda tools: _no_null(tools, "file_search"))


def _no_null(tools, key):
    for t in tools:
        assert t.get(key, {}) is not None, f"{key} echoed as null: {tools}"


def test_tools_file_search_control(http):
    d = _assistant(http, tools=[{"type": "file_search"}, {"type": "file_search", "file_search": {"max_num_results": 5}}])
    assert not schema_errors(d["tools"], ASSISTANT + "/properties/tools"), d["tools"]


# --------------------------------------------------------------------------- response_format


def test_json_schema_schema_null(http):
    rf = {"type": "json_schema", "json_schema": {"name": "x", "schema": None}}
    r = http.post("/assistants", json={"model": MODEL, "response_format": rf})
    expect_rejected_or_valid_echo(r, "response_format", ASSISTANT + "/properties/response_format",
                                  lambda d: d.get("response_format"), "json_schema.schema null",
                                  lambda echoed: _schema_not_null(echoed))


def _schema_not_null(echoed):
    if isinstance(echoed, dict) and isinstance(echoed.get("json_schema"), dict):
        assert echoed["json_schema"].get("schema", {}) is not None, echoed


def test_json_schema_control(http):
    rf = {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object", "properties": {}}}}
    d = _assistant(http, response_format=rf)
    assert not schema_errors(d["response_format"], ASSISTANT + "/properties/response_format"), d["response_format"]


# --------------------------------------------------------------------------- image_url


def test_image_url_empty(http):
    t = _thread(http)
    content = [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": ""}}]
    r = http.post(f"/threads/{t['id']}/messages", json={"role": "user", "content": content})

    def urls_not_empty(parts):
        for p in parts:
            if p.get("type") == "image_url":
                assert p["image_url"].get("url"), f"image_url.url echoed empty: {parts}"

    expect_rejected_or_valid_echo(r, "content", component("MessageObject") + "/properties/content",
                                  lambda d: d.get("content"), 'image_url.url ""', urls_not_empty)


def test_image_url_control(http):
    t = _thread(http)
    content = [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}}]
    r = http.post(f"/threads/{t['id']}/messages", json={"role": "user", "content": content})
    assert r.status_code == 200, r.text


# --------------------------------------------------------------------------- search filters


def _vector_store(http):
    r = http.post("/vector_stores", json={"name": "hostile"})
    assert r.status_code == 200, r.text
    return r.json()["id"]


@pytest.mark.parametrize("filters", [
    {"type": "eq", "key": "a", "value": {"x": 1}},
    {"type": "and", "filters": [{"type": "eq", "key": "a", "value": "ok"},
                                {"type": "eq", "key": "b", "value": {"x": 1}}]},
    {"type": "in", "key": "a", "value": [{"x": 1}]},
    {"type": "eq", "key": "a", "value": None},
], ids=["object", "nested-object", "array-of-object", "null"])
def test_search_filter_value_invalid(http, filters):
    vs = _vector_store(http)
    r = http.post(f"/vector_stores/{vs}/search", json={"query": "anything", "filters": filters})
    expect_400_param(r, "filters", f"search filter {filters}")


@pytest.mark.parametrize("value", ["ok", 1, 2.5, True, ["a", 1]], ids=["string", "int", "float", "bool", "array"])
def test_search_filter_control(http, value):
    vs = _vector_store(http)
    r = http.post(f"/vector_stores/{vs}/search", json={"query": "anything",
                                                       "filters": {"type": "in" if isinstance(value, list) else "eq",
                                                                   "key": "a", "value": value}})
    assert r.status_code == 200, r.text
