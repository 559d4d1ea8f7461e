"""The seed notebook's own code, verbatim, through ``openai==1.6.1``: the SDK of its
era, which sends ``OpenAI-Beta: assistants=v1`` (issue 12, point 6).

The same cells, stand-ins, scripted model turns and checks as
tests/conformance/test_seed_notebook.py (see its docstring and
tests/conformance/seed_support/notebook.py); here the script runs in
``.venv-seed-1.6.1`` (tests/conformance_v1/requirements-1.6.1.txt: openai 1.6.1 and
httpx<0.28, which it needs, plus python-dotenv), built by the test on first use. The
run the notebook prints is a v1 run (``file_ids``, no ``tool_resources``), as in the
notebook's own output. Nothing is skipped.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from seed_support import notebook as nb

pytestmark = [pytest.mark.runs, pytest.mark.slow]

REQUIREMENTS = [Path(__file__).resolve().parent / "requirements-1.6.1.txt",
                nb.SUPPORT_DIR / "requirements-notebook.txt"]


@pytest.fixture(scope="session")
def notebook_python_v1():
    python = nb.ensure_venv("1.6.1", REQUIREMENTS)
    assert nb.sdk_version(python) == "1.6.1"
    return python


@pytest.mark.timeout(660)  # the first run builds .venv-seed-1.6.1 (pip, up to 600s); then ~10s
def test_seed_notebook_verbatim_v1(notebook_python_v1, tenant, upstream, tmp_path):
    nb.script_upstream(upstream)
    api_base = tenant.server.api_base
    run = nb.run_notebook(notebook_python_v1, api_base=api_base, api_key=tenant.key, workdir=tmp_path)
    with tenant.http() as http:
        nb.check_flow(run, upstream, http, api_base=api_base, dialect="v1")
