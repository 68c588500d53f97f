"""Where W&B credentials come from, read without importing wandb, and a probe of the server.

The key is never printed: results name where it came from (``WANDB_API_KEY``, a netrc file).
"""

from __future__ import annotations

import configparser
import json
import netrc
import os
from pathlib import Path
from urllib.parse import urlsplit

from evalport.domain.ports import CheckResult

DEFAULT_BASE_URL = "https://api.wandb.ai"
# The SDK's default host (a CoreWeave Forge proxy) and the W&B API host behind it share credentials.
DEFAULT_HOSTS = ("api.wandb.ai", "api.forge.coreweave.com")
LOGIN_HINT = "run `wandb login` (or set WANDB_API_KEY), or export with mode=offline and `wandb sync` later"


def base_url() -> str:
    """WANDB_BASE_URL, else the host ``wandb login --host`` saved, else W&B's cloud."""
    url = os.environ.get("WANDB_BASE_URL")
    if url:
        return url.rstrip("/")
    config_dir = Path(os.environ.get("WANDB_CONFIG_DIR") or Path.home() / ".config" / "wandb")
    parser = configparser.ConfigParser()
    try:
        parser.read(config_dir / "settings")
        url = parser.get("default", "base_url", fallback="")
    except (configparser.Error, OSError):
        url = ""
    return (url or DEFAULT_BASE_URL).rstrip("/")


def _netrc_path() -> Path:
    if os.environ.get("NETRC"):
        return Path(os.environ["NETRC"]).expanduser()
    for name in ("~/.netrc", "~/_netrc"):
        if Path(name).expanduser().exists():
            return Path(name).expanduser()
    return Path("~/.netrc").expanduser()


def find_credentials(url: str) -> tuple[str, str | None] | None:
    """(where the credentials come from, the API key if it is one) or None. The key is never shown."""
    if os.environ.get("WANDB_API_KEY"):
        return "WANDB_API_KEY", os.environ["WANDB_API_KEY"]
    if os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return "WANDB_IDENTITY_TOKEN_FILE", None
    host = urlsplit(url).netloc
    hosts = [host, *DEFAULT_HOSTS] if host in DEFAULT_HOSTS else [host]
    path = _netrc_path()
    try:
        entries = netrc.netrc(path)
    except (OSError, netrc.NetrcParseError):
        return None
    for candidate in hosts:
        found = entries.authenticators(candidate)
        if found and found[2]:
            return str(path), found[2]
    return None


def probe(url: str, key: str, source: str, timeout: float = 5.0) -> CheckResult:
    """Asks the server who the key belongs to; the key only travels in the Authorization header."""
    import base64
    import urllib.error
    import urllib.request

    token = base64.b64encode(f"api:{key}".encode()).decode()
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": "query { viewer { username entity } }"}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Basic {token}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):
            return CheckResult(
                False, f"wandb: {url} refused the key from {source} (HTTP {exc.code}); {LOGIN_HINT}"
            )
        return CheckResult(False, f"wandb: {url} answered HTTP {exc.code}; check WANDB_BASE_URL")
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        return CheckResult(
            False,
            f"wandb: cannot reach {url} within {timeout:g}s ({reason}); check WANDB_BASE_URL and the network",
        )
    viewer = (body.get("data") or {}).get("viewer") if isinstance(body, dict) else None
    if not viewer:
        return CheckResult(False, f"wandb: {url} did not accept the key from {source}; {LOGIN_HINT}")
    who = viewer.get("username") or viewer.get("entity") or "?"
    return CheckResult(
        True,
        f"wandb: {url} answers; logged in as {who} (credentials from {source})",
        {"url": url, "user": who},
    )
