#!/usr/bin/env bash
# Create or refresh the venv .venv-hostile for the hostile suite (tests/hostile:
# the conformance pins plus schemathesis, jsonschema and PyYAML): the same steps as
# scripts/conformance-venv.sh, with that suite's requirements, so the pinned
# conformance venv is left untouched.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV_DIR="$ROOT/.venv-hostile" REQUIREMENTS="tests/hostile/requirements.txt" \
    exec bash "$ROOT/scripts/conformance-venv.sh" "$@"
