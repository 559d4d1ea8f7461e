"""The OpenAPI spec (REPO/../shared/spec/assistants-openapi.yaml, or
$ASSISTANTS_SPEC_PATH) and JSON-schema checks against its component schemas."""

from __future__ import annotations

import functools
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def spec_path() -> Path:
    env = os.environ.get("ASSISTANTS_SPEC_PATH")
    if env:
        return Path(env)
    for cand in (REPO.parent / "shared" / "spec" / "assistants-openapi.yaml",
                 REPO / "shared" / "spec" / "assistants-openapi.yaml"):
        if cand.exists():
            return cand
    return REPO.parent / "shared" / "spec" / "assistants-openapi.yaml"


@functools.lru_cache(maxsize=1)
def load_spec() -> dict:
    import yaml
    p = spec_path()
    if not p.exists():
        raise FileNotFoundError(f"spec not found: {p} (set ASSISTANTS_SPEC_PATH)")
    with open(p) as f:
        return yaml.safe_load(f)


@functools.lru_cache(maxsize=None)
def _validator(pointer: str):
    from jsonschema import Draft202012Validator
    doc = load_spec()
    schema = dict(doc)
    schema["$ref"] = "#" + pointer
    return Draft202012Validator(schema)


def schema_errors(instance, pointer: str) -> list:
    """Messages of every violation of the schema at JSON pointer ``pointer``
    (e.g. "/components/schemas/AssistantObject/properties/tools")."""
    v = _validator(pointer)
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message[:300]}"
            for e in v.iter_errors(instance)]


def component(name: str) -> str:
    return f"/components/schemas/{name}"
