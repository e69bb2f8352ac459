"""Benchmark: how fast cdctl answers, each command a fresh process as a person runs it.

  .venv/bin/python -m bench.cli [--runs 5]

Times `cdctl --help`, `cdctl check` of 200 generated domain files, `cdctl render` of a project
with one domain, `cdctl history` of a domain of a stack the real engine deployed (a first
`pulumi up`, then two deploys) and `cdctl status` of both its environments. Prints the median of `--runs` runs of each. Target (issue #14):
every one under 0.5 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.fixtures import REPO, make_project

sys.path.insert(0, str(REPO / "tests"))
from engine_harness import make_engine_project, require_engine  # noqa: E402

TARGET_SECONDS = 0.5
CDCTL = str(REPO / ".venv" / "bin" / "cdctl")


def median_seconds(command: list[str], runs: int, cwd: Path) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                              env={**os.environ, "CD_GIT_ID": "abc1234"})
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"failed: {command}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return statistics.median(times)


def history_project(work: Path):
    """The example domains, deployed by the real engine: a first `pulumi up` and two deploys."""
    require_engine()
    work.mkdir(parents=True)
    project = make_engine_project(work)
    for version in ("v1.3.0", "v1.4.0"):
        project.add_war("test.gyyx.cn", version)
    for args in (("pulumi", "up", "-s", "develop", "--yes", "--skip-preview"),
                 ("deploy", "test.gyyx.cn", "--version", "v1.3.0", "--env", "develop", "--yes"),
                 ("deploy", "test.gyyx.cn", "--version", "v1.4.0", "--env", "develop", "--yes")):
        done = project.cdctl(*args)
        if done.returncode != 0:
            raise SystemExit(f"failed: {args}\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    try:
        sites = make_project(200, work / "generated")
        single = make_project(1, work / "single")
        engine = history_project(work / "engine")
        rows = [
            ("cdctl --help", [CDCTL, "--help"], sites),
            ("cdctl check (200 domains)", [CDCTL, "--project-dir", str(sites), "check"], sites),
            ("cdctl render of one domain", [CDCTL, "--project-dir", str(single), "render", "--stack", "develop",
                                            "--out", str(work / "out")], single),
            ("cdctl history of a domain (3 updates)",
             [CDCTL, "--project-dir", str(engine.root), "history", "test.gyyx.cn", "--env", "develop"], engine.root),
            ("cdctl status of both environments",
             [CDCTL, "--project-dir", str(engine.root), "status"], engine.root),
        ]
        print(f"\n{'command':<50} | {'median s':>8} | target < {TARGET_SECONDS} s")
        print("-" * 76)
        for name, command, cwd in rows:
            seconds = median_seconds(command, args.runs, cwd)
            print(f"{name:<50} | {seconds:>8.3f} | {'met' if seconds < TARGET_SECONDS else 'MISSED'}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
