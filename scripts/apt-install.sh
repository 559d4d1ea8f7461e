#!/usr/bin/env bash
# Install Debian packages that are not installed yet (checked with dpkg -s).
# Runs `apt-get update` once, and only when something is missing, so that a
# machine that already has everything pays nothing.
#
#   scripts/apt-install.sh PKG [PKG...]
set -euo pipefail

missing=()
for pkg in "$@"; do
    if dpkg -s "$pkg" 2>/dev/null | grep -q '^Status: install ok installed'; then
        echo "apt: $pkg already installed" >&2
    else
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

echo "apt: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
echo "apt: installed ${missing[*]}" >&2
