"""The old import path (before the MLflow sink became a package), kept for plugins and scripts."""

from evalport.adapters.sinks.mlflow.locks import STRIPES, WAIT, held, run_lock_path, store_lock_path

__all__ = ["STRIPES", "WAIT", "held", "run_lock_path", "store_lock_path"]
