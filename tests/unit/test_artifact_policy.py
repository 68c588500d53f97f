from evalport.domain.artifacts import ArtifactPolicy, is_never_exported

FILES = [
    "results.yml",
    "run_config.yml",
    "report.html",
    "samples.jsonl",
    "cache/responses.db",
    ".secrets.env",
    "response_stats_cache/x.json",
    "run.lock",
]


def test_only_required_sends_the_named_artifacts():
    assert ArtifactPolicy(only_required=True).select_artifacts(FILES) == [
        "report.html",
        "results.yml",
        "run_config.yml",
    ]


def test_all_artifacts_still_never_sends_secrets_caches_databases_or_locks():
    assert ArtifactPolicy(only_required=False).select_artifacts(FILES) == [
        "report.html",
        "results.yml",
        "run_config.yml",
        "samples.jsonl",
    ]


def test_exclude_patterns_are_honoured():
    policy = ArtifactPolicy(only_required=False, exclude=("*.jsonl",))
    assert "samples.jsonl" not in policy.select_artifacts(FILES)


def test_logs_only_when_asked():
    assert ArtifactPolicy().select_logs(["stdout.log"]) == []
    assert ArtifactPolicy(copy_logs=True).select_logs(["stdout.log", "x.lock"]) == ["stdout.log"]


def test_covering_policy_stages_what_every_sink_needs():
    both = ArtifactPolicy.covering(
        [ArtifactPolicy(only_required=True), ArtifactPolicy(False, copy_logs=True)]
    )
    assert both.copy_artifacts and both.only_required and both.copy_logs
    assert not ArtifactPolicy.covering([ArtifactPolicy(only_required=False), ArtifactPolicy()]).only_required


def test_never_exported_matches_any_path_part():
    assert (
        is_never_exported("a/b/.secrets.env")
        and is_never_exported("http_cache/x")
        and not is_never_exported("results.yml")
    )
