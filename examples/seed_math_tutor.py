#!/usr/bin/env python3
"""The seed notebook's flow, against any Assistants API server (this one by default).

An "AI Math Tutor" assistant with the function tool ``add_prime_numbers``; a thread
with a user question; a run with extra instructions; a poll loop that answers
``requires_action`` by adding the primes locally and submitting the sum; then the
thread's messages are printed and the assistant is deleted.

    python examples/seed_math_tutor.py [--base-url http://127.0.0.1:8080/v1]
                                       [--api-key KEY] [--model gpt-4o-mini]

Needs ``pip install openai`` (tests/conformance/requirements.txt pins the version).
"""

import argparse
import json
import os
import sys
import time
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)

import openai  # noqa: E402

# The seed notebook's function definition, exactly as the notebook has it
# (shared/seed/000_76996527503b6253.txt), slip included: "required" names
# "add_prime_numbers", which is not among its properties. OpenAI accepted it, since
# functions without `strict: true` were never checked against their schema, and
# GPT-4 answered add_prime_numbers({"prime_numbers": [...]}). Real code carries slips
# like this one, so this server must accept them too: do not "fix" it here.
sum_of_prime_numbers = {
        "name": "add_prime_numbers",
        "description": "Add a list of 25 integer prime numbers between 2 and 100",
        "parameters": {
            "type": "object",
            "properties": {
                "prime_numbers": {
                    "type": "array",
                    "items": {
                    "type": "integer",
                        "description": "A integer list of 25 random prime numbers betwee 2 and 100"
                         },
                        "description": "List of of 25 prime numbers to be added"
                    }
                },
                "required": ["add_prime_numbers"]
            }
        }

ADD_PRIME_NUMBERS = {"type": "function", "function": sum_of_prime_numbers}


def add_prime_numbers(prime_numbers):
    return sum(int(p) for p in prime_numbers)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-url", default="http://127.0.0.1:8080/v1")
    ap.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY") or "none")
    ap.add_argument("--model", default="gpt-4o-mini")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the run")
    args = ap.parse_args(argv)

    client = openai.OpenAI(base_url=args.base_url, api_key=args.api_key)

    assistant = client.beta.assistants.create(
        name="AI Math Tutor",
        instructions="You are a personal math tutor. Answer questions briefly, in a sentence or less.",
        model=args.model,
        tools=[ADD_PRIME_NUMBERS],
    )
    print(f"assistant: {assistant.id}")
    try:
        thread = client.beta.threads.create()
        print(f"thread: {thread.id}")
        message = client.beta.threads.messages.create(
            thread_id=thread.id,
            role="user",
            content="Generate 25 random prime numbers between 2 and 100 and then add them together.",
        )
        print(f"message: {message.id}")

        run = client.beta.threads.runs.create(
            thread_id=thread.id,
            assistant_id=assistant.id,
            instructions="Please address the user as Jane Doe. The user has a premium account.",
        )
        print(f"run: {run.id} {run.status}")

        deadline = time.monotonic() + args.timeout
        while run.status not in ("completed", "failed", "cancelled", "expired", "incomplete"):
            if time.monotonic() > deadline:
                print(f"run still {run.status} after {args.timeout}s", file=sys.stderr)
                return 1
            if run.status == "requires_action":
                outputs = []
                for call in run.required_action.submit_tool_outputs.tool_calls:
                    if call.function.name == "add_prime_numbers":
                        arguments = json.loads(call.function.arguments)
                        total = add_prime_numbers(arguments["prime_numbers"])
                        print(f"tool call {call.id}: add_prime_numbers({arguments['prime_numbers']}) = {total}")
                        outputs.append({"tool_call_id": call.id, "output": str(total)})
                    else:
                        outputs.append({"tool_call_id": call.id, "output": f"unknown function {call.function.name}"})
                run = client.beta.threads.runs.submit_tool_outputs(
                    thread_id=thread.id, run_id=run.id, tool_outputs=outputs)
                print(f"run: {run.id} {run.status} (tool outputs submitted)")
                continue
            time.sleep(0.2)
            run = client.beta.threads.runs.retrieve(thread_id=thread.id, run_id=run.id)
        print(f"run: {run.id} {run.status}")
        if run.status != "completed":
            print(f"run ended {run.status}: {run.last_error}", file=sys.stderr)

        messages = client.beta.threads.messages.list(thread_id=thread.id, order="asc")
        for m in messages:
            for part in m.content:
                if part.type == "text":
                    print(f"{m.role}: {part.text.value}")
        return 0 if run.status == "completed" else 1
    finally:
        deleted = client.beta.assistants.delete(assistant.id)
        print(f"deleted assistant: {deleted.id} {deleted.deleted}")


if __name__ == "__main__":
    sys.exit(main())
