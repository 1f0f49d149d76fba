"""Wall time and peak memory of each stage of a recipe, run stage by stage as a user would.

Usage: .venv/bin/python benchmarks/bench_recipe.py egs/tidigit_mnist [--budget-min 20] [--mem-gib 4]
           [--stages 1-6] -- [run.sh options]
  e.g. FSDD=../../../shared/data/fsdd MNIST=../../../shared/data/mnist \\
       .venv/bin/python benchmarks/bench_recipe.py egs/tidigit_mnist --budget-min 20

Each stage is `run.sh --stage N --stop-stage N ...` in the recipe dir. Peak memory is the largest
resident set of any single process of the stage (ru_maxrss from wait4, which covers the stage's
waited-for descendants). The recipe's outputs are reused: run it on fresh dirs (or with
--overwrite true) to time the work itself rather than skipped stages.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

STAGE_NAMES = {1: "data", 2: "features", 3: "training", 4: "decoding", 5: "vocoding", 6: "scoring"}


def run_stage(recipe: Path, stage: int, args: list[str]) -> tuple[int, float, float]:
    """(exit status, wall seconds, peak RSS in MiB) of one stage; its output goes to
    RECIPE/bench_logs/stage<N>.log."""
    log_dir = recipe / "bench_logs"
    log_dir.mkdir(exist_ok=True)
    start = time.perf_counter()
    with open(log_dir / f"stage{stage}.log", "w") as log:
        proc = subprocess.Popen(["bash", "run.sh", "--stage", str(stage), "--stop-stage", str(stage), *args],
                                cwd=recipe, stdout=log, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, time.perf_counter() - start, usage.ru_maxrss / 1024  # KiB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--stages", default="1-6", help="first-last stage")
    parser.add_argument("--budget-min", type=float, default=20.0, help="target for the whole run (minutes)")
    parser.add_argument("--mem-gib", type=float, default=4.0, help="target for any stage's peak memory")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)  # run.sh's options go after --, anywhere
    opts = parser.parse_args(argv[:split])
    opts.run_args = argv[split + 1:]
    first, last = (int(x) for x in opts.stages.split("-"))
    print(f"command: {shlex.join([sys.executable, *sys.argv])}")
    print(f"machine: {os.cpu_count()} CPU cores; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print(f"{'stage':<14}{'wall (s)':>10}{'peak RSS (MiB)':>16}")
    total, peak = 0.0, 0.0
    for stage in range(first, last + 1):
        code, wall, rss = run_stage(opts.recipe, stage, opts.run_args)
        total, peak = total + wall, max(peak, rss)
        print(f"{stage} {STAGE_NAMES[stage]:<12}{wall:>10.1f}{rss:>16.0f}", flush=True)
        if code:
            print(f"stage {stage} failed with exit status {code}; see {opts.recipe}/bench_logs/stage{stage}.log")
            return code
    budget_ok, mem_ok = total <= 60 * opts.budget_min, peak <= 1024 * opts.mem_gib
    print(f"{'total':<14}{total:>10.1f}{peak:>16.0f}")
    print(f"whole run: {total / 60:.1f} min = {total / (60 * opts.budget_min):.2f} x the {opts.budget_min:g}-minute "
          f"budget ({'ok' if budget_ok else 'OVER'}); peak memory {peak / 1024:.2f} GiB = "
          f"{peak / (1024 * opts.mem_gib):.2f} x the {opts.mem_gib:g} GiB limit ({'ok' if mem_ok else 'OVER'})")
    return 0 if budget_ok and mem_ok else 1


if __name__ == "__main__":
    sys.exit(main())
