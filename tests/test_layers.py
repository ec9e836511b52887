"""The layers are enforced: `lint-imports` (make lint) fails when ml/ imports the orchestrator."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

from orchestration import settings

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_an_orchestrator_import_in_ml_breaks_the_lint(tmp_path):
    for package in ("ml", "api", "orchestration"):
        shutil.copytree(
            settings.PROJECT_ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(settings.PROJECT_ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    assert lint_imports(tmp_path).returncode == 0, lint_imports(tmp_path).stdout[-2000:]

    features = tmp_path / "ml" / "features.py"
    features.write_text("from orchestration import settings  # noqa\n" + features.read_text())
    completed = lint_imports(tmp_path)
    assert completed.returncode != 0
    assert "ml is not allowed to import orchestration" in completed.stdout
    assert "ml.features -> orchestration.settings" in completed.stdout
