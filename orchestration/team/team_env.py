"""``BAAC_TEAM_DIR/team.env``: every variable of the team profile, passwords generated once.

One file, mode 600, ``KEY=value`` lines: systemd reads it (EnvironmentFile=), the Makefile
includes it (so ``make run`` runs in the team profile while it exists), the launcher reads it.
``make team-down`` moves it aside to ``team.env.off`` (back to the embedded profile) and the
next ``make team-up`` puts it back: the cluster and MLflow's admin account keep the passwords
they were created with.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from orchestration.team.units import read_env_file

#: Ports of the team profile (environment overrides them the first time team.env is
#: written), away from the embedded defaults: dev 3000, mlflow 5000, serve 8000.
DEFAULT_PORTS = {
    "BAAC_PG_PORT": "55432",
    "BAAC_MLFLOW_PORT": "5001",
    "BAAC_DAGSTER_PORT": "3001",
    "BAAC_DAGSTER_GRPC_PORT": "4001",
    "BAAC_API_PORT": "8001",
}
#: MLflow's account for the pipeline and the API (the server's admin, created at its first start).
MLFLOW_USER = "admin"


def team_dir() -> Path:
    """The team profile's folder (``BAAC_TEAM_DIR``, default data/team)."""
    from ml.defaults import DATA_DIR, path_from_env

    return path_from_env("BAAC_TEAM_DIR", DATA_DIR / "team")


def env_path(folder: Path) -> Path:
    return folder / "team.env"


def parked_path(folder: Path) -> Path:
    return folder / "team.env.off"


def team_variables(folder: Path, environ: dict[str, str]) -> dict[str, str]:
    """Every variable of the profile: ports and host from ``environ`` when set, new passwords."""
    ports = {name: environ.get(name, default) for name, default in DEFAULT_PORTS.items()}
    for name, value in ports.items():
        if not value.isdigit():
            raise ValueError(f"{name} must be a port number, got {value!r}")
    mlflow_password = secrets.token_urlsafe(24)
    mlflow_url = f"http://127.0.0.1:{ports['BAAC_MLFLOW_PORT']}"
    return {
        "BAAC_WAREHOUSE": "postgres",
        "BAAC_TEAM_DIR": str(folder),
        "BAAC_PG_HOST": environ.get("BAAC_PG_HOST", "127.0.0.1"),
        "BAAC_PG_USER": environ.get("BAAC_PG_USER", "baac"),
        "BAAC_PG_PASSWORD": secrets.token_urlsafe(24),
        **ports,
        "BAAC_API_WORKERS": environ.get("BAAC_API_WORKERS", "2"),
        "DAGSTER_HOME": str(folder / "dagster_home"),
        "MLFLOW_TRACKING_URI": mlflow_url,
        "BAAC_MLFLOW_UI_URL": mlflow_url,
        "MLFLOW_TRACKING_USERNAME": MLFLOW_USER,
        "MLFLOW_TRACKING_PASSWORD": mlflow_password,
        # MLflow's own names for the admin account it creates at its first start (read then only).
        "MLFLOW_AUTH_ADMIN_USERNAME": MLFLOW_USER,
        "MLFLOW_AUTH_ADMIN_PASSWORD": mlflow_password,
        # Signs the CSRF tokens of the auth app's forms; the same for every worker.
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_urlsafe(32),
        # A server that is down fails a client call in seconds, naming it, instead of MLflow's
        # default 7 retries with doubling back-off (about 4 minutes).
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
    }


def write_env(path: Path, variables: dict[str, str]) -> None:
    """Write ``path`` with mode 600 from the start (it holds passwords)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write("# The team profile (make team-up wrote it; make team-down moves it aside). Secrets.\n")
        handle.writelines(f"{key}={value}\n" for key, value in variables.items())
    path.chmod(0o600)


def ensure_env(folder: Path, environ: dict[str, str] | None = None) -> tuple[dict[str, str], bool]:
    """The profile's variables: those of team.env (or the parked one) are kept, any missing
    (a new version of the profile) generated. True when any was generated now."""
    path, parked = env_path(folder), parked_path(folder)
    if not path.exists() and parked.exists():
        parked.rename(path)
    kept = read_env_file(path) if path.exists() else {}
    variables = {**team_variables(folder, dict(os.environ if environ is None else environ)), **kept}
    missing = variables.keys() - kept.keys()
    if missing:
        write_env(path, variables)
    return variables, bool(missing)


def park_env(folder: Path) -> None:
    """Back to the embedded profile: the Makefile no longer includes team.env."""
    path = env_path(folder)
    if path.exists():
        path.replace(parked_path(folder))
