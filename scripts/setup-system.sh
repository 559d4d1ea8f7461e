#!/usr/bin/env bash
# Install the Debian packages the tests and benchmarks need. Idempotent: what is
# already installed is skipped, and apt-get update runs only if something is
# missing.
#   python3-venv   the conformance suite's venv (Debian's /usr/bin/python3)
#   postgresql     the PostgreSQL store tests (scripts/setup-postgres.sh starts it)
#   bubblewrap     the code-interpreter sandbox (python3-numpy, python3-matplotlib: what sandboxed code can import)
#   poppler-utils  pdftotext, for file search over PDFs
#   wrk            bench/crud.sh
#   curl           bench scripts
#   zlib1g-dev     ZIPFoundation (reading .docx files) links zlib
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

"$ROOT/scripts/apt-install.sh" \
    python3-venv postgresql bubblewrap poppler-utils wrk curl zlib1g-dev python3-numpy python3-matplotlib chromium chromium-driver
