"""Benchmark: the real engine in local mode with 1, 50 and 200 domains deployed.

  .venv/bin/python -m bench.engine [--sizes 1,50,200]

For each size: the first `pulumi up`, a `pulumi preview` with nothing to change, and a
one-domain `cdctl deploy` of a new version (a targeted update; the median of 5, the sizes
taking turns). Target: the one-domain deploy with 200 domains costs at most 1.5x the same
deploy with 1 domain. Also times a second run of scripts/install-pulumi (target: under 5 s).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bench.fixtures import REPO, make_project

sys.path.insert(0, str(REPO / "tests"))
from engine_harness import make_engine_project, require_engine  # noqa: E402


def timed(action) -> float:
    started = time.perf_counter()
    result = action()
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"failed: {result.args}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return elapsed


def engine_project_with(domains: int, work: Path, kubeconfig: Path | None = None,
                        settings: dict[str, object] | None = None):
    """An engine project of `domains` generated sites; `settings`: more `tomcat-cd:` keys."""
    project = make_engine_project(work, kubeconfig)
    generated = make_project(domains, work / "generated")
    shutil.rmtree(project.root / "domains")
    shutil.copytree(generated / "domains", project.root / "domains")
    for stack in ("develop", "master"):
        path = project.root / f"Pulumi.{stack}.yaml"
        document = yaml.safe_load(path.read_text())
        document["config"]["tomcat-cd:versions"] = yaml.safe_load(
            (generated / f"Pulumi.{stack}.yaml").read_text())["config"]["tomcat-cd:versions"]
        document["config"].update({f"tomcat-cd:{key}": value for key, value in (settings or {}).items()})
        path.write_text(yaml.safe_dump(document, sort_keys=False))
    subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qam", "bench"],
                   cwd=project.root, check=True)
    project.add_war("site000.bench.example.com", "v9.0.0")
    return project


ROUNDS = 5


def one_domain_deploy(project, version: str) -> float:
    project.add_war("site000.bench.example.com", version)
    return timed(lambda: project.cdctl("deploy", "site000.bench.example.com", "--version", version, "--env", "develop",
                                       "--yes"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,50,200")
    args = parser.parse_args()
    require_engine()
    projects, setups = {}, {}
    for size in [int(s) for s in args.sizes.split(",")]:
        project = engine_project_with(size, Path(tempfile.mkdtemp(prefix=f"bench-engine-{size}-")))
        first_up = timed(lambda project=project: project.pulumi("up", "-s", "develop", "--yes", "--skip-preview"))
        preview = timed(lambda project=project: project.pulumi("preview", "-s", "develop"))
        projects[size], setups[size] = project, (first_up, preview)
        print(f"  {size} domain(s) deployed", file=sys.stderr)
    # The deploys take turns across the sizes, so that a slow minute of the machine falls on
    # every size alike and the ratio compares deploys made side by side.
    deploys: dict[int, list[float]] = {size: [] for size in projects}
    for round_ in range(ROUNDS):
        for size, project in projects.items():
            deploys[size].append(one_domain_deploy(project, f"v9.0.{round_}"))
        print(f"  round {round_ + 1} of {ROUNDS}", file=sys.stderr)
    rows = [(size, *setups[size], statistics.median(deploys[size])) for size in projects]
    for project in projects.values():
        shutil.rmtree(project.root.parent)

    install = timed(lambda: subprocess.run([str(REPO / "scripts/install-pulumi")], capture_output=True, text=True))
    print(f"\n{'domains':>7} | {'first up s':>10} | {'preview s':>9} | {'1-domain deploy s':>17} | {'vs 1 domain':>11}")
    print("-" * 66)
    for size, first_up, preview, deploy in rows:
        print(f"{size:>7} | {first_up:>10.2f} | {preview:>9.2f} | {deploy:>17.2f} | {deploy / rows[0][3]:>10.2f}x")
    ratio = rows[-1][3] / rows[0][3]
    print(f"\none-domain deploy with {rows[-1][0]} domains: {ratio:.2f}x the 1-domain deploy "
          f"(target <= 1.5x): {'met' if ratio <= 1.5 else 'MISSED'}")
    print(f"second run of scripts/install-pulumi: {install:.2f} s (target < 5 s): {'met' if install < 5 else 'MISSED'}")


if __name__ == "__main__":
    main()
