"""Benchmark: `cdctl render` and the program under mocks for 1, 50 and 200 domains,
against `kustomize build` of the same Kubernetes objects.

  .venv/bin/python -m bench.render [--sizes 1,50,200] [--repeat 3]

Targets (2-core machine): 200 domains render in < 2 s and < 300 MB; the cost per
domain does not grow with the number of domains; no slower than kustomize build.
Times are the best of --repeat runs, each in a fresh interpreter (start-up included), each
started after a `sync`, so that no run pays for writing back what an earlier one wrote.
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
from typing import Callable

from bench.fixtures import REPO, make_project



def pinned(name: str) -> str:
    """A version pinned in scripts/versions.env, the one file that pins tools."""
    for line in (REPO / "scripts/versions.env").read_text().splitlines():
        if line.startswith(f"{name}="):
            return line.split("=", 1)[1].strip()
    raise KeyError(name)


def measure_once(*args: str) -> tuple[float, float]:
    """Wall time (s) and peak RSS (MB) of one `bench._measure` job in a fresh interpreter."""
    env = dict(os.environ, CD_GIT_ID=os.environ.get("CD_GIT_ID", "0000000"))
    os.sync()  # what earlier runs wrote is on disk, not written back during this one
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "bench._measure", *args], cwd=REPO, env=env,
                         capture_output=True, text=True, check=True).stdout.split()
    return time.perf_counter() - started, int(out[-1]) / 1024


def measure(*args: str, repeat: int, fresh_out: bool = False) -> tuple[float, float]:
    """Best of `repeat` runs; with `fresh_out` each render writes into a new, empty folder."""
    samples = []
    for run in range(repeat):
        job = list(args)
        if fresh_out:
            job[-1] = f"{job[-1]}-cold{run}"
        samples.append(measure_once(*job))
    return min(samples)


def kustomize_binary() -> str | None:
    found = shutil.which("kustomize")
    if found:
        return found
    version = pinned("KUSTOMIZE_VERSION")
    gobin = Path(os.environ.get("TOMCAT_CD_CACHE", Path.home() / ".cache/tomcat-cd")) / "kustomize" / version
    if not (gobin / "kustomize").exists():
        print(f"installing kustomize {version} from the Go module proxy ...", file=sys.stderr)
        done = subprocess.run(["go", "install", f"sigs.k8s.io/kustomize/kustomize/v5@{version}"],
                              env=dict(os.environ, GOBIN=str(gobin)), capture_output=True, text=True)
        if done.returncode != 0:
            print(f"kustomize not available: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
            return None
    return str(gobin / "kustomize")


def time_kustomize(binary: str, rendered: Path, repeat: int) -> float:
    files = sorted(p.relative_to(rendered) for p in rendered.rglob("*.yaml"))
    (rendered / "kustomization.yaml").write_text(
        "resources:\n" + "".join(f"  - {f.as_posix()}\n" for f in files))
    return best_run(repeat, lambda run: [binary, "build", str(rendered)])


def time_copy(rendered: Path, work: Path, repeat: int) -> float:
    return best_run(repeat, lambda run: ["cp", "-r", str(rendered), str(work / f"copy{run}")])


def best_run(repeat: int, command: Callable[[int], list[str]]) -> float:
    """The fastest of `repeat` runs of `command(run)`, each after a `sync`."""
    best = float("inf")
    for run in range(repeat):
        os.sync()
        started = time.perf_counter()
        subprocess.run(command(run), check=True, capture_output=True)
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,50,200")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-render-"))
    rows, renders = [], {}
    for size in sizes:
        project = make_project(size, work / f"p{size}")
        out = work / f"out{size}"
        cold_s, _ = measure("render", str(project), "master", str(out), repeat=args.repeat, fresh_out=True)
        render_s, render_mb = measure("render", str(project), "master", str(out), repeat=args.repeat)
        mocks_s, mocks_mb = measure("mocks", str(project), "master", repeat=args.repeat)
        renders[size] = out
        rows.append((size, render_s, render_mb, mocks_s, mocks_mb, cold_s))
        print(f"  measured {size} domain(s)", file=sys.stderr)

    base = rows[0]
    print("\nrender: into an empty folder (cold) and again into the same folder (re-render);")
    print("marginal = extra ms per extra domain over the 1-domain run; mocks = program under Pulumi mocks\n")
    print(f"{'domains':>7} | {'cold s':>6} | {'re-render s':>11} | {'peak MB':>7} | {'ms/domain':>9} | "
          f"{'marginal ms':>11} | {'mocks s':>7} | {'peak MB':>7} | {'ms/domain':>9}")
    print("-" * 104)
    for size, render_s, render_mb, mocks_s, mocks_mb, cold_s in rows:
        marginal = (render_s - base[1]) / (size - base[0]) * 1000 if size > base[0] else float("nan")
        print(f"{size:>7} | {cold_s:>6.3f} | {render_s:>11.3f} | {render_mb:>7.1f} | {render_s / size * 1000:>9.2f} | "
              f"{marginal:>11.2f} | {mocks_s:>7.3f} | {mocks_mb:>7.1f} | {mocks_s / size * 1000:>9.2f}")

    largest = rows[-1]
    copy_s = time_copy(renders[largest[0]], work, args.repeat)
    print(f"\ncp -r of what render wrote for {largest[0]} sites into an empty folder (the file system's part "
          f"of a cold render): {copy_s:.3f} s; render into an empty folder: {largest[5]:.3f} s")
    binary = kustomize_binary()
    if binary:
        k_s = time_kustomize(binary, renders[largest[0]] / "k8s", args.repeat)
        print(f"kustomize build of the same {largest[0]} sites' objects (reads them, writes stdout): {k_s:.3f} s")
        print(f"cdctl render / kustomize: {largest[1] / k_s:.2f}x re-render, {largest[5] / k_s:.2f}x cold "
              f"(render also writes {largest[0]} build contexts)")
    verdict = "met" if max(largest[1], largest[5]) < 2 and largest[2] < 300 else "MISSED"
    print(f"target for {largest[0]} domains (< 2 s cold and warm, < 300 MB): {verdict}")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
