"""The old import path (before the MLflow sink became a package), kept for plugins and scripts."""

from evalport.adapters.sinks.mlflow import RUN_KEY_TAG, MlflowSink, MlflowSinkConfig, mlflow_metric_key

__all__ = ["RUN_KEY_TAG", "MlflowSink", "MlflowSinkConfig", "mlflow_metric_key"]
