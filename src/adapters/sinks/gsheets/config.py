"""The Google Sheets sink's options; retries are spelled as in every remote sink."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from pydantic import Field, field_validator, model_validator

from evalport.adapters.retry import RetryPolicy
from evalport.adapters.sinks.base import InertOptionWarning, SinkConfig
from evalport.adapters.sinks.remote import RemoteOptions, retries_option, retry_wait_option

GOOGLE_ENDPOINT = "https://sheets.googleapis.com"
DEFAULT_NAME = "evalport results"
LAUNCHER_NAME = "NeMo Evaluator Launcher Results"  # nemo-evaluator-launcher 0.2.6's default
MAX_RETRY_WAIT = 16.0


class GsheetsSinkConfig(SinkConfig, RemoteOptions):
    #: Old option names (documented until the options were unified) -> their names now.
    deprecated_options: ClassVar[Mapping[str, str]] = {"retry_attempts": "retries"}

    spreadsheet_id: str | None = Field(default=None, description="open this spreadsheet (from its URL)")
    spreadsheet_name: str | None = Field(
        default=None,
        description=f"open (or create) the spreadsheet with this name; default {DEFAULT_NAME!r} "
        f"({LAUNCHER_NAME!r} with compat: launcher)",
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
    retries: int = retries_option(5)
    retry_wait: float = retry_wait_option(1.0)
    retry_timeout: float = Field(
        default=90.0, gt=0, exclude=True, description="total seconds spent retrying one request"
    )

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
        """Both of a pair given (a launcher config always names its spreadsheet): as the launcher
        does, the id wins over the name and the service account over OAuth, with a warning."""
        if self.spreadsheet_id and self.spreadsheet_name:
            warnings.warn(
                "spreadsheet_name is ignored: spreadsheet_id names the spreadsheet",
                InertOptionWarning,
                stacklevel=2,
            )
        if self.service_account_file and self.oauth_file:
            warnings.warn(
                "oauth_file is ignored: service_account_file is used", InertOptionWarning, stacklevel=2
            )
        return self

    @property
    def lookup_name(self) -> str:
        """The name the spreadsheet is found (or created) by when no id is given."""
        return self.spreadsheet_name or (LAUNCHER_NAME if self.compat == "launcher" else DEFAULT_NAME)

    def retry_policy(
        self, max_wait: float = MAX_RETRY_WAIT, total_timeout: float | None = None
    ) -> RetryPolicy:
        """Waits up to ``MAX_RETRY_WAIT`` (the quota refills by the minute), ``retry_timeout`` in all."""
        return super().retry_policy(max_wait, self.retry_timeout if total_timeout is None else total_timeout)
