"""Jenkins: the build's parameters map to the right cdctl call, the Jenkinsfile and the
Job DSL script compile with a real Groovy, the jobs come from domains/, and the remote
trigger keeps its token off the command line."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from conftest import REPO, require_installed
from cdctl import release_commands

JENKINSFILE = REPO / "jenkins/Jenkinsfile"
RUN_BUILD = REPO / "jenkins/run-build"


@pytest.fixture
def fake_cdctl(tmp_path) -> tuple[Path, Path]:
    """A cdctl that records its arguments, one per line."""
    log = tmp_path / "argv"
    fake = tmp_path / "cdctl"
    fake.write_text(f'#!/usr/bin/env bash\nprintf "%s\\n" "$@" > "{log}"\n')
    fake.chmod(0o755)
    return fake, log


def run_build(fake_cdctl, **params: str) -> tuple[int, list[str], str]:
    fake, log = fake_cdctl
    env = {"PATH": os.environ["PATH"], "CDCTL": str(fake), **params}
    proc = subprocess.run([str(RUN_BUILD)], env=env, capture_output=True, text=True)
    argv = log.read_text().splitlines() if log.exists() else []
    return proc.returncode, argv, proc.stderr


@pytest.mark.parametrize("branch", ["develop", "master"])
def test_apply_deploys_the_version_with_the_build_number(fake_cdctl, branch):
    code, argv, _ = run_build(fake_cdctl, DOMAIN="test.gyyx.cn", VERSION="v1.2.0", TYPE="apply",
                              BRANCH=branch, BUILD_NUMBER="92")
    assert code == 0
    assert argv == ["deploy", "test.gyyx.cn", "--version", "v1.2.0", "--env", branch, "--build-id", "92", "--yes"]


@pytest.mark.parametrize("branch", ["develop", "master"])
def test_delete_removes_the_domain(fake_cdctl, branch):
    code, argv, _ = run_build(fake_cdctl, DOMAIN="test.gyyx.cn", TYPE="delete", BRANCH=branch)
    assert (code, argv) == (0, ["delete", "test.gyyx.cn", "--env", branch, "--yes"])


def test_promote_deploys_develops_version_to_master(fake_cdctl):
    code, argv, _ = run_build(fake_cdctl, DOMAIN="test.gyyx.cn", VERSION="v1.2.0", TYPE="promote", BRANCH="master")
    assert (code, argv) == (0, ["promote", "test.gyyx.cn", "--version", "v1.2.0", "--to", "master", "--yes"])


def test_one_job_per_domain_takes_the_domain_from_the_job_name(fake_cdctl):
    code, argv, _ = run_build(fake_cdctl, JOB_BASE_NAME="shop.gyyx.cn", VERSION="v2", TYPE="apply",
                              BRANCH="develop", BUILD_NUMBER="7")
    assert code == 0 and argv[:2] == ["deploy", "shop.gyyx.cn"]


@pytest.mark.parametrize("params,message", [
    ({"DOMAIN": "a.gyyx.cn", "TYPE": "apply", "BRANCH": "develop"}, "VERSION is needed for TYPE=apply"),
    ({"DOMAIN": "a.gyyx.cn", "VERSION": "v1", "TYPE": "apply", "BRANCH": "prod"}, "BRANCH must be master or develop, got 'prod'"),
    ({"DOMAIN": "a.gyyx.cn", "VERSION": "v1", "TYPE": "rollout", "BRANCH": "develop"}, "TYPE must be apply, delete or promote, got 'rollout'"),
    ({"DOMAIN": "a.gyyx.cn", "VERSION": "v1", "TYPE": "promote", "BRANCH": "develop"},
     "TYPE=promote deploys develop's image to master: BRANCH must be master"),
    ({"VERSION": "v1", "TYPE": "apply", "BRANCH": "develop"}, "DOMAIN is empty and the job name gives none"),
])
def test_bad_parameters_stop_before_cdctl(fake_cdctl, params, message):
    code, argv, err = run_build(fake_cdctl, **params)
    assert (code, argv) == (2, [])
    assert err.strip() == f"run-build: error: {message}"


# --- the Jenkinsfile and the Job DSL script --------------------------------------------

@pytest.fixture(scope="module")
def groovy_jar() -> str:
    out = subprocess.run([str(REPO / "scripts/install-checkers"), "--print-groovy"], capture_output=True, text=True)
    jar = Path(out.stdout.strip())
    require_installed(jar.exists(), f"{jar} not installed: run scripts/install-checkers")
    return str(jar)


def groovy(jar: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["java", "-cp", jar, "groovy.ui.GroovyMain", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def test_jenkinsfile_and_job_dsl_compile(groovy_jar):
    proc = groovy(groovy_jar, "tests/groovy/compile.groovy", "jenkins/Jenkinsfile", "jenkins/jobs.groovy")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == ["ok", "jenkins/Jenkinsfile", "ok", "jenkins/jobs.groovy"]


def test_the_groovy_check_rejects_a_broken_pipeline(groovy_jar, tmp_path):
    broken = tmp_path / "Jenkinsfile"
    broken.write_text(JENKINSFILE.read_text().replace("stages {", "stages {{", 1))
    proc = groovy(groovy_jar, "tests/groovy/compile.groovy", str(broken))
    assert proc.returncode == 1 and proc.stdout.startswith(f"error {broken}")


def test_job_dsl_defines_one_job_per_domain_file(groovy_jar, project):
    project.domain("new.gyyx.cn", "nodePort: 32010\n")
    proc = groovy(groovy_jar, "tests/groovy/jobdsl.groovy", "jenkins/jobs.groovy", str(project.root))
    assert proc.returncode == 0, proc.stderr
    jobs = {job["name"]: job["dsl"] for job in json.loads(proc.stdout)}
    assert sorted(jobs) == sorted(p.name[:-len(".yaml")] for p in project.domains.glob("*.yaml"))
    assert "new.gyyx.cn" in jobs
    job = jobs["test.gyyx.cn"]
    params = job["parameters"][0]["body"]
    assert params["stringParam"][0]["args"][0] == "VERSION"
    assert [(c["args"][0], c["args"][1]) for c in params["choiceParam"]] == [
        ("TYPE", ["apply", "delete", "promote"]), ("BRANCH", ["develop", "master"])]
    cps = job["definition"][0]["body"]["cpsScm"][0]["body"]
    assert cps["scriptPath"][0]["args"] == ["jenkins/Jenkinsfile"]


def test_jenkinsfile_parameters_locks_and_credentials():
    text = JENKINSFILE.read_text()
    params = dict(re.findall(r"(string|choice)\(name: '(\w+)'", text)[i][::-1] for i in range(4))
    assert params == {"DOMAIN": "string", "VERSION": "string", "TYPE": "choice", "BRANCH": "choice"}
    assert "choices: ['apply', 'delete', 'promote']" in text and "choices: ['develop', 'master']" in text
    assert "disableConcurrentBuilds()" in text
    assert 'lock(resource: "tomcat-cd-${params.BRANCH}")' in text
    assert "PULUMI_CONFIG_PASSPHRASE = credentials('tomcat-cd-pulumi-passphrase')" in text
    assert re.search(r"sh\(script: 'jenkins/run-build', returnStatus: true\)", text), \
        "the build goes through the tested mapping"
    # cdctl's exit 4 (gate failed, rolled back) records the stack file, then fails the build.
    gate = text.index("stage('Gate verdict')")
    code = release_commands.GATE_FAILED
    assert f"env.DEPLOY_EXIT == '{code}'" in text and text.index("stage('Record')") < gate
    assert f"when {{ environment name: 'DEPLOY_EXIT', value: '{code}' }}" in text[gate:] and "error(" in text[gate:]
    assert "buildDiscarder(logRotator(" in text


# --- remote trigger ---------------------------------------------------------------------

class _Recorder(BaseHTTPRequestHandler):
    requests: list = []

    def do_POST(self):  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        type(self).requests.append((self.path, self.headers.get("Authorization"), parse_qs(body)))
        self.send_response(201)
        self.end_headers()

    def log_message(self, *args):
        pass


# Every printable ASCII character, command substitutions, a newline inside.
HOSTILE_TOKEN = "".join(chr(c) for c in range(32, 127)) + "$(touch MARKER)`touch MARKER`\ninside"


@pytest.mark.parametrize("token", ["11e0b7c4b0-test-token", HOSTILE_TOKEN], ids=["plain token", "hostile token"])
def test_trigger_build_posts_the_parameters_with_the_token_kept_off_argv(tmp_path, token):
    _Recorder.requests = []
    token = token.replace("MARKER", str(tmp_path / "ran"))
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    token_file = tmp_path / "token"
    token_file.write_text(token)
    token_file.chmod(0o600)
    # A curl wrapper that records its arguments, then runs the real curl.
    wrapper_dir = tmp_path / "bin"
    wrapper_dir.mkdir()
    argv_log = tmp_path / "curl-argv"
    real_curl = subprocess.run(["bash", "-c", "command -v curl"], capture_output=True, text=True).stdout.strip()
    (wrapper_dir / "curl").write_text(f'#!/usr/bin/env bash\nprintf "%s\\n" "$@" > "{argv_log}"\nexec {real_curl} "$@"\n')
    (wrapper_dir / "curl").chmod(0o755)
    env = {"PATH": f"{wrapper_dir}:{os.environ['PATH']}", "HOME": str(tmp_path),
           "JENKINS_URL": f"http://127.0.0.1:{server.server_port}/", "JENKINS_USER": "deployer",
           "JENKINS_TOKEN_FILE": str(token_file)}
    try:
        proc = subprocess.run([str(REPO / "scripts/trigger-build"), "test.gyyx.cn", "v1.2.0", "apply", "develop"],
                              env=env, capture_output=True, text=True, timeout=60)
    finally:
        server.shutdown()
    assert proc.returncode == 0, proc.stderr
    ((path, auth, form),) = _Recorder.requests
    assert path == "/job/test.gyyx.cn/buildWithParameters"
    assert form == {"VERSION": ["v1.2.0"], "TYPE": ["apply"], "BRANCH": ["develop"]}
    assert base64.b64decode(auth.split()[1]).decode() == f"deployer:{token}"
    assert token not in argv_log.read_text() and "test-token" not in argv_log.read_text()
    assert not (tmp_path / "ran").exists(), "the token's $(...) or backquotes ran"
    assert proc.stdout.strip() == "trigger-build: queued test.gyyx.cn v1.2.0 (apply) in develop"
