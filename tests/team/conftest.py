"""Fixtures of the team-profile tests: a real PostgreSQL cluster on loopback, one per session."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from pathlib import Path

import pytest

from orchestration.team.postgres import PostgresCluster
from tests.servers import free_port


@pytest.fixture(scope="session")
def postgres_cluster():
    """A started cluster with the team profile's databases, deleted after the session. Its folder
    is outside pytest's tmp_path: that one is private to root, and the server may run as the
    ``postgres`` user."""
    folder = Path(tempfile.mkdtemp(prefix="baac-pg-"))
    folder.chmod(0o755)
    cluster = PostgresCluster(folder / "postgres", free_port(), "baac", secrets.token_urlsafe(16))
    cluster.start()
    cluster.wait_ready()
    cluster.create_databases()
    yield cluster
    cluster.destroy()
    shutil.rmtree(folder, ignore_errors=True)
