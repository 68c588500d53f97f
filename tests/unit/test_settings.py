import json

import pytest

from evalport.adapters.sinks.local import LocalSink
from evalport.app.settings import build_settings, load_document, validate_sink_config
from evalport.domain.errors import ConfigError

LAUNCHER = {
    "execution": {
        "type": "local",
        "auto_export": {
            "destinations": ["local", "mlflow"],
            "configs": {"local": {"format": "csv", "copy_logs": True}, "mlflow": {"experiment_name": "auto"}},
        },
    },
    "evaluation": {"tasks": [{"name": "gsm8k"}]},
    "export": {"local": {"format": "json"}},
}


def test_a_launcher_run_config_gives_destinations_and_their_options():
    s = build_settings(LAUNCHER)
    assert s.destinations == ["local", "mlflow"]
    assert s.configs["local"] == {"format": "json", "copy_logs": True}, "export.<dest> wins over auto_export"
    assert s.configs["mlflow"] == {"experiment_name": "auto"}


def test_cli_destinations_override_the_configured_ones():
    assert build_settings(LAUNCHER, ["local"]).destinations == ["local"]


def test_overrides_win_and_are_read_as_yaml_values():
    s = build_settings(
        LAUNCHER,
        overrides=[
            "export.local.copy_logs=false",
            "export.mlflow.tags.team=eval",
            "log_metrics=[acc, '!stderr']",
        ],
    )
    assert s.configs["local"]["copy_logs"] is False
    assert s.configs["mlflow"]["tags"] == {"team": "eval"}
    assert s.configs["local"]["log_metrics"] == ["acc", "!stderr"]


def test_an_override_for_a_destination_not_chosen_is_an_error():
    with pytest.raises(ConfigError, match="wandb"):
        build_settings({}, ["local"], overrides=["export.wandb.project=x"])


def test_a_flat_inline_json_config_applies_to_every_destination():
    doc = load_document(json.dumps({"output_dir": "/data/results", "format": "json"}))
    assert build_settings(doc, ["local"]).configs["local"] == {
        "output_dir": "/data/results",
        "format": "json",
    }


def test_unknown_top_level_keys_name_the_closest_valid_one():
    with pytest.raises(ConfigError, match="did you mean 'export'"):
        build_settings({"exports": {}, "destinations": ["local"]})


def test_unknown_sink_keys_name_the_key_and_the_closest_valid_one():
    with pytest.raises(ConfigError) as err:
        validate_sink_config(LocalSink, "local", {"output_dri": "/x"})
    assert "output_dri" in str(err.value) and "output_dir" in str(err.value)


def test_bad_values_name_the_key():
    with pytest.raises(ConfigError, match="format"):
        validate_sink_config(LocalSink, "local", {"format": "xml"})


def test_config_files_that_are_not_yaml_or_missing_are_clear_errors(tmp_path):
    bad = tmp_path / "c.yaml"
    bad.write_text("export: [\n")
    with pytest.raises(ConfigError, match="line"):
        load_document(str(bad))
    with pytest.raises(ConfigError, match="cannot read"):
        load_document(str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match="inline JSON"):
        load_document("{nope")


@pytest.mark.parametrize(
    "template", ["{task}", "{model_id}-{task}", "{ task }", "eval {invocation_id}", "[{task}]"]
)
def test_an_override_holding_name_placeholders_is_kept_as_the_template_text(template):
    s = build_settings({}, ["mlflow"], overrides=[f"export.mlflow.run_name={template}"])
    assert s.configs["mlflow"]["run_name"] == template


def test_an_override_holding_a_json_mapping_or_a_yaml_list_is_still_read_as_one():
    s = build_settings(
        {},
        ["mlflow"],
        overrides=['export.mlflow.tags={"team": "eval", "run": "b"}', "log_metrics=[acc, f1]", "x.y={a: 1}"],
    )
    assert s.configs["mlflow"]["tags"] == {"team": "eval", "run": "b"}
    assert s.configs["mlflow"]["log_metrics"] == ["acc", "f1"]
    assert s.configs["mlflow"]["x"] == {"y": {"a": 1}}


def test_an_override_that_is_not_yaml_is_kept_as_text():
    s = build_settings({}, ["local"], overrides=["output_filename=a: b: c", "format=[csv"])
    assert s.configs["local"]["output_filename"] == "a: b: c"
    assert s.configs["local"]["format"] == "[csv"


@pytest.mark.timeout(20)
def test_an_endless_config_stream_is_refused_after_the_size_limit(monkeypatch):
    """``--config <(...)`` is a pipe with no size to check first: the read itself is bounded."""
    from evalport.app.settings import load_document
    from evalport.domain.errors import ConfigError

    monkeypatch.setenv("EVALPORT_YAML_MAX_BYTES", "1000")
    with pytest.raises(ConfigError, match="over the limit"):
        load_document("/dev/zero")
