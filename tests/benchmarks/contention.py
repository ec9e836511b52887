"""Benchmark: the pipeline on the shipped sample alone, then with one core kept busy.

``python -m tests.benchmarks.contention`` (``make benchmark-contention``) runs ``baac_pipeline``
on data/sample twice in fresh processes and stores (``scale_pipeline --run-one``): once alone,
once beside a process that spins on one of the machine's cores, and prints each step's time
and the slowdown. On 2 cores, OpenMP threads that spin while they wait made one training step
20 times slower beside another process; the target is at most about 2.5 times. Run it alone
on the machine. Results go to data/benchmark/contention.md.
"""

from __future__ import annotations

import json
import subprocess
import sys

from orchestration import settings
from tests.benchmarks.scale_pipeline import OUT_DIR

SAMPLE = settings.DATA_DIR / "sample"


def measure(busy_core: bool) -> dict:
    name = "busy" if busy_core else "alone"
    out = OUT_DIR / f"contention-{name}.json"
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if busy_core else None
    try:
        command = [sys.executable, "-m", "tests.benchmarks.scale_pipeline", "--run-one", str(SAMPLE)]
        command += ["--json", str(out), "--root", str(OUT_DIR / f"run-contention-{name}")]
        subprocess.run(command, check=True)
    finally:
        if busy:
            busy.kill()
    return json.loads(out.read_text())


def table(alone: dict, busy: dict) -> str:
    lines = [
        "| step | alone (s) | one core busy (s) | slowdown |",
        "|---|---|---|---|",
    ]
    for step, measured in alone["steps"].items():
        seconds, other = measured["seconds"], busy["steps"].get(step, {}).get("seconds")
        if other is not None:
            lines.append(f"| {step} | {seconds:.1f} | {other:.1f} | {other / seconds:.2f}x |")
    total_alone, total_busy = alone["total_seconds"], busy["total_seconds"]
    lines.append(f"| whole run | {total_alone:.1f} | {total_busy:.1f} | {total_busy / total_alone:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    result = table(measure(busy_core=False), measure(busy_core=True))
    (OUT_DIR / "contention.md").write_text(result + "\n")
    print(result)


if __name__ == "__main__":
    main()
