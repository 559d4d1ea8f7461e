"""examples/seed_math_tutor.py end to end, with a scripted upstream."""

import json
import subprocess
import sys

import pytest

from conftest import REPO
from helpers import tool_messages
from upstream import PRIMES_25, text, tool_call

pytestmark = pytest.mark.runs

EXAMPLE = REPO / "examples" / "seed_math_tutor.py"


def test_seed_math_tutor(tenant, upstream):
    total = sum(PRIMES_25)  # 1060
    # the run's instructions mention Jane Doe: only this example's requests match
    upstream.enqueue(tool_call("add_prime_numbers", {"prime_numbers": PRIMES_25}, "call_seed01"),
                     text(f"Jane Doe, the sum of those 25 primes is {total}."), match="Jane Doe")
    p = subprocess.run([sys.executable, str(EXAMPLE), "--base-url", tenant.server.api_base,
                        "--api-key", tenant.key, "--model", "gpt-4o-mini", "--timeout", "60"],
                       capture_output=True, text=True, timeout=120)
    out = p.stdout
    assert p.returncode == 0, f"exit {p.returncode}\nstdout:\n{out}\nstderr:\n{p.stderr}"
    assert f"add_prime_numbers({PRIMES_25}) = {total}" in out
    assert "completed" in out
    assert "user: Generate 25 random prime numbers between 2 and 100" in out
    assert f"assistant: Jane Doe, the sum of those 25 primes is {total}." in out
    assert "deleted assistant: asst_" in out and "True" in out

    reqs = upstream.requests_containing("Jane Doe")
    assert len(reqs) == 2, [r.body for r in reqs]
    first = reqs[0].body
    assert first["model"] == "gpt-4o-mini"
    assert [t["function"]["name"] for t in first["tools"]] == ["add_prime_numbers"]
    sys_text = json.dumps([m for m in first["messages"] if m["role"] in ("system", "developer")])
    assert "Please address the user as Jane Doe" in sys_text
    (tm,) = tool_messages(reqs[1].body)
    assert tm["tool_call_id"] == "call_seed01"
    assert tm["content"] == str(total)

    # the assistant is gone
    ids = [a.id for a in tenant.client().beta.assistants.list()]
    assert ids == []


def test_example_help():
    p = subprocess.run([sys.executable, str(EXAMPLE), "--help"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0
    for flag in ("--base-url", "--api-key", "--model"):
        assert flag in p.stdout
