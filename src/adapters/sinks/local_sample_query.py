"""Reading the local sample store with DuckDB: rows, and the samples two models disagree on.

Used by ``evalport samples`` and by ``evalport report --samples``. DuckDB is the ``samples`` extra;
it is imported only here, when a query runs. What is printed is masked again (the store was
masked when written; a store another tool wrote may not be).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalport.adapters.sinks.local_samples import SAMPLES_DIR
from evalport.domain.errors import ConfigError, UsageError
from evalport.domain.secret_text import redact_text

#: The columns a row query shows, in order.
ROW_COLUMNS = ("job_id", "model", "task", "sample_id", "score", "input", "target", "output")


@dataclass(frozen=True)
class Disagreement:
    """One sample two models scored differently (their headline ``score``)."""

    task: str
    sample_id: str
    input: str
    target: str
    score_a: float | None
    score_b: float | None
    output_a: str
    output_b: str


@dataclass(frozen=True)
class TaskDisagreements:
    """Per task and pair of models: how many samples both have, how many differ, the first ones."""

    task: str
    model_a: str
    model_b: str
    shared: int
    differ: int
    rows: tuple[Disagreement, ...] = field(default_factory=tuple)


def _duckdb() -> Any:
    try:
        import duckdb
    except ImportError:
        raise ConfigError("reading the sample store needs duckdb: pip install 'evalport[samples]'") from None
    return duckdb


class SampleStore:
    """The store under ``<output_dir>/samples`` (the local sink's), as one DuckDB view ``samples``."""

    #: The columns :meth:`rows` returns.
    columns = ROW_COLUMNS

    def __init__(self, output_dir: Path) -> None:
        self.output_dir = Path(output_dir).expanduser()
        self.root = self.output_dir / SAMPLES_DIR

    @property
    def exists(self) -> bool:
        return self.root.is_dir() and any(self.root.glob("*/*/*.parquet"))

    def _connect(self) -> Any:
        if not self.exists:
            raise UsageError(
                f"no sample store in {self.output_dir} (no {SAMPLES_DIR}/*/*/*.parquet); export with "
                "--dest local first, or name its folder with --output-dir"
            )
        con = _duckdb().connect()
        pattern = str(self.root / "*" / "*" / "*.parquet").replace("'", "''")
        con.execute(
            "CREATE VIEW samples AS SELECT * FROM read_parquet("
            f"'{pattern}', hive_partitioning = true, hive_types_autocast = false)"
        )
        return con

    @staticmethod
    def _filters(ids: Sequence[str], task: str | None, where: str | None) -> tuple[str, list[Any]]:
        clauses, params = [], []
        if ids:
            # A job id (``<invocation>.<n>``) names that job; anything else is an invocation or job prefix.
            tests = []
            for i in ids:
                if "." in i:
                    tests.append("job_id = ?")
                    params.append(i)
                else:
                    tests.append("starts_with(invocation_id, ?) OR starts_with(job_id, ?)")
                    params += [i, i]
            clauses.append("(" + " OR ".join(tests) + ")")
        if task:
            clauses.append("task = ?")
            params.append(task)
        if where:
            clauses.append(f"({where})")
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def _run(self, con: Any, sql: str, params: list[Any]) -> list[tuple]:
        duckdb = _duckdb()
        try:
            return con.execute(sql, params).fetchall()
        except duckdb.Error as exc:
            first = str(exc).splitlines()[0]
            raise UsageError(f"the sample query failed: {first} (the columns: docs/sinks/local.md)") from None

    def rows(
        self, ids: Sequence[str] = (), *, task: str | None = None, where: str | None = None, limit: int = 50
    ) -> tuple[list[tuple], int]:
        """(the first ``limit`` rows as ROW_COLUMNS, how many match in all)."""
        con = self._connect()
        cond, params = self._filters(ids, task, where)
        (total,) = self._run(con, f"SELECT count(*) FROM samples{cond}", params)[0]
        cols = ", ".join(ROW_COLUMNS)
        sql = f"SELECT {cols} FROM samples{cond} ORDER BY model, task, job_id, sample_id LIMIT {int(limit)}"
        rows = self._run(con, sql, params)
        return [tuple(_masked(v) for v in row) for row in rows], int(total)

    def models(self, ids: Sequence[str] = ()) -> list[str]:
        con = self._connect()
        cond, params = self._filters(ids, None, None)
        return [m for (m,) in self._run(con, f"SELECT DISTINCT model FROM samples{cond} ORDER BY 1", params)]

    def disagreements(
        self,
        model_a: str,
        model_b: str,
        ids: Sequence[str] = (),
        *,
        task: str | None = None,
        where: str | None = None,
        limit: int = 20,
    ) -> list[TaskDisagreements]:
        """Per task both models have samples of: the samples (same task and sample id) whose headline
        scores differ. A model with several jobs of one task counts its mean score per sample."""
        con = self._connect()
        cond, params = self._filters(ids, task, where)
        base = (
            "SELECT model, task, sample_id, avg(score) AS score, any_value(input) AS input, "
            "any_value(target) AS target, any_value(output) AS output "
            f"FROM samples{cond} GROUP BY model, task, sample_id"
        )
        pairs = (
            f"WITH s AS ({base}) SELECT a.task, a.sample_id, a.input, a.target, a.score, b.score, "
            "a.output, b.output, a.score IS DISTINCT FROM b.score AS differ "
            "FROM s a JOIN s b ON a.task = b.task AND a.sample_id = b.sample_id "
            "WHERE a.model = ? AND b.model = ? ORDER BY a.task, a.sample_id"
        )
        found = self._run(con, pairs, [*params, model_a, model_b])
        out: dict[str, dict[str, Any]] = {}
        for task_name, sample_id, text, target, score_a, score_b, out_a, out_b, differ in found:
            entry = out.setdefault(task_name, {"shared": 0, "differ": 0, "rows": []})
            entry["shared"] += 1
            if differ:
                entry["differ"] += 1
                if len(entry["rows"]) < limit:
                    entry["rows"].append(
                        Disagreement(
                            task_name,
                            _masked(sample_id),
                            _masked(text),
                            _masked(target),
                            score_a,
                            score_b,
                            _masked(out_a),
                            _masked(out_b),
                        )
                    )
        return [
            TaskDisagreements(t, model_a, model_b, e["shared"], e["differ"], tuple(e["rows"]))
            for t, e in sorted(out.items())
        ]


def _masked(value: Any) -> Any:
    return redact_text(value) if isinstance(value, str) else value


def report_pairs(models: Sequence[str], baseline: str | None) -> list[tuple[str, str]]:
    """Which pairs a report compares: the baseline (else the first model) against each other model."""
    if len(models) < 2:
        return []
    anchor = baseline if baseline is not None and baseline in models else models[0]
    return [(anchor, m) for m in models if m != anchor]
