"""``python -m orchestration.readme_figures``: the figures the README quotes, from the data.

The README marks each generated block with ``<!-- figures:NAME -->`` ... ``<!-- /figures:NAME -->``.
This command computes every block from the warehouse (the example analyses, the split), the
dbt manifest (test counts) and the MLflow store (the champion's test metrics), and rewrites
them (``--check``: only says whether the README is up to date). `make readme` runs it after
`make run`; a test checks that the README equals its output on the sample, so no figure is
written twice.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from mlflow import MlflowClient

from ml import registry
from ml.contracts import LEGACY_BASELINE, MAJORITY_BASELINE, MODEL, PREVIOUS_FEATURE_SET
from ml.metrics import HEADLINE_METRICS
from orchestration import settings
from orchestration.resources import WarehouseResource

README = settings.PROJECT_ROOT / "README.md"
ANALYSES = settings.DBT_PROJECT_DIR / "analyses"
BLOCK = re.compile(r"(<!-- figures:(?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /figures:(?P=name) -->)", re.S)
MODEL_LABELS = {
    MODEL: "gradient boosting (this project)",
    PREVIOUS_FEATURE_SET: "gradient boosting, previous feature set (without the other parties)",
    LEGACY_BASELINE: "random forest on 16 numeric columns (replaced project)",
    MAJORITY_BASELINE: "majority class",
}
METRIC_LABELS = {
    "macro_f1": "macro-F1",
    "balanced_accuracy": "balanced accuracy",
    "severe_roc_auc": "severe ROC-AUC",
}


def markdown_table(columns: list[str], rows: list[tuple]) -> str:
    def cell(value) -> str:
        if isinstance(value, Decimal) and value.as_tuple().exponent == 0:
            value = int(value)  # PostgreSQL's sum of integers, DuckDB's is an int
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def analysis_sql(name: str) -> str:
    """An analysis as an analyst types it in `make sql`: refs become schema.table."""
    text = (ANALYSES / f"{name}.sql").read_text(encoding="utf-8")
    return re.sub(r"\{\{\s*ref\('(\w+)'\)\s*\}\}", lambda m: f"marts.{m.group(1)}", text).strip()


def analysis_block(conn, name: str) -> str:
    sql = analysis_sql(name)
    result = conn.execute(sql)
    columns = [d[0] for d in result.description]
    return f"{markdown_table(columns, result.fetchall())}\n\n```sql\n{sql}\n```\n"


def split_block(conn) -> str:
    counts = dict(
        conn.execute("select split, count(*) from intermediate.int_accident_splits group by 1").fetchall()
    )
    total = sum(counts.values())
    order = ("train", "validation", "test")
    return (
        f"On the sample: {' / '.join(f'{counts[s]:,}' for s in order)} accidents "
        f"({' / '.join(f'{100 * counts[s] / total:.1f}' for s in order)} %).\n"
    )


def dbt_tests_block() -> str:
    manifest = json.loads((settings.DBT_PROJECT_DIR / "target" / "manifest.json").read_text())
    data_tests = sum(1 for n in manifest["nodes"].values() if n["resource_type"] == "test")
    unit_tests = len(manifest.get("unit_tests", {}))
    return (
        f"**Tests**: {data_tests} data tests run in the pipeline's `dbt build`; {unit_tests} unit tests"
        " (fixed input rows: they test the SQL, not the data) run in `make test`.\n"
    )


def results_block(client: MlflowClient) -> str:
    champion = client.get_model_version_by_alias(registry.REGISTERED_MODEL, registry.CHAMPION)
    run = client.get_run(champion.run_id)
    metrics, tags = run.data.metrics, run.data.tags
    suffixes = {MODEL: "", **{name: f"__{name}" for name in MODEL_LABELS if name != MODEL}}

    def cell(metric: str, suffix: str) -> str:
        """The figure, with its 95% bootstrap interval when the run has one."""
        value, low, high = (metrics.get(f"test_{metric}{end}{suffix}") for end in ("", "_ci_low", "_ci_high"))
        return f"{value:.4f}" if low is None else f"{value:.4f} [{low:.4f}, {high:.4f}]"

    rows = [
        (MODEL_LABELS[name], *(cell(m, suffix) for m in HEADLINE_METRICS))
        for name, suffix in suffixes.items()
        # A run from before the feature-set comparison has no previous feature set's model.
        if f"test_{HEADLINE_METRICS[0]}{suffix}" in metrics
    ]
    test_rows = int(tags["data.rows.test"])
    header = (
        f"**Results on the shipped sample** (`make run`; test split: {test_rows:,} road users, "
        f"model version {champion.version}; in brackets, the 95% bootstrap interval over test "
        "accidents):\n\n"
    )
    table = markdown_table(["model", *(METRIC_LABELS[m] for m in HEADLINE_METRICS)], rows) + "\n"
    if "cv_macro_f1_mean" in metrics:
        table += (
            f"\nGrouped 5-fold cross-validation by accident on train + validation: macro-F1 "
            f"{metrics['cv_macro_f1_mean']:.4f} ± {metrics['cv_macro_f1_std']:.4f}, severe ROC-AUC "
            f"{metrics['cv_severe_roc_auc_mean']:.4f} ± {metrics['cv_severe_roc_auc_std']:.4f}.\n"
        )
    return header + table


def compute_blocks(warehouse: Path | WarehouseResource, tracking_uri: str) -> dict[str, str]:
    """Every generated block of the README, by name, from a DuckDB file or the configured
    warehouse (PostgreSQL in the team profile)."""
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    if isinstance(warehouse, Path):
        warehouse = WarehouseResource(path=str(warehouse), kind="duckdb")
    with warehouse.get_connection(read_only=True) as conn:
        blocks: dict[str, Callable[[], str]] = {
            "q1-seat-belt": lambda: analysis_block(conn, "seat_belt_and_severity"),
            "q2-lighting": lambda: analysis_block(conn, "severity_by_lighting"),
            "q3-vulnerable": lambda: analysis_block(conn, "most_vulnerable_road_users"),
            "split": lambda: split_block(conn),
            "dbt-tests": dbt_tests_block,
            "results": lambda: results_block(client),
        }
        return {name: make() for name, make in blocks.items()}


def render(readme: str, blocks: dict[str, str]) -> str:
    """The README with every marked block replaced; a marker without a block is an error."""
    names = {m.group("name") for m in BLOCK.finditer(readme)}
    if names != set(blocks):
        raise ValueError(f"README blocks {sorted(names)} differ from the generated {sorted(blocks)}")
    return BLOCK.sub(lambda m: m.group(1) + blocks[m.group("name")] + m.group(4), readme)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail if the README is not up to date")
    args = parser.parse_args(argv)
    subprocess.run(
        # The embedded project's manifest (target dev, in target/), whichever warehouse is
        # configured: the team target disables the drift models and their tests.
        [
            settings.dbt_executable(),
            "parse",
            "--profiles-dir",
            ".",
            "-q",
            "--target",
            "dev",
            "--target-path",
            "target",
        ],
        cwd=settings.DBT_PROJECT_DIR,
        check=True,
    )
    current = README.read_text(encoding="utf-8")
    warehouse = WarehouseResource()
    updated = render(current, compute_blocks(warehouse, settings.mlflow_tracking_uri()))
    if args.check:
        if updated != current:
            print("README.md figures are out of date: run `make readme`", file=sys.stderr)
            return 1
        return 0
    README.write_text(updated, encoding="utf-8")
    print(f"README.md figures written from {warehouse.describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
