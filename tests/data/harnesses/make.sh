#!/usr/bin/env bash
# Real output of three eval harnesses, made offline (the network only for pip and `npm pack`).
#
#   make.sh setup              build the venvs under build/harnesses/ (idempotent, marked .complete)
#   make.sh run HARNESS OUT    run one harness (lm_eval | inspect | nemo_engine) into OUT
#   make.sh                    setup, then regenerate the committed examples in tests/data/harnesses/
#
# lm-eval 0.4.13 runs its `dummy` model on a local JSON task (--include_path); Inspect 0.3.285 runs
# mockllm/model on inline samples (tiktoken's o200k_base rebuilt from npm js-tiktoken, so nothing is
# downloaded); nemo-evaluator 0.3.0 (Python >= 3.12) runs a BYOB benchmark against a stdlib stub
# server on 127.0.0.1.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../../.." && pwd)"
BUILD="${EVALPORT_HARNESS_BUILD:-$ROOT/build/harnesses}"
PY311="${PY311:-python3.11}"
PY312="${PY312:-}"
if [ -z "$PY312" ]; then
  for c in python3.12 "$(pyenv root 2>/dev/null)"/versions/3.12*/bin/python3.12; do
    if "$c" -c 'import sys; assert sys.version_info[:2] == (3, 12)' >/dev/null 2>&1; then PY312=$c; break; fi
  done
fi
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 INSPECT_DISPLAY=plain
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost
export TIKTOKEN_CACHE_DIR="$BUILD/tiktoken-cache" HF_HOME="$BUILD/hf-home"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore

venv() {  # venv NAME PYTHON PACKAGE...
  local dir="$BUILD/venv-$1" py=$2; shift 2
  [ -e "$dir/.complete" ] && return 0
  [ -n "$py" ] || { echo "no Python for $dir" >&2; return 1; }
  rm -rf "$dir"; "$py" -m venv "$dir"
  "$dir/bin/pip" install -q "$@" > "$BUILD/pip-$(basename "$dir").log" 2>&1 ||
    { tail -20 "$BUILD/pip-$(basename "$dir").log" >&2; return 1; }
  touch "$dir/.complete"
}

tiktoken_cache() {
  [ -e "$TIKTOKEN_CACHE_DIR/fb374d419588a4632f3f557e76b4b70aebbca790" ] && return 0
  command -v npm >/dev/null || { echo "npm is missing: cannot rebuild o200k_base offline" >&2; return 1; }
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent js-tiktoken@1.0.21 >/dev/null &&
    tar xzf js-tiktoken-1.0.21.tgz package/dist/ranks/o200k_base.js)
  "$PY311" "$HERE/tools/o200k_from_js.py" "$tmp/package/dist/ranks/o200k_base.js" "$TIKTOKEN_CACHE_DIR"
  rm -rf "$tmp"
}

setup() {
  mkdir -p "$BUILD"
  local rc=0
  venv lmeval "$PY311" lm-eval==0.4.13 || rc=1
  { venv inspect "$PY311" inspect-ai==0.3.285 && tiktoken_cache; } || rc=1
  venv nemo "$PY312" nemo-evaluator==0.3.0 scipy==1.16.3 || rc=1
  return $rc
}

run_lm_eval() {  # OUT
  local out=$1 work; work=$(mktemp -d); mkdir -p "$work/tasks"
  cp "$HERE/src/lm_eval/data.jsonl" "$work/"
  for f in "$HERE/src/lm_eval/tasks/"*.yaml; do sed "s#@DATA@#$work/data.jsonl#" "$f" > "$work/tasks/$(basename "$f")"; done
  local lm="$BUILD/venv-lmeval/bin/lm_eval"
  (cd "$work"
    "$lm" --model dummy --model_args pretrained=acme/dummy-7b --tasks tiny_suite,tâche_ünï \
      --include_path "$work/tasks" --output_path "$work/out" --log_samples --seed 1
  ) > "$work/run.log" 2>&1 || { tail -30 "$work/run.log" >&2; return 1; }
  mkdir -p "$out"; cp -r "$work/out/acme__dummy-7b" "$out/run-suite"
  rm -rf "$work"
}

run_inspect() {  # OUT
  local out=$1 work; work=$(mktemp -d); cp "$HERE/src/inspect/task.py" "$work/"
  local ins="$BUILD/venv-inspect/bin/inspect"
  (cd "$work"
    "$ins" eval task.py@tiny_qa --model mockllm/model --log-dir logs --log-format eval
    "$ins" eval task.py@tiny_qa --model mockllm/model --log-dir logs --log-format json
    "$ins" eval task.py@tâche_ünï --model mockllm/model --log-dir logs --log-format json
    "$ins" eval task.py@tiny_fail --model mockllm/model --log-dir logs --log-format json || true
  ) > "$work/run.log" 2>&1 || { tail -30 "$work/run.log" >&2; return 1; }
  mkdir -p "$out"; cp "$work"/logs/*.eval "$work"/logs/*.json "$out/"
  rm -rf "$work"
}

run_nemo_engine() {  # OUT
  local out=$1 work port pid; work=$(mktemp -d); cp "$HERE/src/nemo/"* "$work/"
  local py="$BUILD/venv-nemo/bin/python"
  "$py" "$work/stub_server.py" 0 > "$work/port" 2> "$work/stub.log" & pid=$!
  for _ in $(seq 50); do [ -s "$work/port" ] && break; sleep 0.1; done
  port=$(head -1 "$work/port")
  local rc=0
  (cd "$work"
    "$BUILD/venv-nemo/bin/nel" eval run --bench "$work/tiny_bench.py:tiny-qa" \
      --model-url "http://127.0.0.1:$port/v1" --model-id stub-model --api-key dummy -o "$work/results"
    # a benchmark whose dataset is missing: nel exits 1 and checkpoint.json lists it as failed
    "$BUILD/venv-nemo/bin/nel" eval run --bench "$work/tiny_bench.py:tiny-broken" \
      --model-url "http://127.0.0.1:$port/v1" --model-id stub-model --api-key dummy -o "$work/failed" || true
  ) > "$work/run.log" 2>&1 || rc=1
  kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true
  [ $rc = 0 ] || { tail -30 "$work/run.log" >&2; return 1; }
  [ -e "$work/failed/checkpoint.json" ] || { echo "the failing benchmark left no checkpoint.json" >&2; return 1; }
  mkdir -p "$out"; cp -r "$work/results" "$out/run-ok"; cp -r "$work/failed" "$out/run-failed"
  chmod -R u=rwX,go=rX "$out"
  rm -rf "$work"
}

case "${1:-all}" in
  setup) setup ;;
  run) "run_$2" "$3" ;;
  all)
    setup
    for h in lm_eval inspect nemo_engine; do rm -rf "$HERE/$h"; "run_$h" "$HERE/$h"; done ;;
  *) echo "usage: make.sh [setup | run lm_eval|inspect|nemo_engine OUT]" >&2; exit 2 ;;
esac
