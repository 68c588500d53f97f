#!/usr/bin/env bash
# Three other eval harnesses, each in its own venv under build/harnesses/ (lm-eval 0.4.13,
# inspect-ai 0.3.285 with tiktoken's o200k_base rebuilt offline from npm js-tiktoken,
# nemo-evaluator 0.3.0 on Python 3.12). tests/e2e/test_harness_outputs.py runs each one fresh and
# reads its output; a harness whose venv is missing is skipped with the reason (and this log).
# No server outlives this script: the engine's stub server lives only during a run.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p build/harnesses
start=$(date +%s)
if bash tests/data/harnesses/make.sh setup > build/harnesses/setup.log 2>&1; then
  echo "harness venvs ready in build/harnesses ($(( $(date +%s) - start )) s)"
else
  tail -20 build/harnesses/setup.log >&2
  echo "some harness venvs could not be built; see build/harnesses/setup.log" >&2
  exit 1
fi
