"""The SDKs' own chatter (MLflow's schema INFO lines, W&B's ``wandb: ...`` lines) off stderr unless ``-v``.

Set before the SDKs are imported (they read their environment once), and on their loggers too
when they already are (an embedding program, the tests).
"""

from __future__ import annotations

import logging
import os
import sys

VERBOSE_FLAGS = ("-v", "--verbose")
#: Loggers MLflow configures itself (its own handler, no propagation), so the root level misses them.
MLFLOW_LOGGERS = ("mlflow", "alembic")


def take_verbose_flag(argv: list[str]) -> tuple[list[str], bool]:
    """``argv`` without ``-v``/``--verbose`` (anywhere before ``--``), and whether one was there."""
    end = argv.index("--") if "--" in argv else len(argv)
    kept = [a for a in argv[:end] if a not in VERBOSE_FLAGS] + argv[end:]
    return kept, len(kept) != len(argv)


def configure_sdk_logging(verbose: bool) -> None:
    """Quiet by default; ``verbose`` lets MLflow's INFO lines and W&B's terminal lines through."""
    level = logging.INFO if verbose else logging.WARNING
    if verbose:
        os.environ["MLFLOW_LOGGING_LEVEL"] = "INFO"
        os.environ.pop("WANDB_SILENT", None)
    else:
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
        os.environ.setdefault("WANDB_SILENT", "true")
    if "mlflow" in sys.modules:
        for name in MLFLOW_LOGGERS:
            logging.getLogger(name).setLevel(level)
