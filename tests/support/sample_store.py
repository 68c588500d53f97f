"""Reading the local sink's sample store back as a user would: DuckDB over the hive-partitioned files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from evalport.testing.sink_contract import StoredSample


def query(out_dir: Path, sql: str, *params: Any) -> list[tuple]:
    """``sql`` over ``<out_dir>/samples`` as docs/sinks/local.md says to read it (the view ``samples``)."""
    import duckdb

    con = duckdb.connect()
    glob = str(out_dir / "samples" / "**" / "*.parquet")
    con.execute(f"CREATE VIEW samples AS SELECT * FROM read_parquet('{glob}', hive_partitioning = true)")
    return con.execute(sql, params).fetchall()


def stored_samples(out_dir: Path, job_id: str) -> list[StoredSample]:
    """Every row the store holds for ``job_id`` (the contract's ``read_samples``)."""
    if not (out_dir / "samples").is_dir() or not any((out_dir / "samples").rglob("*.parquet")):
        return []
    rows = query(
        out_dir,
        "SELECT sample_id, map_entries(scores), map_entries(labels), input, target, output, metadata "
        "FROM samples WHERE job_id = ?",
        job_id,
    )
    out = []
    for sample_id, numbers, labels, *text in rows:
        scores = {e["key"]: e["value"] for e in [*numbers, *labels]}
        out.append(StoredSample(sample_id, scores, "\n".join(text)))
    return out
