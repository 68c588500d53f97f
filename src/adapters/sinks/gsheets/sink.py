"""The Google Sheets sink: one row per job in a shared spreadsheet, upserted by Job ID.

An export costs a handful of requests whatever the sheet's size: the spreadsheet's metadata,
one ``values:batchGet`` for the header row and the Job ID column, one more for the rows of jobs
being re-exported (and the rows just below the table), an explicit grid resize when rows or
columns are needed, and one ``values:batchUpdate`` carrying the header's new cells and every
changed or new row whole. Columns a person added are never written. The planning is pure and
lives in :mod:`.plan` (what to write) and :mod:`.layout` (ranges, cells, columns).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from evalport.adapters.retry import RetryPolicy
from evalport.adapters.sinks.base import BaseSink
from evalport.adapters.sinks.gsheets import layout
from evalport.adapters.sinks.gsheets import plan as planning
from evalport.adapters.sinks.gsheets.api import SheetsApi, connect
from evalport.adapters.sinks.gsheets.auth import credentials_file, fetch_token, load_credentials
from evalport.adapters.sinks.gsheets.config import GsheetsSinkConfig
from evalport.adapters.sinks.gsheets.errors import SheetsError
from evalport.domain.ports import CheckResult, ExportItem, SinkCapabilities
from evalport.domain.report import Outcome, Status

log = logging.getLogger(__name__)

#: ``doctor`` answers within a few seconds: fewer, shorter tries than an export.
CHECK_RETRY = RetryPolicy(attempts=2, initial_wait=0.2, max_wait=1.0, total_timeout=5.0)
CHECK_TIMEOUT = 5.0


@dataclass
class _Target:
    spreadsheet_id: str
    url: str
    title: str
    sheet_id: int
    rows: int
    cols: int


class GsheetsSink(BaseSink):
    """Google Sheets: one row per job, metrics as columns, updated in place."""

    name: ClassVar[str] = "gsheets"
    extra: ClassVar[str | None] = "gsheets"
    requires: ClassVar[tuple[str, ...]] = ("gspread",)
    Config = GsheetsSinkConfig
    capabilities = SinkCapabilities(artifacts=False, logs=False, multi_task=False, non_finite_values=True)
    config: GsheetsSinkConfig

    def __init__(self, config: GsheetsSinkConfig | dict[str, Any] | None = None) -> None:
        super().__init__(config)
        self._api: SheetsApi | None = None
        self._spreadsheet_id: str | None = self.config.spreadsheet_id
        self._url: str | None = None

    def api(self) -> SheetsApi:
        """The connected API (made once), with a fresh Destination: each export tries it anew."""
        if self._api is None:
            credentials = load_credentials(self.config)
            self._api = connect(
                credentials, self.config.endpoint, self.config.timeout, self.config.retry_policy()
            )
        self._api.new_export()
        return self._api

    def describe(self) -> str:
        if self._url:
            return self._url
        if self._spreadsheet_id:
            return f"https://docs.google.com/spreadsheets/d/{self._spreadsheet_id}"
        return f"spreadsheet {self.config.lookup_name!r} (created on first export)"

    # -- opening ------------------------------------------------------------------------------------
    def _open(self, api: SheetsApi, *, create: bool = True) -> _Target | None:
        """The spreadsheet and the worksheet, with a fresh grid size.

        Both are created (the spreadsheet shared) when absent, unless ``create`` is False: then
        None says there is nothing to find.
        """
        if self._spreadsheet_id is None:
            found = api.find(self.config.lookup_name)
            if found is None:
                if not create:
                    return None
                found = api.create(self.config.lookup_name)
                for email in self.config.share_with:
                    api.share(found, email)
            self._spreadsheet_id = found
        meta = api.metadata(self._spreadsheet_id)
        self._url = (
            meta.get("spreadsheetUrl") or f"https://docs.google.com/spreadsheets/d/{self._spreadsheet_id}"
        )
        sheets = [s.get("properties", {}) for s in meta.get("sheets", [])]
        props = self._pick_sheet(sheets)
        if props is None:
            if not create:
                return None
            props = api.add_worksheet(self._spreadsheet_id, str(self.config.worksheet))
        grid = props.get("gridProperties", {})
        return _Target(
            self._spreadsheet_id,
            self._url,
            props["title"],
            props["sheetId"],
            int(grid.get("rowCount", 0)),
            int(grid.get("columnCount", 0)),
        )

    def _pick_sheet(self, sheets: list[dict[str, Any]]) -> dict[str, Any] | None:
        wanted = self.config.worksheet
        if not wanted:
            if not sheets:
                raise SheetsError(f"spreadsheet {self._url} has no worksheet")
            return sheets[0]
        for match in (lambda t: t == wanted, lambda t: t.casefold() == wanted.casefold()):
            for props in sheets:
                if match(props.get("title", "")):
                    return props
        return None

    # -- exporting ----------------------------------------------------------------------------------
    def export(self, items: Sequence[ExportItem]) -> list[Outcome]:
        if not items:
            return []
        try:
            api = self.api()
            target = self._open(api)
            assert target is not None
            outcomes = self._upsert(api, target, items)
        except SheetsError as exc:
            where = self.describe()
            return [
                Outcome(i.result.job_id, self.destination, Status.FAILED, f"{exc} [{where}]") for i in items
            ]
        return [outcomes[i.result.job_id] for i in items]

    def still_holds(self, located: Mapping[str, str]) -> set[str]:
        """The job ids whose rows the worksheet still holds, of those the ledger says were written.

        ``located`` maps job id -> the row link this sink returned. Two reads (the spreadsheet's
        metadata, then the header and Job ID column in one batchGet); nothing is created. Any
        failure to read holds nothing: exporting again is the safe answer, and says what is wrong.
        """
        if not located:
            return set()
        try:
            api = self.api()
            target = self._open(api, create=False)
            if target is None:
                return set()
            table = self._read_table(api, target)
        except Exception:  # an unreadable destination confirms nothing
            log.debug("gsheets: could not confirm the ledger's rows", exc_info=True)
            return set()
        return {job_id for job_id in located if job_id in table.job_rows}

    def _read_table(self, api: SheetsApi, t: _Target) -> planning.Table:
        """The header row and the Job ID column: one batchGet (two if someone moved Job ID)."""
        ranges = [layout.header_range(t.title)]
        guess = layout.JOB_ID_COLUMN
        if t.cols > guess and t.rows >= 2:
            ranges.append(layout.column_range(t.title, guess))
        got = api.batch_get(t.spreadsheet_id, ranges)
        header = got[0][0] if got and got[0] else []
        index = layout.header_index(header)
        if header and layout.JOB_ID not in index:
            raise SheetsError(
                f"worksheet {t.title!r} has a header row without a {layout.JOB_ID!r} column, so evalport "
                "cannot tell its rows apart; choose another worksheet (-o export.gsheets.worksheet=NAME)"
            )
        column = got[1] if len(got) > 1 else []
        job_col = index.get(layout.JOB_ID, guess)
        if job_col != guess:
            column = api.batch_get(t.spreadsheet_id, [layout.column_range(t.title, job_col)])[0]
        return planning.Table.read(header, column)

    def _read_rows(self, api: SheetsApi, t: _Target, reads: planning.RowReads) -> dict[int, list[Any]]:
        """Row number -> cells, for the rows the plan needs, in one batchGet (none when none are needed)."""
        ranges = [layout.a1(t.title, a, 0, b, reads.last_col) for a, b in reads.spans]
        if reads.below is not None:
            ranges.append(layout.a1(t.title, reads.below, 0, None, reads.last_col))
        got = api.batch_get(t.spreadsheet_id, ranges) if ranges else []
        starts = [a for a, _ in reads.spans] + ([reads.below] if reads.below is not None else [])
        stored: dict[int, list[Any]] = {}
        for start, values in zip(starts, got, strict=False):
            for offset, row in enumerate(values):
                stored[start + offset] = row
        return stored

    def _upsert(self, api: SheetsApi, t: _Target, items: Sequence[ExportItem]) -> dict[str, Outcome]:
        table = self._read_table(api, t)
        launcher = self.config.compat == "launcher"
        records = [layout.record_for(i.result, launcher) for i in items]
        stored = self._read_rows(api, t, planning.rows_to_read(table, records, (t.rows, t.cols), launcher))
        plan = planning.plan_export(table, stored, records, launcher)
        failed = self._send(api, t, plan)
        outcomes: dict[str, Outcome] = {}
        for job_id, status in plan.statuses.items():
            if job_id in failed:
                reason = f"{failed[job_id]} [{t.url}]"
                outcomes[job_id] = Outcome(job_id, self.destination, Status.FAILED, reason)
            else:
                row = plan.rows_of[job_id]
                location = f"{t.url}#gid={t.sheet_id}&range={row}:{row}"
                outcomes[job_id] = Outcome(job_id, self.destination, status, location=location)
        return outcomes

    @staticmethod
    def _send(api: SheetsApi, t: _Target, plan: planning.ExportPlan) -> dict[str, str]:
        """Grow the grid, then write in as few batchUpdates as the size limit allows.

        Returns job id -> reason for jobs whose rows were not written. Each request carries whole
        rows; once a request failed nothing more is sent (later rows could depend on its header),
        and the jobs of the requests after it are "not tried".
        """
        batches = planning.batches(planning.writes(plan, t.title))
        if not batches:
            return {}
        if plan.needed_rows > t.rows or plan.needed_cols > t.cols:
            try:
                api.resize(
                    t.spreadsheet_id, t.sheet_id, max(t.rows, plan.needed_rows), max(t.cols, plan.needed_cols)
                )
            except SheetsError as exc:
                return {j: str(exc) for batch in batches for w in batch for j in w.job_ids}
        failed: dict[str, str] = {}
        for n, batch in enumerate(batches):
            data = [{"range": w.range, "majorDimension": "ROWS", "values": w.values} for w in batch]
            try:
                api.write(t.spreadsheet_id, data)
            except SheetsError as exc:
                failed.update({j: str(exc) for w in batch for j in w.job_ids})
                api.dest.mark_down(str(exc))  # a refused request too: later rows may need its header
                later = {j: api.dest.not_tried for rest in batches[n + 1 :] for w in rest for j in w.job_ids}
                failed.update(later)
                break
        return failed

    # -- doctor -------------------------------------------------------------------------------------
    def check(self) -> CheckResult:
        """Credentials readable, a token obtained, the spreadsheet reachable; a few seconds at most."""
        started = time.monotonic()
        try:
            path, origin = credentials_file(self.config)
            credentials = load_credentials(self.config)
            fetch_token(credentials)
            timeout = min(self.config.timeout, CHECK_TIMEOUT)
            api = connect(credentials, self.config.endpoint, timeout, CHECK_RETRY)
            if self._spreadsheet_id is None:
                found = api.find(self.config.lookup_name)
                if found is None:
                    return CheckResult(
                        True,
                        f"gsheets: credentials from {origin} ({path}) work; spreadsheet "
                        f"{self.config.lookup_name!r} will be created on the first export",
                    )
                self._spreadsheet_id = found
            meta = api.metadata(self._spreadsheet_id)
        except SheetsError as exc:
            return CheckResult(False, f"gsheets: {exc}")
        self._url = meta.get("spreadsheetUrl") or self.describe()
        titles = [s.get("properties", {}).get("title") for s in meta.get("sheets", [])]
        took = time.monotonic() - started
        return CheckResult(
            True,
            f"gsheets: {self._url} is reachable with credentials from {origin} "
            f"(worksheets: {', '.join(map(str, titles))}; {took:.1f}s)",
            {"url": self._url, "worksheets": titles},
        )

    def close(self) -> None:
        if self._api is not None:
            session = getattr(self._api.http, "session", None)
            if session is not None:
                session.close()
            self._api = None
