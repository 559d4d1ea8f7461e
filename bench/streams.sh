#!/usr/bin/env bash
# Ten thousand streamed runs open at once on one server, on loopback, SQLite.
#   1. the server binary: $ASSISTANTS_SERVER_BIN, else .build/release/assistants-server; the load
#      generators: $ASSISTANTS_BENCH_BIN, else .build/release/assistants-bench (bench/swift/);
#      both built (swift build -c release, under /tmp/swift-build.lock) when missing unless SKIP_BUILD=1
#   2. `assistants-bench streams-upstream`: an upstream (plain NIO handlers) that answers every chat
#      completion with DELTAS chunks, one every INTERVAL seconds, each stamped with its send time.
#      Over HTTP/2 it sends the frames its replies write in one event-loop tick together, as
#      production HTTP/2 servers do (UPSTREAM_COALESCE=0: each delta in its own TLS record and
#      write).
#      Over HTTP/1.1 each streamed run holds a client and an upstream connection in the server
#      (2 x STREAMS + 300 descriptors); when the open-files hard limit cannot hold that (here it
#      is 20,000 and cannot be raised), or with UPSTREAM_HTTP=2, the upstream speaks HTTPS and
#      HTTP/2 instead (ALPN; AsyncHTTPClient has no cleartext HTTP/2), as hosted upstreams do, and
#      the server multiplexes its calls over a few connections: a throwaway CA and a certificate
#      for 127.0.0.1 are made with the openssl CLI in the temp dir, and the server trusts the CA
#      through ASSISTANTS_UPSTREAM_CA_FILE. Without openssl, HTTP/1.1 with a warning.
#   3. the server, with the hostile-input protections in force: idle timeout, slow-request
#      timeout, ASSISTANTS_MAX_CONNECTIONS (STREAMS + 100), the open-files soft limit raised to
#      the hard one; ASSISTANTS_UPSTREAM_MAX_CONNECTIONS (STREAMS) lets every run stream at once
#   4. `assistants-bench streams-driver`: STREAMS runs (POST /v1/threads/runs, stream true), RATE
#      opened per second, each on its own connection (plain NIO channels on one event loop,
#      their bytes scanned in place for the stamps), read to the end; /health every 100 ms
#      meanwhile (AsyncHTTPClient). The load generators are lean so that the two cores they share
#      with the server go to the server: the asyncio driver first, then an AsyncHTTPClient one,
#      took 85 us per delta and more, and their queueing showed up as the server's latency.
#   5. print: the upstream protocol and its connections by negotiated protocol, streams
#      completed / dropped, server peak RSS, CPU seconds (server, driver, upstream), added
#      latency per delta p50/p99 (overall, of the deltas sent while every stream was open, and
#      of each stream's first delta apart from its later ones: the server makes the run's
#      message at its first text), /health p50/p99, peak descriptors, and delta and /health
#      p99 by 10 s of the bench (opening, all open, endings); the server's CPU per upstream CPU
#      second (the upstream's work is the same in every run, so this divides the machine's speed
#      out); the machine's busy and steal time over the run, and what processes other than these
#      three took, to tell a noisy sitting; by 10 s, the share of the cores the three used and
#      each one's CPU and the time its threads were runnable but waiting for a core
#      (bench/cpu_wait.py: schedstat), to tell the machine's queueing from the server's own work;
#      how many run starts RunAdmission held, and how long (the server's /metrics); the server's
#      CPU by thread (event loops, SQLite's writer, the rest) and SQLite's transactions per
#      group commit; a warning when the hypervisor took over 5% of the cores (steal);
#      targets: none dropped, RSS < 1 GB, /health p99 < 50 ms, added latency per delta p99 < 10 ms
#   6. with SERVER_CPUS and LOADGEN_CPUS (taskset CPU lists, e.g. 0-1 and 2-3), the server runs on
#      the first CPUs only, with an event loop per CPU (NIO_SINGLETON_GROUP_LOOP_COUNT), and the
#      upstream and the driver on the second, as in production, where the clients and the model
#      are on other machines. Unset, all three share every core, and at 10,000 streams on two
#      cores the load generators' CPU and their wake-ups are part of what the server's
#      latency measures.
#
# Env: STREAMS (10000), DELTAS (60), INTERVAL (1.0 s), RATE (250 streams opened per second),
#      UPSTREAM_HTTP (1: HTTP/1.1, 2: HTTP/2 over TLS; default 2 when the descriptors need it),
#      UPSTREAM_COALESCE (1; 0: a flush per delta),
#      MAX_CONNECTIONS (STREAMS + 100), UPSTREAM_MAX_CONNECTIONS (STREAMS),
#      IDLE_TIMEOUT (60), SLOW_REQUEST (10), SKIP_BUILD=1, ASSISTANTS_SERVER_BIN,
#      ASSISTANTS_BENCH_BIN, the server's ASSISTANTS_RUN_ADMISSION_LAG_MS (passed on), SERVER_CPUS and
#      LOADGEN_CPUS (both or neither; disjoint), and bench/lib.sh's.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
trap bench_cleanup EXIT

STREAMS="${STREAMS:-10000}"
DELTAS="${DELTAS:-60}"
INTERVAL="${INTERVAL:-1.0}"
RATE="${RATE:-250}"
MAX_CONNECTIONS="${MAX_CONNECTIONS:-$((STREAMS + 100))}"
UPSTREAM_MAX_CONNECTIONS="${UPSTREAM_MAX_CONNECTIONS:-$STREAMS}"
IDLE_TIMEOUT="${IDLE_TIMEOUT:-60}"
UPSTREAM_COALESCE="${UPSTREAM_COALESCE:-1}"
case "$UPSTREAM_COALESCE" in 0 | 1) ;; *) log "UPSTREAM_COALESCE must be 0 or 1, not '$UPSTREAM_COALESCE'"; exit 1 ;; esac
SLOW_REQUEST="${SLOW_REQUEST:-10}"
SERVER_CPUS="${SERVER_CPUS:-}"
LOADGEN_CPUS="${LOADGEN_CPUS:-}"

# Pinning: LOADGEN runs the upstream and the driver on their CPUs, with a loop per CPU;
# SERVER_ENV gives the server a loop per CPU of its own, and it is pinned once started.
LOADGEN=()
SERVER_ENV=()
PINNING="none: the server, the upstream and the driver share every core"
if [ -n "$SERVER_CPUS$LOADGEN_CPUS" ]; then
    [ -n "$SERVER_CPUS" ] && [ -n "$LOADGEN_CPUS" ] || { log "set both SERVER_CPUS and LOADGEN_CPUS, or neither"; exit 1; }
    command -v taskset >/dev/null 2>&1 || { log "SERVER_CPUS and LOADGEN_CPUS need taskset (util-linux)"; exit 1; }
    # taskset parses each list (and fails on a malformed one or on CPUs the machine lacks); nproc
    # counts the CPUs it allows, so the two lists share none when their union counts both.
    server_cores="$(taskset -c "$SERVER_CPUS" nproc 2>/dev/null)" || { log "SERVER_CPUS: not a list of this machine's CPUs: '$SERVER_CPUS'"; exit 1; }
    loadgen_cores="$(taskset -c "$LOADGEN_CPUS" nproc 2>/dev/null)" || { log "LOADGEN_CPUS: not a list of this machine's CPUs: '$LOADGEN_CPUS'"; exit 1; }
    if [ "$(taskset -c "$SERVER_CPUS,$LOADGEN_CPUS" nproc)" != $((server_cores + loadgen_cores)) ]; then
        log "SERVER_CPUS ($SERVER_CPUS) and LOADGEN_CPUS ($LOADGEN_CPUS) share CPUs"; exit 1
    fi
    LOADGEN=(taskset -c "$LOADGEN_CPUS" env NIO_SINGLETON_GROUP_LOOP_COUNT="$loadgen_cores")
    SERVER_ENV=(NIO_SINGLETON_GROUP_LOOP_COUNT="$server_cores")
    PINNING="the server on CPUs $SERVER_CPUS ($server_cores event loop$([ "$server_cores" = 1 ] || echo s)), the upstream and the driver on CPUs $LOADGEN_CPUS"
fi

ASSISTANTS_SERVER_BIN="${ASSISTANTS_SERVER_BIN:-$ROOT/.build/release/assistants-server}"
ASSISTANTS_BENCH_BIN="${ASSISTANTS_BENCH_BIN:-$ROOT/.build/release/assistants-bench}"
for product in assistants-server assistants-bench; do
    binary="$ASSISTANTS_SERVER_BIN"
    [ "$product" = assistants-bench ] && binary="$ASSISTANTS_BENCH_BIN"
    if [ ! -x "$binary" ] && [ "${SKIP_BUILD:-0}" != 1 ]; then
        log "no $binary: swift build -c release --product $product (under /tmp/swift-build.lock)"
        (cd "$ROOT" && flock /tmp/swift-build.lock swift build -c release --product "$product") >&2
    fi
    [ -x "$binary" ] || { log "no $product binary at $binary"; exit 1; }
done

# Descriptors: each process here raises its soft limit to the hard one. A streamed run holds a
# client connection and, with an HTTP/1.1 upstream, an upstream one: the server needs about
# 2 x STREAMS descriptors then, and STREAMS with HTTP/2 (a few upstream connections in all).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
FD_LIMIT="$(ulimit -n)"
FD_NEED=$((2 * STREAMS + 300))
FD_SHORT=0
if [ "$FD_LIMIT" != unlimited ] && [ "$FD_LIMIT" -lt "$FD_NEED" ]; then FD_SHORT=1; fi
case "${UPSTREAM_HTTP:-}" in
    1) UPSTREAM_TLS=0 ;;
    2) UPSTREAM_TLS=1 ;;
    "") UPSTREAM_TLS="$FD_SHORT" ;;
    *) log "UPSTREAM_HTTP must be 1 (HTTP/1.1) or 2 (HTTP/2 over TLS), not '$UPSTREAM_HTTP'"; exit 1 ;;
esac
if [ "$UPSTREAM_TLS" = 1 ] && ! command -v openssl >/dev/null 2>&1; then
    log "no openssl CLI to make the upstream's certificate: the upstream speaks HTTP/1.1 (install openssl for HTTP/2 over TLS)"
    UPSTREAM_TLS=0
fi
if [ "$UPSTREAM_TLS" = 0 ] && [ "$FD_SHORT" = 1 ]; then
    log "warning: open-files limit $FD_LIMIT (hard) < $FD_NEED that $STREAMS streams need in the server (a client and an upstream connection each); past about $(((FD_LIMIT - 300) / 2)) streams, runs wait for an upstream connection (the server bounds them by its descriptors)"
elif [ "$UPSTREAM_TLS" = 1 ] && [ "$FD_LIMIT" != unlimited ] && [ "$FD_LIMIT" -lt $((STREAMS + 400)) ]; then
    log "warning: open-files limit $FD_LIMIT (hard) < $((STREAMS + 400)) that $STREAMS client connections need in the server"
fi

BENCH_TMP="$(mktemp -d "${TMPDIR:-/tmp}/assistants-bench.XXXXXX")"
UPSTREAM_PORT="$(free_port)"
UPSTREAM_ARGS=(--port "$UPSTREAM_PORT" --deltas "$DELTAS" --interval "$INTERVAL")
[ "$UPSTREAM_COALESCE" = 0 ] && UPSTREAM_ARGS+=(--no-coalesce-flushes)
UPSTREAM_CURL=()
SERVER_TLS_ENV=()
if [ "$UPSTREAM_TLS" = 1 ]; then
    # A throwaway CA (it signs one certificate, then its key is deleted) and the upstream's
    # certificate for 127.0.0.1 (an IP SAN: no host name is involved), EC P-256, valid two days.
    (
        cd "$BENCH_TMP"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
            -subj "/CN=assistants-bench throwaway CA" -keyout ca.key -out upstream-ca.pem \
            -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
        openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
            -subj "/CN=127.0.0.1" -keyout upstream.key -out upstream.csr
        printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' >upstream.ext
        openssl x509 -req -in upstream.csr -CA upstream-ca.pem -CAkey ca.key -set_serial "0x$(openssl rand -hex 8)" \
            -days 2 -extfile upstream.ext -out upstream.pem
        rm -f ca.key upstream.csr upstream.ext
    ) >"$BENCH_TMP/openssl.log" 2>&1 || { log "openssl failed:"; cat "$BENCH_TMP/openssl.log" >&2; KEEP_TMP=1; exit 1; }
    UPSTREAM_PROTOCOL="HTTP/2 over TLS"
    UPSTREAM_BASE="https://127.0.0.1:$UPSTREAM_PORT"
    UPSTREAM_ARGS+=(--tls-cert "$BENCH_TMP/upstream.pem" --tls-key "$BENCH_TMP/upstream.key")
    UPSTREAM_CURL=(--cacert "$BENCH_TMP/upstream-ca.pem")
    SERVER_TLS_ENV=(ASSISTANTS_UPSTREAM_CA_FILE="$BENCH_TMP/upstream-ca.pem")
else
    UPSTREAM_PROTOCOL="HTTP/1.1"
    UPSTREAM_BASE="http://127.0.0.1:$UPSTREAM_PORT"
fi
log "starting upstream ($UPSTREAM_PROTOCOL): assistants-bench streams-upstream ${UPSTREAM_ARGS[*]}"
"${LOADGEN[@]}" "$ASSISTANTS_BENCH_BIN" streams-upstream "${UPSTREAM_ARGS[@]}" >"$BENCH_TMP/upstream.log" 2>&1 &
UPSTREAM_PID=$!
track_pid "$UPSTREAM_PID"
if ! wait_http "$UPSTREAM_BASE/health" "$UPSTREAM_PID" upstream "${UPSTREAM_CURL[@]}"; then
    tail -n 30 "$BENCH_TMP/upstream.log" >&2 || true
    exit 1
fi

start_server ASSISTANTS_UPSTREAM_URL="$UPSTREAM_BASE/v1" ASSISTANTS_UPSTREAM_API_KEY=bench-upstream-key "${SERVER_TLS_ENV[@]}" \
    ASSISTANTS_MAX_CONNECTIONS="$MAX_CONNECTIONS" ASSISTANTS_UPSTREAM_MAX_CONNECTIONS="$UPSTREAM_MAX_CONNECTIONS" \
    ASSISTANTS_IDLE_TIMEOUT_SECONDS="$IDLE_TIMEOUT" ASSISTANTS_SLOW_REQUEST_SECONDS="$SLOW_REQUEST" \
    ASSISTANTS_LOCAL_MODEL=off ASSISTANTS_EMBEDDING_MODEL=none "${SERVER_ENV[@]}"
# Every thread the server has now; those it makes later inherit their maker's CPUs.
if [ -n "$SERVER_CPUS" ]; then taskset -a -p -c "$SERVER_CPUS" "$SERVER_PID" >/dev/null; fi
SERVER_FD_LIMIT="$(awk '/Max open files/ {print $4}' "/proc/$SERVER_PID/limits")"
idle_rss_kb="$(proc_status_kb "$SERVER_PID" VmRSS)"
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"

log "driver: $STREAMS streams, $RATE opened a second, $DELTAS deltas every $INTERVAL s each"
status=0
# The machine's own CPU accounting over the run (the first line of /proc/stat), to tell a noisy
# sitting: what the hypervisor took (steal) and what processes other than these three used.
STAT_BEFORE="$(date +%s.%N) $(head -n 1 /proc/stat)"
DRIVER_START="${STAT_BEFORE%% *}"
timeout 3600 "${LOADGEN[@]}" "$ASSISTANTS_BENCH_BIN" streams-driver \
    --base-url "$BASE_URL" --server-pid "$SERVER_PID" --clk-tck "$(getconf CLK_TCK)" \
    --streams "$STREAMS" --deltas "$DELTAS" --rate "$RATE" \
    --read-timeout "$(awk -v i="$INTERVAL" 'BEGIN {print int(i * 3 + 30)}')" \
    >"$BENCH_TMP/driver.out" 2>"$BENCH_TMP/driver.err" &
TIMEOUT_PID=$!
track_pid "$TIMEOUT_PID"
# Each process's threads' CPU and run-queue wait, every second (bench/cpu_wait.py): the driver
# is `timeout`'s child.
DRIVER_PID=""
for _ in $(seq 1 50); do
    DRIVER_PID="$(pgrep -P "$TIMEOUT_PID" | head -n 1 || true)"
    [ -n "$DRIVER_PID" ] && break
    sleep 0.1
done
"$BENCH_PY" "$ROOT/bench/cpu_wait.py" sample "$BENCH_TMP/cpu_wait.jsonl" server="$SERVER_PID" upstream="$UPSTREAM_PID" \
    ${DRIVER_PID:+driver="$DRIVER_PID"} &
SAMPLER_PID=$!
track_pid "$SAMPLER_PID"
wait "$TIMEOUT_PID" || status=$?
kill "$SAMPLER_PID" 2>/dev/null || true
STAT_AFTER="$(date +%s.%N) $(head -n 1 /proc/stat)"
UPSTREAM_STATS="$(curl -s -m 5 "${UPSTREAM_CURL[@]}" "$UPSTREAM_BASE/stats" || echo '{}')"
# From the server's /metrics: how many run starts RunAdmission held, and how long; how many
# transactions SQLite's writer made durable, in how many group commits, and the COMMITs' time.
METRICS="$(curl -s -m 5 "$BASE_URL/metrics" | grep -E '^assistants_(run_admission_wait_seconds|store_group_commit_size|store_commit_seconds)' || true)"
# The upstream shares the two cores: its CPU (utime + stime, fields 14 and 15) is load the server competes with.
UPSTREAM_CPU="$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($14 + $15) / hz}' "/proc/$UPSTREAM_PID/stat" 2>/dev/null || echo '?')"

UPSTREAM_SHAPE=""
[ "$UPSTREAM_TLS" = 1 ] && UPSTREAM_SHAPE=" ($([ "$UPSTREAM_COALESCE" = 1 ] && echo "a flush per tick" || echo "a flush per delta"))"
printf '\n== bench/streams.sh: %s streams x %s deltas every %s s, %s opened/s, SQLite, upstream %s%s, %s ==\n' \
    "$STREAMS" "$DELTAS" "$INTERVAL" "$RATE" "$UPSTREAM_PROTOCOL" "$UPSTREAM_SHAPE" "$ASSISTANTS_SERVER_BIN"
printf 'load average before: %s; server: open files %s, ASSISTANTS_MAX_CONNECTIONS=%s, ASSISTANTS_UPSTREAM_MAX_CONNECTIONS=%s, idle timeout %s s, slow requests %s s; idle RSS %s MB\n' \
    "$LOAD_BEFORE" "$SERVER_FD_LIMIT" "$MAX_CONNECTIONS" "$UPSTREAM_MAX_CONNECTIONS" "$IDLE_TIMEOUT" "$SLOW_REQUEST" "$(kb_to_mb "$idle_rss_kb")"
printf 'pinning: %s\n' "$PINNING"
printf 'run admission: ASSISTANTS_RUN_ADMISSION_LAG_MS=%s\n' "${ASSISTANTS_RUN_ADMISSION_LAG_MS:-unset (the server default)}"
verdict=0
CPU_WAIT="$("$BENCH_PY" "$ROOT/bench/cpu_wait.py" report "$BENCH_TMP/cpu_wait.jsonl" "$DRIVER_START" 2>&1 || true)"
"$BENCH_PY" - "$BENCH_TMP/driver.out" "$UPSTREAM_STATS" "$UPSTREAM_CPU" "$STAT_BEFORE" "$STAT_AFTER" "$(getconf CLK_TCK)" "$(nproc)" \
    "$CPU_WAIT" "$METRICS" "$ROOT/bench" "$BENCH_TMP/cpu_wait.jsonl" <<'PY' || verdict=$?
import json, sys
sys.path.insert(0, sys.argv[10])
from cpu_wait import cpu_by_thread_name
from driverlib import prometheus_histogram
rows = [json.loads(l[len("RESULT "):]) for l in open(sys.argv[1]) if l.startswith("RESULT ")]
if not rows:
    sys.exit(2)
r = rows[0]
up = json.loads(sys.argv[2] or "{}")
upstream_cpu = float(sys.argv[3]) if sys.argv[3] not in ("?", "") else None  # the upstream's, when /proc had it
print(f"streams: {r['completed']}/{r['streams']} completed, {r['dropped']} dropped; most open at once {r['most_open']} "
      f"(upstream: most {up.get('most_open', '?')} replies streaming at once); opened in {r['opened_in_s']} s, "
      f"all done in {r['wall_s']} s")
if up.get("connections") is not None:
    print("upstream connections accepted, by negotiated protocol (two are this script's /health and /stats probes): "
          + (", ".join(f"{name} {count}" for name, count in sorted(up["connections"].items())) or "none"))
if up.get("failed"):
    print(f"  upstream replies that ended early: {up['failed']}")
if r["dropped_reasons"]:
    print(f"  dropped: {r['dropped_reasons']}")
print(f"server: peak RSS {r['server_rss_peak_mb']} MB, CPU {r['server_cpu_s']} s (utime+stime; "
      f"{r['server_cpu_us_per_delta']} us per delta), peak descriptors {r['server_fds_peak']}, "
      f"peak threads {r['server_threads_peak']}; driver CPU {r['driver_cpu_s']} s, upstream CPU {sys.argv[3]} s")
# The upstream does the same work in every run (the same replies, framed the same way), so the
# server's CPU per upstream CPU second compares servers across sittings whose machine ran faster
# or slower (the same binaries took 10 to 20% more CPU on some days here).
if upstream_cpu:
    print(f"server CPU per upstream CPU second: {r['server_cpu_s'] / upstream_cpu:.2f} (the machine's speed divided out)")
# Where the server's CPU went: its event loops (every connection, stream and run), SQLite's writer
# thread (every write's statements and COMMIT), and the rest (NIO's blocking pool, start-up).
# From bench/cpu_wait.py's last sample of the server (each second's walk of its threads).
by_kind = {"event loops": 0.0, "sqlite-writer": 0.0, "other threads": 0.0}
for name, seconds in cpu_by_thread_name(sys.argv[11], "server").items():
    kind = "sqlite-writer" if name == "sqlite-writer" else "event loops" if name.startswith("NIO-SGLTN-") else "other threads"
    by_kind[kind] += seconds
_, commits, transactions = prometheus_histogram(sys.argv[9], "assistants_store_group_commit_size")
_, _, commit_s = prometheus_histogram(sys.argv[9], "assistants_store_commit_seconds")
store = (f"; SQLite: {int(transactions)} transactions in {commits} group commits ({transactions / commits:.1f} a commit), "
         f"COMMIT {1000 * commit_s / commits:.2f} ms on average" if commits else "")
print("server CPU by thread: " + ", ".join(f"{kind} {seconds:.1f} s" for kind, seconds in by_kind.items()) + store)
# "WALL cpu user nice system idle iowait irq softirq steal ..." (/proc/stat's ticks, all cores).
# Busy time is the cores' wall time less idle and steal: with a tickless kernel the idle time is
# measured exactly, while busy spells shorter than a tick between idle ones are never counted.
before, after = sys.argv[4].split(), sys.argv[5].split()
ticks = [int(a) - int(b) for a, b in zip(after[2:10], before[2:10])]
hz, cores = int(sys.argv[6]), int(sys.argv[7])
wall = float(after[0]) - float(before[0])
idle, steal = (ticks[3] + ticks[4]) / hz, ticks[7] / hz
busy = max(wall * cores - idle - steal, 0)
known = r["server_cpu_s"] + r["driver_cpu_s"] + (upstream_cpu or 0)
print(f"machine during the run ({wall:.1f} s x {cores} cores): busy {busy:.1f} s ({100 * busy / max(wall * cores, 1e-9):.0f}%), "
      f"steal {steal:.1f} s; processes other than these three about {max(busy - known, 0):.1f} s")
# Here the runs that lost over 5% of the cores' time to the hypervisor (21 and 38 s of 200) had
# delta p99 of 97 and 246 ms, against 10 to 55 ms for the same binary in the others.
if steal > 0.05 * wall * cores:
    print(f"  a noisy sitting: the hypervisor took {100 * steal / (wall * cores):.0f}% of the cores; "
          "compare latencies only between runs with little steal")
print(f"added latency per delta ({r['deltas']} deltas): p50 {r['lat_ms_p50']} ms, p90 {r['lat_ms_p90']} ms, "
      f"p99 {r['lat_ms_p99']} ms, max {r['lat_ms_max']} ms")
print(f"  with all {r['streams']} open ({r['lat_plateau_deltas']} deltas sent then): p50 {r['lat_plateau_ms_p50']} ms, "
      f"p99 {r['lat_plateau_ms_p99']} ms")
print(f"  each stream's first delta: p50 {r['first_delta_ms_p50']} ms, "
      f"p99 {r['first_delta_ms_p99']} ms; its later deltas: p50 {r['later_deltas_ms_p50']} ms, p99 {r['later_deltas_ms_p99']} ms")
print(f"first event after the request: p50 {r['first_event_ms_p50']} ms, p99 {r['first_event_ms_p99']} ms")
print(f"/health every 100 ms while streams are open ({r['health_samples']} samples): p50 {r['health_ms_p50']} ms, "
      f"p99 {r['health_ms_p99']} ms, max {r['health_ms_max']} ms; with all open ({r['health_plateau_samples']}): "
      f"p99 {r['health_plateau_ms_p99']} ms; errors {r['health_errors'] or 'none'}")
if r.get("by_10s"):
    print("by 10 s of the bench: " + "; ".join(f"{p['from_s']}-{p['from_s'] + 10} s {p['deltas']} deltas p99 {p['lat_ms_p99']} ms, "
                                             f"/health p99 {p['health_ms_p99']} ms" for p in r["by_10s"]))
if sys.argv[8]:
    print(sys.argv[8])
held, held_count, held_sum = prometheus_histogram(sys.argv[9], "assistants_run_admission_wait_seconds")
if held_count:
    under = ", ".join(f"under {bound} s {held[bound]}" for bound in (0.005, 0.1, 1.0, 5.0) if bound in held)
    print(f"run starts held while their event loop was behind (RunAdmission): {held_count} of {r['streams']}, "
          f"{held_sum:.1f} s in all; {under}")
else:
    print("run starts held while their event loop was behind (RunAdmission): none")
checks = [
    ("no stream dropped", r["dropped"] == 0 and r["completed"] == r["streams"]),
    ("RSS < 1 GB", r["server_rss_peak_mb"] < 1024),
    ("/health p99 < 50 ms", r["health_ms_p99"] < 50),
    ("added latency per delta p99 < 10 ms", r["lat_ms_p99"] < 10),
]
print("targets: " + ", ".join(f"{name} {'ok' if ok else 'MISSED'}" for name, ok in checks))
sys.exit(0 if all(ok for _, ok in checks) else 3)
PY
if [ "$verdict" -eq 2 ]; then
    echo "FAIL: no results (driver exit $status); logs in $BENCH_TMP"
    tail -n 20 "$BENCH_TMP/driver.err" || true
    KEEP_TMP=1
    exit 1
fi
if [ "$verdict" -ne 0 ] || [ "$status" -ne 0 ]; then
    echo "OVER TARGET or dropped streams; logs in $BENCH_TMP (server.log, upstream.log, driver.err)"
    tail -n 5 "$BENCH_TMP/server.log" || true
    KEEP_TMP=1
    exit 3
fi
echo "OK: every target met"
