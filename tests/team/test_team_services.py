"""The team profile's services as real processes: ``up`` starts every unit of deploy/systemd
on free ports (PostgreSQL, MLflow with basic auth, the Dagster code server, webserver and
daemon, the API); Dagster runs go through the webserver's queue and the daemon into
PostgreSQL; MLflow registers and serves a champion over HTTP; killed servers fail clearly and
recover; ``down`` leaves no process and frees every port.

The tests share one team (started once per test process) and run in file order, in one xdist
group.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from base64 import b64encode
from collections.abc import Iterator
from pathlib import Path

import mlflow
import mlflow.tracking._model_registry.utils as registry_utils
import mlflow.tracking._tracking_service.utils as tracking_utils
import mlflow.tracking.fluent as fluent
import pandas as pd
import pytest
from mlflow.exceptions import MlflowException
from sklearn.dummy import DummyClassifier

from api.model_store import ChampionStore
from ml import registry
from ml.defaults import DBT_PROJECT_DIR, PROJECT_ROOT
from ml.features import load_feature_spec
from orchestration.team import launcher
from orchestration.team.team_env import DEFAULT_PORTS
from tests.servers import free_port

pytestmark = pytest.mark.xdist_group("team_services")

LOCATION = {"repositoryLocationName": "baac", "repositoryName": "__repository__"}
RUN_TIMEOUT_SECONDS = 240


@pytest.fixture(scope="session")
def team_services() -> Iterator[tuple[launcher.Team, dict[str, str]]]:
    """``up`` once per test process, in a fresh team folder (traversable by the postgres user),
    on free ports; (the team, the variables it was started with). It sets no variable for
    the session: the ``team`` fixture does, per test. No test of the group runs after ``down``
    (the last test), which xdist's group keeps in file order on one worker."""
    folder = Path(tempfile.mkdtemp(prefix="baac-team-"))
    folder.chmod(0o755)
    variables = {
        "BAAC_TEAM_DIR": str(folder / "team"),
        "DUCKDB_PATH": str(folder / "warehouse.duckdb"),
        "BAAC_LANDING_DIR": str(folder / "landing"),
        # The API's workers look for a new champion every 2 s (60 by default), so that a
        # promotion reaches both within the tests.
        "BAAC_MODEL_REFRESH_SECONDS": "2",
        **{name: str(free_port()) for name in DEFAULT_PORTS},
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in variables.items():
            patch.setenv(name, value)
        try:
            started = time.monotonic()
            team = launcher.up()
            print(f"team up in {time.monotonic() - started:.0f} s")
            yield team, variables
        finally:
            launcher.down()
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def team(team_services):
    """The running team, its variables and MLflow's exported as `make` would export them,
    for this test only: the other tests of this process see none of them."""
    team, variables = team_services
    with pytest.MonkeyPatch.context() as patch:
        # configure_tracking sets MLflow's process-wide URIs and experiment: put back after
        # (as tests/api/conftest.py's mlflow_globals_restored does).
        patch.setattr(tracking_utils, "_tracking_uri", tracking_utils._tracking_uri)
        patch.setattr(registry_utils, "_registry_uri", registry_utils._registry_uri)
        patch.setattr(fluent, "_active_experiment_id", fluent._active_experiment_id)
        patch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)
        for name, value in variables.items():
            patch.setenv(name, value)
        for name, value in team.variables.items():
            if name.startswith("MLFLOW_"):
                patch.setenv(name, value)
        yield team


def port(team, name: str) -> int:
    return int(team.variables[name])


def graphql(team, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port(team, 'BAAC_DAGSTER_PORT')}/graphql",
        data=body,
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        return {"status": error.code, **json.loads(error.read())}


def launch(team, job: str, tags: dict[str, str], attempts: int = 1) -> str:
    """Launch ``job`` through the webserver; a failed attempt must be PostgreSQL's connection."""
    for attempt in range(1, attempts + 1):
        result = graphql(
            team,
            """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {
                 __typename ... on LaunchRunSuccess { run { runId status } }
                 ... on PythonError { message } } }""",
            {
                "p": {
                    "selector": {**LOCATION, "jobName": job},
                    "runConfigData": {},
                    "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
                }
            },
        )["data"]["launchRun"]
        if result["__typename"] == "LaunchRunSuccess":
            break
        assert attempt < attempts and "psycopg2.OperationalError" in result["message"], result
    assert result["run"]["status"] == "QUEUED"  # the queued run coordinator: the daemon starts it
    return result["run"]["runId"]


def wait_for_run(team, run_id: str) -> str:
    deadline = time.monotonic() + RUN_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        run = graphql(
            team, "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }", {"id": run_id}
        )["data"]["runOrError"]
        if run["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            return run["status"]
        time.sleep(2)
    raise AssertionError(f"run {run_id} did not finish within {RUN_TIMEOUT_SECONDS} s")


def pg_rows(team, sql: str, *args) -> list[tuple]:
    conn = team.cluster().connect("baac_dagster")
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql, args)
            return cursor.fetchall()
    finally:
        conn.close()


def group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
        return True
    except ProcessLookupError:
        return False


def processes_in_group(pgid: int) -> list[str]:
    """The command lines of the processes of group ``pgid``."""
    commands = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # Field 5 of stat is the group; the command name in field 2 may hold spaces.
            if int(stat.read_text().rpartition(")")[2].split()[2]) == pgid:
                commands.append((stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except (OSError, ValueError, IndexError):
            continue
    return commands


def test_up_starts_every_unit_once_and_make_reads_team_env(team, capsys):
    units = team.units()
    assert [u.name for u in units] == [
        "baac-mlflow",
        "baac-api",
        "baac-dagster-code",
        "baac-dagster-webserver",
        "baac-dagster-daemon",
    ]
    pids = {u.name: launcher.running_pid(team, u) for u in units}
    assert all(pids.values()), pids
    for unit in units:
        assert launcher.answers(unit.health, unit.environment), unit.name
    assert (team.directory / "team.env").stat().st_mode & 0o777 == 0o600
    # MLflow runs without the job runner and huey workers of its GenAI features.
    mlflow_group = processes_in_group(pids["baac-mlflow"])
    job_processes = [c for c in mlflow_group if "huey" in c or "mlflow.server.jobs" in c]
    assert mlflow_group and not job_processes, mlflow_group

    launcher.up()  # again: nothing starts twice
    said = capsys.readouterr().out
    assert said.count("already running") == len(units) + 1, said  # and postgres
    assert {u.name: launcher.running_pid(team, u) for u in units} == pids

    # The Makefile includes team.env and exports it: make team-status sees the same team.
    status = subprocess.run(
        ["make", "-s", "team-status"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120
    )
    assert status.returncode == 0, status.stdout + status.stderr
    assert f"on port {team.variables['BAAC_PG_PORT']}" in status.stdout


def test_a_run_launched_through_the_webserver_is_queued_then_run_by_the_daemon(team):
    entries = graphql(
        team,
        """{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
             locationOrLoadError { __typename ... on RepositoryLocation { repositories { jobs { name } } } }
           } } } }""",
    )["data"]["workspaceOrError"]["locationEntries"]
    assert [(e["name"], e["loadStatus"]) for e in entries] == [("baac", "LOADED")]
    jobs = {j["name"] for j in entries[0]["locationOrLoadError"]["repositories"][0]["jobs"]}
    assert {"load_raw", "baac_pipeline", "monitoring"} <= jobs

    # The automation sensor would run dbt and the ML chain after the load: stopped through
    # the webserver, the daemon (another process) reads that from PostgreSQL.
    sensor = graphql(
        team,
        """query($s: SensorSelector!) { sensorOrError(sensorSelector: $s) {
             ... on Sensor { jobOriginId sensorState { id selectorId } } } }""",
        {"s": {**LOCATION, "sensorName": "baac_automation"}},
    )["data"]["sensorOrError"]
    stopped = graphql(
        team,
        """mutation($id: String, $origin: String, $selector: String) {
             stopSensor(id: $id, jobOriginId: $origin, jobSelectorId: $selector) {
               ... on StopSensorMutationResult { instigationState { status } } } }""",
        {
            "id": sensor["sensorState"]["id"],
            "origin": sensor["jobOriginId"],
            "selector": sensor["sensorState"]["selectorId"],
        },
    )
    assert stopped["data"]["stopSensor"]["instigationState"]["status"] == "STOPPED"

    run_id = launch(team, "load_raw", {"dagster/partition": "2016"})
    assert wait_for_run(team, run_id) == "SUCCESS"
    assert pg_rows(team, "select status from runs where run_id = %s", run_id) == [("SUCCESS",)]
    events = {
        row[0]
        for row in pg_rows(
            team, "select distinct dagster_event_type from event_logs where run_id = %s", run_id
        )
    }
    # Enqueued by the webserver, started by the daemon (dequeued), done by the run worker.
    assert {"PIPELINE_ENQUEUED", "PIPELINE_STARTING", "PIPELINE_SUCCESS"} <= events, events


def test_a_run_in_the_team_profile_from_the_command_line_shows_in_the_webserver(team):
    """What `make run` does once team.env is included: the in-process run is recorded in the
    team instance (DAGSTER_HOME from team.env), where the webserver shows it."""
    env = {**os.environ, **team.variables}
    result = subprocess.run(
        [sys.executable, "-m", "orchestration.pipeline", "--job", "load_raw", "--years", "2016"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_SECONDS,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    runs = graphql(
        team, "{ runsOrError(limit: 1) { ... on Runs { results { jobName status tags { key value } } } } }"
    )["data"]["runsOrError"]["results"]
    assert runs[0]["jobName"] == "load_raw" and runs[0]["status"] == "SUCCESS"
    # In process: no queue, no daemon (the launched runs carry the queue's tags, this one not).
    assert "dagster/code_location" not in {tag["key"] for tag in runs[0]["tags"]}


PIPELINE_TIMEOUT_SECONDS = 1200


def test_the_whole_pipeline_in_the_team_profile_gives_the_embedded_figures(team):
    """`make team-up && make run`: the pipeline on the sample with the warehouse on PostgreSQL,
    the run in the team instance and the model in the MLflow server gives every figure the
    README quotes, block for block (tests/test_readme_figures.py checks the same blocks against
    the embedded profile's run): row counts, the split, the analyses, test metrics."""
    from orchestration import readme_figures
    from orchestration.resources import WarehouseResource

    env = {**os.environ, **team.variables}
    result = subprocess.run(
        [sys.executable, "-m", "orchestration.pipeline"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=PIPELINE_TIMEOUT_SECONDS,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "on postgresql://" in result.stdout  # the warehouse it ran on
    assert "Checks (dbt tests and raw checks):" in result.stdout and ", 0 failed" in result.stdout
    with pytest.MonkeyPatch.context() as patch:
        for name, value in team.variables.items():
            patch.setenv(name, value)
        blocks = readme_figures.compute_blocks(WarehouseResource(), mlflow_url(team))
    readme = readme_figures.README.read_text(encoding="utf-8")
    assert readme_figures.render(readme, blocks) == readme, "a README figure differs in the team profile"
    # Both API workers (baac-api.service) picked the pipeline's champion up from the server.
    client = registry.configure_tracking(mlflow_url(team))
    champion = client.get_model_version_by_alias(registry.REGISTERED_MODEL, registry.CHAMPION).version
    assert every_worker_serves(team, champion)


def every_worker_serves(team, version: str, timeout_seconds: float = 60, workers: int = 2) -> bool:
    """True once ``workers`` distinct API processes (X-Worker-Pid) each answered /health with
    ``version``; the kernel picks the worker of each new connection, so ask until both did."""
    api = f"http://127.0.0.1:{port(team, 'BAAC_API_PORT')}"
    serving: set[str] = set()
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{api}/health", timeout=30) as response:
                pid = response.headers["X-Worker-Pid"]
                if json.loads(response.read())["model_version"] == version:
                    serving.add(pid)
                else:
                    serving.discard(pid)
        except urllib.error.HTTPError as error:
            assert error.code == 503  # no champion loaded yet in this worker
        if len(serving) >= workers:
            return True
        time.sleep(0.1)
    raise AssertionError(
        f"after {timeout_seconds:.0f} s, only workers {sorted(serving)} serve version {version}"
    )


def mlflow_url(team) -> str:
    return team.variables["MLFLOW_TRACKING_URI"]


def http_status(url: str, user: str | None = None, password: str | None = None) -> int:
    request = urllib.request.Request(url)
    if user:
        request.add_header("Authorization", "Basic " + b64encode(f"{user}:{password}".encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.attack
def test_mlflow_refuses_anonymous_and_wrong_passwords(team):
    url = f"{mlflow_url(team)}/api/2.0/mlflow/experiments/search?max_results=1"
    user, password = team.variables["MLFLOW_TRACKING_USERNAME"], team.variables["MLFLOW_TRACKING_PASSWORD"]
    assert http_status(url) == 401
    assert http_status(url, user, secrets.token_urlsafe(8)) == 401
    assert http_status(url, "admin", "password1234") == 401  # MLflow's old built-in default
    assert http_status(url, user, password) == 200


def tiny_model(spec) -> tuple[DummyClassifier, pd.DataFrame]:
    """A real estimator over every feature (its skill is not the point: the transport is)."""
    features = pd.DataFrame({name: [0.0, 1.0, 0.0, 1.0] for name in spec.names})
    return DummyClassifier(strategy="prior").fit(features, [1, 2, 3, 4]), features


def test_the_api_store_loads_a_champion_registered_over_http(team):
    spec = load_feature_spec(DBT_PROJECT_DIR)
    estimator, features = tiny_model(spec)
    client = registry.configure_tracking(mlflow_url(team))
    with mlflow.start_run() as run:
        registry.log_json({"weather": 1}, registry.TYPICAL_ROAD_USER_ARTIFACT)
        info = registry.log_sklearn_model(estimator, "model", features.head(2))
    version = registry.register_version(client, info.model_uri, run.info.run_id, {"trained_at": "now"})
    client.set_registered_model_alias(registry.REGISTERED_MODEL, registry.CHAMPION, version)

    # Proxied: the artifacts are under the team folder, the client only spoke HTTP.
    artifacts = team.directory / "mlflow-artifacts"
    assert list(artifacts.rglob("typical_road_user.json"))
    assert list(artifacts.rglob("MLmodel"))

    store = ChampionStore(mlflow_url(team), spec.names)
    assert store.refresh()
    assert store.model.version == version
    assert store.model.run_id == run.info.run_id
    assert store.model.typical_road_user == {"weather": 1}
    assert store.model.classes == [1, 2, 3, 4]

    # The API's own process (baac-api.service, two workers) loads it with team.env's account:
    # each worker's watcher picks the promotion up (every 2 s here), no reload asked.
    assert every_worker_serves(team, version)


def kill_unit(team, name: str) -> int:
    unit = next(u for u in team.units() if u.name == name)
    pid = launcher.running_pid(team, unit)
    os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while group_alive(pid) and time.monotonic() < deadline:
        # launcher.up() started it from this process: until reaped, it lingers as a zombie
        # that keeps its group alive (the wait ran the full 30 s).
        launcher.reap(pid)
        time.sleep(0.1)
    assert not group_alive(pid), f"{name} outlived kill -9 for 30 s"
    return pid


def train_once(client, spec, before_model=lambda: None) -> str:
    """What a training run does with the registry: clean a crash's debris, log, register."""
    registry.clean_debris(client)
    estimator, features = tiny_model(spec)
    with mlflow.start_run() as run:
        registry.log_json({"weather": 1}, registry.TYPICAL_ROAD_USER_ARTIFACT)
        before_model()
        info = mlflow.sklearn.log_model(estimator, name="model", pip_requirements=[])
    registry.register_version(client, info.model_uri, run.info.run_id, {"trained_at": "now"})
    return run.info.run_id


@pytest.mark.attack
def test_a_killed_mlflow_server_fails_fast_naming_it_then_a_rerun_registers_once(team):
    spec = load_feature_spec(DBT_PROJECT_DIR)
    client = registry.configure_tracking(mlflow_url(team))
    versions_before = client.search_model_versions(f"name = '{registry.REGISTERED_MODEL}'")

    killed_at = []

    def kill_mlflow() -> None:
        kill_unit(team, "baac-mlflow")
        killed_at.append(time.monotonic())

    with pytest.raises(MlflowException) as failure:
        train_once(client, spec, before_model=kill_mlflow)
    took = time.monotonic() - killed_at[0]
    print(f"the killed server failed the training call in {took:.1f} s: {failure.value}")
    assert f"127.0.0.1:{port(team, 'BAAC_MLFLOW_PORT')}" in str(failure.value)
    assert took < 20, f"the failure took {took:.0f} s (MLFLOW_HTTP_REQUEST_* retries)"

    launcher.up()  # restarts MLflow only
    run_id = train_once(client, spec)
    versions = client.search_model_versions(f"name = '{registry.REGISTERED_MODEL}'")
    new = [v for v in versions if v.version not in {w.version for w in versions_before}]
    assert [v.run_id for v in new] == [run_id]  # one version, of the re-run
    crashed = client.search_runs(
        [client.get_experiment_by_name(registry.EXPERIMENT).experiment_id], "attributes.status = 'FAILED'"
    )
    assert len(crashed) == 1  # the killed run, marked FAILED by the re-run's clean-up


@pytest.mark.attack
def test_a_killed_postgres_fails_dagster_clearly_then_it_recovers(team):
    cluster = team.cluster()
    runs = "{ runsOrError(limit: 1) { ... on Runs { results { runId } } } }"
    cluster.kill()
    started = time.monotonic()
    answer = graphql(team, runs)
    assert time.monotonic() - started < 30
    assert answer.get("status") == 500
    assert "psycopg2.OperationalError" in answer["errors"][0]["message"]

    cluster.start()
    cluster.wait_ready()
    assert len(graphql(team, runs)["data"]["runsOrError"]["results"]) == 1
    daemon = next(u for u in team.units() if u.name == "baac-dagster-daemon")
    assert launcher.running_pid(team, daemon) is not None  # it outlived the outage
    # The webserver keeps a pool of connections (Dagster offers no pre-ping): the first
    # request through a connection of the killed server fails, and the pool is dropped.
    run_id = launch(team, "load_raw", {"dagster/partition": "2016"}, attempts=2)
    assert wait_for_run(team, run_id) == "SUCCESS"


def test_down_stops_everything_frees_the_ports_and_keeps_the_data(team):
    pids = [int(p.read_text()) for p in team.logs.glob("*.pid")]
    assert len(pids) == 5
    launcher.down()
    assert not any(group_alive(pid) for pid in pids)
    assert not team.cluster().running()
    for name in DEFAULT_PORTS:
        with pytest.raises(ConnectionRefusedError):  # nothing listens any more
            socket.create_connection(("127.0.0.1", port(team, name)), timeout=5).close()
        with socket.socket() as sock:  # and a server can take the port again
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port(team, name)))
    assert not (team.directory / "team.env").exists()
    assert (team.directory / "team.env.off").exists()  # the passwords the data was created with
    assert (team.directory / "postgres" / "data" / "PG_VERSION").exists()
    assert list((team.directory / "mlflow-artifacts").rglob("MLmodel"))
