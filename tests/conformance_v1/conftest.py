"""Fixtures of the v1-dialect suite: those of tests/conformance (conftest.py there),
loaded under another module name and re-exported, so both suites start the server
the same way (``ASSISTANTS_SERVER_BIN``, a temp SQLite database or
``ASSISTANTS_TEST_DATABASE_URL``, the scripted upstream as ``ASSISTANTS_UPSTREAM_URL``,
one random API-key project per test through ``ASSISTANTS_API_KEYS``).

* ``client``: an ``openai==1.20.0`` client; its beta calls send ``OpenAI-Beta: assistants=v1``.
* ``http``: an ``httpx.Client`` that sends ``OpenAI-Beta: assistants=v2`` (to look at
  the v2 storage behind a v1 object, e.g. an assistant's vector store).
* ``upstream``, ``server``, ``tenant``, ``server_factory``: as in tests/conformance.
"""

from __future__ import annotations

import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[1] / "conformance"
if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))  # upstream.py, helpers.py and reuse.py

import reuse  # noqa: E402

_base = reuse.export(globals())

ServerProcess = _base.ServerProcess
Tenant = _base.Tenant
