"""What the API promises reaches the model (issue 12): non-strict calls passed as written,
tool_choice released after the first call, images, reasoning_effort, token limits per route,
sampling settings, strict schemas, Retry-After."""

import base64
import json
import struct
import time
import zlib

import openai
import pytest

from helpers import expect_error, make_assistant, new_thread_with_marker, poll_kw, raw, text_of
from upstream import error, text, tool_call

pytestmark = pytest.mark.runs

# The seed notebook's schema, slip included: `required` names a property it never declares.
SEED_SLIP = {"type": "function", "function": {
    "name": "add_prime_numbers",
    "description": "Add a list of 25 integer prime numbers between 2 and 100",
    "parameters": {"type": "object",
                   "properties": {"prime_numbers": {"type": "array", "items": {"type": "integer"},
                                                    "description": "The list of prime numbers"}},
                   "required": ["add_prime_numbers"]}}}

WEATHER_STRICT = {"type": "function", "function": {
    "name": "get_weather", "strict": True,
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                   "additionalProperties": False}}}


def png_bytes() -> bytes:
    """A valid 1x1 PNG."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


def test_a_non_strict_call_passes_as_the_model_wrote_it(client, upstream):
    a = make_assistant(client, tools=[SEED_SLIP])
    t, mk = new_thread_with_marker(client, "Add the primes")
    args = '{"prime_numbers": [2, 3, 5, 7]}'
    upstream.enqueue(tool_call("add_prime_numbers", args, call_id="call_slip"), match=mk)
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id, **poll_kw())
    assert run.status == "requires_action", raw(run).get("last_error")
    (call,) = run.required_action.submit_tool_outputs.tool_calls
    assert call.function.arguments == args, "the exact text the model wrote"
    assert len(upstream.requests_containing(mk)) == 1, "not asked again"
    body = upstream.requests_containing(mk)[0].body
    assert body["tools"][0]["function"]["parameters"] == SEED_SLIP["function"]["parameters"], "the schema goes on unchanged"


def test_a_strict_function_is_checked_and_its_strict_flag_sent(client, upstream):
    a = make_assistant(client, tools=[WEATHER_STRICT])
    t, mk = new_thread_with_marker(client, "Weather?")
    bad = tool_call("get_weather", {"town": "Paris"})
    upstream.enqueue(bad, bad, bad, match=mk)
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id, **poll_kw())
    assert run.status == "failed"
    assert "get_weather" in run.last_error.message
    bodies = [r.body for r in upstream.requests_containing(mk)]
    assert len(bodies) == 3
    assert bodies[0]["tools"][0]["function"]["strict"] is True


def test_non_json_arguments_are_asked_for_again(client, upstream):
    a = make_assistant(client, tools=[SEED_SLIP])
    t, mk = new_thread_with_marker(client, "Add")
    upstream.enqueue(tool_call("add_prime_numbers", "prime_numbers=2,3"),
                     tool_call("add_prime_numbers", {"prime_numbers": [2, 3]}), match=mk)
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id, **poll_kw())
    assert run.status == "requires_action"
    assert json.loads(run.required_action.submit_tool_outputs.tool_calls[0].function.arguments) == {"prime_numbers": [2, 3]}
    assert len(upstream.requests_containing(mk)) == 2


@pytest.mark.parametrize("choice", ["required", {"type": "function", "function": {"name": "add_prime_numbers"}}])
def test_a_forcing_tool_choice_is_released_after_the_first_call(client, upstream, choice):
    a = make_assistant(client, tools=[SEED_SLIP])
    t, mk = new_thread_with_marker(client, "Add")
    upstream.enqueue(tool_call("add_prime_numbers", {"prime_numbers": [2]}, call_id="call_one"), match=mk)
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id, tool_choice=choice, **poll_kw())
    assert run.status == "requires_action"
    upstream.enqueue(text("The sum is 2."), match=mk)
    run = client.beta.threads.runs.submit_tool_outputs_and_poll(
        thread_id=t.id, run_id=run.id, tool_outputs=[{"tool_call_id": "call_one", "output": "2"}], **poll_kw())
    assert run.status == "completed"
    assert raw(run)["tool_choice"] == choice, "the run keeps what the client asked for"
    first, second = [r.body for r in upstream.requests_containing(mk)]
    assert first["tool_choice"] == choice
    assert second["tool_choice"] == "auto"


def test_tool_choice_none_holds(client, upstream):
    a = make_assistant(client, tools=[SEED_SLIP])
    t, mk = new_thread_with_marker(client, "Add")
    upstream.enqueue(text("No tools."), match=mk)
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id, tool_choice="none", **poll_kw())
    assert run.status == "completed"
    assert upstream.requests_containing(mk)[0].body["tool_choice"] == "none"


def test_run_settings_reach_the_model(client, upstream):
    a = make_assistant(client, tools=[SEED_SLIP], temperature=0.3, top_p=0.9, reasoning_effort="low",
                       response_format={"type": "json_object"})
    t, mk = new_thread_with_marker(client, "Answer in JSON")
    upstream.enqueue(text('{"ok": true}'), match=mk)
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id, parallel_tool_calls=False,
                                                   max_completion_tokens=300, **poll_kw())
    assert run.status == "completed"
    body = upstream.requests_containing(mk)[0].body
    assert body["temperature"] == pytest.approx(0.3) and body["top_p"] == pytest.approx(0.9)
    assert body["reasoning_effort"] == "low"
    assert body["response_format"] == {"type": "json_object"}
    assert body["parallel_tool_calls"] is False
    assert body["max_tokens"] <= 300 and "max_completion_tokens" not in body
    # the run's own reasoning_effort wins over the assistant's
    t2, mk2 = new_thread_with_marker(client, "Again")
    upstream.enqueue(text("ok"), match=mk2)
    client.beta.threads.runs.create_and_poll(thread_id=t2.id, assistant_id=a.id, reasoning_effort="high", **poll_kw())
    assert upstream.requests_containing(mk2)[0].body["reasoning_effort"] == "high"


def test_reasoning_routes_take_max_completion_tokens_and_no_sampling(server_factory, upstream, tmp_path):
    models = tmp_path / "models.yaml"
    models.write_text(
        "models:\n"
        "  - name: thinker\n    reasoning: true\n"
        "  - name: plain-but-new\n    token_limit_parameter: max_completion_tokens\n"
        "  - name: blind\n    vision: false\n")
    s = server_factory(extra_env={"ASSISTANTS_MODELS_CONFIG": str(models)})
    c = s.client()
    a = c.beta.assistants.create(model="thinker", temperature=0.5, top_p=0.5)
    t, mk = new_thread_with_marker(c)
    upstream.enqueue(text("ok"), match=mk)
    c.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id, max_completion_tokens=500, **poll_kw())
    body = upstream.requests_containing(mk)[0].body
    assert body["max_completion_tokens"] == 500 and "max_tokens" not in body
    assert "temperature" not in body and "top_p" not in body

    b = c.beta.assistants.create(model="plain-but-new", temperature=0.5)
    t2, mk2 = new_thread_with_marker(c)
    upstream.enqueue(text("ok"), match=mk2)
    c.beta.threads.runs.create_and_poll(thread_id=t2.id, assistant_id=b.id, max_completion_tokens=400, **poll_kw())
    body = upstream.requests_containing(mk2)[0].body
    assert body["max_completion_tokens"] == 400 and body["temperature"] == pytest.approx(0.5)

    # a route without vision gets a placeholder, and the run still completes
    f = c.files.create(file=("dot.png", png_bytes()), purpose="vision")
    blind = c.beta.assistants.create(model="blind")
    t3, mk3 = new_thread_with_marker(c, "What is this?")
    c.beta.threads.messages.create(t3.id, role="user", content=[{"type": "image_file", "image_file": {"file_id": f.id}}])
    upstream.enqueue(text("A dot."), match=mk3)
    run = c.beta.threads.runs.create_and_poll(thread_id=t3.id, assistant_id=blind.id, **poll_kw())
    assert run.status == "completed"
    messages = upstream.requests_containing(mk3)[0].body["messages"]
    assert any(m.get("content") == "[image: dot.png]" for m in messages), messages


def test_images_reach_the_model(client, upstream):
    f = client.files.create(file=("dot.png", png_bytes()), purpose="vision")
    a = make_assistant(client)
    t, mk = new_thread_with_marker(client, "Describe")
    client.beta.threads.messages.create(t.id, role="user", content=[
        {"type": "text", "text": "Look:"},
        {"type": "image_file", "image_file": {"file_id": f.id, "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "https://example.invalid/cat.jpg", "detail": "high"}},
    ])
    upstream.enqueue(text("A dot and a cat."), match=mk)
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id, **poll_kw())
    assert run.status == "completed"
    messages = upstream.requests_containing(mk)[0].body["messages"]
    parts = [m["content"] for m in messages if isinstance(m.get("content"), list)]
    assert len(parts) == 1, messages
    (content,) = parts
    assert content[0] == {"type": "text", "text": "Look:"}
    assert content[1]["type"] == "image_url" and content[1]["image_url"]["detail"] == "low"
    assert content[1]["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(png_bytes()).decode()
    assert content[2] == {"type": "image_url", "image_url": {"url": "https://example.invalid/cat.jpg", "detail": "high"}}


def test_image_files_are_checked_at_message_create(client):
    t = client.beta.threads.create()
    text_file = client.files.create(file=("notes.txt", b"not an image"), purpose="assistants")
    with expect_error(openai.BadRequestError, param="content[0].image_file.file_id"):
        client.beta.threads.messages.create(t.id, role="user", content=[
            {"type": "image_file", "image_file": {"file_id": text_file.id}}])
    with expect_error(openai.BadRequestError, param="content[0].image_file.file_id"):
        client.beta.threads.messages.create(t.id, role="user", content=[
            {"type": "image_file", "image_file": {"file_id": "file-doesnotexist"}}])
    with expect_error(openai.BadRequestError, param="content[0].image_file.file_id"):
        client.beta.threads.create(messages=[{"role": "user", "content": [
            {"type": "image_file", "image_file": {"file_id": text_file.id}}]}])


def test_an_image_over_20_mb_is_refused(client):
    big = client.files.create(file=("big.png", png_bytes() + b"\0" * (20 * 1024 * 1024)), purpose="vision")
    t = client.beta.threads.create()
    with expect_error(openai.BadRequestError, param="content[0].image_file.file_id", message_contains="20 MB"):
        client.beta.threads.messages.create(t.id, role="user", content=[
            {"type": "image_file", "image_file": {"file_id": big.id}}])


def test_retry_after_is_honoured(client, upstream):
    a = make_assistant(client)
    t, mk = new_thread_with_marker(client)
    upstream.enqueue(error(429, "slow down", headers={"retry-after": "1"}), text("Fine."), match=mk)
    run = client.beta.threads.runs.create_and_poll(thread_id=t.id, assistant_id=a.id, **poll_kw())
    assert run.status == "completed"
    first, second = upstream.requests_containing(mk)
    assert second.received_at - first.received_at >= 0.95
    (m, *_) = client.beta.threads.messages.list(t.id)
    assert text_of(m) == "Fine."
