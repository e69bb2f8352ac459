"""Benchmark: the real pipeline (scripts/pipeline) on the local kwok cluster.

  .venv/bin/python -m bench.pipeline [--lines 5]

- image build and push: `cdctl deploy` of one site with buildImages on, timed whole:
  cold (a fresh buildkitd: the base image is pulled, every layer built and pushed), warm (a
  new version right after: only the war layer is new), and a redeploy by the recorded digest
  (a rollback: nothing is built) as the floor the image step adds to;
- a log line's time from written to searchable: real Tomcat writes an access-log line (the
  test's war, run from the Deployment), real Filebeat ships it, until a term query on the line's
  path finds it in Elasticsearch; the median of --lines requests, one at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import yaml

from bench.fixtures import REPO

sys.path[:0] = [str(REPO / "tests")]

from pipeline import pod  # noqa: E402
from pipeline.harness import DOMAIN, ENV, TOOLS, site_project, start_pipeline, stop_pipeline, wait_for  # noqa: E402
from pipeline.logs import Elastic, VersionFront, add_file_realm_user, rerooted, without_lifecycle  # noqa: E402
from pipeline.war import build_war  # noqa: E402
from tomcat_cd.core import conventions  # noqa: E402
from tomcat_cd.core.builders import filebeat as filebeat_builder  # noqa: E402

CLUSTER_BIN = Path(subprocess.check_output([str(REPO / "scripts/install-cluster"), "--print-path"], text=True).strip())


def timed_deploy(project, *args: str) -> float:
    started = time.perf_counter()
    done = project.cdctl(*args, "--yes", timeout=1800)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"cdctl {' '.join(args)} failed: {done.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    cluster_env = dict(os.environ, TOMCAT_CD_CLUSTER_DIR=str(work / "cluster"))
    subprocess.run([str(REPO / "scripts/cluster"), "up"], env=cluster_env, check=True, capture_output=True)
    pipe = start_pipeline(work / "pipeline")
    container = None
    try:
        pipe.login()
        (work / "site").mkdir()
        project = site_project(work / "site", work / "cluster" / "kubeconfig", pipe)
        for version in ("v1.0.0", "v2.0.0"):
            build_war(project.wars / DOMAIN / version / "ROOT.war", token=version)
        deploy = ("deploy", DOMAIN, "--env", ENV)
        cold = timed_deploy(project, *deploy, "--version", "v1.0.0")
        warm = timed_deploy(project, *deploy, "--version", "v2.0.0")
        floor = timed_deploy(project, "rollback", DOMAIN, "--env", ENV)
        print(f"  deploy with build+push: cold {cold:.1f} s, warm {warm:.1f} s; by recorded digest {floor:.1f} s",
              file=sys.stderr)
        container, latency = log_latency(pipe, project, work, args.lines)
    finally:
        if container:
            pipe.docker("rm", "--force", container, check=False)
        stop_pipeline(pipe)
        subprocess.run([str(REPO / "scripts/cluster"), "down"], env=cluster_env, capture_output=True)
        shutil.rmtree(work, ignore_errors=True)  # the pipeline's state: images, indices, logs (2.8 GB)
    print("| what | seconds |\n|---|---|")
    print(f"| `cdctl deploy`, image built and pushed, cold builder cache | {cold:.1f} |")
    print(f"| `cdctl deploy`, a new version, warm cache (war layer only) | {warm:.1f} |")
    print(f"| `cdctl rollback` by recorded digest (no build) | {floor:.1f} |")
    print(f"| access-log line written → searchable (median of {args.lines}) | {statistics.median(latency):.2f} |")


def log_latency(pipe, project, work: Path, lines: int) -> tuple[str, list[float]]:
    done = project.cdctl("render", "--stack", "platform", "--out", str(work / "platform"))
    assert done.returncode == 0, done.stderr
    setup = work / "platform" / "config" / "logging-setup"
    endpoint = pipe.endpoints["elasticsearch"]
    admin = Elastic(endpoint["url"], "elastic", pipe.secret("elasticsearch"))
    admin.request("PUT", "/_index_template/tomcat-cd-logs",
                  without_lifecycle(json.loads((setup / "index-template.json").read_text())))
    password = os.urandom(8).hex()
    add_file_realm_user(endpoint, filebeat_builder.WRITER_USER, password, filebeat_builder.WRITER_ROLE,
                        json.loads((setup / "filebeat-writer-role.json").read_text()))
    spec = json.loads(subprocess.run(
        [str(CLUSTER_BIN / "kubectl"), "--kubeconfig", str(work / "cluster" / "kubeconfig"), "-n", ENV, "get",
         "deployment", conventions.k8s_name(DOMAIN), "-o", "json"], capture_output=True, text=True, check=True).stdout)
    container = "bench-pod"
    pipe.docker(*pod.docker_run_args(spec, "pipe-gyyx-cn-bench-0", work / "node", container))
    port = pod.http_port(spec)
    wait_for("Tomcat", lambda: _answers(f"http://127.0.0.1:{port}/health.jsp"), seconds=180)
    config = yaml.safe_load((work / "platform" / "config" / "filebeat.yml").read_text())
    folder = work / "filebeat"
    folder.mkdir()
    with VersionFront(endpoint["url"], endpoint["version"]) as front:
        config_file = folder / "filebeat.yml"
        config_file.write_text(yaml.safe_dump(rerooted(config, work / "node", front.url, folder / "data")))
        config_file.chmod(0o600)
        shipper = subprocess.Popen([str(TOOLS / "filebeat"), "-e", "-c", str(config_file), "--path.home", str(folder)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   env=dict(os.environ, ELASTICSEARCH_PASSWORD=password))
        try:
            latency = []
            for n in range(lines + 1):
                mark = f"/health.jsp?bench-{n}-{os.urandom(4).hex()}"
                started = time.perf_counter()
                urllib.request.urlopen(f"http://127.0.0.1:{port}{mark}", timeout=10).close()
                wait_for("the line", lambda: admin.search(f"{DOMAIN}-*", {"match_phrase": {"message": mark}}),
                         seconds=120, every=0.1)
                if n:  # the first one also waits for Filebeat to connect
                    latency.append(time.perf_counter() - started)
            return container, latency
        finally:
            shipper.terminate()
            shipper.wait(timeout=30)


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=5).close()
        return True
    except OSError:
        return False


if __name__ == "__main__":
    main()
