"""The scoring service in a real uvicorn process on loopback, as `make serve` starts it, and
a free port for any server a test starts."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx

from ml.defaults import PROJECT_ROOT


def loopback_client(**options) -> httpx.Client:
    """A client for requests to a server on loopback, to reuse across requests: each
    ``httpx.get()`` builds a client, and with it a TLS context that reads the CA bundle
    (30 ms of CPU, even for http://), so a test polling a starting server with it took CPU
    from the server it waited for."""
    return httpx.Client(**options)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class UvicornServer:
    process: subprocess.Popen
    base_url: str
    log_dir: Path
    #: The process's stdout and stderr. A file, not a pipe: nobody reads a pipe while the
    #: tests run, and once its 64 KiB were full (about 800 access-log lines) every print
    #: blocked the event loop and the server stopped answering.
    console: IO[str]

    def stop(self, timeout: float = 30) -> float:
        """SIGTERM, as a supervisor stops it; the seconds it took to exit."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=timeout)
        return time.monotonic() - started

    def output(self) -> str:
        """Everything the process has printed so far."""
        self.console.seek(0)
        return self.console.read()


@contextlib.contextmanager
def uvicorn_server(
    tracking_uri: str, log_dir: Path, app: str = "api.main:app", factory: bool = False, **env: str
) -> Iterator[UvicornServer]:
    """``uvicorn api.main:app`` (one process) as ``make serve`` starts it, on ``tracking_uri``,
    answering ``/health`` (a champion loaded) before this yields."""
    port = free_port()
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MLFLOW_HTTP_REQUEST", "BAAC_"))  # the service's defaults, not ours
    }
    environment.update(
        MLFLOW_TRACKING_URI=tracking_uri,
        BAAC_PREDICTION_LOG_DIR=str(log_dir),
        BAAC_MODEL_REFRESH_SECONDS="0",
        **env,
    )
    command = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port)]
    console = tempfile.TemporaryFile("w+")
    process = subprocess.Popen(
        command + (["--factory"] if factory else []),
        cwd=PROJECT_ROOT,
        env=environment,
        stdout=console,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server = UvicornServer(process, f"http://127.0.0.1:{port}", log_dir, console)
    try:
        deadline = time.monotonic() + 180
        with loopback_client(timeout=2) as client:
            while time.monotonic() < deadline:
                if process.poll() is not None:
                    raise RuntimeError(f"uvicorn exited: {server.output()}")
                try:
                    if client.get(f"{server.base_url}/health").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.3)
            else:
                raise RuntimeError("uvicorn did not answer /health within 180 s")
        yield server
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        console.close()
