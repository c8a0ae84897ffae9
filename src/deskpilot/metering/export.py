"""CSV rendering of usage reports, shared by the HTTP export and the CLI."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from pydantic import BaseModel

from deskpilot.metering.schemas import GroupBy, UsageTotals

TOTAL_COLUMNS: tuple[str, ...] = tuple(UsageTotals.model_fields)


def summary_columns(group_by: Sequence[GroupBy]) -> list[str]:
    """Columns of a usage summary grouped by ``group_by`` (``bucket`` is ``bucket_start``)."""
    grouped = ["bucket_start" if g == "bucket" else g for g in group_by]
    return [*grouped, *TOTAL_COLUMNS]


def csv_text(rows: Iterable[BaseModel], columns: Sequence[str]) -> str:
    """Rows as CSV with a header; values in their JSON form (exact decimal strings)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        data = row.model_dump(mode="json")
        writer.writerow(["" if data.get(c) is None else data[c] for c in columns])
    return out.getvalue()
