#!/usr/bin/env bash
# File bytes through the two blob stores, on loopback: one SIZE_MB file uploaded, downloaded on
# the same server and (postgres) on a second server with its own data folder.
#   1. the server binary: $ASSISTANTS_SERVER_BIN, else .build/release/assistants-server (built
#      unless SKIP_BUILD=1)
#   2. `file`: one server on SQLite; `postgres`: servers A and B on $DATABASE_URL (required for
#      that part; skipped when unset), each with its own data folder
#   3. print per store: upload MB/s (acknowledged: durable), download MB/s on the node that took
#      it (its local copy) and, for postgres, on the other node (from the rows), the
#      server's peak RSS (streamed both ways: it stays far below the file's size), and that the
#      bytes came back identical
# Env: SIZE_MB (256), DATABASE_URL (postgres://…, a database the bench may write to), and bench/lib.sh's.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
trap bench_cleanup EXIT

SIZE_MB="${SIZE_MB:-256}"
build_release
BENCH_TMP="$(mktemp -d "${TMPDIR:-/tmp}/assistants-bench.XXXXXX")"
head -c "$((SIZE_MB * 1024 * 1024))" /dev/urandom >"$BENCH_TMP/big.bin"
want="$(sha256sum <"$BENCH_TMP/big.bin" | cut -d' ' -f1)"

# serve NAME DATABASE_URL: starts a server with data folder $BENCH_TMP/NAME; sets PID and PORT
# (in this shell, so that bench_cleanup stops it).
serve() {
    local name="$1" url="$2" port pid
    port="$(free_port)"
    mkdir -p "$BENCH_TMP/$name"
    env -u ASSISTANTS_API_KEYS ASSISTANTS_LOG_LEVEL="${BENCH_LOG_LEVEL:-warning}" ASSISTANTS_NODE_ID="bench-$name-$$" \
        "$ASSISTANTS_SERVER_BIN" serve --host 127.0.0.1 --port "$port" --database-url "$url" \
        --data-dir "$BENCH_TMP/$name" >"$BENCH_TMP/$name.log" 2>&1 &
    pid=$!
    track_pid "$pid"
    wait_http "http://127.0.0.1:$port/health" "$pid" "$name" >&2 || { tail -n 20 "$BENCH_TMP/$name.log" >&2; exit 1; }
    PID="$pid"
    PORT="$port"
}

# seconds CMD...: runs CMD, prints its wall time in seconds.
seconds() {
    local start end
    start="$(date +%s.%N)"
    "$@" >/dev/null
    end="$(date +%s.%N)"
    awk -v s="$start" -v e="$end" 'BEGIN {printf "%.2f", e - s}'
}

rate() { awk -v mb="$SIZE_MB" -v s="$1" 'BEGIN {printf "%.0f MB/s (%.2f s)", mb / s, s}'; }

upload() {  # PORT: uploads big.bin, leaves its id in $BENCH_TMP/id
    curl -sS -f -m 600 "http://127.0.0.1:$1/v1/files" -F purpose=assistants -F "file=@$BENCH_TMP/big.bin" \
        | json_field id >"$BENCH_TMP/id"
}

download() {  # PORT: downloads the file to got.bin
    curl -sS -f -m 600 -o "$BENCH_TMP/got.bin" "http://127.0.0.1:$1/v1/files/$(cat "$BENCH_TMP/id")/content"
}

check() {
    [ "$(sha256sum <"$BENCH_TMP/got.bin" | cut -d' ' -f1)" = "$want" ] && echo identical || echo DIFFERENT
}

echo "blob stores, one ${SIZE_MB} MiB file ($(basename "$ASSISTANTS_SERVER_BIN") at $ASSISTANTS_SERVER_BIN)"
serve file "sqlite://$BENCH_TMP/file/assistants.sqlite"
pid="$PID" port="$PORT"
up="$(seconds upload "$port")"
down="$(seconds download "$port")"
echo "file:     upload $(rate "$up"), download $(rate "$down") $(check), peak RSS $(kb_to_mb "$(proc_status_kb "$pid" VmHWM)") MB"

if [ -z "${DATABASE_URL:-}" ]; then
    echo "postgres: skipped (set DATABASE_URL=postgres://…)"
    exit 0
fi
serve a "$DATABASE_URL"
pid_a="$PID" port_a="$PORT"
serve b "$DATABASE_URL"
pid_b="$PID" port_b="$PORT"
up="$(seconds upload "$port_a")"
down="$(seconds download "$port_a")"
same="$(check)"
first="$(seconds download "$port_b")"
other="$(check)"
echo "postgres: upload on A $(rate "$up"), download on A $(rate "$down") $same"
echo "          download on B (from the rows) $(rate "$first") $other"
echo "          peak RSS A $(kb_to_mb "$(proc_status_kb "$pid_a" VmHWM)") MB, B $(kb_to_mb "$(proc_status_kb "$pid_b" VmHWM)") MB"
# The bench's blob leaves the database.
curl -sS -f -m 60 -X DELETE "http://127.0.0.1:$port_a/v1/files/$(cat "$BENCH_TMP/id")" >/dev/null
