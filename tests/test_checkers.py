"""Every generated artifact through a real checker nobody here wrote.

- Kubernetes objects: kubernetes-validate --strict against the official schemas.
- Dockerfiles: hadolint.
- Tomcat conf: Apache Tomcat itself parses it (configtest), then serves a request,
  and each kind of log is found in the folder the log volumes mount.
Each checker is also shown a broken input, so a checker that passes everything fails here.
"""

from __future__ import annotations

import datetime
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO, cdctl, free_port, require_installed

pytestmark = pytest.mark.checker
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    path = BIN / name
    assert path.exists(), f"{name} is installed by scripts/setup (requirements-dev.txt)"
    return str(path)


def require(path: Path, installer: str) -> Path:
    require_installed(path.exists(), f"{path} not installed: run {installer}")
    return path


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, Path]:
    outs = {}
    for stack in ("master", "develop", "platform"):
        out = tmp_path_factory.mktemp(f"render-{stack}")
        result = cdctl("render", "--stack", stack, "--out", str(out))
        assert result.code == 0, result.err
        outs[stack] = out
    return outs


@pytest.mark.parametrize("stack", ["master", "develop", "platform"])
def test_every_rendered_object_passes_kubernetes_validate_strict(rendered, stack):
    files = sorted(str(p) for p in (rendered[stack] / "k8s").rglob("*.yaml"))
    assert len(files) >= 5
    proc = subprocess.run([tool("kubernetes-validate"), "--strict", *files], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("passed for resource") == len(files), proc.stdout


def test_kubernetes_validate_strict_rejects_an_unknown_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  type: NodePort\n  nodeport: 32001\n")
    proc = subprocess.run([tool("kubernetes-validate"), "--strict", str(bad)], capture_output=True, text=True)
    assert proc.returncode != 0 and "nodeport" in proc.stdout + proc.stderr


@pytest.mark.parametrize("stack", ["master", "develop"])
def test_every_rendered_dockerfile_passes_hadolint(rendered, stack):
    dockerfiles = sorted((rendered[stack] / "build").glob("*/Dockerfile"))
    assert dockerfiles
    for dockerfile in dockerfiles:
        proc = subprocess.run([tool("hadolint"), "--no-color", str(dockerfile)], capture_output=True, text=True)
        assert (proc.returncode, proc.stdout) == (0, ""), f"{dockerfile}: {proc.stdout}{proc.stderr}"


def test_hadolint_rejects_an_untagged_base(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM tomcat:latest\nCOPY ROOT.war /usr/local/tomcat/webapps/\n")
    proc = subprocess.run([tool("hadolint"), "--no-color", str(bad)], capture_output=True, text=True)
    assert proc.returncode != 0 and "DL3007" in proc.stdout


# --- Tomcat -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def catalina_home() -> Path:
    out = subprocess.run([str(REPO / "scripts/install-checkers"), "--print-path"], capture_output=True, text=True)
    return require(Path(out.stdout.strip()), "scripts/install-checkers")


def catalina_base(home: Path, context: Path, dest: Path, port: int | None = None) -> Path:
    """A CATALINA_BASE laid out as the image lays it: Tomcat's stock conf, then the build context's.

    The connector moves to a free port: even `configtest` binds it, and the pipeline's pod
    holds 8080 on this host while its tests run beside these."""
    shutil.copytree(home / "conf", dest / "conf")
    shutil.copytree(context / "tomcat", dest / "conf", dirs_exist_ok=True)
    server = dest / "conf/server.xml"
    conf = server.read_text()
    assert 'port="8080"' in conf, "the generated server.xml no longer has the 8080 connector"
    server.write_text(conf.replace('port="8080"', f'port="{port or free_port()}"'))
    for folder in ("logs", "accesslogs", "temp", "work", "webapps/ROOT"):
        (dest / folder).mkdir(parents=True, exist_ok=True)
    (dest / "webapps/ROOT/health").write_text("ok\n")
    return dest


def catalina(home: Path, base: Path, *args: str, **kwargs) -> subprocess.CompletedProcess | subprocess.Popen:
    env = dict(os.environ, CATALINA_HOME=str(home), CATALINA_BASE=str(base), CATALINA_PID=str(base / "pid"))
    env.pop("JAVA_OPTS", None)
    command = [str(home / "bin/catalina.sh"), *args]
    if kwargs.pop("background", False):
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def digester_complaints(output: str) -> list[str]:
    return [line for line in output.splitlines()
            if "failed to set property" in line or "SEVERE" in line or "Exception" in line]


@pytest.mark.parametrize("domain", ["test.gyyx.cn", "api.gyyx.cn"])
def test_tomcat_parses_the_generated_conf_without_a_complaint(rendered, catalina_home, tmp_path, domain):
    base = catalina_base(catalina_home, rendered["master"] / "build" / domain, tmp_path / "base")
    proc = catalina(catalina_home, base, "configtest")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert digester_complaints(proc.stdout + proc.stderr) == []


def test_tomcat_configtest_catches_a_misspelt_attribute(rendered, catalina_home, tmp_path):
    base = catalina_base(catalina_home, rendered["master"] / "build/api.gyyx.cn", tmp_path / "base")
    server = base / "conf/server.xml"
    server.write_text(server.read_text().replace('fileDateFormat=', 'fileDateFormt='))
    proc = catalina(catalina_home, base, "configtest")
    complaints = digester_complaints(proc.stdout + proc.stderr)
    assert any("fileDateFormt" in line for line in complaints), proc.stdout + proc.stderr


def test_tomcat_writes_access_and_tomcat_logs_where_the_volumes_are(rendered, catalina_home, tmp_path):
    port = free_port()
    base = catalina_base(catalina_home, rendered["develop"] / "build/test.gyyx.cn", tmp_path / "base", port)
    server = catalina(catalina_home, base, "run", background=True)
    try:
        deadline = time.monotonic() + 60
        body = None
        while time.monotonic() < deadline and body is None:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/health",
                                                 headers={"X-Forwarded-For": "203.0.113.7"})
                with urllib.request.urlopen(request, timeout=2) as response:
                    body = response.read().decode()
            except OSError:
                assert server.poll() is None, server.stdout.read()
                time.sleep(0.5)
        assert body == "ok\n"
    finally:
        server.terminate()
        server.wait(timeout=30)
    today = datetime.date.today().isoformat()
    access = (base / "accesslogs" / f"localhost_access_log.{today}.txt").read_text()
    # RemoteIpValve: the client behind Nginx is logged, not the proxy.
    assert access.startswith('203.0.113.7 - - [') and '"GET /health HTTP/1.1" 200 3' in access
    assert "Server startup in" in (base / "logs" / f"catalina.{today}.log").read_text()
    assert not list((base / "logs").glob("localhost_access_log*")), "access logs must not land in logs/"


def test_generated_setup_script_passes_shellcheck(rendered):
    script = rendered["platform"] / "config/logging-setup/setup.sh"
    proc = subprocess.run([tool("shellcheck"), str(script)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_project_shell_scripts_pass_shellcheck():
    scripts = [REPO / ".ci/run", *sorted(p for p in (REPO / "scripts").iterdir()
                                         if p.is_file() and p.read_text().startswith("#!/usr/bin/env bash"))]
    scripts.append(REPO / "scripts/lib.sh")
    proc = subprocess.run([tool("shellcheck"), "-x", *map(str, scripts)], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout
