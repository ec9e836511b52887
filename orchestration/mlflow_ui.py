"""``python -m orchestration.mlflow_ui``: the MLflow UI on the project's tracking store.

The store's address comes from the settings (``MLFLOW_TRACKING_URI``, else the embedded
SQLite store under data/mlflow), so the UI shows what the pipeline logged.
"""

from __future__ import annotations

import argparse
import os
import sys

from orchestration import settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", default="5000")
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
    ]
    print(f"MLflow UI on http://{args.host}:{args.port} for {uri}")
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
