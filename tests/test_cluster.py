"""End to end on a real Kubernetes API server: a kwok cluster built from Go modules
(scripts/install-cluster), started and stopped by these tests (scripts/cluster).

kwok simulates the nodes: pods are scheduled, marked Running and Ready, and the
controllers run for real, so admission, defaulting, rollouts and drift are real.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from cluster_harness import BIN, cluster, kubectl, run  # noqa: F401 (cluster is a fixture)
from conftest import REPO, cdctl
from engine_harness import make_engine_project, require_engine
from tomcat_cd.core import conventions
from tomcat_cd.driver.kube import KubeReader
from tomcat_cd.driver.rollout import RolloutIncomplete, RolloutWait

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def deployed(cluster, tmp_path_factory):
    """The example project deployed to the cluster: develop, then master."""
    project = make_engine_project(tmp_path_factory.mktemp("engine"), kubeconfig=cluster)
    for domain, version in (("test.gyyx.cn", "v1.2.0"), ("test.gyyx.cn", "v1.3.0"), ("shop.gyyx.cn", "v2.4.0"),
                            ("shop.gyyx.cn", "v2.4.1"), ("api.gyyx.cn", "v3.0.2")):
        project.add_war(domain, version)
    for stack in ("develop", "master"):
        result = project.pulumi("up", "-s", stack, "--yes", "--skip-preview")
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return project


def test_the_cluster_has_three_labelled_nodes(cluster):
    nodes = json.loads(kubectl(cluster, "get", "nodes", "-o", "json").stdout)["items"]
    assert len(nodes) == 3
    for node in nodes:
        labels = node["metadata"]["labels"]
        assert labels["kubernetes.io/os"] == "linux" and "node-role.kubernetes.io/worker" in labels
    assert sum(n["metadata"]["labels"].get("tomcat-cd/elasticsearch") == "true" for n in nodes) == 1


def test_a_first_import_takes_over_the_objects_an_interrupted_one_left(cluster, tmp_path_factory):
    """`checkpoints: auto` saves a first import's state once, at the end: an import killed
    before it leaves objects in the cluster and none in the state. The next import must take
    them over, not fail on them. Runs before `deployed` exists, and leaves the cluster empty."""
    project = make_engine_project(tmp_path_factory.mktemp("interrupted"), kubeconfig=cluster)
    for domain, version in (("test.gyyx.cn", "v1.2.0"), ("shop.gyyx.cn", "v2.4.0")):
        project.add_war(domain, version)
    out = tmp_path_factory.mktemp("left-behind")
    assert project.cdctl("render", "--stack", "develop", "--out", str(out)).returncode == 0
    left = sorted((out / "k8s").rglob("*.yaml"), key=lambda p: p.parent.name != "_cluster")
    try:
        for path in left:  # what the killed import had applied, server-side as Pulumi applies
            applied = kubectl(cluster, "apply", "--server-side", "-f", str(path))
            assert applied.returncode == 0, applied.stderr
        result = project.pulumi("up", "-s", "develop", "--yes", "--skip-preview")
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        assert "the state is saved when the update ends" in result.stderr
        deployment = json.loads(kubectl(cluster, "get", "deployment", "test-gyyx-cn", "-n", "develop", "-o", "json",
                                        "--show-managed-fields").stdout)
        managers = {entry["manager"] for entry in deployment["metadata"]["managedFields"]}
        assert any(m.startswith("pulumi-kubernetes") for m in managers), managers
        urns = project.pulumi("stack", "--show-urns", "-s", "develop").stdout
        assert urns.count("kubernetes:apps/v1:Deployment::") == 2 and "kubernetes:core/v1:Namespace::" in urns
    finally:
        kubectl(cluster, "delete", "namespace", "develop", "--wait=true", "--timeout=120s")


def test_pulumi_up_creates_every_object_and_rollouts_complete(cluster, deployed):
    for namespace, sites in (("develop", ("shop-gyyx-cn", "test-gyyx-cn")),
                             ("master", ("api-gyyx-cn", "shop-gyyx-cn", "test-gyyx-cn"))):
        for site in sites:
            status = kubectl(cluster, "rollout", "status", f"deployment/{site}", "-n", namespace, "--timeout=120s")
            assert status.returncode == 0, status.stderr
            service = json.loads(kubectl(cluster, "get", "service", site, "-n", namespace, "-o", "json").stdout)
            assert service["spec"]["type"] == "NodePort"
    port = json.loads(kubectl(cluster, "get", "service", "test-gyyx-cn", "-n", "master", "-o", "json").stdout)
    assert port["spec"]["ports"][0]["nodePort"] == 32001


def test_server_side_dry_run_accepts_every_rendered_object(cluster, deployed, tmp_path):
    # The platform's namespaces exist for real so that its namespaced objects can be checked.
    for stack in ("develop", "master", "platform"):
        out = tmp_path / stack
        assert cdctl("render", "--stack", stack, "--out", str(out)).code == 0
        if stack == "platform":
            for namespace in sorted((out / "k8s/_cluster").glob("namespace-*.yaml")):
                assert kubectl(cluster, "apply", "-f", str(namespace)).returncode == 0
        files = sorted(str(p) for p in (out / "k8s").rglob("*.yaml"))
        result = kubectl(cluster, "apply", "--dry-run=server", *[a for f in files for a in ("-f", f)])
        assert result.returncode == 0, result.stderr
        assert result.stdout.count("(server dry run)") == len(files), result.stdout


def watch(cluster: Path, namespace: str, name: str, stop: threading.Event, seen: list) -> None:
    while not stop.is_set():
        got = kubectl(cluster, "get", "deployment", name, "-n", namespace, "-o", "json")
        if got.returncode == 0:
            status = json.loads(got.stdout)
            seen.append((status["spec"]["replicas"], status["status"].get("availableReplicas", 0),
                         status["spec"]["template"]["spec"]["containers"][0]["image"]))
        time.sleep(0.2)


def rolling(cluster: Path, project, *cdctl_args: str) -> list[tuple[int, int, str]]:
    stop, seen = threading.Event(), []
    watcher = threading.Thread(target=watch, args=(cluster, "master", "test-gyyx-cn", stop, seen))
    watcher.start()
    try:
        result = project.cdctl(*cdctl_args)
    finally:
        stop.set()
        watcher.join()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    # kubectl's own reading of the Deployment at the moment cdctl returned: no waiting here.
    now = kubectl(cluster, "rollout", "status", "deployment/test-gyyx-cn", "-n", "master", "--watch=false")
    assert "successfully rolled out" in now.stdout, f"cdctl returned before its rollout ended: {now.stdout}"
    return seen


def test_deploy_and_rollback_are_rolling_updates_that_keep_every_replica(cluster, deployed):
    seen = rolling(cluster, deployed, "deploy", "test.gyyx.cn", "--version", "v1.3.0", "--env", "master", "--yes")
    images = {image.rsplit(":", 1)[1].split("-")[0] for _, _, image in seen}
    assert images == {"v1.2.0", "v1.3.0"}, "the watch saw the change happen"
    assert min(available for _, available, _ in seen) >= 2 == seen[0][0], seen
    assert seen[-1][2].endswith(tuple(f"v1.3.0-master-{c}" for c in "0123456789abcdef")) or ":v1.3.0-" in seen[-1][2]

    back = rolling(cluster, deployed, "rollback", "test.gyyx.cn", "--env", "master", "--yes")
    assert min(available for _, available, _ in back) >= 2, back
    assert ":v1.2.0-" in back[-1][2]


def scratch_deployment(cluster: Path, folder: Path, domain: str, image: str, **spec) -> None:
    """A Deployment of the test's own in `default`, named as the site `domain`'s would be."""
    name = conventions.k8s_name(domain)
    labels = {"app": name}
    manifest = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
                "spec": {"replicas": 1, "selector": {"matchLabels": labels}, **spec,
                         "template": {"metadata": {"labels": labels},
                                      "spec": {"containers": [{"name": "tomcat", "image": image}]}}}}
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(manifest))
    applied = kubectl(cluster, "apply", "-f", str(folder / f"{name}.yaml"))
    assert applied.returncode == 0, applied.stderr


def test_the_rollout_wait_holds_while_the_new_pod_cannot_start_and_ends_when_it_runs(cluster, tmp_path):
    """The wait cdctl runs after each update, on the real controller: every node cordoned, the
    new pod stays Pending; the test uncordons once the wait has said what it waits for."""
    scratch_deployment(cluster, tmp_path, "wait.gyyx.cn", "wait:1")
    kube = KubeReader.from_kubeconfig(str(cluster))
    lines: list[str] = []
    assert RolloutWait(kube, lines.append).until_complete("default", "wait.gyyx.cn").done
    lines.clear()
    waiting, result = threading.Event(), []

    def said(line: str) -> None:
        lines.append(line)
        waiting.set()

    waiter = threading.Thread(target=lambda: result.append(RolloutWait(kube, said).until_complete("default",
                                                                                                  "wait.gyyx.cn")))
    try:
        for node in nodes(cluster):
            assert kubectl(cluster, "cordon", node).returncode == 0
        scratch_deployment(cluster, tmp_path, "wait.gyyx.cn", "wait:2")
        waiter.start()
        assert waiting.wait(30), "the wait said nothing while the new pod was Pending"
        time.sleep(2)
        assert waiter.is_alive() and not result, f"the wait ended with the new pod Pending: {lines}"
    finally:
        for node in nodes(cluster):
            kubectl(cluster, "uncordon", node)
        if waiter.is_alive() or result:
            waiter.join(60)
        now = kubectl(cluster, "rollout", "status", "deployment/wait-gyyx-cn", "-n", "default", "--watch=false")
        kubectl(cluster, "delete", "deployment", "wait-gyyx-cn", "-n", "default", "--wait=false")
    assert result and result[0].done, lines
    assert lines[0].startswith("rollout: waiting for wait.gyyx.cn: "), lines
    assert lines[-1].startswith("rollout: wait-gyyx-cn rolled out: 1/1 available after "), lines
    assert "successfully rolled out" in now.stdout, now.stdout


def test_a_rollout_stuck_past_its_progress_deadline_is_told_as_the_controller_marks_it(cluster, tmp_path):
    """5 s of progress deadline, a pod no node may take: the real controller marks the rollout
    ProgressDeadlineExceeded and the wait ends with that, naming it."""
    scratch_deployment(cluster, tmp_path, "stuck.gyyx.cn", "stuck:1", progressDeadlineSeconds=5)
    name = conventions.k8s_name("stuck.gyyx.cn")
    unschedulable = json.dumps({"spec": {"template": {"spec": {"nodeSelector": {"tomcat-cd.test/none": "true"}}}}})
    lines: list[str] = []
    try:
        assert kubectl(cluster, "patch", "deployment", name, "-n", "default", "-p", unschedulable).returncode == 0
        with pytest.raises(RolloutIncomplete) as raised:
            RolloutWait(KubeReader.from_kubeconfig(str(cluster)), lines.append).until_complete("default",
                                                                                              "stuck.gyyx.cn")
    finally:
        kubectl(cluster, "delete", "deployment", name, "-n", "default", "--wait=false")
    assert f"{name} exceeded its progress deadline (5 s)" in str(raised.value), raised.value
    assert lines and lines[0].startswith("rollout: waiting for stuck.gyyx.cn: "), lines


def test_a_change_by_hand_is_reported_and_the_next_deploy_puts_it_back(cluster, deployed):
    name, namespace = "shop-gyyx-cn", "develop"
    assert kubectl(cluster, "set", "image", f"deployment/{name}", "tomcat=registry.example/hacked:1", "-n", namespace).returncode == 0
    assert kubectl(cluster, "scale", f"deployment/{name}", "--replicas=3", "-n", namespace).returncode == 0
    drift = deployed.cdctl("drift", "shop.gyyx.cn", "--env", "develop")
    assert drift.returncode == 3, drift.stdout + drift.stderr
    lines = drift.stdout.splitlines()
    assert lines[0] == "shop.gyyx.cn in develop: drifted from the last update (the next deploy puts it back):"
    assert lines[1].startswith("  shop-gyyx-cn-deployment: changed spec.replicas, spec.template.spec")
    assert len(lines) == 2, drift.stdout  # the Service was not touched
    assert deployed.cdctl("drift", "test.gyyx.cn", "--env", "develop").returncode == 0
    rows = {r["domain"]: r for r in json.loads(deployed.cdctl("status", "--env", "develop", "--drift", "--json").stdout)}
    assert rows["shop.gyyx.cn"]["drift"] == "shop-gyyx-cn-deployment: changed" and rows["test.gyyx.cn"]["drift"] == "none"
    assert rows["shop.gyyx.cn"]["replicas"].endswith("/3"), "the replicas the API server reports"
    put_back = deployed.cdctl("deploy", "shop.gyyx.cn", "--version", "v2.4.1", "--env", "develop", "--yes")
    assert put_back.returncode == 0, put_back.stdout[-3000:] + put_back.stderr[-2000:]
    live = json.loads(kubectl(cluster, "get", "deployment", name, "-n", namespace, "-o", "json").stdout)
    assert live["spec"]["replicas"] == 1
    assert ":v2.4.1-develop-" in live["spec"]["template"]["spec"]["containers"][0]["image"]
    assert deployed.cdctl("drift", "shop.gyyx.cn", "--env", "develop").returncode == 0


def test_destroying_production_is_refused_while_its_namespace_is_protected(cluster, deployed):
    result = deployed.pulumi("destroy", "-s", "master", "--yes")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "protected" in output and "pulumi state unprotect" in output, output[-2000:]
    # Nothing was deleted: every production site still runs.
    names = kubectl(cluster, "get", "deployments", "-n", "master", "-o", "name").stdout.split()
    assert names == ["deployment.apps/api-gyyx-cn", "deployment.apps/shop-gyyx-cn", "deployment.apps/test-gyyx-cn"]


def gated_deploy(project, version: str, on_watch=None, on_verdict=None) -> tuple[int, str, str]:
    """`cdctl deploy` of test.gyyx.cn in develop, calling `on_watch` when the gate starts
    watching and `on_verdict` once it has judged (the test's hands on the cluster)."""
    def on_line(line: str) -> None:
        if line.startswith("gate: watching") and on_watch:
            on_watch()
        if line.startswith(("gate passed", "gate FAILED")) and on_verdict:
            on_verdict()
    done = project.cdctl_streamed("deploy", "test.gyyx.cn", "--version", version, "--env", "develop", "--yes",
                                  on_line=on_line)
    return done.returncode, done.stdout, done.stderr


def nodes(cluster: Path) -> list[str]:
    return kubectl(cluster, "get", "nodes", "-o", "name").stdout.split()


@pytest.mark.gate
def test_the_gate_fails_a_version_that_loses_availability_and_rolls_it_back_pinned(cluster, deployed):
    site = deployed.root / "domains" / "test.gyyx.cn.yaml"
    site.write_text(site.read_text() + "gate:\n  windowSeconds: 15\n  checks: [availability]\n")
    assert deployed.cdctl("pulumi", "config", "set", "tomcat-cd:healthGate", "true", "-s", "develop").returncode == 0
    code, out, err = gated_deploy(deployed, "v1.3.0")
    assert code == 0 and "gate passed: test.gyyx.cn v1.3.0: availability ok (1/1 available" in out, out + err
    before = json.loads(kubectl(cluster, "get", "deployment", "test-gyyx-cn", "-n", "develop", "-o", "json").stdout)

    def lose_the_replica() -> None:
        for node in nodes(cluster):
            assert kubectl(cluster, "cordon", node).returncode == 0
        assert kubectl(cluster, "delete", "pods", "-n", "develop", "-l", "app=test-gyyx-cn", "--wait=false").returncode == 0

    def give_it_back() -> None:
        for node in nodes(cluster):
            kubectl(cluster, "uncordon", node)

    try:
        code, out, err = gated_deploy(deployed, "v1.2.0", lose_the_replica, give_it_back)
    finally:
        give_it_back()
    assert code == 4, out[-3000:] + err[-3000:]
    assert "gate FAILED: test.gyyx.cn v1.2.0: availability FAILED" in out and "samples short" in out
    assert "rolling test.gyyx.cn back to v1.3.0" in out
    live = json.loads(kubectl(cluster, "get", "deployment", "test-gyyx-cn", "-n", "develop", "-o", "json").stdout)
    image = live["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == before["spec"]["template"]["spec"]["containers"][0]["image"] and ":v1.3.0-develop-" in image
    assert kubectl(cluster, "rollout", "status", "deployment/test-gyyx-cn", "-n", "develop",
                   "--timeout=120s").returncode == 0
    # Only that domain changed: shop.gyyx.cn in develop is as it was.
    records = json.loads(deployed.cdctl("history", "test.gyyx.cn", "--env", "develop", "--json").stdout)
    rollback, failed = records[0], records[1]
    assert (failed["version"], failed["result"]) == ("v1.2.0", "gate-failed")
    assert rollback["version"] == "v1.3.0" and rollback["message"].startswith("rollback test.gyyx.cn to v1.3.0")
    assert "gate failed for v1.2.0 in update" in rollback["message"] and rollback["pin"].startswith("pinned at v1.3.0")
    table = deployed.cdctl("history", "test.gyyx.cn", "--env", "develop").stdout
    assert "gate-failed" in table and "rollback (gate)" in table
    shop = json.loads(deployed.cdctl("history", "shop.gyyx.cn", "--env", "develop", "--json").stdout)
    assert shop[0]["version"] == "v2.4.1"

    # The pin holds: the next deploy of the domain is refused, and nothing changes.
    refused = deployed.cdctl("deploy", "test.gyyx.cn", "--version", "v1.2.0", "--env", "develop", "--yes")
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert 'tomcat-cd:pins["test.gyyx.cn"]: test.gyyx.cn is pinned at v1.3.0 by' in refused.stderr
    assert "gate failed for v1.2.0" in refused.stderr
    unpinned = deployed.cdctl("unpin", "test.gyyx.cn", "--env", "develop")
    assert unpinned.returncode == 0, unpinned.stderr
    assert json.loads(deployed.cdctl("history", "test.gyyx.cn", "--env", "develop", "--json").stdout)[0]["pin"] == ""

    # A freeze refuses every domain of the environment until unfreeze; --force goes past it.
    # Without the gate: shop.gyyx.cn sets no window of its own, and the default one is 120 s.
    assert deployed.cdctl("pulumi", "config", "set", "tomcat-cd:healthGate", "false", "-s", "develop").returncode == 0
    assert deployed.cdctl("freeze", "--env", "develop", "--reason", "sale week").returncode == 0
    frozen = deployed.cdctl("deploy", "shop.gyyx.cn", "--version", "v2.4.0", "--env", "develop", "--yes")
    assert frozen.returncode == 2 and "develop is frozen by" in frozen.stderr and "sale week" in frozen.stderr
    forced = deployed.cdctl("deploy", "shop.gyyx.cn", "--version", "v2.4.0", "--env", "develop", "--yes",
                            "--force", "--reason", "payment hotfix")
    assert forced.returncode == 0 and "(forced: payment hotfix)" in forced.stdout, forced.stdout + forced.stderr
    assert "gate: watching" not in forced.stdout
    assert deployed.cdctl("unfreeze", "--env", "develop").returncode == 0


@pytest.mark.gate
def test_a_promote_is_judged_by_masters_gate_and_status_reads_the_replicas(cluster, deployed):
    """After the gate test: develop runs test.gyyx.cn v1.3.0 again; master's gate judges the promote."""
    develop = json.loads(deployed.cdctl("history", "test.gyyx.cn", "--env", "develop", "--json").stdout)[0]
    assert deployed.cdctl("pulumi", "config", "set", "tomcat-cd:healthGate", "true", "-s", "master").returncode == 0
    try:
        done = deployed.cdctl("promote", "test.gyyx.cn", "--version", "v1.3.0", "--yes")
    finally:
        deployed.cdctl("pulumi", "config", "set", "tomcat-cd:healthGate", "false", "-s", "master")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "gate passed: test.gyyx.cn v1.3.0: availability ok (2/2 available" in done.stdout
    live = json.loads(kubectl(cluster, "get", "deployment", "test-gyyx-cn", "-n", "master", "-o", "json").stdout)
    image = live["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.endswith(f":v1.3.0-master-{develop['git_id']}"), image
    rows = {(r["domain"], r["environment"]): r for r in json.loads(deployed.cdctl("status", "--json").stdout)}
    assert rows[("test.gyyx.cn", "master")]["replicas"] == "2/2"
    assert rows[("test.gyyx.cn", "develop")]["replicas"] == "1/1"
    assert rows[("test.gyyx.cn", "master")]["build_id"] == develop["build_id"]


@pytest.mark.gate
def test_restarts_of_the_new_pods_read_from_the_api_server_fail_the_gate(cluster, deployed):
    """kwok runs no containers, so the test writes what a kubelet would report of a restart loop
    into the new pods' status; the gate reads it from the API server and rolls back."""
    assert deployed.cdctl("pulumi", "config", "set", "tomcat-cd:healthGate", "true", "-s", "develop").returncode == 0

    def restart_the_new_pods() -> None:
        listed = json.loads(kubectl(cluster, "get", "pods", "-n", "develop", "-l", "app=test-gyyx-cn",
                                    "-o", "json").stdout)["items"]
        for pod in listed:
            statuses = [dict(c, restartCount=3) for c in pod["status"].get("containerStatuses") or []]
            patch = json.dumps({"status": {"containerStatuses": statuses}})
            done = kubectl(cluster, "patch", "pod", pod["metadata"]["name"], "-n", "develop", "--subresource=status",
                           "--type=merge", "-p", patch)
            assert done.returncode == 0, done.stderr

    try:
        code, out, err = gated_deploy(deployed, "v1.2.0", restart_the_new_pods)
    finally:
        deployed.cdctl("pulumi", "config", "set", "tomcat-cd:healthGate", "false", "-s", "develop")
    assert code == 4, out[-3000:] + err[-3000:]
    assert "gate FAILED: test.gyyx.cn v1.2.0: availability FAILED (3 restart(s) of the new pods (limit 0))" in out, out
    assert "rolling test.gyyx.cn back to v1.3.0" in out
    assert deployed.cdctl("unpin", "test.gyyx.cn", "--env", "develop").returncode == 0
