import pytest

from orchestration.ingestion import csv_files
from orchestration.ingestion.csv_files import RawInputError, detect_encoding, inspect_csv
from orchestration.ingestion.tables import RAW_TABLES, USERS


def test_detects_utf8_and_latin1(tmp_path):
    text = "Num_Acc,adr\n201300000005,50 Rue Bonne Espérance\n"
    (tmp_path / "utf8.csv").write_text(text, encoding="utf-8")
    (tmp_path / "latin1.csv").write_text(text, encoding="latin-1")
    assert detect_encoding(tmp_path / "utf8.csv") == "utf-8"
    assert detect_encoding(tmp_path / "latin1.csv") == "latin-1"


def test_utf8_character_split_across_chunks_is_still_utf8(tmp_path, monkeypatch):
    monkeypatch.setattr(csv_files, "_CHUNK", 4)
    (tmp_path / "f.csv").write_text("abcé" * 5, encoding="utf-8")  # é straddles boundaries
    assert detect_encoding(tmp_path / "f.csv") == "utf-8"


def test_header_of_the_sample_and_the_official_files_is_accepted():
    from tests.conftest import SAMPLE_DIR

    layout = inspect_csv(SAMPLE_DIR / "users.csv", USERS)
    assert layout.delimiter == ","
    assert layout.header[:3] == ["Num_Acc", "place", "catu"]


def test_semicolon_and_tab_delimiters_are_detected(tmp_path):
    header = list(RAW_TABLES["holidays"].columns)
    for delimiter in (";", "\t"):
        path = tmp_path / "holidays.csv"
        path.write_text(delimiter.join(header) + "\n2016-01-01" + delimiter + "New year\n")
        assert inspect_csv(path, RAW_TABLES["holidays"]).delimiter == delimiter


def test_missing_columns_are_named_with_the_file(tmp_path):
    path = tmp_path / "users.csv"
    path.write_text("Num_Acc,place,catu,sexe\n201600000001,1,1,2\n")
    with pytest.raises(RawInputError) as error:
        inspect_csv(path, USERS)
    message = str(error.value)
    assert str(path) in message
    assert "grav, trajet, secu, locp, actp, etatp, an_nais, num_veh" in message


def test_missing_file_is_named(tmp_path):
    with pytest.raises(RawInputError, match="file not found: .*users.csv"):
        inspect_csv(tmp_path / "users.csv", USERS)
