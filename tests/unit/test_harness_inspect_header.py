"""The fast header read of Inspect logs agrees with inspect_ai's own reader, or steps aside."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from evalport.adapters.formats.inspect_header import fast_header
from evalport.adapters.formats.inspect_log import InspectLogReader
from evalport.domain.errors import ResultError

LOGS = sorted((Path(__file__).resolve().parents[1] / "data" / "harnesses" / "inspect").iterdir())


def _without_nones(value):
    if isinstance(value, dict):
        return {k: _without_nones(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nones(v) for v in value]
    return value


@pytest.mark.parametrize("log", LOGS, ids=[p.suffix + ":" + p.name[26:40] for p in LOGS])
def test_the_fast_header_holds_what_inspect_ai_reads(log):
    inspect_log = pytest.importorskip("inspect_ai.log")
    fast = fast_header(log)
    assert fast is not None
    slow = inspect_log.read_eval_log(str(log), header_only=True).model_dump(mode="json")
    for key in ("status", "results", "error", "stats"):
        assert _without_nones(fast.get(key)) == _without_nones(slow.get(key)), key
    assert fast["eval"]["task"] == slow["eval"]["task"] and fast["eval"]["model"] == slow["eval"]["model"]


def test_a_json_log_cut_short_in_its_samples_is_an_error_naming_it(tmp_path):
    log = next(p for p in LOGS if p.suffix == ".json")
    copy = tmp_path / log.name
    shutil.copy2(log, copy)
    data = copy.read_bytes()
    copy.write_bytes(data[: int(len(data) * 0.9)])
    with pytest.raises(ResultError, match="is truncated") as caught:
        InspectLogReader().read(copy)
    assert copy.name in str(caught.value)


def test_another_schema_version_steps_aside(tmp_path):
    log = tmp_path / "2026-01-01T00-00-00-00-00_t_abc.json"
    log.write_text('{"version": 1, "status": "success", "eval": {"task": "t"}, "samples": []}')
    assert fast_header(log) is None
