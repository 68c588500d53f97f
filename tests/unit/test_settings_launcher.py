"""The launcher's option shapes in settings: -o prefixes, job_dirs lifted to the source, compat,
its deprecated and inert keys in every sink config."""

import warnings

import pytest

from evalport.adapters.sinks.base import InertOptionWarning
from evalport.adapters.sinks.gsheets.config import GsheetsSinkConfig
from evalport.adapters.sinks.local import LocalSinkConfig
from evalport.adapters.sinks.mlflow.config import MlflowSinkConfig
from evalport.adapters.sinks.remote import RenamedOptionWarning
from evalport.adapters.sinks.wandb.config import WandbSinkConfig
from evalport.app.settings import build_settings, job_dirs_in
from evalport.domain.errors import ConfigError

SINK_CONFIGS = [LocalSinkConfig, MlflowSinkConfig, WandbSinkConfig, GsheetsSinkConfig]


@pytest.mark.parametrize("prefix", ["+", "++"])
def test_plus_and_double_plus_overrides_set_the_key_like_a_plain_one(prefix):
    s = build_settings({}, ["local"], overrides=[f"{prefix}export.local.format=csv"])
    assert s.configs["local"] == {"format": "csv"}


def test_a_tilde_override_deletes_the_key_and_a_missing_one_is_no_error():
    doc = {"export": {"mlflow": {"tags": {"team": "eval", "x": "1"}, "experiment_name": "e"}}}
    s = build_settings(doc, ["mlflow"], overrides=["~export.mlflow.tags.x", "~export.mlflow.run_name"])
    assert s.configs["mlflow"] == {"tags": {"team": "eval"}, "experiment_name": "e"}


def test_a_tilde_override_without_a_key_is_an_error_showing_the_form():
    with pytest.raises(ConfigError, match="~KEY"):
        build_settings({}, ["local"], overrides=["~"])


def test_job_dirs_in_a_destination_block_go_to_the_source_not_the_sink():
    doc = {"export": {"local": {"job_dirs": ["/r1"], "format": "csv"}, "mlflow": {"job_dirs": "/r2"}}}
    s = build_settings(doc, ["local", "mlflow"])
    assert s.configs == {"local": {"format": "csv"}, "mlflow": {}}
    assert s.job_dirs == ["/r1", "/r2"]


def test_every_job_dirs_a_document_names_is_found_before_destinations_are_known():
    doc = {
        "job_dirs": ["/top"],
        "execution": {"auto_export": {"configs": {"wandb": {"job_dirs": ["/auto"]}}}},
        "export": {"local": {"job_dirs": ["/block"]}},
    }
    found = job_dirs_in(doc, ["export.local.job_dirs=[/o]"])
    assert found == ["/top", "/block", "/auto", "/o"]


def test_job_dirs_that_are_not_paths_are_a_config_error_naming_where():
    with pytest.raises(ConfigError, match=r"export\.local\.job_dirs"):
        build_settings({"export": {"local": {"job_dirs": {"a": 1}}}}, ["local"])


def test_compat_at_the_top_is_every_destination_s_default_and_a_block_or_flag_wins():
    doc = {"compat": "launcher", "export": {"local": {}, "mlflow": {"compat": "evalport"}}}
    s = build_settings(doc, ["local", "mlflow"])
    assert s.configs == {"local": {"compat": "launcher"}, "mlflow": {"compat": "evalport"}}
    flagged = build_settings(doc, ["local", "mlflow"], flags={"compat": "evalport"})
    assert {d: c["compat"] for d, c in flagged.configs.items()} == {"local": "evalport", "mlflow": "evalport"}


def test_format_for_destinations_that_do_not_take_it_is_a_note_like_the_launcher_s():
    s = build_settings({}, ["mlflow"], flags={"format": "csv"}, accepts=lambda d, k: k != "format")
    assert s.configs == {"mlflow": {}}
    assert s.notes == ["--format is only used by --dest local; it is ignored for mlflow"]


@pytest.mark.parametrize("config_cls", SINK_CONFIGS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("old,new", [("log_logs", "copy_logs"), ("log_artifacts", "copy_artifacts")])
def test_the_launcher_s_deprecated_keys_validate_in_every_sink_config(config_cls, old, new):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config = config_cls.model_validate({old: False})
    assert any(issubclass(w.category, RenamedOptionWarning) and repr(old) in str(w.message) for w in caught)
    if new in type(config).model_fields:
        assert getattr(config, new) is False


def test_the_new_name_wins_over_the_deprecated_one_as_in_the_launcher():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        config = LocalSinkConfig.model_validate({"log_logs": True, "copy_logs": False})
    assert config.copy_logs is False


@pytest.mark.parametrize("config_cls", SINK_CONFIGS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("key", ["job_dirs", "copy_logs", "copy_artifacts", "only_required", "log_metrics"])
def test_every_key_of_the_launcher_s_export_config_validates_in_every_sink_config(config_cls, key):
    value = {"job_dirs": ["/r"], "log_metrics": ["score"]}.get(key, True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config = config_cls.model_validate({key: value})
    if key in type(config).model_fields:
        assert getattr(config, key) == value
    else:
        assert [w.category for w in caught] == [InertOptionWarning]
        assert f"option {key!r} has no effect in evalport" in str(caught[0].message)


def test_mlflow_takes_the_launcher_s_exclude_patterns_as_its_exclude():
    config = MlflowSinkConfig.model_validate({"exclude_patterns": ["*.jsonl"]})
    assert config.exclude == ["*.jsonl"]


def test_a_flat_launcher_exporter_config_with_job_dirs_and_compat_stays_flat_options():
    """What the launcher's export_results(ids, dest, config) takes: one exporter's options."""
    s = build_settings({"job_dirs": ["/r"], "output_dir": "/o", "compat": "launcher"}, ["local"])
    assert s.configs == {"local": {"output_dir": "/o", "compat": "launcher"}}
    assert s.job_dirs == ["/r"]


def test_options_keyed_by_destination_may_have_compat_and_job_dirs_beside_them():
    doc = {"compat": "launcher", "job_dirs": ["/r"], "local": {"format": "csv"}, "mlflow": {}}
    s = build_settings(doc, known=["local", "mlflow"])
    assert s.destinations == ["local", "mlflow"]
    assert s.configs == {"local": {"format": "csv", "compat": "launcher"}, "mlflow": {"compat": "launcher"}}
    assert s.job_dirs == ["/r"]
