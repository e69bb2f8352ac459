"""A real `pulumi up` of a test copy of the platform stack drives two hosts over SSH: a control
plane on 127.0.0.1 and a worker on 127.0.0.2, each an OpenSSH server on loopback with its own
key (each a Pulumi secret of its own) and checked host key. The engine, the Python program and
the command provider (scripts/install-pulumi) are the real ones; on the hosts, files go to a
throwaway root and the system tools are stand-ins that record their command lines
(tests/ssh_harness.py), kubeadm included: no cluster is built, the order and the secrets are
what is checked, then that a second `pulumi up` runs nothing and that removing the worker from
the inventory drains it before resetting it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from engine_harness import make_engine_project, require_engine
from ssh_harness import start_ssh_host

pytestmark = [pytest.mark.engine, pytest.mark.ssh]
STACK = "bootstrap"
TOKEN = "abcdef.0123456789abcdef"  # what the stand-in kubeadm hands out (tests/stubs/system-tool)
CERTIFICATE_KEY = "5d7c3a1f" * 8
ADMIN = "kubectl --kubeconfig /etc/kubernetes/admin.conf"


@pytest.fixture
def hosts(tmp_path):
    log = tmp_path / "calls.log"  # one log for both machines: the order across them
    control_plane = start_ssh_host(tmp_path / "cp-1", "127.0.0.1", log)
    worker = start_ssh_host(tmp_path / "node-1", "127.0.0.2", log)
    yield control_plane, worker
    control_plane.stop()
    worker.stop()


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return result.stdout + result.stderr


def inventory(control_plane, worker=None) -> dict:
    def host(name, ssh, key_secret):
        return {"name": name, "address": ssh.address, "port": ssh.port, "hostKey": ssh.host_key,
                "keySecret": key_secret}
    value = {"controlPlaneEndpoint": "127.0.0.1:6443",
             "controlPlanes": [host("cp-1", control_plane, "sshPrivateKey")]}
    if worker:
        value["workers"] = [host("node-1", worker, "workerSshKey")]
    return value


def write_stack(project, value: dict) -> None:
    path = project.root / f"Pulumi.{STACK}.yaml"
    document = yaml.safe_load(path.read_text()) if path.exists() else {"config": {}}
    document["config"].update({"tomcat-cd:role": "platform", "tomcat-cd:bootstrap": True,
                               "tomcat-cd:weaveScope": {"enabled": False}, "tomcat-cd:inventory": value})
    path.write_text(yaml.safe_dump(document, sort_keys=False))


def first(calls: list[str], prefix: str) -> int:
    matches = [index for index, call in enumerate(calls) if call.startswith(prefix)]
    assert matches, f"no call starting with {prefix!r} in:\n" + "\n".join(calls)
    return matches[0]


def test_pulumi_up_bootstraps_the_hosts_over_ssh_in_order_and_keeps_secrets(hosts, tmp_path):
    require_engine()
    control_plane, worker = hosts
    (tmp_path / "engine").mkdir()
    project = make_engine_project(tmp_path / "engine")
    write_stack(project, inventory(control_plane, worker))
    for key, ssh in (("sshPrivateKey", control_plane), ("workerSshKey", worker)):
        # As the README says: the key from standard input, never on a command line.
        ok(subprocess.run([sys.executable, "-m", "cdctl", "--project-dir", str(project.root), "pulumi", "config",
                           "set", "--secret", "-s", STACK, key], stdin=ssh.key.open(), cwd=project.root,
                          env=project.env(), capture_output=True, text=True, timeout=120))

    output = ok(project.pulumi("up", "-s", STACK, "--yes", "--skip-preview", timeout=900))
    calls = control_plane.calls()
    order = [first(calls, "swapon"), first(calls, "kubeadm init --config /etc/kubernetes/tomcat-cd/kubeadm-init.yaml"),
             first(calls, "kubeadm token create"), first(calls, "kubeadm join --config"),
             first(calls, f"{ADMIN} apply -f https://github.com/weaveworks/weave/"),
             first(calls, "crictl --runtime-endpoint unix:///run/containerd/containerd.sock pull"),
             first(calls, f"{ADMIN} wait --for=condition=Ready node/node-1")]
    assert order == sorted(order), "\n".join(calls)
    joined = (worker.state / "join-config.yaml").read_text()
    assert f'token: "{TOKEN}"' in joined, "the worker joined with the control plane's token"
    assert '- "sha256:' in joined and (worker.root / "etc/kubernetes/kubelet.conf").exists()

    state = next((project.root / ".state" / "pulumi").rglob(f"{STACK}.json")).read_text()
    stack_file = (project.root / f"Pulumi.{STACK}.yaml").read_text()
    private_key_line = control_plane.key.read_text().splitlines()[1]
    for secret in (TOKEN, CERTIFICATE_KEY, private_key_line):
        for where, text in (("state", state), ("stack file", stack_file), ("output", output)):
            assert secret not in text, f"a secret in the clear in the {where}"
    assert json.loads(ok(project.pulumi("stack", "output", "-s", STACK, "--json")))["remoteSteps"][:2] == [
        "prepare-cp-1", "prepare-node-1"]

    before = len(control_plane.calls())
    ok(project.pulumi("up", "-s", STACK, "--yes", "--skip-preview", timeout=900))
    assert control_plane.calls()[before:] == [], "a second pulumi up must run nothing on the hosts"
    changes = json.loads(ok(project.pulumi("stack", "history", "-s", STACK, "--json")))[0]["resourceChanges"]
    assert set(changes) == {"same"}, changes

    write_stack(project, inventory(control_plane))
    ok(project.pulumi("up", "-s", STACK, "--yes", "--skip-preview", timeout=900))
    removal = control_plane.calls()[before:]
    drain = first(removal, f"{ADMIN} drain node-1 --ignore-daemonsets --delete-emptydir-data")
    delete = first(removal, f"{ADMIN} delete node node-1")
    reset = first(removal, "kubeadm reset --force")
    assert drain < delete < reset, "\n".join(removal)
    assert not (worker.root / "etc/kubernetes/kubelet.conf").exists()
