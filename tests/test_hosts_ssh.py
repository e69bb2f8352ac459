"""The host scripts run for real over SSH: Debian's OpenSSH server on loopback with a throwaway
key, the script on standard input and its secrets ahead of it, exactly as the platform stack
sends them. Each script runs twice and the second run must change nothing.

What would change this machine stays off it: files go under a throwaway root
(TOMCAT_CD_ROOT) and the system tools (apt-get, systemctl, kubeadm, ...) are stand-ins that
record their command line (tests/stubs/system-tool), so the tests assert the exact commands.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from ssh_harness import STUBBED, start_ssh_host
from tomcat_cd.core.hosts import cluster, services
from tomcat_cd.core.hosts.inventory import Cluster, Harbor, Host, Inventory, node_folders

pytestmark = pytest.mark.ssh
SPEC = Cluster(kubernetes_version="v1.33.5")
NODE = Host(name="k8s-node-1", address="127.0.0.1")
INVENTORY = Inventory(control_planes=(Host("k8s-master-1", "10.0.0.11"),), workers=(NODE,),
                      control_plane_endpoint="k8s-api.example.com:6443")


@pytest.fixture
def remote(tmp_path):
    host = start_ssh_host(tmp_path / "host")
    yield host
    host.stop()


def test_node_preparation_runs_over_ssh_and_a_second_run_changes_nothing(remote):
    (remote.root / "etc").mkdir()
    (remote.root / "etc/fstab").write_text("UUID=1 / ext4 defaults 0 1\n/swapfile none swap sw 0 0\n")
    (remote.state / "swap-on").touch()
    script = cluster.prepare_node(NODE, SPEC, None)

    first = remote.run(script)
    assert first.returncode == 0, first.stderr
    assert remote.changing_calls() == [
        "swapoff -a",
        "modprobe overlay",
        "modprobe br_netfilter",
        "sysctl --system",
        "apt-get update -qq",
        "apt-get install -y -qq --no-install-recommends containerd ca-certificates curl conntrack",
        "systemctl restart containerd",
        f"curl -fsSL --retry 3 -o {remote.root}/etc/apt/keyrings/kubernetes-v1.33.asc "
        "https://pkgs.k8s.io/core:/stable:/v1.33/deb/Release.key",
        "apt-get update -qq",
        "apt-get install -y -qq --allow-change-held-packages kubelet=1.33.5-1.1 kubeadm=1.33.5-1.1 kubectl=1.33.5-1.1",
        "apt-mark hold kubelet kubeadm kubectl",
    ]
    fstab = (remote.root / "etc/fstab").read_text().splitlines()
    assert fstab[0] == "UUID=1 / ext4 defaults 0 1"
    assert fstab[1].startswith("# /swapfile none swap sw 0 0")
    for folder in node_folders():
        assert (remote.root / folder.lstrip("/")).is_dir(), folder
    assert oct((remote.root / "data/dockerlibs").stat().st_mode)[-3:] == "711"
    assert "net.ipv4.ip_forward = 1" in (remote.root / "etc/sysctl.d/90-tomcat-cd-kubernetes.conf").read_text()
    containerd = (remote.root / "etc/containerd/config.toml").read_text()
    assert 'root = "/data/dockerlibs"' in containerd and "SystemdCgroup = true" in containerd
    cleanup = remote.root / "etc/cron.daily/tomcat-cd-image-cleanup"
    assert os.access(cleanup, os.X_OK) and "rmi --prune" in cleanup.read_text()
    before = remote.tree()

    second = remote.run(script)
    assert second.returncode == 0, second.stderr
    assert remote.changing_calls() == []
    assert second.stderr.strip().splitlines()[-1] == "ok: nothing to change"
    assert remote.tree() == before, "the second run must leave every file, mode and time as it was"


def test_a_join_gets_its_secrets_on_stdin_joins_once_and_never_shows_them(remote):
    secrets = {"KUBEADM_TOKEN": "abcdef.0123456789abcdef", "KUBEADM_CA_CERT_HASH": "sha256:" + "ab" * 32}
    script = cluster.join_node(INVENTORY, NODE, control_plane=False)

    first = remote.run(script, secrets)
    assert first.returncode == 0, first.stderr
    join = [call for call in remote.calls() if call.startswith("kubeadm")]
    assert len(join) == 1 and join[0].startswith("kubeadm join --config /tmp/")
    given = (remote.state / "join-config.yaml").read_text()
    assert 'token: "abcdef.0123456789abcdef"' in given and f'- "{secrets["KUBEADM_CA_CERT_HASH"]}"' in given
    assert not Path(join[0].split()[-1]).exists(), "the file holding the token is removed"
    for secret in secrets.values():
        assert secret not in first.stdout + first.stderr + remote.log.read_text()

    second = remote.run(script, secrets)
    assert second.returncode == 0, second.stderr
    assert remote.changing_calls() == []
    assert "ok: already in the cluster" in second.stderr


def test_a_join_without_its_secrets_stops_before_doing_anything(remote):
    result = remote.run(cluster.join_node(INVENTORY, NODE, control_plane=False))
    assert result.returncode != 0
    assert "KUBEADM_TOKEN: is set by tomcat-cd" in result.stderr
    assert remote.calls() == []


def test_dashboard_images_are_pulled_once(remote):
    script = cluster.prepull_dashboard(NODE, SPEC)
    assert remote.run(script).returncode == 0
    assert [c for c in remote.changing_calls()] == [
        f"crictl --runtime-endpoint unix:///run/containerd/containerd.sock pull {image}"
        for image in SPEC.dashboard_images]
    assert remote.run(script).returncode == 0
    assert remote.changing_calls() == []


def _nginx_configs(marker: str) -> dict[str, str]:
    return {env: f"# {marker}\nupstream {env}_site {{ server 10.0.0.21:31001; }}\n" for env in ("master", "develop")}


def test_nginx_reloads_only_after_nginx_t_and_puts_the_old_config_back_when_refused(remote):
    host = Host("nginx-1", "127.0.0.1")
    first = remote.run(services.nginx_front(host, _nginx_configs("one")))
    assert first.returncode == 0, first.stderr
    assert remote.changing_calls()[-2:] == ["nginx -t -q", "systemctl reload-or-restart nginx"]
    conf_d = remote.root / "etc/nginx/conf.d"
    good = {path.name: path.read_text() for path in conf_d.iterdir()}
    assert sorted(good) == ["tomcat-cd-develop.conf", "tomcat-cd-master.conf"]

    again = remote.run(services.nginx_front(host, _nginx_configs("one")))
    assert again.returncode == 0 and remote.changing_calls() == []

    (remote.state / "nginx-refuses").touch()
    refused = remote.run(services.nginx_front(host, _nginx_configs("two")))
    assert refused.returncode == 1
    assert "nginx -t refused the new config" in refused.stderr
    assert "systemctl reload-or-restart nginx" not in remote.calls()
    assert {path.name: path.read_text() for path in conf_d.iterdir()} == good


class HarborStandIn(BaseHTTPRequestHandler):
    """The slice of Harbor's v2.0 API the scripts call, with its answers' shapes and codes:
    projects (HEAD to ask, POST to create), system robots (list, create, read, PATCH the
    secret) and the registry's token service, which accepts a robot's name and secret."""

    admin = ("admin", "Harbor-admin-pw-1")
    projects: set[str] = set()
    robots: dict[int, dict] = {}
    requests: list[tuple[str, str, str]] = []

    def log_message(self, *args):
        pass

    def _user(self) -> tuple[str, str] | None:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return None
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        return user, password

    def _answer(self, code: int, body=None) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _handle(self) -> None:
        url = urlparse(self.path)
        query = parse_qs(url.query)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        self.requests.append((self.command, url.path, self.headers.get("Host", "")))
        if url.path == "/service/token":
            robot = next((r for r in self.robots.values() if (r["name"], r["secret"]) == self._user()), None)
            return self._answer(200 if robot else 401, {"token": "t"} if robot else None)
        if self._user() != self.admin:
            return self._answer(401, {"errors": [{"code": "UNAUTHORIZED"}]})
        if url.path == "/api/v2.0/projects" and self.command == "HEAD":
            return self._answer(200 if query["project_name"][0] in self.projects else 404)
        if url.path == "/api/v2.0/projects" and self.command == "POST":
            self.projects.add(body["project_name"])
            return self._answer(201)
        if url.path == "/api/v2.0/robots" and self.command == "GET":
            wanted = query["q"][0].removeprefix("name=~")
            return self._answer(200, [{"id": i, "name": r["name"]} for i, r in self.robots.items() if wanted in r["name"]])
        if url.path == "/api/v2.0/robots" and self.command == "POST":
            assert body["level"] == "system" and body["permissions"][0]["namespace"] == "*"
            robot_id = len(self.robots) + 1
            self.robots[robot_id] = {"name": f"robot${body['name']}", "secret": "generated-by-harbor"}
            return self._answer(201, {"id": robot_id, "name": self.robots[robot_id]["name"], "secret": "generated-by-harbor"})
        robot_id = int(url.path.rsplit("/", 1)[1])
        if self.command == "GET":
            return self._answer(200, {"id": robot_id, "name": self.robots[robot_id]["name"]})
        self.robots[robot_id]["secret"] = body["secret"]
        return self._answer(200)

    do_HEAD = do_GET = do_POST = do_PATCH = _handle


@pytest.fixture
def harbor(tmp_path):
    """An SSH host whose curl and jq are real, and the Harbor stand-in on one of its ports."""
    host = start_ssh_host(tmp_path / "harbor", stubbed=tuple(t for t in STUBBED if t != "curl"))
    HarborStandIn.projects, HarborStandIn.robots, HarborStandIn.requests = set(), {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), HarborStandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield host, Harbor(hostname="harbor.example.com", scheme="http", port=server.server_address[1])
    server.shutdown()
    host.stop()


# Every printable ASCII character, command substitutions, a newline, a tab, a non-ASCII letter.
HOSTILE = "".join(chr(c) for c in range(32, 127)) + "$(touch MARKER)`touch MARKER`\n\tend\u00e9"


@pytest.mark.parametrize("hostile", [False, True], ids=["plain secrets", "hostile secrets"])
def test_harbor_projects_and_robot_through_the_api_once(harbor, tmp_path, hostile):
    remote, settings = harbor
    marker = tmp_path / "ran"
    admin_pw, robot_secret = ("Harbor-admin-pw-1", "Robot-secret-pw-1") if not hostile else (
        "A" + HOSTILE.replace("MARKER", str(marker)), "R" + HOSTILE.replace("MARKER", str(marker)))
    HarborStandIn.admin = ("admin", admin_pw)
    secrets = {"HARBOR_ADMIN_PASSWORD": admin_pw, "HARBOR_ROBOT_SECRET": robot_secret}
    machine = Host("harbor", "127.0.0.1")
    project = services.harbor_project(machine, settings, "test.gyyx.cn")
    robot = services.harbor_robot(machine, settings)

    for script in (project, robot):
        first = remote.run(script, secrets)
        assert first.returncode == 0, first.stderr
    assert HarborStandIn.projects == {"test.gyyx.cn"}
    assert HarborStandIn.robots == {1: {"name": "robot$tomcat-cd", "secret": robot_secret}}
    assert not marker.exists(), "a secret's $(...) or backquotes ran"
    # Harbor's own name reached on this host: what its certificate would be for.
    assert {host_header for *_, host_header in HarborStandIn.requests} == {settings.registry}
    calls = [(method, path) for method, path, _ in HarborStandIn.requests]
    assert calls.count(("POST", "/api/v2.0/projects")) == 1 and calls.count(("PATCH", "/api/v2.0/robots/1")) == 1

    HarborStandIn.requests.clear()
    for script in (project, robot):
        again = remote.run(script, secrets)
        assert again.returncode == 0, again.stderr
        assert again.stderr.strip().splitlines()[-1] == "ok: nothing to change"
    assert {method for method, *_ in HarborStandIn.requests} <= {"HEAD", "GET"}, "a second run only asks"

    wrong = remote.run(project, {**secrets, "HARBOR_ADMIN_PASSWORD": "not-it"})
    assert wrong.returncode == 1 and "asking for project test.gyyx.cn: HTTP 401" in wrong.stderr
