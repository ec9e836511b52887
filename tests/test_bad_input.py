"""Bad input, as a careless delivery or a bad day brings it: every physical line of a file is
loaded, rejected with its own line number and whole text, or refused with a clear error;
nothing is lost silently and nothing loaded is erased by accident. Run alone: pytest -m attack."""

from __future__ import annotations

import shutil

import pytest

from orchestration.ingestion.csv_files import RawInputError
from orchestration.ingestion.load import load_raw_table
from orchestration.ingestion.tables import CARACTERISTICS, USERS
from tests.conftest import SAMPLE_DIR, query

pytestmark = pytest.mark.attack
YEARS = [2016]


def load(warehouse, table, path, **options):
    import duckdb

    with duckdb.connect(str(warehouse)) as conn:
        return load_raw_table(conn, table, [path], YEARS, **options)


def rejects(warehouse) -> list[tuple]:
    return query(
        warehouse,
        "select line_number, split_part(reason, ':', 1), raw_line from raw.rejected_rows order by 1",
    )


def lines_of(path):
    return path.read_bytes().decode("utf-8").split("\n")


def write(path, lines: list[str], encoding="utf-8", newline="\n") -> None:
    path.write_bytes(newline.join(lines).encode(encoding))


@pytest.fixture
def sample_copy(tmp_path):
    folder = tmp_path / "delivery"
    shutil.copytree(SAMPLE_DIR, folder)
    return folder


def test_an_unbalanced_quote_rejects_its_own_line_only(warehouse, sample_copy):
    path = sample_copy / "caracteristics.csv"
    lines = lines_of(path)
    lines[700] = lines[700].replace(",,M,", ',"Route de la Gare,M,')  # line 701: a quote never closed
    write(path, lines)
    result = load(warehouse, CARACTERISTICS, path)
    assert (result.loaded_rows, result.rejected_rows) == (2236, 1)
    ((line, reason, text),) = rejects(warehouse)
    assert (line, reason) == (701, "UNBALANCED QUOTE")
    assert text == lines[700]
    assert result.files[0]["data_lines"] == result.files[0]["loaded"] + result.files[0]["rejected"] == 2237
    # Line 701 is accident 201600000700: the accidents before and after it load.
    assert query(
        warehouse, "select count(*) from raw.caracteristics where Num_Acc in (201600000699, 201600000701)"
    ) == [(2,)]


def test_windows_1252_characters_round_trip_and_utf8_lines_stay_utf8(warehouse, sample_copy):
    path = sample_copy / "caracteristics.csv"
    data = path.read_bytes().split(b"\n")
    # Line 703 (accident 201600000702), written in Windows-1252 (’ and Œ are bytes 0x92 and
    # 0x8C) in a UTF-8 file.
    data[702] = data[702].replace("Allée des promenades".encode(), "Allée de l’Œuvre".encode("cp1252"))
    path.write_bytes(b"\n".join(data))
    result = load(warehouse, CARACTERISTICS, path)
    assert (result.loaded_rows, result.rejected_rows) == (2237, 0)
    assert query(warehouse, "select adr from raw.caracteristics where Num_Acc = 201600000702") == [
        ("Allée de l’Œuvre",)
    ]
    # The other lines are UTF-8 and read as such.
    assert query(warehouse, "select count(*) from raw.caracteristics where adr like '%Ã%'") == [(0,)]


def test_an_undecodable_line_is_rejected_and_the_rest_loads(warehouse, sample_copy):
    path = sample_copy / "users.csv"
    data = path.read_bytes().split(b"\n")
    data[4] = b"201600000003,1.0,1,\x81\x8d\x8f,2,0.0,11.0,0.0,0.0,0.0,1983,B02"  # undefined in Windows-1252
    path.write_bytes(b"\n".join(data))
    result = load(warehouse, USERS, path)
    assert (result.loaded_rows, result.rejected_rows) == (4997, 1)
    ((line, reason, text),) = rejects(warehouse)
    assert (line, reason) == (5, "NOT DECODABLE")
    assert text == "201600000003,1.0,1,\\x81\\x8d\\x8f,2,0.0,11.0,0.0,0.0,0.0,1983,B02"


def test_a_header_only_file_does_not_erase_a_loaded_year(warehouse, sample_copy):
    path = sample_copy / "users.csv"
    load(warehouse, USERS, path)
    write(path, lines_of(path)[:1] + [""])
    with pytest.raises(
        RawInputError,
        match=r"users: .*users.csv would shrink loaded years to less than half "
        r"\(2016: 4,998 rows loaded, 0 in the new files\)",
    ):
        load(warehouse, USERS, path)
    assert query(warehouse, "select count(*) from raw.users") == [(4998,)]
    # A much smaller delivery too; unless it is meant.
    write(path, lines_of(SAMPLE_DIR / "users.csv")[:1001])
    with pytest.raises(RawInputError, match="4,998 rows loaded, 1,000 in the new files"):
        load(warehouse, USERS, path)
    assert load(warehouse, USERS, path, allow_shrinking=True).loaded_rows == 1000
    assert query(warehouse, "select count(*) from raw.users") == [(1000,)]


def test_an_empty_file_is_refused_naming_it(warehouse, sample_copy):
    path = sample_copy / "users.csv"
    path.write_bytes(b"")
    with pytest.raises(RawInputError, match=r"users: .*users.csv is empty \(no header line\)"):
        load(warehouse, USERS, path)


@pytest.mark.parametrize(
    ("change", "line", "reason"),
    [
        ("cut", 4999, "MISSING COLUMNS"),  # the last line cut mid-way
        ("extra field", 10, "TOO MANY COLUMNS"),
        ("binary", 10, "NOT DECODABLE"),
        ("empty line", 10, "EMPTY LINE"),
    ],
)
def test_broken_lines_are_rejected_one_by_one(warehouse, sample_copy, change, line, reason):
    path = sample_copy / "users.csv"
    lines = lines_of(path)
    if change == "cut":
        lines = lines[:-1]
        lines[-1] = lines[-1][:20]
    elif change == "extra field":
        lines[line - 1] += ",surplus"
    elif change == "empty line":
        lines[line - 1] = ""
    path.write_bytes("\n".join(lines).encode())
    if change == "binary":
        data = path.read_bytes().split(b"\n")
        data[line - 1] = bytes(range(0x80, 0xA0)) + b"\x00\xff"
        path.write_bytes(b"\n".join(data))
    result = load(warehouse, USERS, path)
    assert (result.loaded_rows, result.rejected_rows) == (4997, 1)
    assert [(n, r) for n, r, _ in rejects(warehouse)] == [(line, reason)]


@pytest.mark.parametrize("variant", ["bom", "crlf", "semicolons"])
def test_harmless_variants_load_every_row(warehouse, sample_copy, variant):
    path = sample_copy / "users.csv"
    lines = lines_of(path)
    if variant == "semicolons":
        lines = [line.replace(",", ";") for line in lines]
    text = ("\r\n" if variant == "crlf" else "\n").join(lines)
    path.write_bytes(("\ufeff" if variant == "bom" else "").encode() + text.encode())
    result = load(warehouse, USERS, path)
    assert (result.loaded_rows, result.rejected_rows) == (4998, 0)


def test_a_one_megabyte_line_is_rejected_with_its_whole_text(warehouse, sample_copy):
    path = sample_copy / "caracteristics.csv"
    lines = lines_of(path)
    lines[9] = lines[9].replace(",,M,", "," + "x" * 1_000_000 + ",M,", 1) + ",surplus"
    write(path, lines)
    result = load(warehouse, CARACTERISTICS, path)
    assert (result.loaded_rows, result.rejected_rows) == (2236, 1)
    ((line, reason, text),) = rejects(warehouse)
    assert (line, len(text)) == (10, len(lines[9]))
    assert text == lines[9]


def test_duplicate_keys_load_and_the_dbt_unique_test_names_them(warehouse, sample_copy):
    """The loader keeps both lines (it cannot tell which is right); `unique_stg_accidents_num_acc`
    fails the build, naming the key."""
    path = sample_copy / "caracteristics.csv"
    lines = lines_of(path)
    lines.insert(5, lines[4])
    write(path, lines)
    result = load(warehouse, CARACTERISTICS, path)
    assert (result.loaded_rows, result.rejected_rows) == (2238, 0)
    assert query(
        warehouse, "select Num_Acc, count(*) from raw.caracteristics group by 1 having count(*) > 1"
    ) == [(201600000004, 2)]
