"""What is refused before a request body is read: a wrong API key (401), a body that is not
JSON where JSON is expected (415), a body larger than the limit (413).

A plain ASGI middleware: FastAPI reads and parses a declared body before it solves the
route's dependencies, so a key checked by a dependency would come after a 60 MB body had
been read. Here the key and the content type are checked on the headers alone, and the body
is counted as it arrives (a Content-Length that lies, or none, changes nothing): the request
is answered 413 as soon as the count passes the limit, and the rest is never read.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: What the 401 says, here and in the ``require_api_key`` dependency.
WRONG_KEY = "Missing or wrong X-API-Key header"


def key_matches(expected: str | None, provided: str | bytes | None) -> bool:
    """True when no key is configured, or ``provided`` is exactly it (in constant time)."""
    if not expected:
        return True
    if provided is None:
        return False
    provided_bytes = provided if isinstance(provided, bytes) else provided.encode()
    return secrets.compare_digest(provided_bytes, expected.encode())


def is_json_media_type(content_type: bytes | None) -> bool:
    """``application/json`` (any parameters, e.g. ``charset=utf-8``), or no content type at all
    (read as JSON, as FastAPI does)."""
    if content_type is None:
        return True
    media_type = content_type.split(b";", 1)[0].strip().lower()
    return media_type == b"application/json"


@dataclass(frozen=True)
class GuardedPaths:
    #: Paths whose route needs the API key (those declaring ``ApiKeyChecked``).
    key_required: frozenset[str]
    #: Paths whose route reads a JSON body.
    json_body: frozenset[str]


@dataclass(frozen=True)
class RefusedRoute:
    """``scope["route"]`` for a request refused here (the router sets the real one later)."""

    path: str


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    pass


async def _refuse(scope: Scope, send: Send, status: int, detail: str, headers: list | None = None) -> None:
    """Answer ``{"detail": ...}`` with ``status``. The route is noted as the router would have
    (the metrics middleware labels the refusal by it)."""
    scope["route"] = RefusedRoute(scope["path"])
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestGuardMiddleware:
    """Refuses, from the headers and the bytes counted so far, what must not reach a route."""

    def __init__(
        self, app: ASGIApp, *, api_key: str | None, max_body_bytes: int, paths: GuardedPaths
    ) -> None:
        self.app = app
        self.api_key = api_key
        self.max_body_bytes = max_body_bytes
        self.paths = paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        headers = dict(scope["headers"])  # names are lower case in ASGI
        if path in self.paths.key_required and not key_matches(self.api_key, headers.get(b"x-api-key")):
            await _refuse(scope, send, 401, WRONG_KEY, [(b"www-authenticate", b"ApiKey")])
            return
        if path not in self.paths.json_body:
            await self.app(scope, receive, send)
            return
        if not is_json_media_type(headers.get(b"content-type")):
            sent = headers[b"content-type"].decode("latin-1")
            await _refuse(scope, send, 415, f"Content-Type must be application/json, not {sent}")
            return
        declared = headers.get(b"content-length", b"").strip()
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await _refuse(scope, send, 413, self._too_large())
            return
        try:
            body = await self._read_body(receive)
        except BodyTooLarge:
            await _refuse(scope, send, 413, self._too_large(), [(b"connection", b"close")])
            return
        except ClientGone:
            return
        await self.app(scope, _replay(body, receive), send)

    def _too_large(self) -> str:
        return f"Request body larger than {self.max_body_bytes:,} bytes (BAAC_API_MAX_BODY_BYTES)"

    async def _read_body(self, receive: Receive) -> bytes:
        """The whole body, counted chunk by chunk: BodyTooLarge as soon as it passes the limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # http.disconnect: nobody to answer
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives the body already read, then what the client sends next."""
    pending = True

    async def replay() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
