"""The real pipeline of the tests: scripts/pipeline started in a test's folder, and the
site project that deploys through it to the local kwok cluster."""

from __future__ import annotations

import json
import os
import pwd
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from conftest import REPO, require_installed
from engine_harness import EngineProject, make_engine_project

TOOLS = Path(subprocess.run([str(REPO / "scripts/install-pipeline"), "--print-path"],
                            capture_output=True, text=True).stdout.strip())
DOMAIN = "pipe.gyyx.cn"
ENV = "develop"


def require_pipeline() -> None:
    missing = [name for name in ("buildkitd", "crane", "filebeat", "pulumi-resource-docker-build")
               if not (TOOLS / name).exists()]
    if not (TOOLS.parent / "template-registry" / ".key").exists():
        missing.append("the base image")
    require_installed(not missing, f"not installed: {', '.join(missing)}: run scripts/install-pipeline")


def pipeline(action: str, state: Path, *args: str, timeout: float = 400) -> subprocess.CompletedProcess:
    return subprocess.run([str(REPO / "scripts/pipeline"), action, "--state", str(state), *args],
                          capture_output=True, text=True, timeout=timeout)


@dataclass
class Pipeline:
    state: Path
    endpoints: dict[str, Any]
    started_at: float

    def secret(self, part: str) -> str:
        return Path(self.endpoints[part]["password_file"]).read_text()

    @property
    def registry(self) -> str:
        return self.endpoints["registry"]["address"]

    @property
    def docker_config(self) -> Path:
        """Where the docker CLI and the docker-build provider find the buildx builder and logins."""
        return Path(self.endpoints["buildkit"]["docker_config"])

    def crane(self, *args: str) -> str:
        done = subprocess.run([str(TOOLS / "crane"), "--insecure", *args], capture_output=True, text=True,
                              env=dict(os.environ, DOCKER_CONFIG=str(self.docker_config)), timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def docker(self, *args: str, check: bool = True, timeout: float = 300,
               stdin: str | None = None) -> subprocess.CompletedProcess:
        done = subprocess.run(["docker", "--config", str(self.docker_config), "-H", self.endpoints["docker"]["host"],
                               *args], capture_output=True, text=True, timeout=timeout, input=stdin)
        assert not check or done.returncode == 0, f"docker {args[0]}: {done.stderr[-2000:]}"
        return done

    def login(self) -> None:
        """Log the docker CLI (and crane, which reads the same file) in to the registry."""
        self.docker("login", "--username", self.endpoints["registry"]["username"], "--password-stdin",
                    self.registry, stdin=self.secret("registry"))


def start_pipeline(state: Path, parts: str = "registry,docker,buildkit,elasticsearch") -> Pipeline:
    started_at = time.time()
    started = pipeline("start", state, "--parts", parts)
    if started.returncode != 0:
        pipeline("stop", state)
        raise AssertionError(f"scripts/pipeline start failed: {started.stderr[-3000:]}")
    return Pipeline(state, json.loads(started.stdout), started_at)


# A JVM ignores TMPDIR: its java.io.tmpdir is /tmp unless set.
JVM_TEMP = Path("/tmp")


def left_by_unprivileged_jvms(since: float) -> list[str]:
    """What processes of the user scripts/pipeline runs Elasticsearch as left in JVM_TEMP:
    not counting an empty folder (each JVM's hsperfdata_<user>, which it empties at exit)."""
    nobody = pwd.getpwnam("nobody").pw_uid
    return sorted(str(path) for path in JVM_TEMP.iterdir()
                  if path.lstat().st_uid == nobody and path.lstat().st_mtime >= since
                  and not (path.is_dir() and not any(path.iterdir())))


def stop_pipeline(pipe: Pipeline) -> None:
    """Stop it, and prove nothing is left: no process, no bound port, no mount."""
    ports = [int(url.rsplit(":", 1)[1]) for url in (pipe.endpoints.get("elasticsearch", {}).get("url"),
                                                    pipe.endpoints.get("registry", {}).get("address")) if url]
    stopped = pipeline("stop", pipe.state)
    assert stopped.returncode == 0, stopped.stderr
    leftovers = subprocess.run(["pgrep", "-af", f"{pipe.state}|{pipe.endpoints['runtime_dir']}"],
                               capture_output=True, text=True).stdout
    assert leftovers == "", f"processes outlived scripts/pipeline stop:\n{leftovers}"
    for port in ports:
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} is still bound"
    mounts = Path("/proc/self/mounts").read_text()
    assert str(pipe.state) not in mounts and pipe.endpoints["runtime_dir"] not in mounts
    assert not Path(pipe.endpoints["runtime_dir"]).exists()
    left = left_by_unprivileged_jvms(pipe.started_at)
    assert left == [], f"the pipeline's JVMs left files outside its state folder: {', '.join(left)}"


SITE_FILE = f"""\
nodePort: 32090
replicas: {{master: 1, develop: 1}}
hosts:
  - 10.0.0.5 db.internal
resources: {{cpu: 250m, memory: 512Mi}}
javaOpts: -Xms64m -Xmx256m
jvmFlags:
  - -Dfile.encoding=UTF-8
env:
  APP_PROFILE: pipeline-test
probe:
  path: /health.jsp
"""


def site_project(tmp: Path, kubeconfig: Path, pipe: Pipeline) -> EngineProject:
    """The example project deploying one real site, DOMAIN, to the cluster with image builds on:
    pushed to the pipeline's registry with its basic-auth login, built by its buildkitd (the
    program makes the buildx builder from `builderEndpoint`, in the pipeline's DOCKER_CONFIG)."""
    project = make_engine_project(tmp, kubeconfig=kubeconfig)
    (project.root / "domains" / f"{DOMAIN}.yaml").write_text(SITE_FILE)
    passphrase = tmp / "passphrase"
    passphrase.write_text(secrets.token_urlsafe(16))
    stack = project.root / f"Pulumi.{ENV}.yaml"
    document = yaml.safe_load(stack.read_text())
    # A real secret needs a real passphrase: a new stack gets its own salt from it.
    document.pop("encryptionsalt", None)
    config = document["config"]
    config.pop("tomcat-cd:versions", None)
    config.update({
        "tomcat-cd:harborHost": pipe.registry,
        "tomcat-cd:harborUsername": pipe.endpoints["registry"]["username"],
        "tomcat-cd:baseImage": f"{pipe.registry}/{pipe.endpoints['registry']['base_image']}",
        "tomcat-cd:buildImages": True,
        "tomcat-cd:builderEndpoint": pipe.endpoints["buildkit"]["address"],
    })
    stack.write_text(yaml.safe_dump(document, sort_keys=False))
    project.extra_env = {"PULUMI_CONFIG_PASSPHRASE_FILE": str(passphrase), "DOCKER_CONFIG": str(pipe.docker_config),
                         "DOCKER_HOST": pipe.endpoints["docker"]["host"]}
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "pipeline site"],
                   cwd=project.root, check=True)
    done = project.cdctl("pulumi", "stack", "init", ENV)
    assert done.returncode == 0, done.stderr
    set_harbor_password(project, pipe.secret("registry"))
    assert pipe.secret("registry") not in stack.read_text()
    return project


def set_harbor_password(project: EngineProject, password: str) -> None:
    set_secret(project, "harborPassword", password)


def set_secret(project: EngineProject, key: str, value: str, stack: str = ENV) -> None:
    """As an operator does: a Pulumi secret, given on standard input (never on a command line)."""
    command = [sys.executable, "-m", "cdctl", "--project-dir", str(project.root), "pulumi", "config", "set",
               "--secret", f"tomcat-cd:{key}", "-s", stack]
    done = subprocess.run(command, input=value, cwd=project.root, capture_output=True, text=True,
                          env=project.env())
    assert done.returncode == 0, done.stderr


def wait_for(what: str, check, seconds: float = 120, every: float = 0.5) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what} after {seconds:.0f} s")
        time.sleep(every)
