"""The careful path for a file DuckDB's reader cannot account for line by line.

DuckDB reads a clean file fast, but three things defeat it: an unbalanced quote swallows
every line after it into one reject; its latin-1 reader refuses the bytes 0x80-0x9F
(Windows-1252's ’ œ €) and fails the whole file; and it cuts a rejected line's text at
10,000 characters. For such a file the loader calls ``normalise``: each physical line is
decoded on its own (UTF-8, else Windows-1252, which is latin-1 for every letter the files
use), lines that cannot be rows (undecodable, an odd number of quotes, empty) are rejected
one by one, and the rest is written to a UTF-8 copy whose first column is the line's number
in the original file, so that every row and every reject keeps its line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from orchestration.ingestion.csv_files import CsvLayout

#: The column the copy adds: the line's number in the original file (the header is line 1).
LINE_COLUMN = "_line"
#: Encodings tried, in order, for each line.
LINE_ENCODINGS = ("utf-8", "cp1252")


@dataclass(frozen=True)
class RejectedLine:
    line_number: int
    reason: str
    text: str  # the line as decoded (bytes that decode in no encoding as \\x escapes)


@dataclass
class NormalisedFile:
    copy: CsvLayout  # the UTF-8 copy, with LINE_COLUMN first
    rejected: list[RejectedLine] = field(default_factory=list)


def decode_line(raw: bytes) -> str | None:
    """The line in the first encoding that decodes it, or None."""
    for encoding in LINE_ENCODINGS:
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def normalise(layout: CsvLayout, destination: Path) -> NormalisedFile:
    """Write a line-numbered UTF-8 copy of ``layout.path`` to ``destination``, rejecting the
    lines that cannot be rows, each with its own number and whole text."""
    rejected: list[RejectedLine] = []
    delimiter = layout.delimiter
    with layout.path.open("rb") as source, destination.open("w", encoding="utf-8", newline="\n") as copy:
        source.readline()  # the header, already read and checked by inspect_csv
        copy.write(delimiter.join([LINE_COLUMN, *layout.header]) + "\n")
        for number, raw in enumerate(source, start=2):
            raw = raw.rstrip(b"\r\n")
            text = decode_line(raw)
            if text is None:
                encodings = " or ".join(LINE_ENCODINGS)
                rejected.append(
                    RejectedLine(number, f"NOT DECODABLE: the line is neither {encodings}", _escaped(raw))
                )
            elif not text.strip():
                rejected.append(RejectedLine(number, "EMPTY LINE: a line with no fields", text))
            elif text.count('"') % 2:
                rejected.append(
                    RejectedLine(
                        number, "UNBALANCED QUOTE: a quote opened on this line is never closed", text
                    )
                )
            else:
                copy.write(f"{number}{delimiter}{text}\n")
    return NormalisedFile(
        copy=CsvLayout(
            path=destination,
            encoding="utf-8",
            delimiter=delimiter,
            header=[LINE_COLUMN, *layout.header],
            data_lines=layout.data_lines - len(rejected),
        ),
        rejected=rejected,
    )


def line_texts(path: Path, numbers: Iterable[int]) -> dict[int, str]:
    """The whole decoded text of the given lines of ``path`` (DuckDB keeps 10,000 characters)."""
    wanted, texts = set(numbers), {}
    if not wanted:
        return texts
    with path.open("rb") as source:
        for number, raw in enumerate(source, start=1):
            if number in wanted:
                raw = raw.rstrip(b"\r\n")
                texts[number] = decode_line(raw) or _escaped(raw)
                if len(texts) == len(wanted):
                    break
    return texts


def _escaped(raw: bytes) -> str:
    return raw.decode("utf-8", errors="backslashreplace")
