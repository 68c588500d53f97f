"""The launcher's MLflow options validate in evalport: ``exclude_patterns`` is ``exclude``, and
``compat: launcher`` picks the launcher's default experiment."""

from __future__ import annotations

import warnings

import pytest

from evalport.adapters.sinks.mlflow import MlflowSinkConfig
from evalport.adapters.sinks.mlflow.config import LAUNCHER_EXPERIMENT

#: MLflowExporterConfig's own keys (nemo-evaluator-launcher 0.2.6), with values a launcher config holds.
LAUNCHER_MLFLOW_KEYS = {
    "tracking_uri": "sqlite:///mlflow.db",
    "experiment_name": "nel",
    "log_config_params": True,
    "log_config_params_max_depth": 3,
    "skip_existing": True,
    "run_name": "nightly",
    "description": "a nightly run",
    "tags": {"team": "evals"},
    "extra_metadata": {"suite": "v1"},
    "exclude_patterns": ["*.jsonl"],
    "copy_logs": True,
    "copy_artifacts": True,
    "only_required": False,
    "log_metrics": ["score"],
}


def test_every_launcher_mlflow_key_validates_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        config = MlflowSinkConfig.model_validate(LAUNCHER_MLFLOW_KEYS)
    assert config.skip_existing and config.copy_logs and not config.only_required
    assert config.exclude == ["*.jsonl"]


@pytest.mark.parametrize("key", sorted(LAUNCHER_MLFLOW_KEYS))
def test_each_launcher_mlflow_key_validates_on_its_own(key):
    MlflowSinkConfig.model_validate({key: LAUNCHER_MLFLOW_KEYS[key]})


def test_exclude_patterns_are_the_policys_exclude():
    config = MlflowSinkConfig(exclude_patterns=["*.jsonl", "traces"])
    assert config.policy.exclude == ("*.jsonl", "traces")
    assert config.policy.excludes("a/samples.JSONL")


def test_exclude_and_exclude_patterns_given_together_are_merged():
    config = MlflowSinkConfig(exclude=["a*", "*.jsonl"], exclude_patterns=["*.jsonl", "b*"])
    assert config.exclude == ["a*", "*.jsonl", "b*"]


def test_exclude_patterns_of_the_wrong_shape_are_a_clear_error():
    with pytest.raises(ValueError, match="exclude_patterns must be a list"):
        MlflowSinkConfig(exclude_patterns=3)


def test_compat_launcher_uses_the_launchers_experiment_unless_one_is_named():
    assert MlflowSinkConfig(compat="launcher").experiment_name == LAUNCHER_EXPERIMENT
    assert MlflowSinkConfig(compat="launcher", experiment_name="mine").experiment_name == "mine"
    assert MlflowSinkConfig().experiment_name == "evalport"
