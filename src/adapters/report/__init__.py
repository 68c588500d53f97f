"""Comparison reports (HTML, Markdown) over many jobs, for the ``report`` command and the local sink."""

from __future__ import annotations

from evalport.adapters.report.build import (
    REPORT_FORMATS,
    format_for,
    render,
    results_from_summary,
    staged_links,
)

__all__ = ["REPORT_FORMATS", "format_for", "render", "results_from_summary", "staged_links"]
