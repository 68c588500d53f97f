"""The launcher's Sheets layout: column names, order, default name and keys (pure)."""

from __future__ import annotations

import warnings

from evalport.adapters.sinks.base import InertOptionWarning
from evalport.adapters.sinks.gsheets import layout
from evalport.adapters.sinks.gsheets import plan as planning
from evalport.adapters.sinks.gsheets.config import GsheetsSinkConfig
from evalport.adapters.sinks.remote import RenamedOptionWarning
from evalport.domain.model import Metric, TaskResult


def result(job_id: str = "abcd.0") -> TaskResult:
    metrics = (Metric("gsm8k_zeta", 0.5), Metric("gsm8k_alpha", 0.25, {"stderr": 0.01}))
    return TaskResult(job_id, "abcd", "gsm8k", "lm-eval", "m", "local", metrics)


def test_launcher_metric_columns_drop_the_task_prefix():
    record = layout.record_for(result(), launcher=True)
    assert {"zeta", "alpha", "alpha_stderr"} <= set(record) and "gsm8k_zeta" not in record


def test_launcher_columns_come_sorted_after_the_base_columns():
    columns = layout.wanted_columns([layout.record_for(result(), launcher=True)], sort=True)
    assert columns == [*layout.BASE_COLUMNS, "alpha", "alpha_stderr", "zeta"]


def test_a_launcher_row_is_found_by_job_id_wherever_that_column_is_and_updated():
    header = ["Job ID", "Model Name", "alpha"]
    table = planning.Table.read(header, [["abcd.0"]])
    plan = planning.plan_export(table, {2: ["abcd.0", "m", "0.1"]}, [layout.record_for(result(), True)], True)
    assert plan.appends == [] and [w.row for w in plan.updates] == [2]


def test_compat_defaults_to_the_launchers_spreadsheet_name():
    assert GsheetsSinkConfig(compat="launcher").lookup_name == "NeMo Evaluator Launcher Results"
    assert GsheetsSinkConfig().lookup_name == "evalport results"


def test_every_launcher_gsheets_key_validates_and_the_file_options_warn():
    keys = {
        "service_account_file": "sa.json",
        "spreadsheet_name": "x",
        "job_dirs": [],
        "copy_logs": True,
        "copy_artifacts": True,
        "only_required": True,
        "log_metrics": ["em"],
        "log_logs": True,
        "log_artifacts": True,
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        GsheetsSinkConfig.model_validate(keys)
    inert = {str(w.message).split("'")[1] for w in caught if issubclass(w.category, InertOptionWarning)}
    assert inert == {"job_dirs", "copy_logs", "copy_artifacts", "only_required"}
    renamed = {str(w.message).split("'")[1] for w in caught if issubclass(w.category, RenamedOptionWarning)}
    assert renamed == {"log_logs", "log_artifacts"}
    GsheetsSinkConfig.model_validate({"oauth_file": "o.json", "spreadsheet_id": "id"})
