"""Google credentials for the Sheets sink: a service-account key, or an OAuth client ID.

Messages name the file and where its path came from, never its content.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from evalport.adapters.sinks.gsheets.config import GsheetsSinkConfig
from evalport.adapters.sinks.gsheets.errors import SheetsError, google_message

SCOPES = ("https://www.googleapis.com/auth/spreadsheets", "https://www.googleapis.com/auth/drive")


def credentials_file(config: GsheetsSinkConfig) -> tuple[Path, str]:
    """(path, where it came from) of the credentials this sink uses."""
    if config.service_account_file:
        return config.service_account_file.expanduser(), "service_account_file"
    if config.oauth_file:
        return config.oauth_file.expanduser(), "oauth_file"
    env = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if env:
        return Path(env).expanduser(), "GOOGLE_APPLICATION_CREDENTIALS"
    raise SheetsError(
        "no Google credentials: set -o export.gsheets.service_account_file=KEY.json "
        "(or GOOGLE_APPLICATION_CREDENTIALS, or oauth_file); see docs/sinks/gsheets.md"
    )


def load_credentials(config: GsheetsSinkConfig) -> Any:
    """Google credentials from the file :func:`credentials_file` names; SheetsError says what is wrong."""
    path, origin = credentials_file(config)
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SheetsError(f"credentials file {path} (from {origin}) does not exist") from None
    except OSError as exc:
        raise SheetsError(f"cannot read credentials file {path} (from {origin}): {exc.strerror}") from None
    except ValueError:
        raise SheetsError(
            f"credentials file {path} (from {origin}) is not JSON; download the key again"
        ) from None
    if not isinstance(info, dict):
        raise SheetsError(f"credentials file {path} (from {origin}) is not a Google credentials file")
    kind = info.get("type")
    try:
        if kind == "service_account":
            from google.oauth2.service_account import Credentials

            return Credentials.from_service_account_info(info, scopes=list(SCOPES))
        if kind == "authorized_user":
            from google.oauth2.credentials import Credentials as UserCredentials

            return UserCredentials.from_authorized_user_info(info, list(SCOPES))
        if "installed" in info or "web" in info:
            return _oauth_flow(path)
    except (ValueError, KeyError) as exc:
        field = exc.args[0] if isinstance(exc, KeyError) else "its fields"
        raise SheetsError(f"credentials file {path} is incomplete ({field}); download it again") from None
    raise SheetsError(
        f"credentials file {path} (from {origin}) is neither a service-account key nor "
        "an OAuth client file; see docs/sinks/gsheets.md"
    )


def _oauth_flow(client_file: Path) -> Any:
    """OAuth client ID: reuse gspread's stored user token, else run its browser flow once."""
    from gspread.auth import (
        DEFAULT_AUTHORIZED_USER_FILENAME,
        load_credentials,
        local_server_flow,
        store_credentials,
    )

    creds = load_credentials(filename=DEFAULT_AUTHORIZED_USER_FILENAME)
    if creds is None:
        config = json.loads(client_file.read_text(encoding="utf-8"))
        creds = local_server_flow(config, list(SCOPES))
        store_credentials(creds, filename=DEFAULT_AUTHORIZED_USER_FILENAME)
    return creds


def fetch_token(creds: Any) -> None:
    """Obtains an access token within a few seconds (for ``doctor``); SheetsError when refused."""
    from google.auth.exceptions import GoogleAuthError
    from google.auth.transport.requests import Request

    base = Request()

    def quick(*args: Any, **kwargs: Any) -> Any:
        kwargs["timeout"] = 5
        return base(*args, **kwargs)

    try:
        creds.refresh(quick)
    except GoogleAuthError as exc:
        raise SheetsError(f"could not obtain an access token: {google_message(exc)}") from None
