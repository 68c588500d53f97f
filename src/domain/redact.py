"""Secrets never leave: redaction of keys, tokens and passwords in configs and text."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

REDACTED = "***"

_SECRET_KEY = re.compile(
    r"(?:^|[_\-.])(?:api[_\-]?key|apikey|access[_\-]?key|private[_\-]?key|secret[_\-]?key|ssh[_\-]?key|"
    r"token|secret|password|passwd|pwd|credentials?|auth|session)(?:$|[_\-.])"
    r"|^key$|(?:token|secret|password|apikey)$",
    re.IGNORECASE,
)
# Names that say *where* a secret is kept, not the secret itself (the launcher's api_key_name).
_SECRET_REFERENCE = re.compile(r"(?:_name|_env|_var|_file|_path|_uri|_url)$", re.IGNORECASE)
_INLINE = re.compile(
    r"(?P<k>\b(?P<name>[\w.-]*(?:api[_-]?key|token|secret|password|passwd)[\w.-]*)['\"]?\s*[=:]\s*)"
    r"(?P<q>['\"]?)(?P<v>[^\s'\"&,;}]+)",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(?P<k>\b(?:bearer|basic)\s+)(?P<v>[A-Za-z0-9._~+/=-]{8,})", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(?P<k>[a-z][a-z0-9+.-]*://[^/\s:@]+:)(?P<v>[^@\s/]+)(?=@)", re.IGNORECASE)


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key)) and not _SECRET_REFERENCE.search(key)


def redact_text(text: str) -> str:
    """Masks ``KEY=value`` pairs with secret-looking keys, bearer tokens and URL passwords."""
    text = _INLINE.sub(
        lambda m: m[0] if not is_secret_key(m["name"]) else f"{m['k']}{m['q']}{REDACTED}", text
    )
    text = _BEARER.sub(lambda m: f"{m['k']}{REDACTED}", text)
    return _URL_PASSWORD.sub(lambda m: f"{m['k']}{REDACTED}", text)


def redact(value: Any, _key: str = "") -> Any:
    """A deep copy of a config with secret values masked.

    A value is masked when its key looks like a secret (``api_key``, ``token``, ``HF_TOKEN``,
    ``password`` ...) but not when the key names where the secret is kept (``api_key_name``).
    Strings are also scanned for inline secrets (``--api-key=...``, ``Bearer ...``).
    """
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            ks = str(k)
            if is_secret_key(ks) and v not in (None, "") and not isinstance(v, (Mapping, list, tuple)):
                out[k] = REDACTED
            else:
                out[k] = redact(v, ks)
        return out
    if isinstance(value, (list, tuple)):
        return [redact(v, _key) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


_MAPPING_LINE = re.compile(
    r"""^(?P<lead>\s*(?:-\s+)?)(?P<q>["']?)(?P<key>[\w.\-]+)(?P=q)(?P<sep>\s*:\s*)(?P<value>[^\s|>{\[&*#].*?)(?P<tail>,?\s*)$"""
)


_SECRET_WORDS = r"key|token|secret|passw|pwd|credential|auth|session|bearer|basic|://[^\s/@:]+:[^\s@/]+@"
# Case-insensitive alternation is about 10x slower in `re` than searching lowercased ASCII text.
_SECRET_WORD_LOWER = re.compile(_SECRET_WORDS)
_SECRET_WORD_ANYCASE = re.compile(_SECRET_WORDS, re.IGNORECASE)


def _redact_line(body: str) -> str:
    m = _MAPPING_LINE.match(body)
    if m and is_secret_key(m["key"]) and m["value"].strip("'\" ") not in ("", "null", "None", "~"):
        quote = '"' if m["value"].startswith('"') else ""
        return f"{m['lead']}{m['q']}{m['key']}{m['q']}{m['sep']}{quote}{REDACTED}{quote}{m['tail']}"
    return redact_text(body)


def redact_config_text(text: str) -> str:
    """Masks secrets in a YAML, JSON, shell or env file's text without reformatting it.

    ``key: value`` and ``"key": "value"`` lines with secret-looking keys get their value masked;
    other lines that mention a secret-like word go through :func:`redact_text`. Lines with no
    such word are not looked at, which keeps large files cheap.
    """
    out: list[str] = []
    done = 0
    hits = (
        _SECRET_WORD_LOWER.finditer(text.lower()) if text.isascii() else _SECRET_WORD_ANYCASE.finditer(text)
    )
    for hit in hits:
        if hit.start() < done:
            continue
        start = text.rfind("\n", 0, hit.start()) + 1
        end = text.find("\n", hit.end())
        end = len(text) if end == -1 else end
        out.append(text[done:start])
        out.append(_redact_line(text[start:end]))
        done = end
    if not out:
        return text
    out.append(text[done:])
    return "".join(out)
