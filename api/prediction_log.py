"""Every prediction, logged before it is answered, for drift analysis.

The service appends CSV rows (a header, then one line per road user), one file per process
and day: ``<dir>/date=YYYY-MM-DD/predictions-<pid>.csv``. Several worker processes never
share a file, and an appended line is never rewritten. The lines are written by Arrow's CSV
writer, off the GIL: a 10,000-row batch is formatted in milliseconds, floats in full
(shortest round-trip form), "not recorded" as an empty field; DuckDB reads the files as
they are (``read_csv('data/predictions/date=*/*.csv', union_by_name = true)``).

**Group commit.** A request hands its lines to ``PredictionLog.append`` and waits; one
writer thread writes everything pending, ``fsync``s it, and releases every request it
covered at once, then waits at least ``commit_interval`` seconds before the next commit
(what arrives meanwhile shares it). A request is answered only after the ``fsync`` that
covers its lines: a prediction that cannot be logged is refused (503), never served unlogged.

**Compaction.** ``python -m api.prediction_log compact [--dir DIR]`` turns each closed day
(before today, UTC, and untouched for a minute) into one ``date=YYYY-MM-DD/predictions.parquet``
(rows ordered by time) and removes the day's CSV files, so that
``read_parquet('data/predictions/**/*.parquet')`` reads every closed day. It is idempotent:
rows are keyed by ``(request_id, request_row)``, so a compaction interrupted after writing
the Parquet file and before removing the CSV files does not count them twice when run
again. Per-request Parquet files written by earlier versions of the service are folded in.
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import os
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

log = logging.getLogger("baac.api")

COMPACTED_FILE = "predictions.parquet"
#: Columns every row has besides the features and the probabilities.
TIME_COLUMN = "logged_at"
KEY_COLUMNS = ("request_id", "request_row")
TEXT_COLUMNS = ("request_id", "model_name", "model_version")
INTEGER_COLUMNS = ("request_row", "predicted_severity")


class PredictionLogError(OSError):
    """The log could not be written (or not in time): the predictions must not be served."""


def day_directory(directory: Path, day: date) -> Path:
    return directory / f"date={day:%Y-%m-%d}"


def probability_column(label: str) -> str:
    return f"p_{label.replace(' ', '_')}"


def log_columns(feature_names: Sequence[str], class_labels: Sequence[str]) -> list[str]:
    return [
        TIME_COLUMN,
        "request_id",
        "request_row",
        *feature_names,
        "model_name",
        "model_version",
        "predicted_severity",
        *(probability_column(label) for label in class_labels),
    ]


#: Below this many rows, lines are formatted in Python (Arrow's fixed cost is larger).
ARROW_MIN_ROWS = 64


@cache
def _header(columns: tuple[str, ...]) -> bytes:
    batch = pa.RecordBatch.from_arrays([pa.array([], pa.null()) for _ in columns], names=list(columns))
    return _csv(batch, header=True)


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def _csv_lines_in_python(
    logged_at: datetime,
    request_id: str,
    inputs: np.ndarray,
    severities: np.ndarray,
    probabilities: np.ndarray,
    model_name: str,
    model_version: str,
) -> bytes:
    """The lines Arrow would write, for a few rows: floats in shortest round-trip form
    (``repr``), an empty field for NaN, text quoted."""
    stamp = logged_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%fZ")
    head = f"{stamp},{_quoted(request_id)},"
    model = f"{_quoted(model_name)},{_quoted(model_version)},"
    lines = []
    for i, (row, severity, proba) in enumerate(
        zip(inputs.tolist(), np.asarray(severities).tolist(), probabilities.tolist(), strict=True)
    ):
        features = ",".join("" if v != v else repr(v) for v in row)
        lines.append(f"{head}{i},{features},{model}{severity},{','.join(map(repr, proba))}\n")
    return "".join(lines).encode()


def _csv(batch: pa.RecordBatch, header: bool) -> bytes:
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(batch, sink, pa_csv.WriteOptions(include_header=header, quoting_style="needed"))
    return sink.getvalue().to_pybytes()


def format_rows(
    logged_at: datetime,
    request_id: str,
    feature_names: Sequence[str],
    inputs: np.ndarray,
    severities: np.ndarray,
    class_labels: Sequence[str],
    probabilities: np.ndarray,
    model_name: str,
    model_version: str,
) -> tuple[bytes, bytes]:
    """``(header, lines)``: one CSV line per road user (time, request, inputs with an empty
    field for "not recorded", model, predicted severity, each class's probability) and the
    header line a new file starts with."""
    n = len(inputs)
    header = _header(tuple(log_columns(feature_names, class_labels)))
    inputs = np.asarray(inputs, dtype=np.float64)
    probabilities = np.asarray(probabilities, dtype=np.float64)
    if n < ARROW_MIN_ROWS:
        lines = _csv_lines_in_python(
            logged_at, request_id, inputs, severities, probabilities, model_name, model_version
        )
        return header, lines
    instant = np.datetime64(logged_at.astimezone(UTC).replace(tzinfo=None), "us")
    text = pa.string()
    arrays = [
        pa.array(np.full(n, instant), type=pa.timestamp("us", tz="UTC")),
        pa.array([request_id] * n, type=text),
        pa.array(np.arange(n, dtype=np.int64)),
        *(pa.array(column, from_pandas=True) for column in np.asarray(inputs, dtype=np.float64).T),
        pa.array([model_name] * n, type=text),
        pa.array([model_version] * n, type=text),
        pa.array(np.asarray(severities, dtype=np.int64)),
        *(pa.array(column) for column in np.asarray(probabilities, dtype=np.float64).T),
    ]
    batch = pa.RecordBatch.from_arrays(arrays, names=log_columns(feature_names, class_labels))
    return header, _csv(batch, header=False)


@dataclass
class _Group:
    """The lines of every request waiting for the same commit."""

    lines: dict[date, list[bytes]] = field(default_factory=dict)
    #: The header line of each day's file, should the file be new.
    headers: dict[date, bytes] = field(default_factory=dict)
    done: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None


class PredictionLog:
    """Append-only CSV files with group commit (see the module docstring)."""

    def __init__(self, directory: Path, commit_interval: float = 0.002, wait_timeout: float = 10.0):
        self.directory = Path(directory)
        self.commit_interval = commit_interval
        self.wait_timeout = wait_timeout
        self._condition = threading.Condition()
        self._group = _Group()
        self._closing = False
        self._files: dict[date, io.BufferedWriter] = {}
        self._writer = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._writer.start()

    @property
    def pid_file_name(self) -> str:
        return f"predictions-{os.getpid()}.csv"

    def append(self, day: date, header: bytes, lines: bytes) -> None:
        """Return once ``lines`` are on disk (fsync); raise ``PredictionLogError`` otherwise.
        ``header`` starts the day's file if it is new."""
        with self._condition:
            if self._closing:
                raise PredictionLogError("The prediction log is closed")
            group = self._group
            group.lines.setdefault(day, []).append(lines)
            group.headers.setdefault(day, header)
            self._condition.notify()
        if not group.done.wait(self.wait_timeout):
            raise PredictionLogError(f"The prediction log did not commit within {self.wait_timeout:g} s")
        if group.error is not None:
            raise PredictionLogError(str(group.error)) from group.error

    def close(self, timeout: float = 5.0) -> None:
        """Commit what is pending, then stop the writer and close the files."""
        with self._condition:
            self._closing = True
            self._condition.notify()
        self._writer.join(timeout)

    def _run(self) -> None:
        last_commit = 0.0
        while True:
            with self._condition:
                while not self._group.lines and not self._closing:
                    self._condition.wait()
                if not self._group.lines and self._closing:
                    break
            # Let requests arriving now join this commit, at most one commit per interval.
            pause = last_commit + self.commit_interval - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            with self._condition:
                group, self._group = self._group, _Group()
            try:
                self._commit(group)
            except BaseException as error:  # every waiter learns it, and the writer goes on
                group.error = error
                self._close_files()
                log.exception("Could not write the prediction log under %s", self.directory)
            last_commit = time.monotonic()
            group.done.set()
        self._close_files()

    def _commit(self, group: _Group) -> None:
        written = []
        for day, chunks in group.lines.items():
            handle = self._file(day)
            if handle.tell() == 0:
                handle.write(group.headers[day])
            handle.write(b"".join(chunks))
            handle.flush()
            written.append(handle)
        for handle in written:
            os.fsync(handle.fileno())

    def _file(self, day: date) -> io.BufferedWriter:
        handle = self._files.get(day)
        if handle is None:
            for old in [d for d in self._files if d < day]:  # a new day: yesterday's is done
                self._files.pop(old).close()
            folder = day_directory(self.directory, day)
            folder.mkdir(parents=True, exist_ok=True)
            handle = self._files[day] = open(folder / self.pid_file_name, "ab")  # noqa: SIM115
        return handle

    def _close_files(self) -> None:
        for handle in self._files.values():
            try:
                handle.close()
            except OSError:
                pass
        self._files.clear()


def new_request_id() -> str:
    return uuid.uuid4().hex


# -- reading and compaction -----------------------------------------------------------------


def _column_type(name: str) -> pa.DataType:
    if name == TIME_COLUMN:
        return pa.timestamp("us", tz="UTC")
    if name in TEXT_COLUMNS:
        return pa.string()
    if name in INTEGER_COLUMNS:
        return pa.int64()
    return pa.float64()


def _csv_table(path: Path) -> pa.Table | None:
    """The complete lines of one CSV file (a last line cut short by a crash is left out)."""
    data = path.read_bytes()
    data = data[: data.rfind(b"\n") + 1]
    header = data[: data.find(b"\n")].decode()
    if not header or len(data) == len(header) + 1:
        return None
    names = next(csv.reader([header]))
    return pa_csv.read_csv(
        io.BytesIO(data),
        convert_options=pa_csv.ConvertOptions(
            column_types={name: _column_type(name) for name in names},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        ),
    )


def _legacy_frame(path: Path) -> pd.DataFrame:
    """A per-request Parquet file of earlier versions (no ``request_row``: its row order)."""
    frame = pd.read_parquet(path)
    if "request_row" not in frame:
        frame.insert(2, "request_row", np.arange(len(frame), dtype="int64"))
    return frame


def _normalised(frame: pd.DataFrame) -> pd.DataFrame:
    frame[TIME_COLUMN] = pd.to_datetime(frame[TIME_COLUMN], utc=True).astype("datetime64[us, UTC]")
    for name in INTEGER_COLUMNS:
        frame[name] = frame[name].astype("int64")
    return frame


def read_day(directory: Path, day: date) -> pd.DataFrame:
    """Every row logged on ``day``: compacted, appended (CSV) and legacy files, each row
    once, ordered by time."""
    folder = day_directory(Path(directory), day)
    frames = []
    for path in sorted(folder.glob("*.parquet")):
        frames.append(pd.read_parquet(path) if path.name == COMPACTED_FILE else _legacy_frame(path))
    for path in sorted(folder.glob("*.csv")):
        table = _csv_table(path)
        if table is not None:
            frames.append(table.to_pandas())
    frames = [_normalised(f) for f in frames if len(f)]
    if not frames:
        return pd.DataFrame()
    rows = pd.concat(frames, ignore_index=True)
    rows = rows.drop_duplicates(subset=list(KEY_COLUMNS), keep="first")
    return rows.sort_values([TIME_COLUMN, "request_id", "request_row"], kind="stable").reset_index(drop=True)


def logged_days(directory: Path) -> list[date]:
    days = []
    for folder in Path(directory).glob("date=*"):
        try:
            days.append(date.fromisoformat(folder.name.removeprefix("date=")))
        except ValueError:
            continue
    return sorted(days)


def read_prediction_log(directory: Path) -> pd.DataFrame:
    """Every logged row, closed days and today's alike (for tests and small analyses)."""
    frames = [read_day(directory, day) for day in logged_days(directory)]
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _fsync_directory(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def compact_day(directory: Path, day: date) -> int:
    """Fold the day's CSV (and legacy Parquet) files into ``predictions.parquet``; return
    the rows it holds. Nothing to fold: nothing is rewritten."""
    folder = day_directory(Path(directory), day)
    sources = [p for p in folder.iterdir() if p.suffix == ".csv" or p.name.endswith(".parquet")]
    sources = [p for p in sources if p.name != COMPACTED_FILE]
    if not sources:
        return 0
    rows = read_day(directory, day)
    target = folder / COMPACTED_FILE
    partial = folder / f".{COMPACTED_FILE}.{os.getpid()}.tmp"
    # The time column by hand: pyarrow reads a tz-aware column through a deprecated pandas path.
    utc = pa.array(rows[TIME_COLUMN].dt.tz_convert(None).to_numpy(), type=pa.timestamp("us", tz="UTC"))
    table = pa.Table.from_pandas(rows.drop(columns=[TIME_COLUMN]), preserve_index=False)
    table = table.add_column(0, TIME_COLUMN, utc)
    pq.write_table(table, partial)
    with open(partial, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(partial, target)  # atomic: readers see the old file or the new one
    _fsync_directory(folder)
    for path in sources:
        path.unlink()
    return len(rows)


def compact(directory: Path, today: date | None = None, quiet_seconds: float = 60.0) -> dict[date, int]:
    """Compact every closed day: before ``today`` (UTC) and with no file modified in the
    last ``quiet_seconds`` (a worker may still be committing its last lines of yesterday).
    Returns the rows of each day compacted."""
    today = today or datetime.now(UTC).date()
    now = time.time()
    done = {}
    for day in logged_days(directory):
        folder = day_directory(Path(directory), day)
        if day >= today:
            continue
        if any(now - p.stat().st_mtime < quiet_seconds for p in folder.glob("*.csv")):
            continue
        rows = compact_day(directory, day)
        if rows:
            done[day] = rows
    return done


def main(argv: list[str] | None = None) -> None:
    from ml.defaults import prediction_log_dir

    parser = argparse.ArgumentParser(prog="python -m api.prediction_log", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("compact", help="fold each closed day into one Parquet file")
    command.add_argument(
        "--dir",
        type=Path,
        default=prediction_log_dir(),
        help="the prediction log (default: BAAC_PREDICTION_LOG_DIR, else data/predictions)",
    )
    command.add_argument("--quiet-seconds", type=float, default=60.0)
    args = parser.parse_args(argv)
    for day, rows in compact(args.dir, quiet_seconds=args.quiet_seconds).items():
        print(f"{day}: {rows:,} rows in {day_directory(args.dir, day) / COMPACTED_FILE}")


if __name__ == "__main__":
    main()
