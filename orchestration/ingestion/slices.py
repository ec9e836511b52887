"""Cutting a folder of BAAC files (Kaggle layout) into deliveries, for `make replay`.

A delivery keeps the accidents a rule selects (by accident year and month) and, from the
other tables, the rows of those accidents: a coherent set, as data.gouv.fr publishes one.
Lines are copied byte for byte (encoding, delimiter and quoting unchanged).
"""

from __future__ import annotations

import csv
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from orchestration.ingestion.csv_files import inspect_csv
from orchestration.ingestion.tables import RAW_TABLES

ACCIDENTS = RAW_TABLES["caracteristics"]
#: Tables whose rows belong to an accident (``Num_Acc``); the others are copied whole.
PER_ACCIDENT = [RAW_TABLES[name] for name in ("caracteristics", "places", "users", "vehicles")]


@dataclass(frozen=True)
class DeliveryPlan:
    """One delivery: the folder name it lands under, a label, and which accidents it holds."""

    name: str
    label: str
    first: tuple[int, int]  # (year, month), inclusive
    last: tuple[int, int]

    def keeps(self, year: int, month: int) -> bool:
        return self.first <= (year, month) <= self.last


def _rows(path: Path, table) -> tuple[str, list[str], list[tuple[str, list[str]]]]:
    """(encoding, header line, [(line, fields)]) of a one-line-per-row CSV file."""
    layout = inspect_csv(path, table)
    with path.open(encoding=layout.encoding, newline="") as handle:
        lines = handle.read().splitlines(keepends=True)
    parsed = [
        (line, next(csv.reader([line], delimiter=layout.delimiter))) for line in lines[1:] if line.strip()
    ]
    return layout.encoding, [lines[0], layout.header], parsed


def accident_months(source: Path) -> dict[str, tuple[int, int]]:
    """``{Num_Acc: (year, month)}`` of every accident of the source's accidents file."""
    _, (_, header), rows = _rows(source / ACCIDENTS.kaggle_file, ACCIDENTS)
    key, month = header.index("Num_Acc"), header.index("mois")
    return {fields[key]: (int(fields[key][:4]), int(float(fields[month]))) for _, fields in rows}


def plan_deliveries(source: Path, deliveries: int) -> list[DeliveryPlan]:
    """Several years: one delivery per year, in order. One year: ``deliveries`` growing
    versions of it (delivery k holds months 1 to 12k/deliveries), each replacing the last,
    as a republished year does."""
    years = sorted({year for year, _ in accident_months(source).values()})
    if len(years) > 1:
        return [DeliveryPlan(str(y), str(y), (y, 1), (y, 12)) for y in years]
    (year,) = years
    deliveries = max(1, min(deliveries, 12))
    plans = []
    for k in range(1, deliveries + 1):
        last_month = math.ceil(12 * k / deliveries)
        plans.append(DeliveryPlan(str(year), f"{year} months 1-{last_month}", (year, 1), (year, last_month)))
    return plans


def write_delivery(source: Path, dest: Path, plan: DeliveryPlan) -> dict[str, int]:
    """Write the delivery's files into ``dest`` (created); returns rows written per table."""
    dest.mkdir(parents=True)
    months = accident_months(source)
    kept = {acc for acc, (year, month) in months.items() if plan.keeps(year, month)}
    written = {}
    for table in RAW_TABLES.values():
        path = source / table.kaggle_file
        if table not in PER_ACCIDENT:
            shutil.copyfile(path, dest / table.kaggle_file)
            continue
        encoding, (header_line, header), rows = _rows(path, table)
        key = header.index("Num_Acc")
        selected = [line for line, fields in rows if fields[key] in kept]
        with (dest / table.kaggle_file).open("w", encoding=encoding, newline="") as handle:
            handle.write(header_line)
            handle.writelines(line if line.endswith("\n") else line + "\n" for line in selected)
        written[table.name] = len(selected)
    return written


def publish(
    source: Path, landing: Path, plan: DeliveryPlan, make: Callable = write_delivery
) -> dict[str, int]:
    """Land the delivery whole: written beside the landing folder's deliveries under a hidden
    name (the sensor ignores it), then renamed into place, replacing an earlier version."""
    landing.mkdir(parents=True, exist_ok=True)
    incoming, old, final = (
        landing / f".incoming-{plan.name}",
        landing / f".old-{plan.name}",
        landing / plan.name,
    )
    for leftover in (incoming, old):
        shutil.rmtree(leftover, ignore_errors=True)
    written = make(source, incoming, plan)
    if final.exists():
        final.rename(old)
    incoming.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    return written
