"""Where a job's files go in its MLflow run: evalport's layout or the launcher's (``compat: launcher``).

evalport: the staged folder as it is, ``artifacts/...`` and ``logs/...`` at the run's root (under
``<task>/`` in multi_task). The launcher's (nemo-evaluator-launcher 0.2.6): ``config.yml`` at the
root (the job's ``artifacts/config.yml``, else the job's config written as ``config.yaml``), the
artifacts under ``<harness>.<task>/artifacts/`` and the logs under ``<harness>.<task>/logs/``.
"""

from __future__ import annotations

from pathlib import Path

from evalport.adapters.files import read_regular_file
from evalport.domain.model import TaskResult
from evalport.domain.redact import redact_text

#: The config files the launcher puts at a run's root (the first when the job has one).
LAUNCHER_CONFIG_FILES = ("config.yml", "config.yaml")
#: The largest artifacts/config.yml read to be sent at the run's root.
MAX_CONFIG_BYTES = 16 << 20

#: One upload: a staged file or folder and the artifact path it goes to (None: the run's root).
Upload = tuple[Path, str | None]


def job_folder(result: TaskResult) -> str:
    """The launcher's folder for a job's files in its run: ``<harness>.<task>``."""
    return f"{result.harness}.{result.task}"


def launcher_config_file(result: TaskResult, directory: Path | None) -> dict[str, bytes]:
    """The config file the launcher logs at a run's root: the job's ``artifacts/config.yml``
    (secrets masked), else its config (already redacted) as ``config.yaml``."""
    if directory is not None:
        try:
            text = read_regular_file(directory / "artifacts" / "config.yml", MAX_CONFIG_BYTES)
        except OSError:
            pass
        else:
            masked = redact_text(text.decode("utf-8", "surrogateescape"))
            return {"config.yml": masked.encode("utf-8", "surrogateescape")}
    import yaml

    body = yaml.safe_dump(dict(result.config), default_flow_style=False, sort_keys=False, allow_unicode=True)
    return {"config.yaml": body.encode("utf-8")}


def uploads(staged: Path, result: TaskResult, *, launcher: bool, multi_task: bool) -> list[Upload]:
    """What to upload from a staged folder, and where in the run each part goes."""
    if not launcher:
        return [(staged, result.task if multi_task else None)]
    folder = job_folder(result)
    out: list[Upload] = []
    for entry in sorted(staged.iterdir()):
        if entry.name in ("artifacts", "logs"):
            out.append((entry, f"{folder}/{entry.name}"))
        elif entry.name in LAUNCHER_CONFIG_FILES:
            # one run per task: at the root, as the launcher; multi_task: beside the task's files
            out.append((entry, folder if multi_task else None))
        else:  # evalport's own files (evalport/metric_names.json)
            out.append((entry, f"{folder}/{entry.name}" if multi_task else entry.name))
    return out
