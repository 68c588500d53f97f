"""Records nemo-evaluator-launcher 0.2.6's local json and csv exports of a small generated home.

    PYTHONPATH=<worktree>/.shim python tests/data/launcher_reference/record.py

writes, beside this script, ``inputs.json`` (the generator's arguments, the home's root at
recording time and the launcher's version) and ``json/``, ``csv/`` (the launcher's
processed_results files, per job and combined). tests/e2e/test_launcher_recorded.py regenerates
the same home from ``inputs.json`` and compares evalport's ``compat: launcher`` files with these,
so the format comparison runs where the launcher cannot be installed. Re-run it after a change to
the factory's output or to the launcher version.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
GENERATOR = {"invocations": 2, "tasks_per_invocation": 3, "seed": 20260101}
FORMATS = ("json", "csv")


def main() -> int:
    sys.path.insert(0, str(REPO))
    from evalport.testing.factory import write_launcher_home
    from tests.support.reference_launcher import ReferenceLauncher, reference_executable

    exe = reference_executable()
    if exe is None:
        print("nemo-evaluator-launcher is not installed (bash .ci/setup.d/30-launcher.sh)", file=sys.stderr)
        return 2
    launcher = ReferenceLauncher(exe)
    with tempfile.TemporaryDirectory(prefix="launcher-reference-") as tmp:
        root = Path(tmp) / "home"
        home = write_launcher_home(root, **GENERATOR)
        version = launcher.python_call(
            root, "import importlib.metadata as m; print(m.version('nemo-evaluator-launcher'))"
        ).stdout.split()[-1]
        for fmt in FORMATS:
            out = Path(tmp) / fmt
            launcher.export(root, home.invocation_ids, "--dest", "local", "--format", fmt, "-out", str(out))
            target = HERE / fmt
            shutil.rmtree(target, ignore_errors=True)
            for path in sorted(out.rglob(f"processed_results.{fmt}")):
                rel = path.relative_to(out)
                (target / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target / rel)
        inputs = {
            "generator": GENERATOR,
            "invocation_ids": home.invocation_ids,
            "home_root": str(root),
            "launcher_version": version,
        }
        (HERE / "inputs.json").write_text(json.dumps(inputs, indent=2) + "\n")
    print(f"recorded {', '.join(FORMATS)} exports of {len(home.jobs)} jobs into {HERE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
