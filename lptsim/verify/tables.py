"""Verification results as Markdown and CSV (for reports and paper tables)."""

from __future__ import annotations

import csv
import io

from lptsim.verify.report import HEADER, CheckResult, rows


def markdown_table(results: list[CheckResult]) -> str:
    """A Markdown table with one row per check, its verdict, and a note column."""
    lines = ["| " + " | ".join((*HEADER, "note")) + " |", "|" + "---|" * (len(HEADER) + 1)]
    for r, cells in zip(results, rows(results), strict=True):
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in (*cells, r.note)) + " |")
    return "\n".join(lines) + "\n"


def csv_table(results: list[CheckResult]) -> str:
    """The same rows as CSV text."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([*HEADER, "passed", "note"])
    for r, cells in zip(results, rows(results), strict=True):
        writer.writerow([*cells, r.passed, r.note])
    return buf.getvalue()
