"""A PostgreSQL cluster of the project's own under data/ (``make team-up``, the team tests).

Debian's server binaries, a cluster in ``BAAC_TEAM_DIR/postgres`` listening on loopback only,
password authentication (SCRAM) for one role. PostgreSQL refuses to run as root: when we are
root (CI, containers), the server runs as the ``postgres`` system user, which owns the cluster's
folder.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

#: The databases of the team profile: the warehouse, the Dagster instance, the MLflow store.
DATABASES = ("baac_warehouse", "baac_dagster", "baac_mlflow")


class PostgresError(RuntimeError):
    """The cluster could not be created, started or reached; the message says why."""


def server_bin_dir() -> Path:
    """The folder of ``initdb``/``pg_ctl``/``postgres`` (``BAAC_PG_BIN``, else Debian's newest)."""
    if os.environ.get("BAAC_PG_BIN"):
        return Path(os.environ["BAAC_PG_BIN"])
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise PostgresError(
            "PostgreSQL's server is not installed: sudo apt-get install postgresql"
            " (make team-up installs it when run as root)"
        )
    return Path(found[-1]).parent


def _run_as() -> list[str]:
    """The prefix that runs a server command as a user PostgreSQL accepts."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", "postgres", "--"]


@dataclass(frozen=True)
class PostgresCluster:
    """One cluster: its folder, port, role and password."""

    directory: Path
    port: int
    user: str
    password: str
    host: str = "127.0.0.1"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def log_file(self) -> Path:
        return self.directory / "postgres.log"

    def url(self, database: str, driver: str = "postgresql") -> str:
        """An SQLAlchemy/libpq URL for ``database`` (``driver`` e.g. ``postgresql+psycopg2``)."""
        return f"{driver}://{self.user}:{self.password}@{self.host}:{self.port}/{database}"

    def _command(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([*_run_as(), *args], capture_output=True, text=True)
        if check and result.returncode != 0:
            raise PostgresError(f"{' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
        return result

    def initialised(self) -> bool:
        return (self.data_dir / "PG_VERSION").exists()

    def init(self) -> None:
        """Create the cluster (once): SCRAM passwords on loopback, nothing else accepted."""
        if self.initialised():
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        password_file = self.directory / ".initdb-password"
        password_file.write_text(self.password + "\n")
        password_file.chmod(0o600)
        if os.geteuid() == 0:
            postgres = pwd.getpwnam("postgres")
            for path in (self.directory, password_file):
                os.chown(path, postgres.pw_uid, postgres.pw_gid)
        try:
            self._command(
                str(server_bin_dir() / "initdb"),
                "--pgdata", str(self.data_dir),
                "--username", self.user,
                "--pwfile", str(password_file),
                "--auth", "scram-sha-256",
                "--encoding", "UTF8",
                "--locale", "C.UTF-8",
            )  # fmt: skip
        finally:
            password_file.unlink(missing_ok=True)

    def running(self) -> bool:
        if not self.initialised():
            return False
        return (
            self._command(
                str(server_bin_dir() / "pg_ctl"), "status", "-D", str(self.data_dir), check=False
            ).returncode
            == 0
        )

    def start(self, timeout_seconds: float = 60) -> None:
        """Start the server on ``host:port`` (no Unix socket outside the cluster's folder)."""
        self.init()
        if self.running():
            return
        options = (
            f"-c listen_addresses={self.host} -c port={self.port} -c unix_socket_directories={self.data_dir}"
        )
        self._command(
            str(server_bin_dir() / "pg_ctl"), "start", "-D", str(self.data_dir), "-l", str(self.log_file),
            "-o", options, "-w", "-t", str(int(timeout_seconds)),
        )  # fmt: skip

    def stop(self) -> None:
        if self.running():
            self._command(
                str(server_bin_dir() / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w"
            )

    def kill(self) -> None:
        """Stop the server at once, as a crash would (immediate shutdown: recovery at the next start)."""
        if self.running():
            self._command(
                str(server_bin_dir() / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "immediate", "-w"
            )

    def connect(self, database: str = "postgres"):
        import psycopg2

        return psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database,
            connect_timeout=5,
        )

    def wait_ready(self, timeout_seconds: float = 30) -> None:
        deadline = time.monotonic() + timeout_seconds
        while True:
            try:
                self.connect().close()
                return
            except Exception as error:
                if time.monotonic() > deadline:
                    raise PostgresError(
                        f"PostgreSQL on {self.host}:{self.port} is not answering: {error}"
                    ) from error
                time.sleep(0.2)

    def create_databases(self, names: tuple[str, ...] = DATABASES) -> None:
        """Create each database that does not exist yet (re-running creates nothing twice)."""
        conn = self.connect()
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                for name in names:
                    cursor.execute("select 1 from pg_database where datname = %s", (name,))
                    if cursor.fetchone() is None:
                        cursor.execute(f'create database "{name}"')
        finally:
            conn.close()

    def destroy(self) -> None:
        """Stop the server and delete the cluster's folder."""
        self.stop()
        shutil.rmtree(self.directory, ignore_errors=True)
