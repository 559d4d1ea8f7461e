#!/usr/bin/env bash
# Create or refresh the venv .venv-conformance-v1 for the v1-dialect conformance suite
# (tests/conformance_v1, openai==1.20.0, which sends assistants=v1): the same steps as
# scripts/conformance-venv.sh, with that suite's requirements.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV_DIR="$ROOT/.venv-conformance-v1" REQUIREMENTS="tests/conformance_v1/requirements.txt" \
    exec bash "$ROOT/scripts/conformance-venv.sh" "$@"
