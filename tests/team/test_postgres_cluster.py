"""The local PostgreSQL cluster of `make team-up`: created once, password-only, restartable."""

from __future__ import annotations

import psycopg2
import pytest

from orchestration.team.postgres import DATABASES, PostgresCluster


def test_cluster_holds_the_team_databases(postgres_cluster):
    with postgres_cluster.connect() as conn, conn.cursor() as cursor:
        cursor.execute("select datname from pg_database")
        names = {row[0] for row in cursor.fetchall()}
    assert set(DATABASES) <= names
    postgres_cluster.create_databases()  # again: nothing created twice, no error


def test_a_wrong_password_is_refused(postgres_cluster):
    intruder = PostgresCluster(
        postgres_cluster.directory, postgres_cluster.port, postgres_cluster.user, "not-the-password"
    )
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        intruder.connect()
