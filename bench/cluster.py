"""Benchmark: the local kwok cluster and `pulumi up` of 1, 50 and 200 sites against it,
side by side with the seed's way, `kubectl apply` of the same objects.

  .venv/bin/python -m bench.cluster [--sizes 1,50,200] [--checkpoints auto|each-step|at-end]

Times `scripts/cluster up` until its nodes are Ready, then for each size a first
`cdctl pulumi up -s develop` (the stack's `parallel` and `checkpoints`; every Deployment
awaited until available, each pod kept ready for the Deployments' minReadySeconds of 10 s),
and on the emptied cluster (its namespace deleted) `kubectl apply --server-side` of what
`cdctl render` writes for the same stack followed by `kubectl rollout status` of every
Deployment; with the most sites, also a one-site deploy each way. Then `scripts/cluster down`.
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

import yaml

from bench.engine import engine_project_with, timed
from bench.fixtures import REPO
from tomcat_cd.core import conventions
from tomcat_cd.core.stack_file import CHECKPOINTS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,50,200")
    parser.add_argument("--checkpoints", default="auto", choices=CHECKPOINTS)
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="bench-cluster-"))
    env = dict(os.environ, TOMCAT_CD_CLUSTER_DIR=str(state / "cluster"))
    cluster = str(REPO / "scripts/cluster")
    up_s = timed(lambda: subprocess.run([cluster, "up"], env=env, capture_output=True, text=True))
    rows: list[tuple[int, float, float, str]] = []
    one_site: list[tuple[float, float]] = []
    sizes = [int(s) for s in args.sizes.split(",")]
    try:
        for size in sizes:
            work = state / f"p{size}"
            work.mkdir()
            project = engine_project_with(size, work, kubeconfig=state / "cluster" / "kubeconfig",
                                          settings={"checkpoints": args.checkpoints})
            started = time.perf_counter()
            result = project.pulumi("up", "-s", "develop", "--yes", "--skip-preview", timeout=3600)
            seconds = time.perf_counter() - started
            # Pulumi waits up to 10 minutes for each Deployment; report what did not make it.
            timeouts = result.stdout.count("timed out waiting to be Ready")
            outcome = "ok" if result.returncode == 0 else f"failed: {timeouts} await timeout(s)"
            if size == max(sizes):
                one_site = one_site_deploy(project, work, state / "cluster" / "kubeconfig")
            project.cdctl("render", "--stack", "develop", "--out", str(work / "render"))
            # The next step starts from an empty namespace (the stack is not used again).
            delete_namespace(state / "cluster" / "kubeconfig")
            kubectl_s = kubectl_apply(state / "cluster" / "kubeconfig", work / "render" / "k8s")
            rows.append((size, seconds, kubectl_s, outcome))
            print(f"  {size} site(s): pulumi up {seconds:.2f} s, kubectl {kubectl_s:.2f} s, {outcome}", file=sys.stderr)
            delete_namespace(state / "cluster" / "kubeconfig")
    finally:
        down_s = timed(lambda: subprocess.run([cluster, "down"], env=env, capture_output=True, text=True))
        shutil.rmtree(state, ignore_errors=True)
    print(f"\nscripts/cluster up (3 nodes Ready): {up_s:.2f} s; scripts/cluster down: {down_s:.2f} s\n")
    print(f"{'sites':>5} | {'first pulumi up s':>17} | {'s per site':>10} | {'kubectl s':>9} | {'ratio':>5} | result")
    print("-" * 76)
    for size, seconds, kubectl_s, outcome in rows:
        print(f"{size:>5} | {seconds:>17.2f} | {seconds / size:>10.2f} | {kubectl_s:>9.2f} | "
              f"{seconds / kubectl_s:>5.2f} | {outcome}")
    if one_site:
        print(f"\none-site deploy among {max(sizes)} sites, {len(one_site)} rounds (target <= 1.5x kubectl):")
        for cdctl_s, kubectl_s in one_site:
            print(f"  cdctl deploy {cdctl_s:.2f} s, kubectl apply + rollout status {kubectl_s:.2f} s: "
                  f"{cdctl_s / kubectl_s:.2f}x")
        ratio = statistics.median(c / k for c, k in one_site)
        print(f"  median {ratio:.2f}x: {'met' if ratio <= 1.5 else 'MISSED'}")


ROUNDS = 3


def one_site_deploy(project, work: Path, kubeconfig: Path) -> list[tuple[float, float]]:
    """With every site deployed, ROUNDS times one after the other: `cdctl deploy` of a new
    version of one site (refresh included), then `kubectl apply` of that site's rendered
    objects at yet another version + rollout status. (seconds, seconds) per round; a round
    whose deploy returns before kubectl finds its rollout ended stops the benchmark."""
    domain = "site000.bench.example.com"
    name = conventions.k8s_name(domain)
    kubectl = [str(KUBECTL), "--kubeconfig", str(kubeconfig)]
    rounds = []
    for round_ in range(ROUNDS):
        version = f"v9.0.{round_}"
        project.add_war(domain, version)
        started = time.perf_counter()
        done = project.cdctl("deploy", domain, "--version", version, "--env", "develop", "--yes", timeout=1800)
        cdctl_s = time.perf_counter() - started
        assert done.returncode == 0, done.stderr[-2000:]
        # A deploy waits for its rollout: kubectl, asked at once, must find it ended.
        now = subprocess.run([*kubectl, "-n", "develop", "rollout", "status", f"deployment/{name}", "--watch=false"],
                             capture_output=True, text=True)
        assert "successfully rolled out" in now.stdout, f"round {round_}: cdctl returned mid-rollout: {now.stdout}"
        out = work / f"one-site-{round_}"
        project.cdctl("render", "--stack", "develop", "--out", str(out))
        files = [p for p in (out / "k8s").rglob("*.yaml") if yaml.safe_load(p.read_text())["metadata"]["name"] == name]
        for path in files:
            path.write_text(path.read_text().replace(version, f"v9.1.{round_}"))
        started = time.perf_counter()
        subprocess.run([*kubectl, "apply", "--server-side", "--force-conflicts",
                        *(a for p in files for a in ("-f", str(p)))], check=True, capture_output=True)
        subprocess.run([*kubectl, "-n", "develop", "rollout", "status", f"deployment/{name}", "--timeout=600s"],
                       check=True, capture_output=True)
        rounds.append((cdctl_s, time.perf_counter() - started))
    return rounds


KUBECTL = Path(subprocess.run([str(REPO / "scripts/install-cluster"), "--print-path"], capture_output=True,
                              text=True, check=True).stdout.strip()) / "kubectl"


def delete_namespace(kubeconfig: Path) -> None:
    subprocess.run([str(KUBECTL), "--kubeconfig", str(kubeconfig), "delete", "namespace", "develop", "--wait=true",
                    "--ignore-not-found"], capture_output=True, timeout=600, check=True)


def kubectl_apply(kubeconfig: Path, objects: Path) -> float:
    """`kubectl apply` of the rendered objects, then `kubectl rollout status` of each Deployment."""
    kubectl = [str(KUBECTL), "--kubeconfig", str(kubeconfig)]
    started = time.perf_counter()
    subprocess.run([*kubectl, "apply", "--server-side", "-R", "-f", str(objects)], check=True, capture_output=True)
    names = subprocess.run([*kubectl, "-n", "develop", "get", "deployments", "-o", "name"], check=True,
                           capture_output=True, text=True).stdout.split()
    for name in names:
        subprocess.run([*kubectl, "-n", "develop", "rollout", "status", name, "--timeout=600s"], check=True,
                       capture_output=True)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
