"""The Nginx config in front of each environment: Debian's `nginx -t` accepts it, and a real
nginx on loopback balances requests over stand-in nodes and writes the site's access log."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from conftest import REPO, free_port, require_installed
from tomcat_cd.core import conventions
from tomcat_cd.core.builders import nginx
from tomcat_cd.core.model import load_sites

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@pytest.fixture(scope="module")
def sites():
    require_installed(Path(NGINX).exists(), "nginx is not installed: run scripts/install-checkers (as root)")
    return load_sites(REPO / "domains")


def main_conf(tmp: Path, includes: list[Path]) -> Path:
    """A minimal nginx.conf around the generated includes, with every path inside `tmp`."""
    for sub in ("client", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp / "temp" / sub).mkdir(parents=True, exist_ok=True)
    conf = tmp / "nginx.conf"
    conf.write_text(
        f"pid {tmp}/nginx.pid;\nerror_log {tmp}/error.log;\nworker_processes 1;\n"
        "events { worker_connections 64; }\n"
        "http {\n"
        f"    client_body_temp_path {tmp}/temp/client;\n    proxy_temp_path {tmp}/temp/proxy;\n"
        f"    fastcgi_temp_path {tmp}/temp/fastcgi;\n    uwsgi_temp_path {tmp}/temp/uwsgi;\n"
        f"    scgi_temp_path {tmp}/temp/scgi;\n    access_log off;\n"
        + "".join(f"    include {path};\n" for path in includes) + "}\n")
    return conf


def write_site_confs(sites, tmp: Path, nodes: list[str], listen: str) -> list[Path]:
    paths = []
    for env in conventions.ENVIRONMENTS:
        (tmp / "logs" / env).mkdir(parents=True, exist_ok=True)
        path = tmp / f"tomcat-cd-{env}.conf"
        path.write_text(nginx.site_conf(sites, nodes, env, listen=listen, log_dir=str(tmp / "logs")))
        paths.append(path)
    return paths


def nginx_test(conf: Path) -> subprocess.CompletedProcess:
    return subprocess.run([NGINX, "-t", "-c", str(conf)], capture_output=True, text=True)


def test_debians_nginx_accepts_both_environments_on_one_host(sites, tmp_path):
    conf = main_conf(tmp_path, write_site_confs(sites, tmp_path, ["10.0.0.21", "10.0.0.22"], "127.0.0.1:8088"))
    result = nginx_test(conf)
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr


def test_nginx_t_rejects_a_broken_config(sites, tmp_path):
    (included,) = write_site_confs(sites, tmp_path, ["10.0.0.21"], "8088")[:1]
    included.write_text(included.read_text().replace("keepalive 16;", "keepalive sixteen;", 1))
    assert nginx_test(main_conf(tmp_path, [included])).returncode != 0


def test_every_node_serves_every_site_port(sites):
    text = nginx.site_conf(sites, ["10.0.0.21", "10.0.0.22"], "develop")
    assert "server 10.0.0.21:31001 max_fails=3 fail_timeout=10s;" in text
    assert "server 10.0.0.22:31002 max_fails=3 fail_timeout=10s;" in text
    assert "server_name test.gyyx.cn;" in text
    assert "access_log /var/log/nginx/tomcat-cd/develop/test.gyyx.cn.access.log tomcatcd_develop;" in text


class Node(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802
        body = f"{self.server.server_address[0]} {self.headers['X-Forwarded-For']}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_real_nginx_balances_over_the_nodes_and_logs_per_site(sites, tmp_path):
    test_site = next(s for s in sites if s.domain == "test.gyyx.cn")
    node_port = test_site.node_port("develop")
    nodes = ["127.0.0.1", "127.0.0.2"]  # two "nodes" on loopback, each with the site's NodePort
    servers = [ThreadingHTTPServer((address, node_port), Node) for address in nodes]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    listen = free_port()
    conf = main_conf(tmp_path, write_site_confs(sites, tmp_path, nodes, f"127.0.0.1:{listen}")[1:])
    daemon = subprocess.Popen([NGINX, "-c", str(conf), "-g", "daemon off;"], stderr=subprocess.PIPE, text=True)
    answers = []
    try:
        deadline = time.monotonic() + 20
        while len(answers) < 20 and time.monotonic() < deadline:
            request = urllib.request.Request(f"http://127.0.0.1:{listen}/", headers={"Host": "test.gyyx.cn"})
            try:
                with urllib.request.urlopen(request, timeout=2) as response:
                    answers.append(response.read().decode())
            except OSError:
                assert daemon.poll() is None, daemon.stderr.read()
                time.sleep(0.2)
    finally:
        daemon.terminate()
        daemon.wait(timeout=20)
        for server in servers:
            server.shutdown()
            server.server_close()
    assert len(answers) == 20
    served_by = {answer.split()[0] for answer in answers}
    assert served_by == set(nodes), "requests must be spread over every node"
    assert all(answer.split()[1] == "127.0.0.1" for answer in answers), "the client address is forwarded"
    log = (tmp_path / "logs/develop/test.gyyx.cn.access.log").read_text().splitlines()
    assert len(log) == 20 and all('"GET / HTTP/1.1" 200' in line for line in log)
    assert {line.split("upstream=")[1].split()[0] for line in log} == {f"{n}:{node_port}" for n in nodes}
    assert not (tmp_path / "logs/develop/shop.gyyx.cn.access.log").read_text()
    assert not os.path.exists(tmp_path / "nginx.pid") or daemon.returncode is not None
