"""The old import path of the W&B naming rules; they live in :mod:`.wandb.names`."""

from evalport.adapters.sinks.wandb.names import (
    ARTIFACT_NAME_MAX,
    TAG_MAX,
    artifact_name,
    clean_tag,
    is_valid_run_id,
    run_id_of_folder,
)

__all__ = [
    "ARTIFACT_NAME_MAX",
    "TAG_MAX",
    "artifact_name",
    "clean_tag",
    "is_valid_run_id",
    "run_id_of_folder",
]
