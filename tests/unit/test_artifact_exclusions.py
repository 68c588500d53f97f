"""The launcher's always-on exclusions and the extra ``exclude`` patterns, for every sink.

Matched case-insensitively on the name of every part of a path; a matching folder is not walked.
"""

from __future__ import annotations

import fnmatch
import os
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from evalport.adapters.files import list_files
from evalport.domain.artifacts import LAUNCHER_EXCLUDED, ArtifactPolicy, is_excluded_by_default

ALL = ArtifactPolicy(only_required=False, copy_logs=True)

BULKY = [
    "synthetic/data.jsonl",
    "debug.json",
    "preprocessed_datasets/train/part-0001.parquet",
    "evaluator_rollouts.jsonl",
    "evaluator_rollouts_materialized_inputs.jsonl",
    "sub/evaluator_rollouts.jsonl",
    "Response_Cache/x.json",
    "nested/run.LOCK",
    "store/Results.DB",
]


def test_the_launchers_bulky_files_are_never_sent_even_with_all_artifacts():
    kept = ["results.yml", "samples.jsonl", "sub/report.json", "synthetic_results.json"]
    assert ALL.select_artifacts([*BULKY, *kept]) == sorted(kept)


def test_the_launchers_exclusions_hold_for_logs_too():
    assert ALL.select_logs(["stdout.log", "debug.json", "synthetic/a.log"]) == ["stdout.log"]


def test_extra_exclude_patterns_extend_the_defaults_on_every_path_part_ignoring_case():
    policy = ArtifactPolicy(only_required=False, exclude=("*.JSONL", "traces"))
    files = ["a/b/samples.jsonl", "TRACES/t.json", "x/Traces/y.txt", "results.yml", "debug.json"]
    assert policy.select_artifacts(files) == ["results.yml"]


def test_an_extra_pattern_with_a_slash_matches_the_whole_relative_path():
    policy = ArtifactPolicy(only_required=False, exclude=("sub/*.json",))
    assert policy.select_artifacts(["sub/a.json", "other/a.json"]) == ["other/a.json"]


def test_only_required_artifacts_are_never_hidden_by_the_defaults():
    assert ArtifactPolicy().select_artifacts(["results.yml", "run_config.yml", "debug.json"]) == [
        "results.yml",
        "run_config.yml",
    ]


names = st.text(alphabet="abcDEF_.-*xyz0123456789", min_size=1, max_size=12).filter(
    lambda n: n not in (".", "..")
)


@given(st.lists(names, min_size=1, max_size=4), st.sampled_from(LAUNCHER_EXCLUDED))
def test_a_path_with_any_part_matching_a_default_pattern_is_excluded(parts, pattern):
    concrete = pattern.replace("*", "q")
    index = len(parts) // 2
    variants = [concrete, concrete.upper()]
    for name in variants:
        path = "/".join([*parts[:index], name, *parts[index:]])
        assert ALL.excludes(path), path


@given(st.lists(names, min_size=1, max_size=4))
def test_a_path_is_excluded_exactly_when_one_of_its_parts_matches_a_pattern(parts):
    policy = ArtifactPolicy(only_required=False, exclude=("*x*y",))
    path = "/".join(parts)
    patterns = [p.lower() for p in (*LAUNCHER_EXCLUDED, "*x*y")]
    by_part = any(fnmatch.fnmatchcase(part.lower(), p) for part in parts for p in patterns)
    whole = fnmatch.fnmatchcase(path.lower(), "*x*y")
    assert policy.excludes(path) == (by_part or whole or ArtifactPolicy().excludes(path))


def test_the_default_exclusions_are_decided_on_one_name():
    assert is_excluded_by_default("Preprocessed_Datasets") and is_excluded_by_default("http_cache")
    assert not is_excluded_by_default("results.yml")


def test_listing_a_job_never_walks_an_excluded_folder(tmp_path, monkeypatch):
    root = tmp_path / "artifacts"
    bulky = root / "preprocessed_datasets"
    for i in range(100):
        shard = bulky / f"shard{i:03d}"
        shard.mkdir(parents=True)
        for j in range(100):  # 10,000 files in all
            (shard / f"{j}.jsonl").write_bytes(b"")
    (root / "results.yml").write_text("results: {}\n")
    (root / "sub").mkdir()
    (root / "sub" / "debug.json").write_text("{}")
    (root / "sub" / "keep.txt").write_text("k")

    walked: list[str] = []
    real_scandir = os.scandir

    def recording_scandir(path):
        walked.append(str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", recording_scandir)
    assert list_files(root) == ["results.yml", "sub/keep.txt"]
    assert all("preprocessed_datasets" not in w for w in walked), walked
    assert len(walked) == 2


def test_a_job_read_from_disk_lists_no_default_excluded_file(tmp_path):
    from evalport.testing.factory import write_launcher_home

    home = write_launcher_home(tmp_path / "home", invocations=1, tasks_per_invocation=1)
    job = home.jobs[0]
    artifacts = Path(job.directory) / "artifacts"
    (artifacts / "synthetic").mkdir()
    (artifacts / "synthetic" / "gen.jsonl").write_text("{}\n")
    (artifacts / "evaluator_rollouts.jsonl").write_text("{}\n")

    from evalport.adapters.formats.nemo_evaluator import read_task_result
    from evalport.adapters.sources.local import LocalSource

    source = LocalSource(exec_db=home.exec_db)
    [resolved], errors = source.resolve([job.job_id])
    assert not errors
    result = read_task_result(resolved, Path(job.directory))
    assert "evaluator_rollouts.jsonl" not in result.artifacts
    assert not any(a.startswith("synthetic/") for a in result.artifacts)
    assert "results.yml" in result.artifacts
