"""Benchmark: the local kwok cluster and `pulumi up` of 1, 50 and 200 sites against it.

  .venv/bin/python -m bench.cluster [--sizes 1,50,200]

Times `scripts/cluster up` until its nodes are Ready, then for each size a first
`pulumi up -s develop` (every Deployment awaited until available, each pod kept
ready for the Deployments' minReadySeconds of 10 s), and `scripts/cluster down`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.engine import engine_project_with, timed
from bench.fixtures import REPO


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,50,200")
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    env = dict(os.environ, TOMCAT_CD_CLUSTER_DIR=str(state / "cluster"))
    cluster = str(REPO / "scripts/cluster")
    up_s = timed(lambda: subprocess.run([cluster, "up"], env=env, capture_output=True, text=True))
    rows = []
    try:
        for size in [int(s) for s in args.sizes.split(",")]:
            work = state / f"p{size}"
            work.mkdir()
            project = engine_project_with(size, work, kubeconfig=state / "cluster" / "kubeconfig")
            started = time.perf_counter()
            result = project.pulumi("up", "-s", "develop", "--yes", "--skip-preview", timeout=3600)
            seconds = time.perf_counter() - started
            # Pulumi waits up to 10 minutes for each Deployment; report what did not make it.
            timeouts = result.stdout.count("timed out waiting to be Ready")
            rows.append((size, seconds, "ok" if result.returncode == 0 else f"failed: {timeouts} await timeout(s)"))
            print(f"  {size} site(s): {seconds:.2f} s, {rows[-1][2]}", file=sys.stderr)
            # The next size starts from an empty namespace.
            project.pulumi("destroy", "-s", "develop", "--yes", "--skip-preview", timeout=3600)
    finally:
        down_s = timed(lambda: subprocess.run([cluster, "down"], env=env, capture_output=True, text=True))
        shutil.rmtree(state, ignore_errors=True)
    print(f"\nscripts/cluster up (3 nodes Ready): {up_s:.2f} s; scripts/cluster down: {down_s:.2f} s\n")
    print(f"{'sites':>5} | {'first pulumi up s':>17} | {'s per site':>10} | result")
    print("-" * 60)
    for size, seconds, outcome in rows:
        print(f"{size:>5} | {seconds:>17.2f} | {seconds / size:>10.2f} | {outcome}")


if __name__ == "__main__":
    main()
