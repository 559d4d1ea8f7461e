#!/usr/bin/env bash
# The server's JSON encoder (JSONCoding.string), timed in-process: a streamed run stores and
# announces a run, its message and its step about a dozen times, each one encode.
#   1. `assistants-bench encode` from $ASSISTANTS_BENCH_BIN, else .build/release/assistants-bench,
#      built (swift build -c release --product assistants-bench, under /tmp/swift-build.lock)
#      when missing unless SKIP_BUILD=1
#   2. print, per object: its size, and the best and median microseconds per encode over ROUNDS
#      rounds of COUNT encodes
# Env: COUNT (100000), ROUNDS (5), SKIP_BUILD=1, ASSISTANTS_BENCH_BIN.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ASSISTANTS_BENCH_BIN="${ASSISTANTS_BENCH_BIN:-$ROOT/.build/release/assistants-bench}"
if [ ! -x "$ASSISTANTS_BENCH_BIN" ] && [ "${SKIP_BUILD:-0}" != 1 ]; then
    (cd "$ROOT" && flock /tmp/swift-build.lock swift build -c release --product assistants-bench) >&2
fi
[ -x "$ASSISTANTS_BENCH_BIN" ] || { echo "no assistants-bench binary at $ASSISTANTS_BENCH_BIN" >&2; exit 1; }
printf '== bench/encode.sh: JSONCoding.string, %s ==\n' "$ASSISTANTS_BENCH_BIN"
"$ASSISTANTS_BENCH_BIN" encode --count "${COUNT:-100000}" --rounds "${ROUNDS:-5}"
