#!/usr/bin/env python3
"""Tool calls of a small open model: 50 prompts that call for a tool.

Modes (--mode):
  assistants  through the Assistants API of a running server (--base-url, e.g.
              http://127.0.0.1:8080/v1): one assistant with four function tools;
              for each prompt POST /threads/runs, poll the run until
              requires_action / completed / failed / ... (bounded), read the
              tool calls of requires_action, then cancel the run.
  raw         straight to llama-server's /v1/chat/completions (--base-url
              http://127.0.0.1:P/v1) with `tools` and `tool_choice` as a client
              would send them (the object form of tool_choice, which llama-server
              rejects, is sent as "required" with only the named tool offered).
  raw-prefill as raw, but with tool_choice "required" and the request ending
              with an assistant message prefilled with "<tool_call>\n".
  raw-schema  straight to llama-server with no `tools`, but a
              response_format json_schema for {"name": <enum of tool names>,
              "arguments": <that function's parameters>} (an anyOf over the
              tools): the constraining an engine can do itself. The tools are
              listed in the system message in the bench's own words.
  raw-schema-tools  as raw-schema, but the tools are sent as `tools` too, so the
              chat template lists them (<tools>...</tools>); response_format wins.

For each prompt it records: whether tool calls came out (requires_action in
the assistants mode), whether each call's arguments parse as JSON and validate
against the function's parameter schema, whether the expected tool was
called, whether raw tool-call markup (<tool_call>) leaked into text, and the
wall time. Prints one summary line per mode (and RESULT/SUMMARY JSON lines
with --json). Loopback only; each request and each run is bounded in time.
Standard library only (uses `jsonschema` if importable, else a small
validator that covers the schemas used here).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import urllib.error
import urllib.request

TERMINAL = {"requires_action", "completed", "failed", "cancelled", "expired", "incomplete"}

# ----------------------------------------------------------------- the tools
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "add_prime_numbers",
            "description": "Add up a list of prime numbers and return their sum.",
            "parameters": {
                "type": "object",
                "properties": {
                    "prime_numbers": {"type": "array", "items": {"type": "integer"}},
                },
                "required": ["prime_numbers"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather for one city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "The city name"}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "search_docs",
            "description": "Search the product documentation and return matching passages.",
            "parameters": {
                "type": "object",
                "properties": {"query": {"type": "string", "description": "What to search for"}},
                "required": ["query"],
            },
        },
    },
]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
INSTRUCTIONS = (
    "You are a helpful assistant. Always answer by calling one of the available tools "
    "with arguments that match its parameters."
)


def prompts(n: int, seed: int = 7) -> list[dict]:
    """n cases, deterministic: prime sums, two-city weather, forced tool choice, search."""
    rnd = random.Random(seed)
    primes = [2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47]
    cities = ["Paris", "Tokyo", "Berlin", "Lima", "Cairo", "Oslo", "Madrid", "Toronto",
              "Nairobi", "Seoul", "Sydney", "Dublin", "Lisbon", "Prague", "Denver"]
    topics = ["how to rotate an API key", "the refund policy", "rate limits for uploads",
              "setting up single sign-on", "exporting a project as CSV", "deleting an account",
              "webhook retries", "the file size limit", "two-factor authentication",
              "changing the billing email"]
    cases: list[dict] = []
    kinds = ["prime", "weather", "forced", "search"]
    for i in range(n):
        kind = kinds[i % 4]
        if kind == "prime":
            nums = sorted(rnd.sample(primes, rnd.randint(3, 6)))
            text = (f"What is the sum of the prime numbers {', '.join(map(str, nums[:-1]))} and {nums[-1]}? "
                    "Use the add_prime_numbers tool.")
            cases.append({"kind": kind, "prompt": text, "expected": "add_prime_numbers", "tool_choice": "auto"})
        elif kind == "weather":
            a, b = rnd.sample(cities, 2)
            text = f"What is the weather like in {a} and in {b} right now?"
            cases.append({"kind": kind, "prompt": text, "expected": "get_weather", "tool_choice": "auto",
                          "cities": [a, b]})
        elif kind == "forced":
            name = ["get_weather", "search_docs", "add_prime_numbers"][(i // 4) % 3]
            text = {
                "get_weather": f"I am flying to {rnd.choice(cities)} tomorrow.",
                "search_docs": f"I have a question about {rnd.choice(topics)}.",
                "add_prime_numbers": "I like the numbers 3, 5, 7 and 11.",
            }[name]
            cases.append({"kind": kind, "prompt": text, "expected": name,
                          "tool_choice": {"type": "function", "function": {"name": name}}})
        else:
            text = f"Search the documentation for {rnd.choice(topics)}."
            cases.append({"kind": kind, "prompt": text, "expected": "search_docs", "tool_choice": "auto"})
    return cases


# ----------------------------------------------------------------- validation
def _tiny_validate(value, schema, path="$") -> list[str]:
    errs: list[str] = []
    t = schema.get("type")
    types = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}
    if t == "integer":
        if not (isinstance(value, int) and not isinstance(value, bool)):
            return [f"{path}: not an integer"]
    elif t == "number":
        if not (isinstance(value, (int, float)) and not isinstance(value, bool)):
            return [f"{path}: not a number"]
    elif t in types and not isinstance(value, types[t]):
        return [f"{path}: not a {t}"]
    if "enum" in schema and value not in schema["enum"]:
        errs.append(f"{path}: not in enum")
    if isinstance(value, dict):
        for k in schema.get("required", []):
            if k not in value:
                errs.append(f"{path}: missing {k}")
        props = schema.get("properties", {})
        for k, v in value.items():
            if k in props:
                errs += _tiny_validate(v, props[k], f"{path}.{k}")
            elif schema.get("additionalProperties") is False:
                errs.append(f"{path}: unexpected {k}")
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            errs += _tiny_validate(v, schema["items"], f"{path}[{i}]")
    return errs


try:
    import jsonschema  # type: ignore

    def validate(value, schema) -> list[str]:
        return [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(value)]
    VALIDATOR = "jsonschema " + getattr(jsonschema, "__version__", "")
except Exception:  # noqa: BLE001
    validate = _tiny_validate
    VALIDATOR = "built-in validator (type/properties/required/items/enum)"


def check_call(name: str, arguments) -> dict:
    """name + arguments (a JSON string as in OpenAI tool calls) -> verdict."""
    out = {"name": name, "arguments": arguments, "parses": False, "valid": False, "errors": []}
    if name not in SCHEMAS:
        out["errors"] = [f"unknown tool {name!r}"]
        return out
    try:
        args = json.loads(arguments) if isinstance(arguments, str) else arguments
        out["parses"] = isinstance(args, dict)
    except (TypeError, ValueError) as e:
        out["errors"] = [f"arguments do not parse: {e}"]
        return out
    if not out["parses"]:
        out["errors"] = ["arguments are not a JSON object"]
        return out
    errs = validate(args, SCHEMAS[name])
    out["valid"] = not errs
    out["errors"] = errs
    return out


# ----------------------------------------------------------------- HTTP
class HTTP:
    def __init__(self, base: str, timeout: float, api_key: str):
        self.base = base.rstrip("/")
        self.timeout = timeout
        self.headers = {"Content-Type": "application/json", "OpenAI-Beta": "assistants=v2",
                        "Authorization": f"Bearer {api_key}"}

    def call(self, method: str, path: str, body=None, timeout: float | None = None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=self.headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, {"raw": raw.decode(errors="replace")}
        except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
            return 0, {"error": f"{type(e).__name__}: {e}"}


LEAK_MARKERS = ("<tool_call>", "</tool_call>", "<tool_response>", "<|im_start|>")


def leaked(text: str | None) -> bool:
    return bool(text) and any(m in text for m in LEAK_MARKERS)


# ----------------------------------------------------------------- modes
def run_raw(http: HTTP, case: dict, args, prefill: bool = False) -> dict:
    tools = TOOLS
    choice = case["tool_choice"]
    if isinstance(choice, dict):  # llama-server ignores the object form (falls back to "auto")
        tools = [t for t in TOOLS if t["function"]["name"] == choice["function"]["name"]]
        choice = "required"
    messages = [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": case["prompt"]}]
    if prefill:
        # llama-server's "required" grammar still lets free text come before the first
        # <tool_call>; an assistant message prefilled with the tag makes the call start at once.
        choice = "required"
        messages.append({"role": "assistant", "content": "<tool_call>\n"})
    body = {"model": args.model, "temperature": args.temperature, "max_tokens": args.max_tokens,
            "messages": messages, "tools": tools, "tool_choice": choice}
    t0 = time.monotonic()
    status, resp = http.call("POST", "/chat/completions", body, timeout=args.run_timeout)
    dt = time.monotonic() - t0
    rec = {"status": status, "seconds": dt, "calls": [], "text": None}
    if status != 200:
        rec["error"] = resp
        return rec
    msg = resp["choices"][0]["message"]
    rec["text"] = msg.get("content")
    for tc in msg.get("tool_calls") or []:
        rec["calls"].append(check_call(tc["function"]["name"], tc["function"].get("arguments")))
    rec["finish_reason"] = resp["choices"][0].get("finish_reason")
    rec["completion_tokens"] = (resp.get("usage") or {}).get("completion_tokens")
    return rec


def call_schema(tools: list[dict]) -> dict:
    variants = [{"type": "object",
                 "properties": {"name": {"type": "string", "enum": [t["function"]["name"]]},
                                "arguments": t["function"]["parameters"]},
                 "required": ["name", "arguments"]} for t in tools]
    return variants[0] if len(variants) == 1 else {"anyOf": variants}


def run_raw_schema(http: HTTP, case: dict, args, with_tools: bool = False) -> dict:
    tools = TOOLS
    if isinstance(case["tool_choice"], dict):
        tools = [t for t in TOOLS if t["function"]["name"] == case["tool_choice"]["function"]["name"]]
    if with_tools:
        # `tools` as well: the chat template lists them in its own words (<tools>...</tools>);
        # llama-server lets response_format win, so the answer is still the JSON content.
        body = {"model": args.model, "temperature": args.temperature, "max_tokens": args.max_tokens,
                "messages": [{"role": "system", "content": INSTRUCTIONS},
                             {"role": "user", "content": case["prompt"]}],
                "tools": tools,
                "response_format": {"type": "json_schema",
                                    "json_schema": {"name": "tool_call", "strict": True,
                                                    "schema": call_schema(tools)}}}
        return _schema_answer(http, body, args)
    listing = "\n".join(f"- {t['function']['name']}: {t['function']['description']} "
                        f"Parameters: {json.dumps(t['function']['parameters'])}" for t in tools)
    system = (INSTRUCTIONS + "\nAvailable tools:\n" + listing +
              '\nAnswer only with a JSON object {"name": <tool name>, "arguments": {...}}.')
    body = {"model": args.model, "temperature": args.temperature, "max_tokens": args.max_tokens,
            "messages": [{"role": "system", "content": system},
                         {"role": "user", "content": case["prompt"]}],
            "response_format": {"type": "json_schema",
                                "json_schema": {"name": "tool_call", "strict": True,
                                                "schema": call_schema(tools)}}}
    return _schema_answer(http, body, args)


def _schema_answer(http: HTTP, body: dict, args) -> dict:
    t0 = time.monotonic()
    status, resp = http.call("POST", "/chat/completions", body, timeout=args.run_timeout)
    dt = time.monotonic() - t0
    rec = {"status": status, "seconds": dt, "calls": [], "text": None}
    if status != 200:
        rec["error"] = resp
        return rec
    msg = resp["choices"][0]["message"]
    rec["text"] = msg.get("content")
    rec["finish_reason"] = resp["choices"][0].get("finish_reason")
    rec["completion_tokens"] = (resp.get("usage") or {}).get("completion_tokens")
    try:
        obj = json.loads(rec["text"] or "")
        rec["calls"].append(check_call(str(obj.get("name")), json.dumps(obj.get("arguments"))
                                       if "arguments" in obj else None))
    except (ValueError, AttributeError) as e:
        rec["calls"].append({"name": None, "arguments": rec["text"], "parses": False, "valid": False,
                             "errors": [f"content is not a JSON object: {e}"]})
    rec["text"] = None  # the content is the call, not a message
    return rec


class AssistantsMode:
    def __init__(self, http: HTTP, args):
        self.http = http
        self.args = args
        st, a = http.call("POST", "/assistants", {"model": args.model, "name": "open-model-tools bench",
                                                   "instructions": INSTRUCTIONS, "tools": TOOLS,
                                                   "temperature": args.temperature})
        if st != 200:
            sys.exit(f"creating the assistant failed: HTTP {st} {a}")
        self.assistant_id = a["id"]

    def run(self, case: dict, args) -> dict:
        t0 = time.monotonic()
        body = {"assistant_id": self.assistant_id, "tool_choice": case["tool_choice"],
                "thread": {"messages": [{"role": "user", "content": case["prompt"]}]}}
        if args.max_tokens:
            body["max_completion_tokens"] = args.max_tokens
        st, run = self.http.call("POST", "/threads/runs", body)
        rec = {"status": st, "calls": [], "text": None}
        if st != 200 or not isinstance(run, dict) or "id" not in run:
            rec["error"] = run
            rec["seconds"] = time.monotonic() - t0
            return rec
        deadline = t0 + args.run_timeout
        path = f"/threads/{run['thread_id']}/runs/{run['id']}"
        while run.get("status") not in TERMINAL and time.monotonic() < deadline:
            time.sleep(args.poll_interval)
            st, got = self.http.call("GET", path)
            if st == 200:
                run = got
        rec["seconds"] = time.monotonic() - t0
        rec["run_status"] = run.get("status")
        rec["last_error"] = run.get("last_error")
        if run.get("status") == "requires_action":
            for tc in run["required_action"]["submit_tool_outputs"]["tool_calls"]:
                rec["calls"].append(check_call(tc["function"]["name"], tc["function"].get("arguments")))
            self.http.call("POST", path + "/cancel", {})
        elif run.get("status") not in TERMINAL:
            rec["run_status"] = "timeout"
            self.http.call("POST", path + "/cancel", {})
        # the assistant's message text, to check that no tool-call markup leaked
        st, msgs = self.http.call("GET", f"/threads/{run['thread_id']}/messages?order=asc")
        if st == 200:
            texts = [c.get("text", {}).get("value", "") for m in msgs.get("data", [])
                     if m.get("role") == "assistant" for c in m.get("content", []) if c.get("type") == "text"]
            rec["text"] = "\n".join(texts) or None
        return rec


# ----------------------------------------------------------------- main
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["assistants", "raw", "raw-prefill", "raw-schema", "raw-schema-tools"], required=True)
    ap.add_argument("--base-url", required=True, help="…/v1 of the Assistants server or of llama-server")
    ap.add_argument("--label", default=None, help="name of this mode in the summary")
    ap.add_argument("-n", type=int, default=50)
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--temperature", type=float, default=0.0)
    ap.add_argument("--max-tokens", type=int, default=256)
    ap.add_argument("--run-timeout", type=float, default=180.0)
    ap.add_argument("--poll-interval", type=float, default=0.1)
    ap.add_argument("--api-key", default="bench")
    ap.add_argument("--json", action="store_true", help="print RESULT and SUMMARY JSON lines")
    ap.add_argument("--verbose", "-v", action="store_true")
    args = ap.parse_args()
    label = args.label or args.mode

    http = HTTP(args.base_url, timeout=30.0, api_key=args.api_key)
    raw = {"raw": run_raw, "raw-schema": run_raw_schema,
           "raw-prefill": lambda h, c, a: run_raw(h, c, a, prefill=True),
           "raw-schema-tools": lambda h, c, a: run_raw_schema(h, c, a, with_tools=True)}.get(args.mode)
    runner = (lambda case, a: raw(http, case, a)) if raw else None
    if args.mode == "assistants":
        runner = AssistantsMode(http, args).run

    cases = prompts(args.n)
    n_calls = n_parse = n_valid = n_right = n_reached = n_leak = n_both = 0
    total_time = 0.0
    by_kind: dict[str, list[int]] = {}
    for i, case in enumerate(cases):
        rec = runner(case, args)
        calls = rec["calls"]
        reached = bool(calls)
        right = reached and all(c["name"] == case["expected"] for c in calls)
        n_reached += reached
        n_right += right
        n_calls += len(calls)
        n_parse += sum(c["parses"] for c in calls)
        n_valid += sum(c["valid"] for c in calls)
        n_leak += leaked(rec.get("text"))
        total_time += rec["seconds"]
        k = by_kind.setdefault(case["kind"], [0, 0])
        k[0] += 1
        k[1] += right
        if "cities" in case:  # did the calls ask for both cities?
            asked = " ".join(str(c.get("arguments")) for c in calls).lower()
            rec["both_cities"] = all(c.lower() in asked for c in case["cities"])
            n_both += rec["both_cities"]
        rec.update({"i": i, "kind": case["kind"], "prompt": case["prompt"], "expected": case["expected"],
                    "reached": reached, "right_tool": right, "leaked_markup": leaked(rec.get("text"))})
        if args.json:
            print("RESULT " + json.dumps({"mode": label, **rec}), flush=True)
        if args.verbose:
            names = ",".join(f"{c['name']}{'' if c['valid'] else '(INVALID)'}" for c in calls) or "-"
            print(f"  [{label} {i + 1:2d}/{len(cases)}] {case['kind']:<7} {rec.get('run_status', rec['status'])!s:<15} "
                  f"{rec['seconds']:5.1f}s calls={names}"
                  + (f" text={rec['text'][:60]!r}" if rec.get("text") else ""), file=sys.stderr, flush=True)

    pct = lambda a, b: (100.0 * a / b) if b else 0.0  # noqa: E731
    summary = {
        "mode": label, "runs": len(cases), "validator": VALIDATOR,
        "runs_with_tool_calls": n_reached, "tool_calls": n_calls,
        "calls_parse": n_parse, "calls_schema_valid": n_valid,
        "schema_valid_pct": round(pct(n_valid, n_calls), 1),
        "right_tool_runs": n_right, "right_tool_pct": round(pct(n_right, len(cases)), 1),
        "leaked_markup_runs": n_leak,
        "weather_both_cities": f"{n_both}/{sum(1 for c in cases if 'cities' in c)}",
        "mean_run_seconds": round(total_time / max(1, len(cases)), 2),
        "right_tool_by_kind": {k: f"{v[1]}/{v[0]}" for k, v in by_kind.items()},
    }
    if args.json:
        print("SUMMARY " + json.dumps(summary), flush=True)
    else:
        print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
