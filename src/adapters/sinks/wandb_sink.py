"""The old import path of the W&B sink (entry points and plugins name it); the code is in :mod:`.wandb`."""

from evalport.adapters.sinks.wandb.config import WandbSinkConfig
from evalport.adapters.sinks.wandb.credentials import base_url, find_credentials
from evalport.adapters.sinks.wandb.sink import WandbSink

__all__ = ["WandbSink", "WandbSinkConfig", "base_url", "find_credentials"]
