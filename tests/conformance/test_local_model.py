"""The seed's flow against the real local model (issue 7): SmolLM2 served by llama-server,
started by the server itself. Runs only where scripts/install-local-model.sh has installed it;
elsewhere each test reports itself skipped, by name."""
import json
import os
import time
from pathlib import Path

import pytest

# A real model on two cores: a slow answer is not a hang, so these get more than the default 120 s.
pytestmark = [pytest.mark.runs, pytest.mark.timeout(600)]

CACHE = Path(os.environ.get("ASSISTANTS_MODEL_CACHE") or Path.home() / ".cache" / "assistants-server")
MANIFEST = CACHE / "local-model.json"

needs_local_model = pytest.mark.skipif(
    not MANIFEST.exists(),
    reason=f"test_local_model: no local model installed in {CACHE} (run scripts/install-local-model.sh)")

ADD_PRIMES = {
    "type": "function",
    "function": {
        "name": "add_prime_numbers",
        "description": "Add prime numbers",
        "parameters": {
            "type": "object",
            "properties": {"prime_numbers": {"type": "array", "items": {"type": "integer", "description": "A list of prime numbers"},
                                             "description": "An array of prime numbers"}},
            # The seed notebook's slip, kept: `required` names a property it never declares. The
            # grammar asks only for declared properties, so the small model's calls are still valid.
            "required": ["add_prime_numbers"],
        },
    },
}


@pytest.fixture
def local(server_factory):
    s = server_factory(name="local", upstream_url=None, extra_env={"ASSISTANTS_LOCAL_MODEL": "on"})
    # llama-server starts beside the API; wait until a chat reaches it.
    return s


def _poll(client, thread_id, run_id, timeout=240):
    deadline = time.time() + timeout
    while time.time() < deadline:
        run = client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        if run.status in ("requires_action", "completed", "failed", "incomplete", "expired", "cancelled"):
            return run
        time.sleep(0.25)
    raise AssertionError(f"run {run_id} still {run.status} after {timeout}s")


@needs_local_model
@pytest.mark.parametrize("tool_choice", ["auto", "required"])
def test_seed_flow_with_smollm2(local, tool_choice):
    client = local.client(timeout=300)
    assistant = client.beta.assistants.create(
        model="smollm2", name="AI Math Tutor", tools=[ADD_PRIMES],
        instructions="You are a personal math tutor. Answer questions briefly, in a sentence or less.")
    thread = client.beta.threads.create()
    client.beta.threads.messages.create(
        thread_id=thread.id, role="user",
        content="Generate 25 random prime numbers between 2 and 100 and then add them together.")
    run = client.beta.threads.runs.create(
        thread_id=thread.id, assistant_id=assistant.id,
        instructions="Please address the user as Jane Doe. The user has a premium account.", tool_choice=tool_choice)
    run = _poll(client, thread.id, run.id)
    if run.status == "incomplete":
        # A 135M model may ramble inside its call's JSON until the local route's output cap, on
        # every try: the run then ends incomplete at that limit (not failed), as any capped turn.
        assert run.incomplete_details.reason == "max_completion_tokens", run.incomplete_details
        return
    assert run.status == "requires_action", (run.status, run.last_error)
    # A model may call the tool again after seeing its output, as OpenAI's did; each call is answered.
    for _ in range(3):
        if run.status != "requires_action":
            break
        calls = run.required_action.submit_tool_outputs.tool_calls
        assert calls and all(c.function.name == "add_prime_numbers" for c in calls)
        outputs = []
        for call in calls:
            arguments = json.loads(call.function.arguments)  # valid JSON by construction
            assert isinstance(arguments, dict), arguments
            # The seed's schema requires no declared property, so `{}` is a call the API accepted too.
            numbers = arguments.get("prime_numbers", [])
            assert isinstance(numbers, list) and all(isinstance(n, int) for n in numbers), arguments
            outputs.append({"tool_call_id": call.id, "output": str(sum(numbers))})
        client.beta.threads.runs.submit_tool_outputs(thread_id=thread.id, run_id=run.id, tool_outputs=outputs)
        run = _poll(client, thread.id, run.id)
    if run.status == "requires_action":
        # A 135M model may call the tool after every output (greedy sampling always does): the
        # calls were valid each time; the client ends the loop, and the run ends as asked.
        run = client.beta.threads.runs.cancel(run.id, thread_id=thread.id)
        run = _poll(client, thread.id, run.id)
        assert run.status == "cancelled", run.status
        return
    # a 135M model may ramble until the local route's output cap, which ends the run incomplete
    assert run.status == "completed" or (run.status == "incomplete"
                                         and run.incomplete_details.reason == "max_completion_tokens"), (run.status, run.last_error)
    reply = client.beta.threads.messages.list(thread_id=thread.id).data[0]
    assert reply.role == "assistant" and reply.run_id == run.id
    text = reply.content[0].text.value
    assert text or run.status == "incomplete", reply  # a cut-off reply may have been all markup, removed
    assert "<tool_call>" not in text and "<tool_response>" not in text


@needs_local_model
def test_plain_chat_with_smollm2(local):
    client = local.client(timeout=300)
    assistant = client.beta.assistants.create(model="smollm2", instructions="Answer in one short sentence.")
    run = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": "What colour is the sky?"}]},
        poll_interval_ms=250)
    assert run.status == "completed" or (run.status == "incomplete"
                                         and run.incomplete_details.reason == "max_completion_tokens"), (run.status, run.last_error)
    reply = client.beta.threads.messages.list(thread_id=run.thread_id).data[0]
    assert reply.content[0].text.value.strip()
