"""The Google Sheets sink's options; retries are spelled as in every remote sink."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from evalport.adapters.retry import RetryPolicy
from evalport.adapters.sinks.base import SinkConfig
from evalport.adapters.sinks.renamed_options import rename_options

GOOGLE_ENDPOINT = "https://sheets.googleapis.com"
DEFAULT_NAME = "evalport results"
MAX_RETRY_WAIT = 16.0
#: Old option names (documented until the options were unified) -> their names now.
RENAMED = {"retry_attempts": "retries"}


class GsheetsSinkConfig(SinkConfig):
    spreadsheet_id: str | None = Field(default=None, description="open this spreadsheet (from its URL)")
    spreadsheet_name: str | None = Field(
        default=None, description=f"open (or create) the spreadsheet with this name; default {DEFAULT_NAME!r}"
    )
    worksheet: str | None = Field(
        default=None, description="worksheet title (created if absent); default the first"
    )
    service_account_file: Path | None = Field(
        default=None, description="service-account JSON key; default $GOOGLE_APPLICATION_CREDENTIALS"
    )
    oauth_file: Path | None = Field(
        default=None, description="OAuth client-ID JSON, instead of a service account"
    )
    share_with: list[str] = Field(
        default_factory=list, description="e-mails given edit access to a new spreadsheet"
    )
    endpoint: str = Field(default=GOOGLE_ENDPOINT, description="API base URL (a proxy, or a test server)")
    timeout: float = Field(default=30.0, gt=0, description="seconds per HTTP request")
    retries: int = Field(default=5, ge=1, description="tries per request on 429/5xx")
    retry_wait: float = Field(
        default=1.0, ge=0, description=f"first backoff wait in seconds (doubles, max {MAX_RETRY_WAIT:g})"
    )
    retry_timeout: float = Field(default=90.0, gt=0, description="total seconds spent retrying one request")

    @model_validator(mode="before")
    @classmethod
    def _renamed(cls, values: Any) -> Any:
        return rename_options(values, RENAMED, "gsheets")

    @field_validator("share_with", mode="before")
    @classmethod
    def _split_emails(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [e.strip() for e in value.split(",") if e.strip()]
        return value

    @field_validator("spreadsheet_id")
    @classmethod
    def _id_from_url(cls, value: str | None) -> str | None:
        """A pasted spreadsheet URL is fine: keep the id between ``/d/`` and the next ``/``."""
        if value and "/d/" in value:
            return value.split("/d/", 1)[1].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
        return value

    @field_validator("endpoint")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"endpoint must be an http(s) URL, e.g. {GOOGLE_ENDPOINT}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _one_of_each(self) -> GsheetsSinkConfig:
        if self.spreadsheet_id and self.spreadsheet_name:
            raise ValueError("give spreadsheet_id or spreadsheet_name, not both")
        if self.service_account_file and self.oauth_file:
            raise ValueError("give service_account_file or oauth_file, not both")
        return self

    @property
    def lookup_name(self) -> str:
        """The name the spreadsheet is found (or created) by when no id is given."""
        return self.spreadsheet_name or DEFAULT_NAME

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(self.retries, self.retry_wait, MAX_RETRY_WAIT, self.retry_timeout)
