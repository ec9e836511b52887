"""Small checks on a CSV file before DuckDB reads it: encoding, delimiter, header."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from orchestration.ingestion.tables import RawTable

_DELIMITERS = (",", ";", "\t")
_CHUNK = 1 << 20


class RawInputError(ValueError):
    """A raw file that cannot be loaded; the message names the file and what is wrong."""


@dataclass(frozen=True)
class CsvLayout:
    path: Path
    encoding: str  # a name DuckDB's read_csv accepts
    delimiter: str
    header: list[str]
    #: Physical lines after the header: what loaded and rejected rows must add up to.
    data_lines: int = 0


def scan_file(path: Path) -> tuple[str, int]:
    """The file's encoding and its number of physical lines, in one pass over its bytes.

    Encoding: ``utf-8`` when the whole file decodes as UTF-8, else ``latin-1`` (the official
    files); a latin-1 accent can sit anywhere in a 60 MB file. A last line without a newline
    counts; a final newline does not start another line.
    """
    decoder_state, is_utf8, newlines, last = b"", True, 0, b"\n"
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            newlines += chunk.count(b"\n")
            last = chunk[-1:]
            if not is_utf8:
                continue
            data = decoder_state + chunk
            try:
                data.decode("utf-8")
                decoder_state = b""
            except UnicodeDecodeError as error:
                # A multi-byte character cut by the chunk boundary is not an error.
                if error.start >= len(data) - 3 and error.reason == "unexpected end of data":
                    decoder_state = data[error.start :]
                else:
                    is_utf8 = False
    lines = newlines + (0 if last == b"\n" else 1)
    return ("utf-8" if is_utf8 and not decoder_state else "latin-1"), lines


def detect_encoding(path: Path) -> str:
    """``utf-8`` when the whole file decodes as UTF-8, else ``latin-1``."""
    return scan_file(path)[0]


def inspect_csv(path: Path, table: RawTable) -> CsvLayout:
    """Check that ``path`` exists and its header holds every column of ``table``.

    Raises RawInputError naming the file and the missing columns.
    """
    if not path.is_file():
        raise RawInputError(f"{table.name}: file not found: {path}")
    encoding, lines = scan_file(path)
    with path.open(encoding=encoding, newline="") as handle:
        first_line = handle.readline().lstrip("\ufeff")
    if not first_line.strip():
        raise RawInputError(f"{table.name}: {path} is empty (no header line)")
    delimiter = max(_DELIMITERS, key=first_line.count)
    header = [name.strip() for name in next(csv.reader([first_line], delimiter=delimiter))]
    missing = [column for column in table.columns if column not in header]
    if missing:
        raise RawInputError(
            f"{table.name}: {path} lacks the expected column(s) {', '.join(missing)}; "
            f"its header is: {', '.join(header)}"
        )
    return CsvLayout(path=path, encoding=encoding, delimiter=delimiter, header=header, data_lines=lines - 1)
