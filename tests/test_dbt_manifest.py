"""`make manifest` parses the dbt project only when the manifest is not current
(orchestration/dbt_manifest.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from orchestration.dbt_manifest import DIGEST_FILE, ensure_manifest, is_current, manifest_digest, source_files
from orchestration.settings import DBT_PROJECT_DIR


def copy_of_the_project(destination):
    shutil.copytree(
        DBT_PROJECT_DIR,
        destination,
        ignore=shutil.ignore_patterns("target", "target-*", "logs", "dbt_packages", ".user.yml"),
    )
    return destination


def test_the_manifest_is_parsed_once_then_only_when_what_it_is_made_of_changes(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    # dbt's partial parse of the project, as `make manifest` leaves it: a shorter parse.
    partial = DBT_PROJECT_DIR / "target" / "partial_parse.msgpack"
    if partial.is_file():
        shutil.copyfile(partial, target / "partial_parse.msgpack")
    environ = dict(os.environ)
    assert ensure_manifest(DBT_PROJECT_DIR, target, environ) is True
    nodes = json.loads((target / "manifest.json").read_text())["nodes"]
    assert "model.baac_severity.ml_features" in nodes
    assert (target / DIGEST_FILE).read_text().split()[0] == manifest_digest(DBT_PROJECT_DIR, environ)
    assert ensure_manifest(DBT_PROJECT_DIR, target, environ) is False

    # A variable the project reads while parsing (the prediction log's folder, a source's
    # location) makes it stale; one it does not read does not.
    digest = manifest_digest(DBT_PROJECT_DIR, environ)
    assert manifest_digest(DBT_PROJECT_DIR, {**environ, "BAAC_PREDICTION_LOG_DIR": "/elsewhere"}) != digest
    assert manifest_digest(DBT_PROJECT_DIR, {**environ, "BAAC_NOT_READ_BY_DBT": "1"}) == digest
    # Unset is not empty (env_var() takes its default only when unset), and dbt's own
    # variables (DBT_TARGET, ...) count.
    unset = {k: v for k, v in environ.items() if k != "BAAC_PREDICTION_LOG_DIR"}
    assert manifest_digest(DBT_PROJECT_DIR, unset) != manifest_digest(
        DBT_PROJECT_DIR, {**unset, "BAAC_PREDICTION_LOG_DIR": ""}
    )
    assert manifest_digest(DBT_PROJECT_DIR, {**environ, "DBT_TARGET": "elsewhere"}) != digest
    # A manifest another command wrote there (`dbt docs generate`, another warehouse's) is
    # not the parsed one.
    parsed = (target / "manifest.json").read_text()
    (target / "manifest.json").write_text(parsed.replace("ml_features", "ml_featurez", 1))
    assert not is_current(target, digest)
    (target / "manifest.json").write_text(parsed)
    assert is_current(target, digest)
    # A manifest that is gone is parsed again, whatever the digest says.
    (target / "manifest.json").unlink()
    assert not is_current(target, digest)


def test_an_edited_source_changes_the_digest_and_dbt_output_does_not(tmp_path):
    project = copy_of_the_project(tmp_path / "dbt_project")
    environ = dict(os.environ)
    digest = manifest_digest(project, environ)
    assert {p.name for p in source_files(project)} >= {"dbt_project.yml", "profiles.yml", "ml_features.sql"}
    # What dbt writes into the project is no source.
    for output in ("target/manifest.json", "target-team/manifest.json", "logs/dbt.log", ".user.yml"):
        (project / output).parent.mkdir(parents=True, exist_ok=True)
        (project / output).write_text("{}")
    assert manifest_digest(project, environ) == digest
    model = next(project.rglob("ml_features.sql"))
    model.write_text(model.read_text() + "\n-- an edit\n")
    assert manifest_digest(project, environ) != digest


def test_a_failed_parse_leaves_no_digest_so_the_next_call_parses(tmp_path):
    project = copy_of_the_project(tmp_path / "dbt_project")
    model = next(project.rglob("ml_features.sql"))
    model.write_text("select {{ unclosed(\n")
    target = tmp_path / "target"
    target.mkdir()
    (target / DIGEST_FILE).write_text("a digest of before the edit\n")
    with pytest.raises(subprocess.CalledProcessError):
        ensure_manifest(project, target, dict(os.environ))
    assert not (target / DIGEST_FILE).exists()
