"""The old import path (before the MLflow sink became a package), kept for plugins and scripts."""

from evalport.adapters.sinks.mlflow.names import (
    MAX_KEY_LENGTH,
    MAX_PARAM_VALUE_LENGTH,
    MAX_TAG_VALUE_LENGTH,
    assign_keys,
    clip,
    flatten_params,
    mlflow_metric_key,
    mlflow_param_key,
    quote_filter_value,
    stored_run_key,
    tag_equals_filter,
    tag_prefix_filter,
)

__all__ = [
    "MAX_KEY_LENGTH",
    "MAX_PARAM_VALUE_LENGTH",
    "MAX_TAG_VALUE_LENGTH",
    "assign_keys",
    "clip",
    "flatten_params",
    "mlflow_metric_key",
    "mlflow_param_key",
    "quote_filter_value",
    "stored_run_key",
    "tag_equals_filter",
    "tag_prefix_filter",
]
