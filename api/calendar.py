"""The holiday calendar the page derives its "when" flags from: the same file dbt loads.

``raw.holidays`` is loaded from ``holidays.csv`` of the local folder (every source takes it
from there but Kaggle, whose copy is the same file), and ``stg_holidays`` /
``int_accident_calendar`` derive ``is_public_holiday`` and ``is_holiday_eve`` from it. The
page does the same from this calendar, so a date means the same flags in both.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from pathlib import Path


@dataclass(frozen=True)
class HolidayCalendar:
    #: ISO date -> holiday name; two holidays on one day are joined by " / " (as stg_holidays).
    holidays: dict[str, str]
    #: Years the file covers: outside them the flags are unknown (NULL in dbt), not false.
    covered_years: list[int]


def read_holiday_calendar(path: Path) -> HolidayCalendar:
    """The calendar in ``path`` (columns ``ds``, ``holiday``); empty when the file is absent."""
    if not path.is_file():
        return HolidayCalendar(holidays={}, covered_years=[])
    names: dict[str, list[str]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            day = date.fromisoformat(row["ds"].strip()).isoformat()
            names.setdefault(day, []).append(row["holiday"].strip())
    holidays = {day: " / ".join(sorted(names[day])) for day in sorted(names)}
    return HolidayCalendar(holidays=holidays, covered_years=sorted({int(day[:4]) for day in holidays}))
