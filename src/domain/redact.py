"""Secrets never leave: redaction of keys, tokens and passwords in configs and text.

The rules for text (key names and token shapes) live in :mod:`evalport.domain.secret_text`; this
module applies them to structured values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evalport.domain.secret_text import REDACTED, TextRedactor, is_secret_key, redact_text

__all__ = ["REDACTED", "TextRedactor", "is_secret_key", "redact", "redact_config_text", "redact_text"]


def _nothing_to_hide(value: Any) -> bool:
    """An unset value or a flag (``use_auth_token: true``) carries no secret and is kept."""
    return value is None or value == "" or isinstance(value, bool)


def redact(value: Any, _key: str = "") -> Any:
    """A deep copy of a config with secret values masked.

    Under a key that looks like a secret (``api_key``, ``token``, ``HF_TOKEN``, ``password`` ...)
    the whole value becomes ``***`` whatever its type (a string, a number, a list, a mapping), but
    not when the key names where the secret is kept (``api_key_name``, ``token_env``). Every other
    string is masked by content (``--api-key sk-...``, ``Bearer ...``, ``https://u:pw@host``).
    """
    if isinstance(value, Mapping):
        return {
            k: REDACTED if is_secret_key(str(k)) and not _nothing_to_hide(v) else redact(v, str(k))
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [redact(v, _key) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_config_text(text: str) -> str:
    """Masks secrets in a YAML, JSON, shell, env or log file's text without reformatting it.

    ``key: value`` lines with secret-looking keys get their value masked, and so do the YAML
    blocks and bracketed values under such keys, private-key blocks and token shapes; lines that
    mention no secret-like word are not looked at, which keeps large files cheap.
    """
    return redact_text(text)
