"""``python -m orchestration.replay`` (`make replay`): the history replayed through the loop.

From an empty warehouse, MLflow store and Dagster home of its own (``BAAC_REPLAY_DIR``,
default data/replay, wiped first), the source folder is delivered into the replay's landing
folder one delivery at a time: the shipped sample (2016 only) as ``REPLAY_DELIVERIES``
growing versions of 2016 (default 4: months 1-3, 1-6, 1-9, 1-12), or a multi-year folder
year by year. After each delivery the landing sensor is ticked, its runs executed, and the
automation ticked until it requests nothing (orchestration/driver.py): no asset is called
by hand. A table per delivery is printed and written to docs/replay/replay.md with a plot,
docs/replay/replay.png.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from orchestration import settings
from orchestration.driver import LoopDriver, Tick
from orchestration.ingestion.slices import plan_deliveries, publish
from orchestration.report import completed, failure_summary, materialization_metadata, raw_totals

DOCS_DIR = settings.PROJECT_ROOT / "docs" / "replay"


@dataclass
class DeliveryRow:
    """One line of the replay's table."""

    delivery: str
    accidents_loaded: int
    road_users_loaded: int
    runs: int
    dbt_builds: int
    challenger_version: str | None
    champion_version: str | None
    champion_test_macro_f1: float | None
    champion_oot_macro_f1: float | None
    promoted: bool | None
    why: str
    #: The largest feature drift of the delivery against the champion's training rows: a hook
    #: for the drift models of issue 11 (parts 4-5); None until they exist.
    largest_feature_drift: str | None
    seconds: float


def use_replay_environment(root: Path) -> dict[str, str]:
    """Point the warehouse, MLflow store and landing folder into ``root`` (emptied first)."""
    shutil.rmtree(root, ignore_errors=True)
    (root / "dagster_home").mkdir(parents=True)
    env = {
        **settings.stores_in(root),
        "BAAC_LANDING_DIR": str(root / "landing"),
        "DAGSTER_HOME": str(root / "dagster_home"),
    }
    os.environ.update(env)
    return env


def champion_scores(version: str | None) -> tuple[float | None, float | None]:
    """The champion's test and out-of-time macro-F1, from its MLflow run."""
    if version is None:
        return None, None
    from ml import registry

    client = registry.configure_tracking(settings.mlflow_tracking_uri(), settings.mlflow_artifact_root())
    run = client.get_run(client.get_model_version(registry.REGISTERED_MODEL, version).run_id)
    return run.data.metrics.get("test_macro_f1"), run.data.metrics.get("oot_macro_f1")


#: The drift model comparing the newest loaded year with the earlier years (dbt, monitoring).
DRIFT_NEWEST_YEAR = "drift_newest_year"


def largest_feature_drift(monitoring_dir: Path) -> str | None:
    """The feature whose PSI between the newest loaded year and the earlier years is largest
    (``drift_newest_year``, rebuilt by the delivery's dbt build), e.g. ``age 0.0412``; None
    when the data holds a single year (nothing to compare) or the model was not built."""
    import pyarrow.parquet as pq

    path = monitoring_dir / f"{DRIFT_NEWEST_YEAR}.parquet"
    if not path.exists():
        return None
    # An empty external model is one all-NULL row (dbt-duckdb keeps the columns that way).
    rows = [row for row in pq.read_table(path).to_pylist() if row["newest_year"] is not None]
    if not rows:
        return None
    top = max(rows, key=lambda row: row["psi"])
    return f"{top['feature']} {top['psi']:.4f} ({top['newest_year']})"


def is_dbt_run(selection: list[dg.AssetKey]) -> bool:
    return any(key.path[0] in ("staging", "intermediate", "marts", "codebook") for key in selection)


def describe_tick(label: str, tick: Tick, seconds: float) -> DeliveryRow:
    """The table's line for one delivery, from the runs it set off."""
    for run in tick.runs:
        if not completed(run):
            raise RuntimeError(f"delivery {label}: run {run.run_id} failed:\n{failure_summary(run)}")
    loaded = {}
    for run in tick.sensor_runs:
        loaded.update(raw_totals(run))
    champion = {}
    for run in tick.automation_runs:
        champion = materialization_metadata(run).get("champion_model", champion)
    from ml import registry

    client = registry.configure_tracking(settings.mlflow_tracking_uri(), settings.mlflow_artifact_root())
    version = registry.alias_version(client, registry.CHAMPION)
    test_f1, oot_f1 = champion_scores(version)
    return DeliveryRow(
        delivery=label,
        accidents_loaded=loaded.get("raw/caracteristics", (0, 0))[0],
        road_users_loaded=loaded.get("raw/users", (0, 0))[0],
        runs=len(tick.runs),
        dbt_builds=sum(is_dbt_run(s) for s in tick.automation_selections),
        challenger_version=champion.get("challenger_version"),
        champion_version=version,
        champion_test_macro_f1=test_f1,
        champion_oot_macro_f1=oot_f1,
        promoted=champion.get("promoted"),
        why=champion.get("reason") or (tick.skip_reason or "no new model"),
        largest_feature_drift=largest_feature_drift(settings.monitoring_dir()),
        seconds=seconds,
    )


def replay(source: Path, deliveries: int, root: Path, log=print) -> list[DeliveryRow]:
    """Deliver ``source`` into a fresh landing folder one delivery at a time, through the
    sensor and the automation; one table row per delivery."""
    use_replay_environment(root)
    from orchestration.definitions import build_definitions

    instance = dg.DagsterInstance.local_temp(str(root / "dagster_home"))
    driver = LoopDriver(build_definitions(), instance)
    driver.settle()  # the daemon is running before anything arrives
    rows = []
    for plan in plan_deliveries(source, deliveries):
        started = time.monotonic()
        written = publish(source, root / "landing", plan)
        log(f"Delivered {plan.label}: {written}")
        tick = driver.tick()
        rows.append(describe_tick(plan.label, tick, time.monotonic() - started))
        log(format_table(rows[-1:]))
    return rows


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:,}" if isinstance(value, int) else str(value)


COLUMNS = (
    ("delivery", "delivery"),
    ("accidents_loaded", "accidents"),
    ("road_users_loaded", "road users"),
    ("runs", "runs"),
    ("dbt_builds", "dbt builds"),
    ("challenger_version", "challenger"),
    ("promoted", "promoted"),
    ("why", "why"),
    ("champion_version", "champion"),
    ("champion_test_macro_f1", "champion test macro-F1"),
    ("champion_oot_macro_f1", "champion out-of-time macro-F1"),
    ("largest_feature_drift", "largest feature drift"),
    ("seconds", "seconds"),
)


def format_table(rows: list[DeliveryRow]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| " + " | ".join(title for _, title in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for row in rows:
        cells = [
            f"{row.seconds:.0f}" if name == "seconds" else _cell(getattr(row, name)) for name, _ in COLUMNS
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(rows: list[DeliveryRow], path: Path) -> None:
    """The champion's test and out-of-time macro-F1 after each delivery, promotions marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = range(len(rows))
    figure, axis = plt.subplots(figsize=(8, 4))
    for name, label in (("champion_test_macro_f1", "test split"), ("champion_oot_macro_f1", "out-of-time")):
        axis.plot(x, [getattr(r, name) or float("nan") for r in rows], marker="o", label=f"champion, {label}")
    promoted = [i for i, r in enumerate(rows) if r.promoted]
    axis.scatter(
        promoted, [rows[i].champion_test_macro_f1 for i in promoted], s=160, facecolors="none",
        edgecolors="black", label="promoted on this delivery",
    )  # fmt: skip
    axis.set_xticks(list(x), [f"{r.delivery}\n{r.accidents_loaded:,} accidents" for r in rows], fontsize=8)
    axis.set_ylabel("macro-F1")
    axis.set_title("Replay: the champion after each delivery")
    axis.legend(fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def write_report(rows: list[DeliveryRow], source: Path, docs: Path) -> Path:
    docs.mkdir(parents=True, exist_ok=True)
    plot(rows, docs / "replay.png")
    shown = (
        source.relative_to(settings.PROJECT_ROOT) if source.is_relative_to(settings.PROJECT_ROOT) else source
    )
    text = (
        "# `make replay`\n\n"
        f"Source: `{shown}`, "
        f"{len(rows)} deliveries, each through the landing sensor and the automation conditions "
        "(written by `python -m orchestration.replay`). "
        "The champion's figures are those of its own MLflow run (test split and out-of-time cut of "
        'the data it was trained on); "why" compares challenger and champion on the current test split. '
        "Seconds are wall time on a shared 2-core machine. The sample is small and unusual "
        "(data/README.md): these show the loop working, not figures for France.\n\n"
        f"{format_table(rows)}\n\n![replay](replay.png)\n"
    )
    (docs / "replay.md").write_text(text, encoding="utf-8")
    return docs / "replay.md"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--source", type=Path, default=settings.local_source_dir(), help="Kaggle-layout folder"
    )
    parser.add_argument("--deliveries", type=int, default=None, help="versions of a one-year source")
    parser.add_argument("--docs", type=Path, default=DOCS_DIR, help="where replay.md and replay.png go")
    args = parser.parse_args(argv)
    source = args.source.resolve()
    rows = replay(source, args.deliveries or settings.replay_deliveries(), settings.replay_dir())
    print("\n" + format_table(rows))
    print(f"\nWritten: {write_report(rows, source, args.docs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
