"""Shared fixtures: a fresh DuckDB warehouse per test, the sample data, a loopback HTTP server."""

from __future__ import annotations

import functools
import http.server
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from orchestration import settings

SAMPLE_DIR = settings.DATA_DIR / "sample"


def find_shared_baac_dir() -> Path:
    """The real BAAC files shared beside the checkout: ``BAAC_SHARED_DIR``, else the first
    ``shared/data/baac`` found going up from the project (../shared for a checkout in /work)."""
    if os.environ.get("BAAC_SHARED_DIR"):
        return Path(os.environ["BAAC_SHARED_DIR"])
    for folder in settings.PROJECT_ROOT.parents:
        if (folder / "shared" / "data" / "baac").is_dir():
            return folder / "shared" / "data" / "baac"
    return settings.PROJECT_ROOT.parent / "shared" / "data" / "baac"


SHARED_BAAC_DIR = find_shared_baac_dir()
FIXTURES_DIR = Path(__file__).parent / "fixtures"


@pytest.fixture
def shared_baac_dir() -> Path:
    """The real BAAC files beside the checkout (../shared/data/baac). Always there in CI
    (`.ci/run` sets CI=true), where their absence fails; elsewhere the test is skipped."""
    if not SHARED_BAAC_DIR.is_dir():
        message = f"{SHARED_BAAC_DIR} (the real 2013 files) is absent"
        if os.environ.get("CI"):
            pytest.fail(message + " in CI")
        pytest.skip(message)
    return SHARED_BAAC_DIR


@pytest.fixture
def warehouse(tmp_path, monkeypatch) -> Path:
    """An empty warehouse file, set as DUCKDB_PATH for the code under test; the drift models
    beside it read no prediction log and write their files there, never under data/."""
    path = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("DUCKDB_PATH", str(path))
    monkeypatch.setenv("BAAC_PREDICTION_LOG_DIR", str(tmp_path / "predictions"))
    monkeypatch.setenv("BAAC_MONITORING_DIR", str(tmp_path / "monitoring"))
    return path


def query(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(sql).fetchall()


class LoopbackServer:
    """A real HTTP server on 127.0.0.1 serving one directory, counting requests."""

    def __init__(self, directory: Path):
        self.requests: list[str] = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):  # keep test output quiet
                pass

            def do_GET(self):
                server.requests.append(self.path)
                super().do_GET()

        handler = functools.partial(Handler, directory=str(directory))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> LoopbackServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def http_server_for() -> Iterator:
    """``http_server_for(directory)`` starts a loopback server; all are stopped after the test."""
    servers: list[LoopbackServer] = []

    def start(directory: Path) -> LoopbackServer:
        server = LoopbackServer(directory).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)


class PipelineRun:
    """The whole pipeline, run once per test session on the shipped sample."""

    def __init__(self, root: Path):
        self.root = root
        self.warehouse = root / "warehouse.duckdb"
        #: The run's Dagster instance (DAGSTER_HOME), for the Dagster UI to show.
        self.dagster_home = root / "dagster_home"
        self.tracking_uri = f"sqlite:///{root / 'mlflow.db'}"
        self.result = None

    @property
    def env(self) -> dict[str, str]:
        """The environment a tool needs to see this run's warehouse, MLflow store and runs
        (for dbt, the profile and project variables of the run's `dbt build`, so that the
        parse the run kept applies)."""
        return {
            "DUCKDB_PATH": str(self.warehouse),
            "BAAC_PREDICTION_LOG_DIR": str(self.root / "predictions"),
            "BAAC_MONITORING_DIR": str(self.root / "monitoring"),
            "MLFLOW_TRACKING_URI": self.tracking_uri,
            "MLFLOW_ARTIFACT_ROOT": str(self.root / "mlflow-artifacts"),
            "DAGSTER_HOME": str(self.dagster_home),
        }


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory) -> Iterator[PipelineRun]:
    """Runs `baac_pipeline` (raw -> dbt -> ML) for every year into a temporary warehouse and
    MLflow store, exactly as `make run` does, and keeps them for the tests that read them."""
    import dagster as dg

    from orchestration.pipeline import run_pipeline
    from orchestration.report import completed, failure_summary

    run = PipelineRun(tmp_path_factory.mktemp("pipeline"))
    patch = pytest.MonkeyPatch()
    # Its warehouse, MLflow store and folders (the drift models read no log, where the
    # project's own data/predictions may hold one, and write their files there, not under
    # data/); not DAGSTER_HOME: the instance is given, and no other test's run must go to it.
    for name, value in run.env.items():
        if name != "DAGSTER_HOME":
            patch.setenv(name, value)
    patch.setenv("BAAC_SOURCE", "local")
    patch.setenv("BAAC_LOCAL_DIR", str(SAMPLE_DIR))
    try:
        # A Dagster home of its own (not ephemeral), so that the Dagster UI can show the run.
        run.dagster_home.mkdir()
        instance = dg.DagsterInstance.local_temp(str(run.dagster_home))
        run.result = run_pipeline(settings.ACCIDENT_YEARS, instance)
        assert completed(run.result), f"the pipeline failed on the sample:\n{failure_summary(run.result)}"
        yield run
    finally:
        patch.undo()


@pytest.fixture(scope="session")
def docs_target(pipeline_run, tmp_path_factory) -> Path:
    """`dbt docs generate` on the pipeline's warehouse, once: the manifest with every model's
    compiled SQL, the catalog of its columns, and the static site (index.html) the docs test
    serves. A target folder of its own: the project's holds the manifest other tests read."""
    target = tmp_path_factory.mktemp("docs") / "target"
    run_dbt(["docs", "generate", "-q"], {**os.environ, **pipeline_run.env}, target, timeout=240)
    return target


def run_dbt(args: list[str], env: dict[str, str], target: Path, **options) -> subprocess.CompletedProcess:
    """`dbt <args>` in the project on ``env``'s profile, into the target folder ``target``
    (its log too: ``target/dbt.log``), which starts from the parse kept for that profile
    (orchestration/dbt_parse_cache.py): on the pipeline's warehouse, dbt then parses only
    what changed since the pipeline's build (a full parse is about 4 s of CPU). Fails the
    test if dbt fails."""
    from orchestration import dbt_parse_cache

    cache_dir = settings.dbt_parse_cache_dir(env)
    dbt_parse_cache.seed_target(target, cache_dir, env)
    done = subprocess.run(
        [settings.dbt_executable(), *args, "--profiles-dir", ".", "--target-path", str(target)]
        + ["--log-path", str(target)],
        cwd=settings.DBT_PROJECT_DIR,
        env=env,
        check=True,
        **options,
    )
    dbt_parse_cache.keep_parse(target, cache_dir, env)
    return done


class MonitoredRun:
    """The pipeline's warehouse (a copy) with a hand-made prediction log of two closed days,
    after the `monitoring` job (the daily schedule's) has compacted it and built the drift models."""

    def __init__(self, pipeline: PipelineRun, root: Path, train, result):
        self.pipeline = pipeline
        self.warehouse = root / "warehouse.duckdb"
        self.log_dir = root / "predictions"
        self.monitoring_dir = root / "monitoring"
        #: The train rows of ml_features, as logged on both days.
        self.train = train
        self.result = result


@pytest.fixture(scope="session")
def monitored_run(pipeline_run, tmp_path_factory) -> Iterator[MonitoredRun]:
    import shutil

    import dagster as dg

    from ml.defaults import DBT_PROJECT_DIR
    from ml.features import load_feature_spec
    from orchestration.definitions import build_definitions
    from orchestration.report import failure_summary
    from tests.drift import SHIFTED_DAY, SHIFTED_HOUR, UNCHANGED_DAY, write_prediction_log

    root = tmp_path_factory.mktemp("monitoring")
    shutil.copy(pipeline_run.warehouse, root / "warehouse.duckdb")
    spec = load_feature_spec(DBT_PROJECT_DIR)
    with duckdb.connect(str(root / "warehouse.duckdb"), read_only=True) as conn:
        train = conn.execute("select * from marts.ml_features where split = 'train' order by all").df()
    labels = [spec.classes[c] for c in sorted(spec.classes)]
    write_prediction_log(
        root / "predictions",
        spec,
        {UNCHANGED_DAY: train, SHIFTED_DAY: train.assign(hour=SHIFTED_HOUR)},
        labels,
    )
    patch = pytest.MonkeyPatch()
    for name, value in {
        **pipeline_run.env,
        "DUCKDB_PATH": str(root / "warehouse.duckdb"),
        "DAGSTER_HOME": str(root / "dagster_home"),
        "BAAC_PREDICTION_LOG_DIR": str(root / "predictions"),
        "BAAC_MONITORING_DIR": str(root / "monitoring"),
    }.items():
        patch.setenv(name, value)
    patch.delenv("BAAC_PSI_ALERT_THRESHOLD", raising=False)
    try:
        (root / "dagster_home").mkdir()
        instance = dg.DagsterInstance.local_temp(str(root / "dagster_home"))
        job = build_definitions().resolve_job_def("monitoring")
        result = job.execute_in_process(instance=instance, raise_on_error=False)
        assert result.success, f"the monitoring job failed:\n{failure_summary(result)}"
        yield MonitoredRun(pipeline_run, root, train, result)
    finally:
        patch.undo()


def pytest_configure(config) -> None:
    """A suite started in the background (``make test &``, a CI runner) ignores SIGINT, and a
    Dagster run in a test would then make the worker ignore SIGTERM, and with it every process
    a later test starts (``orchestration.in_process``; a spawned pool's ``terminate()`` hung
    for ever). Tests get Python's own SIGINT handler, as in a terminal."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items) -> None:
    """Under ``pytest -n`` (make test), every test of the session's pipeline run goes to one
    worker (``--dist loadgroup``), so the pipeline runs once while the other worker takes the
    rest; without xdist the mark does nothing. First: xdist reads the marks in this hook."""
    for item in items:
        if "pipeline_run" in item.fixturenames:
            item.add_marker(pytest.mark.xdist_group("pipeline"))


def pytest_runtest_setup(item) -> None:
    """The groups above are what keeps the pipeline (and the team's services) to one start
    per `make test`: under ``--dist loadgroup``, xdist marks a grouped test by suffixing its
    node id with ``@group``. Should a pytest or xdist release stop doing so (pytest 9.2 with
    xdist 3.8 did, pytest-xdist#1386), every grouped test fails before its fixtures start."""
    if (
        getattr(item.config.option, "loadgroup", False)
        and item.get_closest_marker("xdist_group")
        and "@" not in item.nodeid
    ):
        pytest.fail(
            "--dist loadgroup is not grouping this test (no @group in its node id): a mark added "
            "after xdist's collection hook, or pytest-xdist#1386 (the pytest pin in pyproject.toml)",
            pytrace=False,
        )
