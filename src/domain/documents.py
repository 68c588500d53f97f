"""The DocumentLoader port: how settings read a ``--config`` file and an ``-o`` value.

``evalport.app.settings`` decides what the documents mean; reading them (bounded YAML parsing) is an
adapter's job (:class:`evalport.adapters.formats.documents.YamlDocumentLoader`), which the
composition root (``evalport.app.container.document_loader``) hands out.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


class DocumentLoader(Protocol):
    def load_file(self, path: Path) -> Any:
        """The YAML/JSON document in ``path``, read with a size bound (a pipe works too).

        Raises OSError when it cannot be read and ValueError (a one-line description naming the
        line) when it is not a readable document."""
        ...

    def parse_value(self, text: str) -> Any:
        """``text`` read as a YAML value (``false``, ``3``, ``[a, b]``); raises when it is none."""
        ...
