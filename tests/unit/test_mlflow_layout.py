"""Where a job's files go in its MLflow run: evalport's layout, or the launcher's with compat: launcher."""

from __future__ import annotations

from pathlib import Path

from evalport.adapters.sinks.mlflow.layout import launcher_config_file, uploads
from evalport.domain.model import TaskResult

TOKEN = "nvapi-CANARY_r2Xb9kLmQ4tYz7Wv1Pc3Nd5Ef8Gh0"


def result(**config) -> TaskResult:
    return TaskResult("inv.0", "inv", "mmlu", "simple_evals", "m", "local", (), config=config)


def staged(tmp_path: Path, *names: str) -> Path:
    root = tmp_path / "staged"
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    return root


def test_evalports_layout_is_one_upload_of_the_staged_folder(tmp_path):
    root = staged(tmp_path, "artifacts/results.yml", "logs/a.log")
    assert uploads(root, result(), launcher=False, multi_task=False) == [(root, None)]
    assert uploads(root, result(), launcher=False, multi_task=True) == [(root, "mmlu")]


def test_the_launchers_layout_puts_files_under_harness_dot_task_and_the_config_at_the_root(tmp_path):
    root = staged(tmp_path, "artifacts/results.yml", "logs/a.log", "config.yml", "evalport/metric_names.json")
    assert uploads(root, result(), launcher=True, multi_task=False) == [
        (root / "artifacts", "simple_evals.mmlu/artifacts"),
        (root / "config.yml", None),
        (root / "evalport", "evalport"),
        (root / "logs", "simple_evals.mmlu/logs"),
    ]


def test_in_multi_task_the_launchers_layout_keeps_each_tasks_config_in_its_folder(tmp_path):
    root = staged(tmp_path, "artifacts/results.yml", "config.yaml")
    assert (root / "config.yaml", "simple_evals.mmlu") in uploads(
        root, result(), launcher=True, multi_task=True
    )


def test_the_jobs_config_yml_goes_to_the_root_with_secrets_masked(tmp_path):
    job = tmp_path / "job"
    (job / "artifacts").mkdir(parents=True)
    (job / "artifacts" / "config.yml").write_text(f"target:\n  api_key: {TOKEN}\n  url: http://x\n")
    files = launcher_config_file(result(), job)
    assert list(files) == ["config.yml"]
    assert TOKEN.encode() not in files["config.yml"] and b"http://x" in files["config.yml"]


def test_without_a_config_yml_the_jobs_config_is_written_as_config_yaml(tmp_path):
    files = launcher_config_file(result(execution={"type": "local"}), tmp_path / "nowhere")
    assert files == {"config.yaml": b"execution:\n  type: local\n"}


def test_a_config_yml_that_is_a_link_is_not_followed(tmp_path):
    job = tmp_path / "job"
    (job / "artifacts").mkdir(parents=True)
    (tmp_path / "outside.yml").write_text("secret: file\n")
    (job / "artifacts" / "config.yml").symlink_to(tmp_path / "outside.yml")
    assert list(launcher_config_file(result(), job)) == ["config.yaml"]
