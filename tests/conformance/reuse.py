"""Lets another suite (tests/conformance_v1, tests/hostile) use this suite's fixtures: loads
tests/conformance/conftest.py once under its own module name (so pytest does not see two
conftest modules of one name) and copies its fixtures and hooks into the caller's conftest."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BASE_DIR = Path(__file__).resolve().parent
MODULE = "conformance_base_conftest"
FIXTURES = ("upstream_session", "upstream", "_session_dir", "server", "tenant", "client", "http",
            "server_factory", "keyed_server")
HOOKS = ("pytest_configure", "pytest_runtest_setup", "pytest_runtest_makereport")


def base() -> ModuleType:
    """tests/conformance/conftest.py, loaded once."""
    if MODULE in sys.modules:
        return sys.modules[MODULE]
    spec = importlib.util.spec_from_file_location(MODULE, BASE_DIR / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE] = module
    spec.loader.exec_module(module)
    return module


def export(namespace: dict, *, hooks=HOOKS) -> ModuleType:
    """Copies the fixtures and `hooks` into `namespace` (a conftest's globals()); returns the module.
    Hook markers such as hookwrapper are attributes of the functions, so they come along."""
    module = base()
    for name in FIXTURES + tuple(hooks):
        namespace[name] = getattr(module, name)
    return module
