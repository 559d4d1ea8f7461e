#!/usr/bin/env bash
# Record llama-server's answers to the request shapes the engine may send, as
# fixtures for unit tests (bench/recorded/*.json, *.sse). Each .json holds
# {"request": ..., "http_status": N, "response": ...}; each .sse holds the raw
# event stream, with its request in the matching .request.json.
#
# Usage: bench/recorded/record.sh [LLAMA_URL]   (default: start llama-server from
#        the install cache, $ASSISTANTS_MODEL_CACHE or ~/.cache/assistants-server)
# Temperature 0 and a fixed seed, so a rerun with the same build and model gives
# the same answers. Loopback only.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PY=/usr/bin/python3; command -v "$PY" >/dev/null || PY=python3
URL="${1:-}"
LLAMA_PID=""
cleanup() { [ -n "$LLAMA_PID" ] && kill "$LLAMA_PID" 2>/dev/null && wait "$LLAMA_PID" 2>/dev/null; true; }
trap cleanup EXIT

if [ -z "$URL" ]; then
    CACHE="${ASSISTANTS_MODEL_CACHE:-$HOME/.cache/assistants-server}"
    read -r BIN MODEL TEMPLATE < <("$PY" -c '
import json, sys
d = json.load(open(sys.argv[1]))
print(d["llama_server"], d["chat_model"]["path"], d["chat_model"]["chat_template_file"])' "$CACHE/local-model.json")
    PORT="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    "$BIN" -m "$MODEL" --jinja --chat-template-file "$TEMPLATE" --alias smollm2 -t 1 -np 1 -c 4096 \
        --host 127.0.0.1 --port "$PORT" >"${TMPDIR:-/tmp}/record-llama-server.log" 2>&1 &
    LLAMA_PID=$!
    for _ in $(seq 1 300); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health" || true)" = 200 ] && break
        sleep 0.2
    done
    URL="http://127.0.0.1:$PORT"
fi
URL="${URL%/}"; URL="${URL%/v1}"

TOOL_PRIMES='{"type":"function","function":{"name":"add_prime_numbers","description":"Add up a list of prime numbers and return their sum.","parameters":{"type":"object","properties":{"prime_numbers":{"type":"array","items":{"type":"integer"}}},"required":["prime_numbers"]}}}'
TOOL_WEATHER='{"type":"function","function":{"name":"get_weather","description":"Get the current weather for one city.","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}'
SYS='{"role":"system","content":"You are a helpful assistant. Use the tools when they help."}'
USER_PRIMES='{"role":"user","content":"What is the sum of the prime numbers 2, 3, 5 and 7? Use the add_prime_numbers tool."}'
COMMON='"model":"smollm2","temperature":0,"seed":42,"max_tokens":200'
CALL_SCHEMA='{"type":"object","properties":{"name":{"type":"string","enum":["add_prime_numbers","get_weather"]},"arguments":{"type":"object","properties":{"prime_numbers":{"type":"array","items":{"type":"integer"}}},"required":["prime_numbers"]}},"required":["name","arguments"]}'
CALL_SYS='{"role":"system","content":"You can call these tools: add_prime_numbers(prime_numbers: array of integers) adds prime numbers; get_weather(city: string). Answer only with a JSON object {\"name\": tool name, \"arguments\": {...}}."}'

record() {  # record NAME ENDPOINT JSON-BODY
    local name="$1" ep="$2" body="$3" out status
    if [ -n "${DRY:-}" ]; then printf '%s' "$body" | "$PY" -c 'import json,sys; json.load(sys.stdin)' && echo "ok $name"; return; fi
    out="$(mktemp)"
    status="$(curl -s -m 300 -o "$out" -w '%{http_code}' -H 'Content-Type: application/json' \
        --data "$body" "$URL$ep")"
    "$PY" - "$HERE/$name.json" "$status" "$out" "$body" <<'PYEOF'
import json, sys
path, status, out, body = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
raw = open(out).read()
try:
    resp = json.loads(raw)
except ValueError:
    resp = raw
json.dump({"request": json.loads(body), "http_status": status, "response": resp}, open(path, "w"), indent=2)
t = resp.get("timings", {}) if isinstance(resp, dict) else {}
msg = (resp.get("choices") or [{}])[0].get("message", {}) if isinstance(resp, dict) else {}
summary = msg.get("tool_calls") or msg.get("content") or (resp.get("error") if isinstance(resp, dict) else resp)
print(f"{path.rsplit('/', 1)[1]:<44} HTTP {status}  "
      f"{t.get('predicted_per_second', 0):5.1f} tok/s  {json.dumps(summary)[:150]}")
PYEOF
    rm -f "$out"
}

record_sse() {  # record_sse NAME JSON-BODY
    local name="$1" body="$2" status
    if [ -n "${DRY:-}" ]; then printf '%s' "$body" | "$PY" -c 'import json,sys; json.load(sys.stdin)' && echo "ok $name"; return; fi
    printf '%s\n' "$body" | "$PY" -c 'import json,sys; json.dump(json.load(sys.stdin), open(sys.argv[1],"w"), indent=2)' "$HERE/$name.request.json"
    status="$(curl -s -N -m 300 -o "$HERE/$name.sse" -w '%{http_code}' -H 'Content-Type: application/json' \
        --data "$body" "$URL/v1/chat/completions")"
    printf '%-44s HTTP %s  %s events\n' "$name.sse" "$status" "$(grep -c '^data:' "$HERE/$name.sse" || true)"
}

C=/v1/chat/completions
# (a) plain chat
record chat_plain $C "{$COMMON,\"messages\":[{\"role\":\"user\",\"content\":\"What is the capital of France? Answer in one sentence.\"}]}"
# (b) tools
record tools_auto $C "{$COMMON,\"messages\":[$SYS,$USER_PRIMES],\"tools\":[$TOOL_PRIMES,$TOOL_WEATHER],\"tool_choice\":\"auto\"}"
record tools_required $C "{$COMMON,\"messages\":[$SYS,$USER_PRIMES],\"tools\":[$TOOL_PRIMES,$TOOL_WEATHER],\"tool_choice\":\"required\"}"
record tools_required_prefill $C "{$COMMON,\"messages\":[$SYS,$USER_PRIMES,{\"role\":\"assistant\",\"content\":\"<tool_call>\\n\"}],\"tools\":[$TOOL_PRIMES,$TOOL_WEATHER],\"tool_choice\":\"required\"}"
record tools_required_parallel_false $C "{$COMMON,\"messages\":[$SYS,$USER_PRIMES],\"tools\":[$TOOL_PRIMES,$TOOL_WEATHER],\"tool_choice\":\"required\",\"parallel_tool_calls\":false}"
record tools_required_prefill_parallel_false $C "{$COMMON,\"messages\":[$SYS,$USER_PRIMES,{\"role\":\"assistant\",\"content\":\"<tool_call>\\n\"}],\"tools\":[$TOOL_PRIMES,$TOOL_WEATHER],\"tool_choice\":\"required\",\"parallel_tool_calls\":false}"
record tools_auto_prefill $C "{$COMMON,\"messages\":[$SYS,$USER_PRIMES,{\"role\":\"assistant\",\"content\":\"<tool_call>\\n\"}],\"tools\":[$TOOL_PRIMES,$TOOL_WEATHER],\"tool_choice\":\"auto\"}"
record tools_choice_object $C "{$COMMON,\"messages\":[$SYS,$USER_PRIMES],\"tools\":[$TOOL_PRIMES,$TOOL_WEATHER],\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"add_prime_numbers\"}}}"
record tools_choice_none $C "{$COMMON,\"messages\":[$SYS,$USER_PRIMES],\"tools\":[$TOOL_PRIMES],\"tool_choice\":\"none\"}"
record_sse tools_auto_stream "{$COMMON,\"stream\":true,\"messages\":[$SYS,$USER_PRIMES],\"tools\":[$TOOL_PRIMES,$TOOL_WEATHER],\"tool_choice\":\"auto\"}"
record_sse tools_required_stream "{$COMMON,\"stream\":true,\"messages\":[$SYS,$USER_PRIMES],\"tools\":[$TOOL_PRIMES,$TOOL_WEATHER],\"tool_choice\":\"required\"}"
record_sse tools_required_prefill_stream "{$COMMON,\"stream\":true,\"messages\":[$SYS,$USER_PRIMES,{\"role\":\"assistant\",\"content\":\"<tool_call>\\n\"}],\"tools\":[$TOOL_PRIMES,$TOOL_WEATHER],\"tool_choice\":\"required\"}"
# the seed's flow, second leg: the tool output goes back, the model answers
record tools_result_reply $C "{$COMMON,\"messages\":[$SYS,$USER_PRIMES,{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"add_prime_numbers\",\"arguments\":\"{\\\"prime_numbers\\\":[2,3,5,7]}\"}}]},{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"17\"}],\"tools\":[$TOOL_PRIMES]}"
# (c) constraining the output to a {name, arguments} object
record response_format_json_schema $C "{$COMMON,\"messages\":[$CALL_SYS,$USER_PRIMES],\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"tool_call\",\"schema\":$CALL_SCHEMA,\"strict\":true}}}"
record_sse response_format_json_schema_stream "{$COMMON,\"stream\":true,\"messages\":[$CALL_SYS,$USER_PRIMES],\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"tool_call\",\"schema\":$CALL_SCHEMA,\"strict\":true}}}"
record response_format_json_object_schema $C "{$COMMON,\"messages\":[$CALL_SYS,$USER_PRIMES],\"response_format\":{\"type\":\"json_object\",\"schema\":$CALL_SCHEMA}}"
record json_schema_toplevel $C "{$COMMON,\"messages\":[$CALL_SYS,$USER_PRIMES],\"json_schema\":$CALL_SCHEMA}"
GRAMMAR='root ::= \"{\\\"name\\\": \\\"add_prime_numbers\\\", \\\"arguments\\\": {\\\"prime_numbers\\\": [\" num (\", \" num)* \"]}}\"\nnum ::= [0-9]+'
record grammar_toplevel $C "{$COMMON,\"messages\":[$CALL_SYS,$USER_PRIMES],\"grammar\":\"$GRAMMAR\"}"
record response_format_with_tools $C "{$COMMON,\"messages\":[$CALL_SYS,$USER_PRIMES],\"tools\":[$TOOL_PRIMES],\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"tool_call\",\"schema\":$CALL_SCHEMA,\"strict\":true}}}"
[ -n "${DRY:-}" ] && exit 0
# the model list (what names the server answers to)
curl -s "$URL/v1/models" | "$PY" -c 'import json,sys; json.dump({"request": "GET /v1/models", "http_status": 200, "response": json.load(sys.stdin)}, open(sys.argv[1],"w"), indent=2)' "$HERE/models.json"
echo "models.json"
