"""Download a file over HTTP(S) into a cache, with progress and integrity checks."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

import httpx

log = logging.getLogger(__name__)
_CHUNK = 1 << 16


class DownloadError(RuntimeError):
    """A download that failed or did not match what was expected; names the URL."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _cached_copy_is_valid(dest: Path, sha256: str | None, size: int | None) -> bool:
    if not dest.is_file():
        return False
    if size is not None and dest.stat().st_size != size:
        return False
    return sha256 is None or sha256_of(dest) == sha256.lower()


def download(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    size: int | None = None,
    progress: Callable[[str], None] = log.info,
    timeout: float = 60.0,
) -> Path:
    """Fetch ``url`` to ``dest`` unless a valid copy is already cached there.

    The body goes to ``dest.part`` first and is renamed only once complete and checked
    (Content-Length, then the expected ``size`` and ``sha256`` when given), so an
    interrupted download never passes for a cached file. ``progress`` receives a line at
    every tenth of the file.
    """
    if _cached_copy_is_valid(dest, sha256, size):
        progress(f"{dest.name}: cached at {dest}")
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    received = 0
    try:
        with httpx.stream("GET", url, follow_redirects=True, timeout=timeout) as response:
            if response.status_code != 200:
                raise DownloadError(f"{url}: HTTP {response.status_code}")
            announced = size or int(response.headers.get("content-length", 0))
            next_report = 0.1
            with partial.open("wb") as out:
                for chunk in response.iter_bytes(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    if announced and received / announced >= next_report:
                        progress(
                            f"{dest.name}: {received:,} / {announced:,} bytes ({received / announced:.0%})"
                        )
                        next_report += 0.1
            # Content-Length counts the bytes on the wire: compare only when they are the file's.
            on_the_wire = "content-encoding" not in response.headers
            if (
                on_the_wire
                and "content-length" in response.headers
                and received != int(response.headers["content-length"])
            ):
                raise DownloadError(
                    f"{url}: received {received:,} bytes, "
                    f"the server announced {response.headers['content-length']}"
                )
    except httpx.HTTPError as error:
        partial.unlink(missing_ok=True)
        raise DownloadError(f"{url}: {error}") from error
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    if size is not None and received != size:
        partial.unlink(missing_ok=True)
        raise DownloadError(f"{url}: received {received:,} bytes, expected {size:,}")
    if sha256 is not None and digest.hexdigest() != sha256.lower():
        partial.unlink(missing_ok=True)
        raise DownloadError(f"{url}: SHA-256 {digest.hexdigest()} does not match the expected {sha256}")
    partial.replace(dest)
    progress(f"{dest.name}: downloaded {received:,} bytes to {dest}")
    return dest
