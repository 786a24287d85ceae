"""Verification results as Markdown and CSV (for reports and paper tables)."""

from __future__ import annotations

import csv
import io

from lptsim.verify.report import CheckResult, fmt


def markdown_table(results: list[CheckResult]) -> str:
    """A Markdown table with one row per check, its verdict and its note."""
    lines = ["| check | measured | predicted | criterion | verdict | note |", "|---|---|---|---|---|---|"]
    for r in results:
        verdict = ("PASS" if r.passed else "FAIL") + (" (claim refuted)" if r.refuted else "")
        cells = [r.name, fmt(r.measured), fmt(r.predicted), r.criterion, verdict, r.note]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def csv_table(results: list[CheckResult]) -> str:
    """The same rows as CSV text."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["name", "measured", "predicted", "criterion", "passed", "refuted", "note"])
    for r in results:
        writer.writerow([r.name, fmt(r.measured), fmt(r.predicted), r.criterion, r.passed, r.refuted, r.note])
    return buf.getvalue()
