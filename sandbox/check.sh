#!/bin/sh
# End-to-end checks of the code_interpreter sandbox. Run as root.
# Needs the Debian packages bubblewrap, python3-numpy, python3-matplotlib
# (and util-linux for setpriv/prlimit, coreutils for env: always present).
set -e
cd "$(dirname "$0")"
exec /usr/bin/python3 check.py "$@"
