"""Shared checks for the conformance tests (shapes from assistants-openapi.yaml and
NOTES.md)."""

from __future__ import annotations

import contextlib
import json
import secrets
import time
from typing import Any, Iterable, Optional

import openai

MODEL = "gpt-4o-mini"

# Required keys of each object, from the spec's `required` lists.
ASSISTANT_KEYS = {"id", "object", "created_at", "name", "description", "model", "instructions", "tools",
                  "metadata"}
THREAD_KEYS = {"id", "object", "created_at", "tool_resources", "metadata"}
MESSAGE_KEYS = {"id", "object", "created_at", "thread_id", "status", "incomplete_details", "completed_at",
                "incomplete_at", "role", "content", "assistant_id", "run_id", "attachments", "metadata"}
FILE_KEYS = {"id", "object", "bytes", "created_at", "filename", "purpose", "status"}
RUN_KEYS = {"id", "object", "created_at", "thread_id", "assistant_id", "status", "required_action", "last_error",
            "expires_at", "started_at", "cancelled_at", "failed_at", "completed_at", "model", "instructions",
            "tools", "metadata", "usage", "incomplete_details", "max_prompt_tokens", "max_completion_tokens",
            "truncation_strategy", "tool_choice", "parallel_tool_calls", "response_format"}
STEP_KEYS = {"id", "object", "created_at", "assistant_id", "thread_id", "run_id", "type", "status",
             "step_details", "last_error", "expired_at", "cancelled_at", "failed_at", "completed_at", "metadata",
             "usage"}
LIST_KEYS = {"object", "data", "first_id", "last_id", "has_more"}
DELETE_KEYS = {"id", "object", "deleted"}

TERMINAL = {"completed", "failed", "cancelled", "expired", "incomplete"}
ACTIVE = {"queued", "in_progress", "requires_action", "cancelling"}

ADD_PRIME_NUMBERS = {
    "type": "function",
    "function": {
        "name": "add_prime_numbers",
        "description": "Add prime numbers",
        "parameters": {
            "type": "object",
            "properties": {
                "prime_numbers": {
                    "type": "array",
                    "items": {"type": "integer", "description": "A list of prime numbers"},
                    "description": "An array of prime numbers",
                }
            },
            "required": ["prime_numbers"],
        },
    },
}


def fn_tool(name: str, description: str = "", properties: Optional[dict] = None) -> dict:
    return {"type": "function", "function": {
        "name": name, "description": description or name,
        "parameters": {"type": "object", "properties": properties or {}}}}


def marker(prefix: str = "m") -> str:
    """A unique token to put in a message, to find the upstream requests of one test."""
    return f"{prefix}-{secrets.token_hex(6)}"


def raw(obj: Any) -> dict:
    """The JSON the server sent for an SDK object (extra keys included)."""
    if isinstance(obj, dict):
        return obj
    return obj.model_dump(mode="json", exclude_unset=False, by_alias=True) if not hasattr(obj, "to_dict") \
        else json.loads(obj.to_json())


def is_ts(v: Any, *, near: Optional[float] = None, slack: float = 300) -> bool:
    """An integer unix-seconds timestamp (not ms), within `slack` of `near` when given."""
    if not isinstance(v, int) or isinstance(v, bool):
        return False
    if not (1_600_000_000 <= v <= 4_000_000_000):
        return False
    if near is not None and abs(v - near) > slack:
        return False
    return True


def check_keys(d: dict, required: Iterable[str], what: str):
    missing = set(required) - set(d)
    assert not missing, f"{what} lacks required keys {sorted(missing)}: {d}"


def check_assistant(a, **expect) -> dict:
    d = raw(a)
    check_keys(d, ASSISTANT_KEYS, "assistant")
    assert d["object"] == "assistant"
    assert d["id"].startswith("asst_"), d["id"]
    assert is_ts(d["created_at"], near=time.time()), d["created_at"]
    assert isinstance(d["tools"], list)
    assert d["metadata"] is None or isinstance(d["metadata"], dict)
    for k, v in expect.items():
        assert d[k] == v, f"assistant.{k}: expected {v!r}, got {d[k]!r}"
    return d


def check_thread(t, **expect) -> dict:
    d = raw(t)
    check_keys(d, THREAD_KEYS, "thread")
    assert d["object"] == "thread"
    assert d["id"].startswith("thread_"), d["id"]
    assert is_ts(d["created_at"], near=time.time())
    for k, v in expect.items():
        assert d[k] == v, f"thread.{k}: expected {v!r}, got {d[k]!r}"
    return d


def check_message(m, **expect) -> dict:
    d = raw(m)
    check_keys(d, MESSAGE_KEYS, "message")
    assert d["object"] == "thread.message"
    assert d["id"].startswith("msg_"), d["id"]
    assert d["thread_id"].startswith("thread_")
    assert is_ts(d["created_at"], near=time.time())
    assert d["role"] in ("user", "assistant")
    assert d["status"] in ("in_progress", "incomplete", "completed")
    assert isinstance(d["content"], list)
    for k, v in expect.items():
        assert d[k] == v, f"message.{k}: expected {v!r}, got {d[k]!r}"
    return d


def check_file(f, **expect) -> dict:
    d = raw(f)
    check_keys(d, FILE_KEYS, "file")
    assert d["object"] == "file"
    assert d["id"].startswith("file-"), d["id"]
    assert is_ts(d["created_at"], near=time.time())
    assert isinstance(d["bytes"], int)
    for k, v in expect.items():
        assert d[k] == v, f"file.{k}: expected {v!r}, got {d[k]!r}"
    return d


def check_run(r, **expect) -> dict:
    d = raw(r)
    check_keys(d, RUN_KEYS, "run")
    assert d["object"] == "thread.run"
    assert d["id"].startswith("run_"), d["id"]
    assert d["thread_id"].startswith("thread_")
    assert d["assistant_id"].startswith("asst_")
    assert is_ts(d["created_at"], near=time.time())
    for k in ("started_at", "cancelled_at", "failed_at", "completed_at"):
        assert d[k] is None or is_ts(d[k], near=time.time()), (k, d[k])
    for k, v in expect.items():
        assert d[k] == v, f"run.{k}: expected {v!r}, got {d[k]!r}"
    return d


def check_step(s, **expect) -> dict:
    d = raw(s)
    check_keys(d, STEP_KEYS, "run step")
    assert d["object"] == "thread.run.step"
    assert d["id"].startswith("step_"), d["id"]
    assert d["type"] in ("message_creation", "tool_calls")
    assert d["step_details"]["type"] == d["type"]
    for k, v in expect.items():
        assert d[k] == v, f"step.{k}: expected {v!r}, got {d[k]!r}"
    return d


def check_list(page, *, object_prefix: Optional[str] = None) -> dict:
    d = raw(page)
    check_keys(d, LIST_KEYS, "list")
    assert d["object"] == "list"
    assert isinstance(d["has_more"], bool)
    if d["data"]:
        assert d["first_id"] == d["data"][0]["id"]
        assert d["last_id"] == d["data"][-1]["id"]
    else:
        assert d["first_id"] is None and d["last_id"] is None, d
        assert d["has_more"] is False
    return d


def check_deleted(resp, obj_id: str, object_name: str):
    d = raw(resp)
    check_keys(d, DELETE_KEYS, "delete response")
    assert d == {"id": obj_id, "object": object_name, "deleted": True} or (
        d["id"] == obj_id and d["object"] == object_name and d["deleted"] is True), d


def check_error_body(body: Any, *, type: Optional[str] = None, param: Any = "<any>", code: Any = "<any>",
                     message_contains: Optional[str] = None) -> dict:
    """The SDK's ``e.body`` is the inner ``error`` object; an httpx body has it under "error"."""
    if isinstance(body, dict) and set(body) == {"error"}:
        body = body["error"]
    assert isinstance(body, dict), body
    for k in ("message", "type", "param", "code"):
        assert k in body, f"error body lacks {k!r}: {body}"
    assert isinstance(body["message"], str) and body["message"], body
    if type is not None:
        assert body["type"] == type, body
    if param != "<any>":
        assert body["param"] == param, f"param: expected {param!r}, got {body['param']!r} ({body})"
    if code != "<any>":
        assert body["code"] == code, f"code: expected {code!r}, got {body['code']!r} ({body})"
    if message_contains is not None:
        assert message_contains in body["message"], body
    return body


@contextlib.contextmanager
def expect_error(exc_type, *, status: Optional[int] = None, type: Optional[str] = None, param: Any = "<any>",
                 code: Any = "<any>", message_contains: Optional[str] = None):
    """``with expect_error(openai.BadRequestError, param="model"): ...``"""
    try:
        yield
    except exc_type as e:
        if status is not None:
            assert e.status_code == status
        check_error_body(e.body, type=type, param=param, code=code, message_contains=message_contains)
        ct = e.response.headers.get("content-type", "")
        assert "json" in ct, f"error content-type {ct!r}"
        return
    raise AssertionError(f"expected {exc_type.__name__}")


def expect_http_error(resp, status: int, **kw) -> dict:
    assert resp.status_code == status, f"expected HTTP {status}, got {resp.status_code}: {resp.text[:500]}"
    assert "json" in resp.headers.get("content-type", ""), resp.headers
    return check_error_body(resp.json(), **kw)


def text_of(message) -> str:
    d = raw(message)
    return "".join(p["text"]["value"] for p in d["content"] if p.get("type") == "text")


# --------------------------------------------------------------------------- runs


def wait_run(client: openai.OpenAI, thread_id: str, run_id: str, statuses: Iterable[str] = tuple(TERMINAL),
             timeout: float = 30.0, interval: float = 0.05):
    """Poll a run until its status is in ``statuses``; fails with the last run on time-out."""
    statuses = set(statuses)
    deadline = time.monotonic() + timeout
    run = None
    while time.monotonic() < deadline:
        run = client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        if run.status in statuses:
            return run
        time.sleep(interval)
    raise AssertionError(f"run {run_id} not in {sorted(statuses)} after {timeout}s: "
                         f"{run.status if run else None} {raw(run) if run else ''}")


def poll_kw() -> dict:
    return {"poll_interval_ms": 50}


def make_assistant(client: openai.OpenAI, **kw):
    kw.setdefault("model", MODEL)
    kw.setdefault("instructions", "You are a conformance test assistant.")
    return client.beta.assistants.create(**kw)


def new_thread_with_marker(client: openai.OpenAI, text: str = "Hello", prefix: str = "run"):
    """A thread with one user message that carries a unique marker; returns (thread, marker)."""
    mk = marker(prefix)
    t = client.beta.threads.create(messages=[{"role": "user", "content": f"{text} [{mk}]"}])
    return t, mk


def collapse(names: Iterable[str]) -> list:
    """Event names with runs of the same delta event collapsed to one."""
    out = []
    for n in names:
        if out and n == out[-1] and n.endswith(".delta"):
            continue
        out.append(n)
    return out


def tool_messages(body: dict) -> list:
    return [m for m in body.get("messages", []) if m.get("role") == "tool"]
