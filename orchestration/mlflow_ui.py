"""``python -m orchestration.mlflow_ui``: the MLflow UI on the project's tracking store.

The store's address comes from the settings (``MLFLOW_TRACKING_URI``, else the embedded
SQLite store under data/mlflow), so the UI shows what the pipeline logged.
"""

from __future__ import annotations

import argparse
import os
import sys

from orchestration import settings

#: MLflow 3's server also starts a job runner and seven ``huey`` worker processes for its
#: GenAI features (evaluation jobs, trace roll-ups), which this project does not use: 1.7 GB
#: of memory and 10 s of CPU, and the UI answers 2.5 s later (measured: 4.1 s against 6.6 s).
#: A variable set in the environment of `make mlflow` wins; the team profile's server takes
#: the same setting from deploy/systemd/baac-mlflow.service, where it is changed.
SERVER_ENVIRONMENT = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}


def server_environment() -> dict[str, str]:
    """The environment an MLflow server of the project runs with."""
    return {**SERVER_ENVIRONMENT, **os.environ}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="5000")
    # One process (its threads serve a person's requests): MLflow's default of 4 holds 4 copies.
    parser.add_argument("--workers", default="1")
    args = parser.parse_args()
    uri = settings.mlflow_tracking_uri()
    if uri.startswith("sqlite:///"):
        os.makedirs(os.path.dirname(uri.removeprefix("sqlite:///")), exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        args.host,
        "--port",
        str(args.port),
        "--workers",
        str(args.workers),
    ]
    print(f"MLflow UI on http://{args.host}:{args.port} for {uri}")
    os.execve(command[0], command, server_environment())


if __name__ == "__main__":
    main()
