#!/usr/bin/env bash
# Create or refresh the venv .venv-conformance for the conformance suite and the
# benches: `pip install -r tests/conformance/requirements.txt`, skipped when the
# file's sha256 equals the one stored in the venv after the last install.
# Makes sure pytest is importable. Progress goes to stderr; the venv's python
# path is printed on stdout.
#
# Env: PYTHON  interpreter for the venv (default: Debian's /usr/bin/python3;
#              python3 on PATH may be a pyenv shim).
#      EXTRA_PIP_PACKAGES  more packages to make sure of (e.g. "httpx").
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

# VENV_DIR and REQUIREMENTS choose another suite's venv (scripts/conformance-v1-venv.sh).
VENV="${VENV_DIR:-$ROOT/.venv-conformance}"
REQUIREMENTS="${REQUIREMENTS:-tests/conformance/requirements.txt}"
log() { echo "    $*" >&2; }
pip_install() { "$VENV/bin/python" -m pip install --disable-pip-version-check -q "$@" >&2; }

if [ ! -f "$REQUIREMENTS" ]; then
    log "$REQUIREMENTS not found"
    exit 1
fi

py="${PYTHON:-}"
if [ -z "$py" ]; then
    if /usr/bin/python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        py=/usr/bin/python3
    else
        py=python3   # Debian's lacks python3-venv: scripts/setup-system.sh installs it
    fi
fi

if ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    log "creating venv $VENV with $py ($("$py" --version 2>&1))"
    rm -rf "$VENV"
    "$py" -m venv "$VENV"
fi

want="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1)"
have="$(cat "$VENV/.requirements.sha256" 2>/dev/null || true)"
if [ "$want" = "$have" ]; then
    log "$REQUIREMENTS unchanged (sha256 ${want:0:12}): skipping pip install"
else
    log "pip install -r $REQUIREMENTS"
    rm -f "$VENV/.requirements.sha256"
    pip_install -r "$REQUIREMENTS"
    if ! "$VENV/bin/python" -c 'import pytest' >/dev/null 2>&1; then
        log "pytest is not in $REQUIREMENTS: installing it"
        pip_install pytest
    fi
    echo "$want" >"$VENV/.requirements.sha256"
fi

for pkg in ${EXTRA_PIP_PACKAGES:-}; do
    if ! "$VENV/bin/python" -c "import $pkg" >/dev/null 2>&1; then
        log "installing $pkg"
        pip_install "$pkg"
    fi
done

echo "$VENV/bin/python"
