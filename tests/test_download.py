"""Downloads over real HTTP from a loopback server; the data.gouv.fr path on the real 2013 files."""

from __future__ import annotations

import hashlib
import shutil

import pytest
import yaml

from orchestration.ingestion.download import DownloadError, download
from orchestration.ingestion.tables import RAW_TABLES
from orchestration.resources import RawSourceResource
from tests.conftest import SAMPLE_DIR, query
from tests.test_raw_assets import materialize_raw


@pytest.fixture
def served(tmp_path, http_server_for):
    root = tmp_path / "served"
    root.mkdir()
    shutil.copy(SAMPLE_DIR / "holidays.csv", root / "holidays.csv")
    return http_server_for(root), (root / "holidays.csv").read_bytes()


def test_download_writes_the_file_reports_progress_and_uses_the_cache(served, tmp_path):
    server, body = served
    lines: list[str] = []
    dest = tmp_path / "cache" / "holidays.csv"
    sha = hashlib.sha256(body).hexdigest()
    assert (
        download(f"{server.base_url}/holidays.csv", dest, sha256=sha, size=len(body), progress=lines.append)
        == dest
    )
    assert dest.read_bytes() == body
    assert any("100%" in line for line in lines)
    assert lines[-1].startswith("holidays.csv: downloaded 3,527 bytes")
    # Second call: served from the cache, no request.
    download(f"{server.base_url}/holidays.csv", dest, sha256=sha, progress=lines.append)
    assert server.requests == ["/holidays.csv"]
    assert lines[-1] == f"holidays.csv: cached at {dest}"


def test_corrupt_cached_copy_is_downloaded_again(served, tmp_path):
    server, body = served
    dest = tmp_path / "holidays.csv"
    dest.write_bytes(body[:100])
    download(f"{server.base_url}/holidays.csv", dest, sha256=hashlib.sha256(body).hexdigest())
    assert dest.read_bytes() == body and len(server.requests) == 1


def test_checksum_mismatch_fails_and_leaves_nothing(served, tmp_path):
    server, _ = served
    dest = tmp_path / "holidays.csv"
    with pytest.raises(DownloadError, match="SHA-256 .* does not match the expected 00ff"):
        download(f"{server.base_url}/holidays.csv", dest, sha256="00ff")
    assert list(tmp_path.glob("holidays.csv*")) == []


def test_size_mismatch_and_http_errors_name_the_url(served, tmp_path):
    server, _ = served
    with pytest.raises(DownloadError, match=r"holidays.csv: received 3,527 bytes, expected 10"):
        download(f"{server.base_url}/holidays.csv", tmp_path / "h.csv", size=10)
    with pytest.raises(DownloadError, match=r"/nothing.csv: HTTP 404"):
        download(f"{server.base_url}/nothing.csv", tmp_path / "n.csv")


def test_shipped_manifest_lists_every_year_and_table():
    from orchestration import settings
    from orchestration.ingestion.sources import read_datagouv_manifest

    entries = read_datagouv_manifest(settings.datagouv_manifest_path())
    stems = {t.datagouv_stem for t in RAW_TABLES.values() if t.datagouv_stem}
    assert set(entries) == {(int(y), s) for y in settings.ACCIDENT_YEARS for s in stems}
    assert all(e.url.startswith("https://www.data.gouv.fr/") for e in entries.values())


def test_real_2013_files_load_through_the_datagouv_path(
    warehouse, tmp_path, http_server_for, shared_baac_dir
):
    """The shipped manifest's 2013 entries (real checksums), pointed at a loopback mirror."""
    from orchestration import settings

    manifest = yaml.safe_load(settings.datagouv_manifest_path().read_text())
    server = http_server_for(shared_baac_dir / "datagouv_yearly" / "2013")
    for entry in manifest["years"][2013].values():
        entry["url"] = f"{server.base_url}/{entry['file_name']}"
    mirror = tmp_path / "mirror.yml"
    mirror.write_text(yaml.safe_dump(manifest))
    source = RawSourceResource(
        kind="datagouv",
        datagouv_manifest=str(mirror),
        download_dir=str(tmp_path / "downloads"),
        local_dir=str(SAMPLE_DIR),
    )
    result = materialize_raw(
        warehouse, ["2013"], {"caracteristics", "places", "vehicles", "holidays"}, source
    )
    assert result.success
    assert query(warehouse, "select count(*) from raw.caracteristics") == [(58397,)]
    assert query(warehouse, "select count(*) from raw.places") == [(58397,)]
    assert query(warehouse, "select count(*) from raw.vehicles") == [(98925,)]
    assert query(warehouse, "select count(*) from raw.rejected_rows") == [(0,)]
    assert query(
        warehouse, "select com, dep, lat, long from raw.caracteristics where Num_Acc = 201300000001"
    ) == [("052", "590", "5051199", "0290046")]
    # Leading zeros kept: counted with DuckDB's own reader on the raw files, as text.
    assert query(
        warehouse,
        "select count(*) filter (where com like '0%'), count(*) filter (where dep like '0%') "
        "from raw.caracteristics",
    ) == [(23290, 3151)]
    assert query(warehouse, "select count(*) from raw.places where voie like '0%'") == [(30015,)]
    assert query(warehouse, "select adr from raw.caracteristics where Num_Acc = 201300000005") == [
        ("50 Rue Bonne Espérance",)
    ]
    # usagers_2013.csv is not in the mirror: the asset fails naming the address.
    failed = materialize_raw(warehouse, ["2013"], {"users"}, source, raise_on_error=False)
    message = failed.failure_data_for_node("raw__users").error.cause.message
    assert f"{server.base_url}/usagers_2013.csv: HTTP 404" in message
