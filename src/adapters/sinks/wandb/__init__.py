"""The Weights & Biases sink (``--dest wandb``): see :mod:`.sink`; decisions in :mod:`.plan`."""

from evalport.adapters.sinks.wandb.config import WandbSinkConfig
from evalport.adapters.sinks.wandb.sink import WandbSink

__all__ = ["WandbSink", "WandbSinkConfig"]
