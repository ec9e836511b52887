"""Facts of the BAAC files and of this project's rules that Python needs, each stated once.

The SQL side states each of them once too, as a dbt macro; ``tests/test_rules_agree.py``
checks that both give the same answers.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import yaml

#: ``Num_Acc`` is the 4-digit accident year followed by an 8-digit serial (201600000001).
NUM_ACC_SERIAL = 100_000_000

#: Severity classes counted as severe (dbt macro ``is_severe``): hospitalised (3), killed (4).
SEVERE_CLASSES = (3, 4)


def accident_year(num_acc: int) -> int:
    """The accident year of an accident number (dbt macro ``accident_year_from_num_acc``)."""
    return int(num_acc) // NUM_ACC_SERIAL


@dataclass(frozen=True)
class SplitRule:
    """The train / validation / test split, decided by the accident number alone (dbt macros
    ``split_bucket`` and ``split_from_bucket``, with the vars of ``dbt_project.yml``)."""

    seed: int
    train_percent: int
    validation_percent: int

    def bucket(self, num_acc: int) -> int:
        """0-99: the first 8 hex digits of md5("<Num_Acc>-<seed>"), modulo 100."""
        return int(hashlib.md5(f"{num_acc}-{self.seed}".encode()).hexdigest()[:8], 16) % 100

    def split(self, num_acc: int) -> str:
        bucket = self.bucket(num_acc)
        if bucket < self.train_percent:
            return "train"
        if bucket < self.train_percent + self.validation_percent:
            return "validation"
        return "test"


def read_split_rule(dbt_project_dir: Path) -> SplitRule:
    """The split rule as ``dbt_project.yml`` configures it."""
    variables = yaml.safe_load((dbt_project_dir / "dbt_project.yml").read_text(encoding="utf-8"))["vars"]
    return SplitRule(
        seed=int(variables["split_seed"]),
        train_percent=int(variables["split_train_percent"]),
        validation_percent=int(variables["split_validation_percent"]),
    )
