"""Fixtures of the hostile suite.

Those of tests/conformance (its conftest.py, loaded under another module name and
re-exported, as tests/conformance_v1 does), so every suite starts the server the same
way: ``$ASSISTANTS_SERVER_BIN``, a temp SQLite database (or
``$ASSISTANTS_TEST_DATABASE_URL``), the scripted upstream (tests/conformance/upstream.py)
as ``ASSISTANTS_UPSTREAM_URL``, API keys ON (``ASSISTANTS_API_KEYS``).

* ``upstream``, ``server``, ``tenant``, ``client``, ``http``, ``server_factory``,
  ``keyed_server``: as in tests/conformance.
* ``hostile_server(env=None, nofile_soft=None, **kw)`` -> a started server of its own
  (keys ON, one key; ``server.key``), with extra ``ASSISTANTS_*`` settings; with
  ``nofile_soft`` the process starts with that soft RLIMIT_NOFILE (the hard limit is
  left alone), as on a machine whose default is 1,024.
* ``victim``: a module-wide keyed server for inputs that may crash it; restarted
  before a test when an earlier test killed it. ``victim.key`` is its key.

Helpers: ``rawhttp.py`` (raw sockets), ``spec.py`` (the OpenAPI spec and its schemas).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
BASE_DIR = HERE.parent / "conformance"
for _p in (str(BASE_DIR), str(HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)  # upstream.py, helpers.py and reuse.py; rawhttp.py and spec.py

import reuse  # noqa: E402

_base = reuse.export(globals(), hooks=("pytest_runtest_setup", "pytest_runtest_makereport"))

ServerProcess = _base.ServerProcess
Tenant = _base.Tenant
random_keys = _base.random_keys
SERVER_BIN = _base.SERVER_BIN
REPO = _base.REPO


def pytest_configure(config):
    _base.pytest_configure(config)
    config.addinivalue_line("markers", "connections: connection-limit and time-out tests")


class HostileServer(ServerProcess):
    """A ServerProcess that can start with a lowered soft RLIMIT_NOFILE (through
    ``sh -c 'ulimit -Sn N; exec ...'``: the pid stays the server's)."""

    def __init__(self, *a, nofile_soft=None, **kw):
        super().__init__(*a, **kw)
        self.nofile_soft = nofile_soft

    @property
    def key(self) -> str:
        return self.default_key

    def command(self) -> list:
        cmd = super().command()
        if self.nofile_soft:
            return ["/bin/sh", "-c", f'ulimit -Sn {int(self.nofile_soft)} && exec "$@"', "sh", *cmd]
        return cmd

    def headers(self) -> dict:
        return {"Authorization": f"Bearer {self.key}", "OpenAI-Beta": "assistants=v2"}

    def ensure_running(self):
        if not self.is_running():
            self.start()


@pytest.fixture
def hostile_server(tmp_path, upstream_session):
    made = []

    def make(env=None, nofile_soft=None, name=None, start=True, **kw):
        kw.setdefault("upstream_url", upstream_session.base_url)
        kw.setdefault("api_keys", random_keys(1, prefix="hostile"))
        name = name or f"hostile{len(made) + 1}"
        s = HostileServer(tmp_path / name, name=name, extra_env=dict(env or {}), nofile_soft=nofile_soft, **kw)
        made.append(s)
        if start:
            s.start()
        return s

    yield make
    for s in made:
        s.close()


@pytest.fixture(scope="module")
def _victim_server(tmp_path_factory, upstream_session):
    s = HostileServer(tmp_path_factory.mktemp("victim"), name="victim",
                      api_keys=random_keys(1, prefix="victim"), upstream_url=upstream_session.base_url)
    s.start()
    yield s
    s.close()


@pytest.fixture
def victim(_victim_server) -> HostileServer:
    _victim_server.ensure_running()
    return _victim_server


@pytest.fixture(scope="session")
def spec():
    from spec import load_spec
    return load_spec()
