#!/usr/bin/env bash
# The reference: nemo-evaluator-launcher 0.2.6 in its own venv (build/venv-launcher), with the same
# mlflow and wandb versions as ours so both tools open the same sqlite stores and offline folders.
# The comparison tests find it there (or at $EVALPORT_REFERENCE_LAUNCHER) and skip without it.
set -euo pipefail
cd "$(dirname "$0")/../.."
venv=build/venv-launcher
if [ -e "$venv/.complete" ]; then
  exit 0
fi
pins=$(python - <<'PY'
from importlib.metadata import version, PackageNotFoundError
out = []
for name in ("mlflow", "wandb"):
    try:
        out.append(f"{name}=={version(name)}")
    except PackageNotFoundError:
        out.append(name)
print(" ".join(out))
PY
)
# A venv cannot be moved (its scripts name their interpreter), so it is built in place and marked
# complete at the end; a half-built one is removed and built again.
rm -rf "$venv"
python -m venv "$venv"
"$venv/bin/pip" install -q "nemo-evaluator-launcher==0.2.6" $pins
"$venv/bin/nemo-evaluator-launcher" --help > /dev/null
touch "$venv/.complete"
echo "reference launcher ready in $venv"
