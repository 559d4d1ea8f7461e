"""The seed notebook's own code, verbatim, through ``openai==3.57.0`` (issue 12, point 6).

shared/seed/000_76996527503b6253.txt is a notebook exported as markdown: an "AI Math
Tutor" assistant with the function ``add_prime_numbers``, a thread, a run, and a loop
that answers ``requires_action``. Its python cells run here in order, unchanged, as one
script in a subprocess (seed_support/notebook.py), configured as its ``.env`` would
be: OPENAI_API_BASE=<server>/v1, OPENAI_API_KEY=<this test's key>, MODEL. Its helper
modules ``assistant_utils`` and ``function_utils`` are not shipped with it; stand-ins
that do what the notebook uses them for are in seed_support/.

Nothing is skipped: the notebook's pictures are markdown, not cells, and no cell has a
shell or magic line (seed_cells() fails if one ever does). The script runs in
``.venv-seed-3.57.0``: the conformance pins (tests/conformance/requirements.txt) plus
python-dotenv, which the notebook imports; the test builds it on first use.

The scripted upstream answers as GPT-4 did in the notebook: a call
``add_prime_numbers({"prime_numbers": [25 primes]})``, then the final text. The
notebook's schema says ``"required": ["add_prime_numbers"]``, a name that is not among
its properties: a slip OpenAI accepted (functions without ``strict: true`` were never
checked), so the server must pass the call through, and send the definition upstream
as the notebook wrote it.
"""

from __future__ import annotations

import pytest

from seed_support import notebook as nb
from upstream import PRIMES_25

pytestmark = [pytest.mark.runs, pytest.mark.slow]

REQUIREMENTS = [nb.REPO / "tests" / "conformance" / "requirements.txt",
                nb.SUPPORT_DIR / "requirements-notebook.txt"]


@pytest.fixture(scope="session")
def notebook_python():
    python = nb.ensure_venv("3.57.0", REQUIREMENTS)
    assert nb.sdk_version(python) == "3.57.0"
    return python


def test_seed_cells_are_the_notebook():
    """The extraction finds the notebook's ten cells, the schema with its slip, and
    the primes the upstream answers with add up to the notebook's 1060."""
    cells = nb.seed_cells()
    assert len(cells) == 10, [c[:40] for c in cells]
    assert cells[0].lstrip().startswith("import warnings")
    assert "client.beta.assistants.delete(assistant.id)" in cells[-1]
    schema = nb.notebook_schema(cells)
    assert schema["name"] == "add_prime_numbers"
    assert list(schema["parameters"]["properties"]) == ["prime_numbers"]
    assert schema["parameters"]["required"] == ["add_prime_numbers"]
    assert sum(PRIMES_25) == 1060 and len(PRIMES_25) == 25


@pytest.mark.timeout(660)  # the first run builds .venv-seed-3.57.0 (pip, up to 600s); then ~10s
def test_seed_notebook_verbatim(notebook_python, tenant, upstream, tmp_path):
    nb.script_upstream(upstream)
    api_base = tenant.server.api_base
    run = nb.run_notebook(notebook_python, api_base=api_base, api_key=tenant.key, workdir=tmp_path)
    with tenant.http() as http:
        nb.check_flow(run, upstream, http, api_base=api_base, dialect="v2")


def test_example_uses_the_notebook_schema():
    """examples/seed_math_tutor.py carries the notebook's function definition
    unchanged, its ``required`` slip included."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("seed_math_tutor", nb.REPO / "examples" / "seed_math_tutor.py")
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert example.ADD_PRIME_NUMBERS == {"type": "function", "function": nb.notebook_schema(nb.seed_cells())}
