#!/usr/bin/env bash
# Tool calls of the local open model (SmolLM2-135M-Instruct on llama-server):
# 50 prompts that call for a tool (prime sum, weather in two cities, a forced
# tool choice, a docs search), measured in several modes:
#
#   raw            straight to llama-server with `tools` (the baseline a client gets)
#   raw-prefill    straight to llama-server with tool_choice "required" and an assistant
#                  message prefilled with "<tool_call>\n" (the other way to force a call)
#   raw-schema     straight to llama-server with a response_format json_schema for
#                  {name, arguments} (what the engine's constraining can do), the tools
#                  listed in the system message
#   raw-schema-tools  the same with `tools` sent too (the chat template lists them)
#   constrained    through the Assistants server with ASSISTANTS_TOOL_CONSTRAINT=on (its default
#                  constrains only the local model and routes that ask for it)
#   unconstrained  through the Assistants server with ASSISTANTS_TOOL_CONSTRAINT=off
#
# and prints, for each mode: the share of tool calls whose arguments parse and match
# the function's parameter schema, the share of runs that reached the right tool,
# runs with leaked <tool_call> markup, and the mean run time.
#
# Usage: bench/open-model-tools.sh [options]
#   --modes LIST         comma list (default raw,raw-schema,constrained,unconstrained;
#                        also raw-prefill, raw-schema-tools)
#   -n N                 prompts per mode (default 50)
#   --server-url URL     use this running Assistants server (…/v1) for the mode
#                        "server" instead of starting constrained/unconstrained ones
#   --llama-url URL      use this running llama-server (…/v1) instead of starting one
#   --local-model        start the Assistants server with `serve --local-model`
#                        (it runs llama-server itself) instead of ASSISTANTS_UPSTREAM_URL
#   --cache DIR          the install cache (default $ASSISTANTS_MODEL_CACHE or
#                        ~/.cache/assistants-server; see scripts/install-local-model.sh)
#   -v                   one line per prompt
# Env: SKIP_BUILD=1 to use the existing release binary, LLAMA_THREADS (1), and those
# of bench/lib.sh. Loopback only; every request and run is bounded in time.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/lib.sh"
trap bench_cleanup EXIT

MODES="raw,raw-schema,constrained,unconstrained"
N=50
SERVER_URL=""
LLAMA_URL=""
LOCAL_MODEL=0
CACHE="${ASSISTANTS_MODEL_CACHE:-$HOME/.cache/assistants-server}"
VERBOSE=()
while [ $# -gt 0 ]; do
    case "$1" in
        --modes) MODES="$2"; shift 2 ;;
        -n) N="$2"; shift 2 ;;
        --server-url) SERVER_URL="$2"; shift 2 ;;
        --llama-url) LLAMA_URL="$2"; shift 2 ;;
        --local-model) LOCAL_MODEL=1; shift ;;
        --cache) CACHE="$2"; shift 2 ;;
        -v) VERBOSE=(-v); shift ;;
        -h|--help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) log "unknown argument: $1"; exit 2 ;;
    esac
done
if [ -n "$SERVER_URL" ] && [ "$MODES" = "raw,raw-schema,constrained,unconstrained" ]; then
    MODES="raw,raw-schema,server"
fi

DRIVER="$ROOT/bench/open_model_tools.py"
BENCH_TMP="$(mktemp -d "${TMPDIR:-/tmp}/open-model-tools.XXXXXX")"
RESULTS="$BENCH_TMP/results.jsonl"
: >"$RESULTS"

needs_llama=0
case ",$MODES," in *,raw*) needs_llama=1 ;; esac
if [ "$LOCAL_MODEL" = 0 ]; then
    case ",$MODES," in *,constrained,*|*,unconstrained,*) needs_llama=1 ;; esac
fi

# ------------------------------------------------------------- llama-server
if [ "$needs_llama" = 1 ] && [ -z "$LLAMA_URL" ]; then
    MANIFEST="$CACHE/local-model.json"
    [ -f "$MANIFEST" ] || { log "no $MANIFEST: run scripts/install-local-model.sh first"; exit 1; }
    read -r LLAMA_BIN MODEL_PATH TEMPLATE_PATH < <("$BENCH_PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(d["llama_server"], d["chat_model"]["path"], d["chat_model"]["chat_template_file"])' "$MANIFEST")
    LLAMA_PORT="$(free_port)"
    log "starting llama-server on 127.0.0.1:$LLAMA_PORT ($MODEL_PATH)"
    "$LLAMA_BIN" -m "$MODEL_PATH" --jinja --chat-template-file "$TEMPLATE_PATH" --alias smollm2 \
        -t "${LLAMA_THREADS:-1}" -np 1 -c 4096 --host 127.0.0.1 --port "$LLAMA_PORT" \
        >"$BENCH_TMP/llama-server.log" 2>&1 &
    LLAMA_PID=$!
    track_pid "$LLAMA_PID"
    deadline=$((SECONDS + 120))
    until [ "$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$LLAMA_PORT/health" || true)" = 200 ]; do
        kill -0 "$LLAMA_PID" 2>/dev/null || { tail -20 "$BENCH_TMP/llama-server.log" >&2; exit 1; }
        [ "$SECONDS" -lt "$deadline" ] || { log "llama-server not healthy in 120 s"; exit 1; }
        sleep 0.3
    done
    LLAMA_URL="http://127.0.0.1:$LLAMA_PORT/v1"
fi

drive() {  # drive MODE LABEL BASE_URL
    log "mode $2: $N prompts via $3"
    "$BENCH_PY" "$DRIVER" --mode "$1" --label "$2" --base-url "$3" -n "$N" --json "${VERBOSE[@]}" \
        | tee -a "$RESULTS" | grep '^SUMMARY' >/dev/null || log "mode $2 failed"
}

# ------------------------------------------------------------- the Assistants server
server_mode() {  # server_mode LABEL [ENV=VALUE...]
    local label="$1"; shift
    if [ -z "${ASSISTANTS_SERVER_BIN_READY:-}" ]; then
        build_release
        ASSISTANTS_SERVER_BIN_READY=1
        [ "$LOCAL_MODEL" = 1 ] && SERVER_ARGS="$SERVER_ARGS --local-model"
        if ! grep -q ASSISTANTS_TOOL_CONSTRAINT "$ASSISTANTS_SERVER_BIN" 2>/dev/null; then
            log "note: $ASSISTANTS_SERVER_BIN does not know ASSISTANTS_TOOL_CONSTRAINT:" \
                "the modes constrained and unconstrained run the same server code"
        fi
    fi
    if [ "$LOCAL_MODEL" = 1 ]; then
        SERVER_READY_TIMEOUT="${SERVER_READY_TIMEOUT:-180}"
        start_server ASSISTANTS_MODEL_CACHE="$CACHE" "$@"
    else
        start_server ASSISTANTS_UPSTREAM_URL="$LLAMA_URL" "$@"
    fi
    drive assistants "$label" "$BASE_URL/v1"
    bench_stop_server
}

bench_stop_server() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    SERVER_PID=""
}

IFS=, read -r -a mode_list <<<"$MODES"
for m in "${mode_list[@]}"; do
    case "$m" in
        raw) drive raw raw "$LLAMA_URL" ;;
        raw-schema) drive raw-schema raw-schema "$LLAMA_URL" ;;
        raw-prefill) drive raw-prefill raw-prefill "$LLAMA_URL" ;;
        raw-schema-tools) drive raw-schema-tools raw-schema-tools "$LLAMA_URL" ;;
        server) [ -n "$SERVER_URL" ] || { log "mode server needs --server-url"; exit 2; }
                drive assistants server "$SERVER_URL" ;;
        constrained) server_mode constrained ASSISTANTS_TOOL_CONSTRAINT=on ;;
        unconstrained) server_mode unconstrained ASSISTANTS_TOOL_CONSTRAINT=off ;;
        *) log "unknown mode $m"; exit 2 ;;
    esac
done

printf '\n== bench/open-model-tools.sh: %s prompts per mode, SmolLM2-135M-Instruct, llama-server -t %s ==\n' \
    "$N" "${LLAMA_THREADS:-1}"
"$BENCH_PY" - "$RESULTS" <<'PY'
import json, sys
rows = [json.loads(l[len("SUMMARY "):]) for l in open(sys.argv[1]) if l.startswith("SUMMARY ")]
fmt = "{:<17} {:>5} {:>11} {:>19} {:>15} {:>7} {:>9} {:>13}  {}"
print(fmt.format("mode", "runs", "with calls", "schema-valid calls", "right tool", "leaks", "mean s",
                 "both cities", "right tool by kind"))
for r in rows:
    print(fmt.format(r["mode"], r["runs"], r["runs_with_tool_calls"],
                     f'{r["calls_schema_valid"]}/{r["tool_calls"]} {r["schema_valid_pct"]}%',
                     f'{r["right_tool_runs"]} {r["right_tool_pct"]}%', r["leaked_markup_runs"],
                     r["mean_run_seconds"], r["weather_both_cities"], " ".join(f"{k}={v}" for k, v in r["right_tool_by_kind"].items())))
if rows:
    print(f"(validator: {rows[0]['validator']})")
else:
    print("no results")
PY
if [ -n "${KEEP_RESULTS:-}" ]; then cp "$RESULTS" "$KEEP_RESULTS"; log "per-prompt results in $KEEP_RESULTS"; fi
