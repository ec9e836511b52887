"""The API's contract: what is refused before the body is read (401, 413, 415), malformed
JSON (400), whole numbers as JSON Schema means them, and an OpenAPI document that says so,
with the example road user the README's curl sends."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from api.guards import GuardedPaths, RequestGuardMiddleware
from api.main import create_app
from api.openapi import ROAD_USER_EXAMPLE, road_user_example
from ml.defaults import PROJECT_ROOT
from tests.servers import uvicorn_server

KEY = "s3cret"
MB = 1024 * 1024
JSON_POST = "POST /predict HTTP/1.1\nhost: x\ncontent-type: application/json\n"


@pytest.fixture(scope="module")
def open_server(champion, tmp_path_factory):
    with uvicorn_server(champion.tracking_uri, tmp_path_factory.mktemp("predictions")) as server:
        yield server


@pytest.fixture(scope="module")
def keyed_server(champion, tmp_path_factory):
    with uvicorn_server(champion.tracking_uri, tmp_path_factory.mktemp("predictions"), BAAC_API_KEY=KEY) as s:
        yield s


def raw_request(base_url: str, head: str, body_chunks=(), timeout: float = 10) -> tuple[int, dict, int]:
    """Send ``head`` then the chunks until the server answers; (status, JSON body, bytes of
    body sent). A server that answers without reading the body stops the sending early."""
    host, port = base_url.removeprefix("http://").split(":")
    sent = 0
    chunks = iter(body_chunks)
    with socket.create_connection((host, int(port)), timeout=timeout) as sock:
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
        sock.setblocking(False)
        answer, pending = b"", b""
        while True:
            try:
                answer += sock.recv(65536)
            except BlockingIOError:
                pass
            if answer:
                break
            pending = pending or next(chunks, b"")
            if not pending:
                break
            try:
                written = sock.send(pending)  # what the kernel took
            except BlockingIOError:
                time.sleep(0.001)
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
            sent, pending = sent + written, pending[written:]
        sock.settimeout(timeout)
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    status = int(answer.split(b" ", 2)[1])
    payload = answer.split(b"\r\n\r\n", 1)[1]
    if b"transfer-encoding: chunked" in answer.lower().split(b"\r\n\r\n")[0]:
        payload = payload.split(b"\r\n", 1)[1].rsplit(b"\r\n0", 1)[0]
    return status, json.loads(payload), sent


def endless(chunk_size: int = MB):
    chunk = b" " * chunk_size
    while True:
        yield chunk


# -- 401 before the body, 413 however large the body says it is, 415 -------------------------


def test_a_wrong_key_is_refused_before_a_50_mb_body_is_read(keyed_server):
    head = f"{JSON_POST}content-length: {50 * MB}\nx-api-key: wrong\n"
    started = time.perf_counter()
    status, body, sent = raw_request(keyed_server.base_url, head)  # no byte of the body sent
    assert (status, body) == (401, {"detail": "Missing or wrong X-API-Key header"})
    assert time.perf_counter() - started < 2
    assert sent == 0


def test_a_body_declared_larger_than_the_limit_is_refused_unread(keyed_server):
    head = f"{JSON_POST}content-length: {1024 * MB}\nx-api-key: {KEY}\n"
    status, body, _ = raw_request(keyed_server.base_url, head)
    assert status == 413
    assert body == {"detail": "Request body larger than 16,777,216 bytes (BAAC_API_MAX_BODY_BYTES)"}


def test_a_body_without_content_length_is_cut_at_the_limit(open_server):
    """Chunked, no Content-Length, 1 GB on offer: 413 once 16 MiB have arrived."""

    def chunked():
        for chunk in endless():
            yield f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"

    head = "POST /predict HTTP/1.1\nhost: x\ncontent-type: application/json\ntransfer-encoding: chunked\n"
    status, body, sent = raw_request(open_server.base_url, head, chunked())
    assert status == 413, body
    assert 16 * MB < sent < 48 * MB  # the limit, plus what the sockets' buffers held


def test_a_content_length_that_lies_is_not_believed():
    """At the ASGI level: Content-Length says 100 bytes, 20 MB arrive; the guard stops
    reading once the count passes the limit, and the route never runs."""
    reads, sent, routed = [], [], []

    async def receive():
        reads.append(1)
        return {"type": "http.request", "body": b"x" * MB, "more_body": len(reads) < 20}

    async def send(message):
        sent.append(message)

    async def route(scope, receive, send):
        routed.append(scope)

    guard = RequestGuardMiddleware(
        route, api_key=None, max_body_bytes=4 * MB, paths=GuardedPaths(frozenset(), frozenset({"/predict"}))
    )
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/predict",
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")],
    }
    asyncio.run(guard(scope, receive, send))
    assert sent[0]["status"] == 413 and len(reads) == 5 and routed == []


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/xml"],
)
def test_a_body_that_is_not_json_gets_a_415(client, content_type):
    response = client.post(
        "/predict", content=ROAD_USER_EXAMPLE.read_bytes(), headers={"content-type": content_type}
    )
    assert response.status_code == 415
    assert response.json() == {"detail": f"Content-Type must be application/json, not {content_type}"}


def test_json_with_a_charset_or_no_content_type_is_read(client):
    body = ROAD_USER_EXAMPLE.read_bytes()
    for headers in ({"content-type": "Application/JSON; charset=utf-8"}, {}):
        assert client.post("/predict", content=body, headers=headers).status_code == 200, headers


def test_malformed_json_is_a_400_and_wrong_values_a_422(client):
    response = client.post("/predict", content=b'{"age": 3', headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["detail"].startswith("The body is not JSON in UTF-8: ")
    response = client.post("/predict", content=b"\xff\xfe", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert client.post("/predict", json={"age": 3}).status_code == 422


def test_a_whole_number_sent_as_79_0_is_the_integer_79(client):
    """JSON Schema's ``integer`` (what the document says) admits 79.0: so does the service."""
    example = road_user_example()
    as_floats = {**example, "age": 79.0, "lighting_code": float(example["lighting_code"])}
    answer = client.post("/predict", json=as_floats)
    assert answer.status_code == 200
    assert answer.json() == client.post("/predict", json={**example, "age": 79}).json()
    assert client.post("/predict", json={**example, "age": 79.5}).status_code == 422


def test_guards_count_in_the_metrics(client):
    client.post("/predict", content=b"x", headers={"content-type": "text/plain"})
    assert 'baac_api_errors_total{path="/predict",status="415"} 1.0' in client.get("/metrics").text


# -- the OpenAPI document ---------------------------------------------------------------------


def test_the_document_declares_the_key_only_when_one_is_configured(settings):
    with TestClient(create_app(settings)) as client:
        document = client.get("/openapi.json").json()
    assert "securitySchemes" not in document["components"]
    for path, operations in document["paths"].items():
        for operation in operations.values():
            assert "security" not in operation and "401" not in operation["responses"], path
    with TestClient(create_app(replace(settings, api_key=KEY))) as client:
        document = client.get("/openapi.json").json()
    assert document["components"]["securitySchemes"] == {
        "APIKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    }
    secured = sorted(p for p, ops in document["paths"].items() for op in ops.values() if "security" in op)
    assert secured == ["/model/reload", "/predict"]


def test_each_error_the_service_answers_is_documented_with_its_body(settings):
    with TestClient(create_app(replace(settings, api_key=KEY))) as client:
        paths = client.get("/openapi.json").json()["paths"]

    def documented(path, method):
        return {
            status: response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
            for status, response in paths[path][method]["responses"].items()
            if status[0] in "45"
        }

    # 409: explain=true on a champion stored without the reference road user (ml.explain).
    errors = {s: "ErrorMessage" for s in ("400", "401", "409", "413", "415", "503")}
    assert documented("/predict", "post") == {**errors, "422": "ValidationErrors"}
    assert documented("/model/reload", "post") == {"401": "ErrorMessage", "409": "ErrorMessage"}
    assert documented("/model", "get") == {"503": "ErrorMessage"}
    assert documented("/health", "get") == {"503": "Health"}
    assert documented("/features", "get") == {}


def test_fields_are_typed_and_bounded_in_the_document_as_validated(client, spec):
    properties = client.get("/openapi.json").json()["components"]["schemas"]["RoadUser"]["properties"]
    for feature in spec.features:
        (declared,) = [s for s in properties[feature.name]["anyOf"] if s["type"] != "null"]
        assert declared["type"] == ("integer" if feature.data_type == "integer" else "number"), feature.name
        if feature.is_categorical:
            assert declared["enum"] == sorted(feature.codes)
        else:  # as JSON Schema keywords a client (and schemathesis) reads
            assert (declared["minimum"], declared["maximum"]) == (feature.minimum, feature.maximum)


def test_the_documented_example_is_the_file_the_readme_sends(client):
    document = client.get("/openapi.json").json()
    example = json.loads(ROAD_USER_EXAMPLE.read_text(encoding="utf-8"))
    assert document["components"]["schemas"]["RoadUser"]["examples"] == [example]
    media = document["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    assert media["examples"]["one road user"]["value"] == example
    assert media["examples"]["a batch"]["value"] == [example]
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    assert f"-d @{ROAD_USER_EXAMPLE.relative_to(PROJECT_ROOT)}" in readme


def test_the_example_road_user_is_coherent(spec):
    """A real row, checked for what the issue found wrong in the generated one."""
    user = road_user_example()
    assert list(user) == spec.names and None not in user.values()
    assert user["is_weekend"] == (user["day_of_week"] in (6, 7))
    assert not (user["vehicle_category_code"] == 1 and user["safety_equipment_code"] == 1)  # bicycle, belt
    assert 14 <= user["age"] <= 90
    assert 41 <= user["latitude"] <= 51.5 and -5.5 <= user["longitude"] <= 10  # metropolitan France


def test_the_readme_curl_example_is_answered_over_http(open_server):
    """Exactly the bytes ``curl -d @api/examples/road_user.json`` sends."""
    head = (
        "POST /predict HTTP/1.1\nhost: x\ncontent-type: application/json\n"
        f"content-length: {len(ROAD_USER_EXAMPLE.read_bytes())}\n"
    )
    status, body, _ = raw_request(open_server.base_url, head, [ROAD_USER_EXAMPLE.read_bytes()])
    assert status == 200, body
    assert set(body) == {"severity", "label", "probabilities", "severe_probability", "model"}
