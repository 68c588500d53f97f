"""A launcher gsheets config names both of a pair: evalport takes it as the launcher does, with a warning."""

from __future__ import annotations

import warnings

import pytest

from evalport.adapters.sinks.base import InertOptionWarning
from evalport.adapters.sinks.gsheets.config import GsheetsSinkConfig


def _validate(**options):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config = GsheetsSinkConfig.model_validate(options)
    return config, [str(w.message) for w in caught if issubclass(w.category, InertOptionWarning)]


def test_a_spreadsheet_id_wins_over_the_name_the_launcher_config_always_carries():
    config, notes = _validate(spreadsheet_id="1AbC", spreadsheet_name="NeMo Evaluator Launcher Results")
    assert config.spreadsheet_id == "1AbC"
    assert notes == ["spreadsheet_name is ignored: spreadsheet_id names the spreadsheet"]


def test_a_service_account_wins_over_oauth(tmp_path):
    config, notes = _validate(
        service_account_file=str(tmp_path / "sa.json"), oauth_file=str(tmp_path / "o.json")
    )
    assert config.service_account_file == tmp_path / "sa.json"
    assert notes == ["oauth_file is ignored: service_account_file is used"]


@pytest.mark.parametrize("options", [{"spreadsheet_id": "1AbC"}, {"spreadsheet_name": "Results"}])
def test_one_of_a_pair_alone_warns_of_nothing(options):
    assert _validate(**options)[1] == []
