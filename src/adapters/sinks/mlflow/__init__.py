"""The MLflow sink as a package: options, names, locks, the run planner, the calls, the sink.

``config`` (options), ``names`` (keys MLflow accepts), ``locks`` (several processes at once),
``contents`` (what a job puts into its run), ``layout`` (where its files go: evalport's or the
launcher's), ``plan`` (which run, what differs: pure), ``errors`` (transient or permanent),
``client`` (the store and its client), ``runs`` (the calls), ``sink`` (MlflowSink).
mlflow itself is imported only when a sink talks to a store.
"""

from evalport.adapters.sinks.mlflow.config import MlflowSinkConfig
from evalport.adapters.sinks.mlflow.contents import RUN_KEY_TAG
from evalport.adapters.sinks.mlflow.names import mlflow_metric_key
from evalport.adapters.sinks.mlflow.plan import plan_run_delta
from evalport.adapters.sinks.mlflow.sink import MlflowSink

__all__ = ["RUN_KEY_TAG", "MlflowSink", "MlflowSinkConfig", "mlflow_metric_key", "plan_run_delta"]
