"""What ``make run`` prints at the end of a run: the metadata the assets reported."""

from __future__ import annotations

import re

import dagster as dg


def materialization_metadata(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    """``{asset key: metadata values}`` of every materialization in the run."""
    summary = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        summary[materialization.asset_key.to_user_string()] = {
            key: value.value for key, value in materialization.metadata.items()
        }
    return summary


_TERMINAL_COLOURS = re.compile(r"\x1b\[[0-9;]*m")


def root_cause(error) -> str:
    """The innermost error of a Dagster failure (a step fails with Dagster's wrapper, "Error
    occurred while executing op ...", whose cause is what the asset actually said), without
    the terminal colours dbt writes."""
    while getattr(error, "cause", None) is not None:
        error = error.cause
    return _TERMINAL_COLOURS.sub("", error.message).strip()


def completed(result: dg.ExecuteInProcessResult) -> bool:
    """Every step ran and succeeded: Dagster calls a run with skipped steps a success."""
    return result.success and not any(event.is_step_skipped for event in result.all_events)


def failure_summary(result: dg.ExecuteInProcessResult) -> str:
    """Why a run failed: each failed or skipped step (with its root cause), and each failed
    check (a dbt test that fails makes `dbt build` fail: its name says which rule broke)."""
    lines = [
        f"step {event.step_key} failed: {root_cause(event.step_failure_data.error)}"
        for event in result.all_events
        if event.is_step_failure
    ]
    lines += [
        f"step {event.step_key} was skipped: {event.message}"
        for event in result.all_events
        if event.is_step_skipped
    ]
    lines += [
        f"check {evaluation.asset_key.to_user_string()} / {evaluation.check_name} failed"
        for evaluation in result.get_asset_check_evaluations()
        if not evaluation.passed
    ]
    return "\n".join(lines) or "the run failed without a failed step (see the Dagster logs)"


def raw_totals(result: dg.ExecuteInProcessResult) -> dict[str, tuple[int, int]]:
    """``{raw asset: (rows loaded, rows rejected)}`` over every year partition of the run."""
    totals: dict[str, tuple[int, int]] = {}
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        values = {key: value.value for key, value in materialization.metadata.items()}
        if "loaded_rows" in values:
            key = materialization.asset_key.to_user_string()
            loaded, rejected = totals.get(key, (0, 0))
            totals[key] = (loaded + values["loaded_rows"], rejected + values["rejected_rows"])
    return totals


def print_run_summary(result: dg.ExecuteInProcessResult) -> None:
    totals = raw_totals(result)
    if totals:
        print("\nRaw tables loaded (rows / rejected):")
        for key, (loaded, rejected) in sorted(totals.items()):
            print(f"  {key:<22} {loaded:>10,} / {rejected:,}")


def print_check_summary(result: dg.ExecuteInProcessResult) -> None:
    evaluations = result.get_asset_check_evaluations()
    failed = [e for e in evaluations if not e.passed]
    print(
        f"\nChecks (dbt tests and raw checks): {len(evaluations) - len(failed)} passed, {len(failed)} failed"
    )
    for evaluation in failed:
        print(f"  FAILED {evaluation.asset_key.to_user_string()}: {evaluation.check_name}")


def print_model_summary(result: dg.ExecuteInProcessResult) -> None:
    """The trained model against both baselines on the test split (each figure with its 95%
    interval over test accidents), and the promotion."""
    metadata = materialization_metadata(result)
    evaluation = metadata.get("severity_model_evaluation")
    if evaluation:
        print("\nSeverity model vs baselines, test split [95% bootstrap interval over accidents]:")
        print(evaluation["model_vs_baselines"])
        if "test_top_label_ece" in evaluation:
            print(
                "Calibration (expected calibration error on test): top label "
                f"{evaluation['test_top_label_ece']:.4f}, severe vs not {evaluation['test_severe_ece']:.4f}"
            )
        gains = feature_set_gain_lines(evaluation)
        if gains:
            print(
                "Gain of the newest feature set over the previous one (paired bootstrap over test accidents):"
            )
            print("\n".join(gains))
    champion = metadata.get("champion_model")
    if champion:
        outcome = "promoted to champion" if champion["promoted"] else "not promoted"
        print(
            f"\nModel version {champion['challenger_version']}: {outcome} ({champion['reason']}); "
            f"champion is version {champion['champion_version']}."
        )


def feature_set_gain_lines(evaluation: dict) -> list[str]:
    """One line per metric: the gain, its 95% interval and whether it is beyond the noise."""
    lines = []
    for metric, label in (("macro_f1", "macro-F1"), ("severe_roc_auc", "severe ROC-AUC")):
        key = f"test_{metric}_gain_over_previous_feature_set"
        if key in evaluation:
            low, high = evaluation[f"{key}_ci_low"], evaluation[f"{key}_ci_high"]
            verdict = "beyond the noise" if low > 0 else "within the noise"
            lines.append(f"  {label} {evaluation[key]:+.4f} [{low:+.4f}, {high:+.4f}]: {verdict}")
    return lines


def cross_validation_lines(robustness: dict) -> list[str]:
    """The grouped cross-validation's mean and spread, from the robustness asset's metadata."""
    if "cv_macro_f1_mean" not in robustness:
        return []
    cv = {name: robustness[f"cv_{name}_mean"] for name in ("macro_f1", "severe_roc_auc")}
    std = {name: robustness[f"cv_{name}_std"] for name in ("macro_f1", "severe_roc_auc")}
    # A reused champion's figures are read back from its run, without the folds and rows.
    folds = f"{robustness['cv_folds']}-fold " if "cv_folds" in robustness else ""
    size = ""
    if "cv_rows" in robustness:
        size = f" ({robustness['cv_rows']:,} road users, {robustness['cv_seconds']} s)"
    return [
        f"Grouped {folds}cross-validation by accident on train + validation{size}, mean +/- std: "
        f"macro-F1 {cv['macro_f1']:.4f} +/- {std['macro_f1']:.4f}, "
        f"severe ROC-AUC {cv['severe_roc_auc']:.4f} +/- {std['severe_roc_auc']:.4f}"
    ]


def out_of_time_lines(robustness: dict) -> list[str]:
    """The challenger's out-of-time figures (ml/out_of_time.py), from the robustness asset's
    metadata: the "next period" estimate, beside the test split that promotion uses."""
    if "oot_cut" not in robustness:
        return []
    lines = [f"Out-of-time ({robustness['oot_cut']}):"]
    if "oot_macro_f1" in robustness:
        macro_f1, severe_auc = robustness["oot_macro_f1"], robustness["oot_severe_roc_auc"]
        lines.append(
            f"  macro-F1 {macro_f1:.4f}, severe ROC-AUC {severe_auc:.4f} (promotion uses the test split)"
        )
    return lines


def print_robustness_summary(result: dg.ExecuteInProcessResult) -> None:
    """How far the challenger's figures hold beyond the test split: cross-validation, out of time."""
    robustness = materialization_metadata(result).get("severity_model_robustness") or {}
    lines = cross_validation_lines(robustness) + out_of_time_lines(robustness)
    if lines:
        print("\n" + "\n".join(lines))
