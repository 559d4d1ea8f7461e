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

import importlib.util
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[1] / "conformance"
if str(BASE_DIR) not in sys.path:
    sys.path.insert(0, str(BASE_DIR))  # upstream.py and helpers.py

_MODULE = "conformance_base_conftest"
if _MODULE in sys.modules:
    _base = sys.modules[_MODULE]
else:
    _spec = importlib.util.spec_from_file_location(_MODULE, BASE_DIR / "conftest.py")
    _base = importlib.util.module_from_spec(_spec)
    sys.modules[_MODULE] = _base
    _spec.loader.exec_module(_base)

# Fixtures and hooks (hook markers such as hookwrapper are attributes of the functions).
upstream_session = _base.upstream_session
upstream = _base.upstream
_session_dir = _base._session_dir
server = _base.server
tenant = _base.tenant
client = _base.client
http = _base.http
server_factory = _base.server_factory
keyed_server = _base.keyed_server
pytest_configure = _base.pytest_configure
pytest_runtest_setup = _base.pytest_runtest_setup
pytest_runtest_makereport = _base.pytest_runtest_makereport

ServerProcess = _base.ServerProcess
Tenant = _base.Tenant
