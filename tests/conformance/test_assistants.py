"""Assistants: create / retrieve / modify / delete / list, shapes and validation."""

import time

import openai
import pytest

from helpers import (MODEL, ADD_PRIME_NUMBERS, check_assistant, check_deleted, check_list, expect_error,
                     expect_http_error, fn_tool, raw)


def test_create_minimal_shape_and_defaults(client):
    before = int(time.time())
    a = client.beta.assistants.create(model=MODEL)
    d = check_assistant(a, model=MODEL, name=None, description=None, instructions=None, tools=[])
    assert before - 2 <= d["created_at"] <= int(time.time()) + 2
    # metadata: the spec examples echo {} (nullable)
    assert d["metadata"] in ({}, None)
    # temperature/top_p default to 1 in the spec examples
    assert d.get("temperature") in (1, 1.0), d.get("temperature")
    assert d.get("top_p") in (1, 1.0), d.get("top_p")
    assert "tool_resources" in d


def test_create_full_round_trip(client):
    tools = [ADD_PRIME_NUMBERS, fn_tool("get_weather", "Weather", {"city": {"type": "string"}})]
    a = client.beta.assistants.create(
        model=MODEL, name="AI Math Tutor", description="Helps with maths",
        instructions="You are a personal math tutor.", tools=tools,
        metadata={"team": "math", "tier": "premium"}, temperature=0.3, top_p=0.9,
        response_format="auto")
    d = check_assistant(a, name="AI Math Tutor", description="Helps with maths",
                        instructions="You are a personal math tutor.",
                        metadata={"team": "math", "tier": "premium"})
    assert d["temperature"] == pytest.approx(0.3)
    assert d["top_p"] == pytest.approx(0.9)
    assert len(d["tools"]) == 2
    assert d["tools"][0]["type"] == "function"
    fn = d["tools"][0]["function"]
    assert fn["name"] == "add_prime_numbers"
    assert fn["description"] == "Add prime numbers"
    assert fn["parameters"] == ADD_PRIME_NUMBERS["function"]["parameters"]
    assert d["response_format"] == "auto"

    got = client.beta.assistants.retrieve(a.id)
    assert raw(got) == d


def test_create_with_builtin_tools(client):
    a = client.beta.assistants.create(model=MODEL, tools=[{"type": "code_interpreter"}, {"type": "file_search"}])
    types = [t["type"] for t in raw(a)["tools"]]
    assert types == ["code_interpreter", "file_search"]


def test_response_format_json_object(client):
    a = client.beta.assistants.create(model=MODEL, response_format={"type": "json_object"})
    assert raw(a)["response_format"] == {"type": "json_object"}


def test_modify_replaces_metadata_and_keeps_other_fields(client):
    a = client.beta.assistants.create(model=MODEL, name="before", instructions="keep me",
                                      metadata={"a": "1", "b": "2"})
    m = client.beta.assistants.update(a.id, name="after", metadata={"c": "3"})
    d = check_assistant(m, id=a.id, name="after", instructions="keep me", metadata={"c": "3"}, model=MODEL)
    assert d["created_at"] == a.created_at
    again = client.beta.assistants.retrieve(a.id)
    assert raw(again)["metadata"] == {"c": "3"}
    assert again.name == "after"


def test_modify_model_tools_and_null_fields(client):
    a = client.beta.assistants.create(model=MODEL, tools=[ADD_PRIME_NUMBERS], description="d")
    m = client.beta.assistants.update(a.id, model="gpt-4o", tools=[], description=None)
    d = raw(m)
    assert d["model"] == "gpt-4o"
    assert d["tools"] == []
    assert d["description"] is None


def test_modify_with_empty_body_is_noop(client):
    a = client.beta.assistants.create(model=MODEL, name="same")
    m = client.beta.assistants.update(a.id)
    assert raw(m) == raw(a)


def test_delete(client):
    a = client.beta.assistants.create(model=MODEL)
    check_deleted(client.beta.assistants.delete(a.id), a.id, "assistant.deleted")
    with expect_error(openai.NotFoundError, type="invalid_request_error", message_contains=a.id):
        client.beta.assistants.retrieve(a.id)
    with expect_error(openai.NotFoundError):
        client.beta.assistants.delete(a.id)
    with expect_error(openai.NotFoundError):
        client.beta.assistants.update(a.id, name="x")
    ids = [x.id for x in client.beta.assistants.list(limit=100)]
    assert a.id not in ids


def test_list_shape_and_default_order(client, http):
    made = [client.beta.assistants.create(model=MODEL, name=f"n{i}") for i in range(3)]
    body = check_list(http.get("/assistants").json())
    ids = [x["id"] for x in body["data"]]
    # default order is desc: newest first
    assert ids[:3] == [m.id for m in reversed(made)]
    for x in body["data"]:
        check_assistant(x)


def test_unknown_id_404_message(client):
    with expect_error(openai.NotFoundError, status=404, type="invalid_request_error",
                      message_contains="asst_doesnotexist") as _:
        client.beta.assistants.retrieve("asst_doesnotexist")


def test_ids_are_unique(client):
    ids = {client.beta.assistants.create(model=MODEL).id for _ in range(10)}
    assert len(ids) == 10


# --------------------------------------------------------------------------- validation


def test_missing_model(http):
    expect_http_error(http.post("/assistants", json={"name": "x"}), 400, type="invalid_request_error",
                      param="model")


@pytest.mark.parametrize("field,value", [
    ("model", 5),
    ("name", 12),
    ("instructions", ["a"]),
    ("tools", "code_interpreter"),
    ("metadata", "x"),
    ("temperature", "hot"),
])
def test_wrong_types(http, field, value):
    body = {"model": MODEL, field: value}
    expect_http_error(http.post("/assistants", json=body), 400, type="invalid_request_error", param=field)


def test_name_too_long(client):
    with expect_error(openai.BadRequestError, type="invalid_request_error", param="name"):
        client.beta.assistants.create(model=MODEL, name="x" * 257)
    assert client.beta.assistants.create(model=MODEL, name="x" * 256).name == "x" * 256


@pytest.mark.parametrize("value", [-0.1, 2.01, 5])
def test_temperature_out_of_range(client, value):
    with expect_error(openai.BadRequestError, param="temperature"):
        client.beta.assistants.create(model=MODEL, temperature=value)


@pytest.mark.parametrize("value", [-0.01, 1.5])
def test_top_p_out_of_range(client, value):
    with expect_error(openai.BadRequestError, param="top_p"):
        client.beta.assistants.create(model=MODEL, top_p=value)


def test_temperature_bounds_accepted(client):
    a = client.beta.assistants.create(model=MODEL, temperature=0, top_p=0)
    assert a.temperature == 0 and a.top_p == 0
    b = client.beta.assistants.create(model=MODEL, temperature=2, top_p=1)
    assert b.temperature == 2 and b.top_p == 1


def test_metadata_limits(client):
    ok = {f"k{i}": "v" for i in range(16)}
    assert raw(client.beta.assistants.create(model=MODEL, metadata=ok))["metadata"] == ok
    with expect_error(openai.BadRequestError, param="metadata"):
        client.beta.assistants.create(model=MODEL, metadata={f"k{i}": "v" for i in range(17)})
    with expect_error(openai.BadRequestError, param="metadata"):
        client.beta.assistants.create(model=MODEL, metadata={"k" * 65: "v"})
    with expect_error(openai.BadRequestError, param="metadata"):
        client.beta.assistants.create(model=MODEL, metadata={"k": "v" * 513})
    edge = {"k" * 64: "v" * 512}
    assert raw(client.beta.assistants.create(model=MODEL, metadata=edge))["metadata"] == edge


def test_metadata_non_string_value(http):
    expect_http_error(http.post("/assistants", json={"model": MODEL, "metadata": {"a": 1}}), 400,
                      param="metadata")


def test_unknown_tool_type(http):
    r = http.post("/assistants", json={"model": MODEL, "tools": [{"type": "teleport"}]})
    body = expect_http_error(r, 400, type="invalid_request_error")
    assert body["param"] is not None and body["param"].startswith("tools"), body


def test_modify_validates(client):
    a = client.beta.assistants.create(model=MODEL)
    with expect_error(openai.BadRequestError, param="temperature"):
        client.beta.assistants.update(a.id, temperature=3)
    with expect_error(openai.BadRequestError, param="metadata"):
        client.beta.assistants.update(a.id, metadata={f"k{i}": "v" for i in range(17)})
    assert client.beta.assistants.retrieve(a.id).temperature in (1, 1.0)
