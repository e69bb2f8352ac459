"""The whole pipeline for real: a war becomes an image `pulumi up` builds and pushes, the pushed
image runs as the rendered pod spec says, Tomcat serves it, and real Filebeat ships its logs
to real Elasticsearch.

Nothing written here stands in for a part: Debian's dockerd and registry (basic auth),
BuildKit and the Pulumi Docker Build provider built from Go modules, a Tomcat base image
made with debootstrap, Filebeat 7.17.29 and Elasticsearch 8.19.21 (scripts/install-pipeline),
all started by scripts/pipeline in the test's folder on 127.0.0.1 and stopped at the end.
The cluster is the local kwok one: its kubelets are simulated, so the test runs the pod's
container itself, from the Deployment the API server holds (tests/pipeline/pod.py).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

from cluster_harness import cluster, kubectl  # noqa: F401 (cluster is a fixture)
from conftest import REPO
from pipeline import pod
from pipeline.harness import DOMAIN, ENV, TOOLS, Pipeline, require_pipeline, set_harbor_password, set_secret, \
    site_project, start_pipeline, stop_pipeline, wait_for
from pipeline.logs import Elastic, VersionFront, add_file_realm_user, bulk_index, records, rerooted, without_lifecycle
from pipeline.war import build_war
from tomcat_cd.core import conventions
from tomcat_cd.core.builders import filebeat as filebeat_builder
from tomcat_cd.core.gate import Availability, GateRule
from tomcat_cd.driver.elastic import ElasticClient
from tomcat_cd.driver.gate import GateTarget, GateWatch

pytestmark = pytest.mark.pipeline
V1, V2 = "v1.0.0", "v2.0.0"
NAME = conventions.k8s_name(DOMAIN)


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    require_pipeline()
    started = start_pipeline(tmp_path_factory.mktemp("pipeline"))
    try:
        started.login()
        yield started
    finally:
        stop_pipeline(started)


@pytest.fixture(scope="module")
def site(pipe, cluster, tmp_path_factory):
    project = site_project(tmp_path_factory.mktemp("site"), cluster, pipe)
    for version in (V1, V2):
        build_war(project.wars / DOMAIN / version / "ROOT.war", token=f"token-{version}")
    return project


def deploy(site, *args: str) -> subprocess.CompletedProcess:
    """cdctl, its whole output kept beside the project for a failure's post-mortem."""
    done = site.cdctl(*args, "--yes", timeout=900)
    with open(site.root.parent / "cdctl.log", "a") as log:
        log.write(f"$ cdctl {' '.join(args)}\n{done.stdout}\n{done.stderr}\nexit {done.returncode}\n")
    return done


def deployment(cluster) -> dict:
    done = kubectl(cluster, "-n", ENV, "get", "deployment", NAME, "-o", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def running_image(cluster) -> str:
    return pod.container(deployment(cluster))["image"]


def tag(pipe: Pipeline, site, version: str) -> str:
    git_id = subprocess.run(["git", "rev-parse", "--short=7", "HEAD"], cwd=site.root, capture_output=True,
                            text=True, check=True).stdout.strip()
    return conventions.image_ref(pipe.registry, DOMAIN, version, ENV, git_id)


@pytest.fixture(scope="module")
def v1(pipe, site, cluster):
    done = deploy(site, "deploy", DOMAIN, "--env", ENV, "--version", V1, "--build-id", "101")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    return done


def test_deploy_builds_and_pushes_the_image_and_the_deployment_runs_its_digest(pipe, site, cluster, v1):
    pushed = tag(pipe, site, V1)
    repository = pushed.rsplit(":", 1)[0]
    assert pushed.rsplit(":", 1)[1] in pipe.crane("ls", repository).split()
    digest = pipe.crane("digest", pushed).strip()
    assert running_image(cluster) == f"{pushed}@{digest}"
    # Built by the builder the stack names by its endpoint alone: the program wrote it as buildx stores one.
    instance = json.loads((pipe.docker_config / "buildx" / "instances" / "tomcat-cd").read_text())
    assert instance["Driver"] == "remote"
    assert instance["Nodes"][0]["Endpoint"] == pipe.endpoints["buildkit"]["address"]
    password = pipe.secret("registry")
    assert password not in v1.stdout + v1.stderr
    state_files = [p for p in (site.root / ".state").rglob("*") if p.is_file()]
    assert state_files and not any(password in p.read_text(errors="replace") for p in state_files), \
        "Harbor's password is in the clear in the state or a build context"


@pytest.fixture(scope="module")
def node_root(tmp_path_factory) -> Path:
    """`/` of the node, for its /data folders (never the host's /data)."""
    return tmp_path_factory.mktemp("node")


def live_pods(cluster) -> list[dict]:
    """The Deployment's pods that are not being deleted (none when kubectl fails)."""
    done = kubectl(cluster, "-n", ENV, "get", "pods", "-l", f"app.kubernetes.io/name={NAME}", "-o", "json")
    return [p for p in json.loads(done.stdout or '{"items": []}')["items"]
            if p["metadata"].get("deletionTimestamp") is None]


def pod_name(cluster) -> str:
    names = sorted(p["metadata"]["name"] for p in live_pods(cluster))
    assert names, "kwok made no pod of the Deployment"
    return names[0]


class RunningPod:
    def __init__(self, pipe: Pipeline, spec: dict, name: str, node_root: Path):
        self.pipe, self.spec, self.name, self.node_root = pipe, spec, name, node_root
        self.port = pod.http_port(spec)
        self.container = f"pod-{name}"
        pipe.docker(*pod.docker_run_args(spec, name, node_root, self.container))

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=10) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode(errors="replace")
        except OSError:
            return 0, ""

    def ready(self) -> bool:
        return all(self.get(path)[0] == 200 for path in pod.probe_paths(self.spec).values())

    def log_folder(self, kind: str) -> Path:
        return pod.host_folders(self.spec, self.name, self.node_root)[conventions.LOG_KINDS[kind]]

    def stop(self) -> None:
        self.pipe.docker("rm", "--force", self.container, check=False)


@pytest.fixture(scope="module")
def pod_v1(pipe, cluster, v1, node_root):
    with socket_free(8080):
        running = RunningPod(pipe, deployment(cluster), pod_name(cluster), node_root)
    try:
        wait_for("the readiness path", running.ready, seconds=180)
        yield running
    finally:
        running.stop()


class socket_free:
    """Fails clearly when the pod's port is taken on this host (the pod runs with host networking)."""

    def __init__(self, port: int):
        self.port = port

    def __enter__(self) -> None:
        import socket
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", self.port)) != 0, f"port {self.port} is taken on this host"

    def __exit__(self, *exc: object) -> None:
        pass


def test_the_pushed_image_runs_as_the_pod_spec_says(pipe, pod_v1):
    assert pod_v1.get("/") == (200, f"token=token-{V1}\n")
    inside = pipe.docker("exec", pod_v1.container, "sh", "-c", "cat /etc/hosts; env; cat /proc/1/cmdline | tr '\\0' ' '").stdout
    assert "10.0.0.5\tdb.internal" in inside
    assert "APP_PROFILE=pipeline-test" in inside and f"POD_NAME={pod_v1.name}" in inside
    assert "-Xmx256m" in inside and "-Dfile.encoding=UTF-8" in inside  # JAVA_OPTS reached the JVM
    assert pod_v1.get("/fail.jsp")[0] == 500 and pod_v1.get("/devlog.jsp") == (200, "logged\n")
    wait_for("the three log folders", lambda: all(any(pod_v1.log_folder(kind).iterdir())
                                                  for kind in conventions.LOG_KINDS), seconds=30)
    for kind, folder in ((k, pod_v1.log_folder(k)) for k in conventions.LOG_KINDS):
        assert folder == pod_v1.node_root / f"data/nodelogs/{ENV}/{kind}/{DOMAIN}/{pod_v1.name}"


@pytest.fixture(scope="module")
def elastic(pipe, site, tmp_path_factory):
    """Elasticsearch set up with the program's own documents (logging setup's files)."""
    rendered = tmp_path_factory.mktemp("platform")
    done = site.cdctl("render", "--stack", "platform", "--out", str(rendered))
    assert done.returncode == 0, done.stderr
    setup = rendered / "config" / "logging-setup"
    admin = Elastic(pipe.endpoints["elasticsearch"]["url"], "elastic", pipe.secret("elasticsearch"))
    template = without_lifecycle(json.loads((setup / "index-template.json").read_text()))
    admin.request("PUT", "/_index_template/tomcat-cd-logs", template)
    writer_password = "writer-" + os.urandom(8).hex()
    add_file_realm_user(pipe.endpoints["elasticsearch"], filebeat_builder.WRITER_USER, writer_password,
                        filebeat_builder.WRITER_ROLE, json.loads((setup / "filebeat-writer-role.json").read_text()))
    writer = Elastic(pipe.endpoints["elasticsearch"]["url"], filebeat_builder.WRITER_USER, writer_password)
    wait_for("the file realm to load Filebeat's user", lambda: _authenticates(writer), seconds=30)
    return admin, writer_password, yaml.safe_load((rendered / "config" / "filebeat.yml").read_text())


def _authenticates(client: Elastic) -> bool:
    try:
        return client.request("GET", "/_security/_authenticate")["username"] == filebeat_builder.WRITER_USER
    except AssertionError:
        return False


class Filebeat:
    """Real Filebeat running the program's filebeat.yml, re-rooted for the test."""

    def __init__(self, config: dict, node_root: Path, elastic_url: str, password: str, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.config_file = folder / "filebeat.yml"
        self.config_file.write_text(yaml.safe_dump(rerooted(config, node_root, elastic_url, folder / "data")))
        self.config_file.chmod(0o600)
        self.env = dict(os.environ, ELASTICSEARCH_PASSWORD=password)
        checked = subprocess.run([str(TOOLS / "filebeat"), "test", "config", "-c", str(self.config_file),
                                  "--path.home", str(folder)], capture_output=True, text=True, env=self.env)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.log = open(self.folder / "filebeat.log", "ab")
        self.process = subprocess.Popen([str(TOOLS / "filebeat"), "-e", "-c", str(self.config_file),
                                         "--path.home", str(self.folder), "--path.logs", str(self.folder / "logs")],
                                        stdout=self.log, stderr=subprocess.STDOUT, env=self.env)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.log.close()


@pytest.fixture(scope="module")
def filebeat(pipe, elastic, node_root, tmp_path_factory):
    _, password, config = elastic
    with VersionFront(pipe.endpoints["elasticsearch"]["url"], pipe.endpoints["elasticsearch"]["version"]) as front:
        shipper = Filebeat(config, node_root, front.url, password, tmp_path_factory.mktemp("filebeat"))
        shipper.start()
        try:
            yield shipper
        finally:
            shipper.stop()


def today_index() -> str:
    return f"{DOMAIN}-{datetime.datetime.now(datetime.timezone.utc):%Y.%m.%d}"


def test_real_filebeat_ships_each_log_kind_to_the_domains_daily_index(pod_v1, elastic, filebeat):
    admin = elastic[0]
    stray = pod_v1.node_root / f"data/nodelogs/{ENV}/tomcatlogs/{DOMAIN}/stray.log"
    stray.write_text("a line written outside any pod folder\n")

    def by_kind() -> dict[str, list[dict]]:
        found: dict[str, list[dict]] = {}
        for doc in admin.search(today_index(), {"term": {"gy.pod": pod_v1.name}}, size=500):
            found.setdefault(doc["gy"]["ltype"], []).append(doc)
        return found if set(found) == set(conventions.LOG_KINDS) and _trace_shipped(found) else {}

    found = wait_for("every log kind in Elasticsearch", by_kind, seconds=120, every=2)
    for doc in (d for docs in found.values() for d in docs):
        assert doc["_index"] == today_index()
        assert doc["gy"]["wtype"] == ENV and doc["gy"]["domain"] == DOMAIN and doc["gy"]["pod"] == pod_v1.name
    for field, value in (("gy.wtype", ENV), ("gy.ltype", "accesslogs"), ("gy.domain", DOMAIN)):
        assert admin.search(today_index(), {"term": {field: value}}), f"a term query on {field} finds nothing"
    traces = [d for d in found["tomcatlogs"] if "boom in token-v1.0.0" in d["message"]]
    assert len(traces) == 1, "the record and its stack trace must be one event"
    record = traces[0]["message"]
    assert record.split(" ")[2] == "SEVERE" and len(re.findall(r"\n\s+at ", record)) >= 3
    # What the health gate counts: Filebeat marks a SEVERE record and an ERROR line `gy.error`, nothing else.
    assert traces[0]["gy"].get("error") is True
    assert any(" INFO " in d["message"] for d in found["tomcatlogs"])
    assert all("error" not in d["gy"] for d in found["tomcatlogs"] if d["message"].split(" ")[2:3] != ["SEVERE"])
    devlog_errors = [d for d in found["devlogs"] if "ERROR devlog from" in d["message"]]
    assert devlog_errors and all(d["gy"].get("error") is True for d in devlog_errors)
    assert all("error" not in d["gy"] for d in found["devlogs"] if "ERROR" not in d["message"])
    assert any(" /fail.jsp " in d["message"] and " 500 " in d["message"] for d in found["accesslogs"])
    # The access log's status is a number field, so a query counts 5xx responses.
    errors = admin.search(today_index(), {"range": {"gy.access.status": {"gte": 500}}})
    assert errors and all(d["gy"]["access"]["request"] == "GET /fail.jsp HTTP/1.1" for d in errors)
    assert int(errors[0]["gy"]["access"]["duration_ms"]) >= 0
    unparsed = wait_for("the stray line", lambda: admin.search(
        "tomcat-cd-unparsed-*", {"match_phrase": {"message": "outside any pod folder"}}), seconds=60, every=2)
    assert unparsed[0]["_index"].startswith("tomcat-cd-unparsed-") and "tomcat-cd-unparsed-path" in unparsed[0]["tags"]


def _trace_shipped(found: dict[str, list[dict]]) -> bool:
    return any("boom in" in d["message"] for d in found.get("tomcatlogs", []))


def layers(pipe: Pipeline, ref: str) -> list[str]:
    return [layer["digest"] for layer in json.loads(pipe.crane("manifest", ref))["layers"]]


def test_a_new_version_pushes_only_its_war_layer_and_a_rollback_brings_back_the_exact_v1(pipe, site, cluster, v1):
    v1_image = running_image(cluster)
    done = deploy(site, "deploy", DOMAIN, "--env", ENV, "--version", V2, "--build-id", "102")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    v2_image = running_image(cluster)
    assert v2_image.startswith(tag(pipe, site, V2) + "@sha256:") and v2_image.split("@")[1] != v1_image.split("@")[1]
    old, new = layers(pipe, v1_image), layers(pipe, v2_image)
    assert len(old) == len(new) and old[:-1] == new[:-1] and old[-1] != new[-1], "more than the war layer changed"

    done = deploy(site, "rollback", DOMAIN, "--env", ENV)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    assert running_image(cluster) == v1_image
    assert pipe.crane("digest", tag(pipe, site, V1)).strip() == v1_image.split("@")[1], "the rollback re-pushed v1"
    history = json.loads(site.cdctl("history", DOMAIN, "--env", ENV, "--json").stdout)
    assert [r["version"] for r in history[:3]] == [V1, V2, V1]


def set_config(site, *args: str) -> None:
    done = site.cdctl("pulumi", "config", "set", *args, "-s", ENV)
    assert done.returncode == 0, done.stderr


def failed_in_one_line_changing_nothing(site, cluster, before: str, done: subprocess.CompletedProcess, reason: str,
                                        resource: str = f"{NAME}-image") -> None:
    """Exit 1, one error line naming the resource that failed (the site's image) and the
    reason, the Deployment as it was and the checkout's stack config back to what runs."""
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and resource in errors[0] and reason in errors[0].lower(), done.stderr[-3000:]
    assert running_image(cluster) == before
    versions = yaml.safe_load((site.root / f"Pulumi.{ENV}.yaml").read_text())["config"]["tomcat-cd:versions"]
    assert versions[DOMAIN] != "v9.9.9"


@pytest.fixture
def v3(site):
    build_war(site.wars / DOMAIN / "v9.9.9" / "ROOT.war", token="token-v9.9.9")
    return ("deploy", DOMAIN, "--env", ENV, "--version", "v9.9.9")


def test_a_wrong_harbor_password_fails_at_the_image_step(pipe, site, cluster, v1, v3):
    before = running_image(cluster)
    set_harbor_password(site, "not-the-password")
    try:
        failed_in_one_line_changing_nothing(site, cluster, before, deploy(site, *v3), "401")
    finally:
        set_harbor_password(site, pipe.secret("registry"))


def test_a_missing_base_image_fails_at_the_image_step(pipe, site, cluster, v1, v3):
    before = running_image(cluster)
    base = yaml.safe_load((site.root / f"Pulumi.{ENV}.yaml").read_text())["config"]["tomcat-cd:baseImage"]
    set_config(site, "tomcat-cd:baseImage", f"{pipe.registry}/template/tomcat:no-such-tag")
    try:
        failed_in_one_line_changing_nothing(site, cluster, before, deploy(site, *v3), "not found")
    finally:
        set_config(site, "tomcat-cd:baseImage", base)


def test_an_unreachable_builder_fails_before_any_step_and_names_its_endpoint(pipe, site, cluster, v1, v3):
    before = running_image(cluster)
    set_config(site, "tomcat-cd:builderEndpoint", "unix:///nonexistent/buildkitd.sock")
    try:
        done = deploy(site, *v3)
        failed_in_one_line_changing_nothing(
            site, cluster, before, done, "tomcat-cd:builderendpoint: builder tomcat-cd at "
            "unix:///nonexistent/buildkitd.sock takes no connection (no such file or directory)",
            resource="tomcat-cd-develop")
        # Refused by the program at once, not after buildx's wait for a connection.
        assert "waiting for connection" not in done.stdout + done.stderr
        assert f"{NAME}-image" not in done.stdout, "no image step started"
    finally:
        set_config(site, "tomcat-cd:builderEndpoint", pipe.endpoints["buildkit"]["address"])


def test_a_registry_that_is_down_fails_at_the_image_step(pipe, site, cluster, v1, v3):
    before = running_image(cluster)
    assert subprocess.run([str(REPO / "scripts/pipeline"), "stop", "--state", str(pipe.state), "--parts",
                           "registry"], capture_output=True).returncode == 0
    try:
        failed_in_one_line_changing_nothing(site, cluster, before, deploy(site, *v3), "connection refused")
    finally:
        restarted = subprocess.run([str(REPO / "scripts/pipeline"), "start", "--state", str(pipe.state), "--parts",
                                    "registry"], capture_output=True, text=True)
        assert restarted.returncode == 0, restarted.stderr
        assert json.loads(restarted.stdout)["registry"]["address"] == pipe.registry


def test_nothing_logged_while_elasticsearch_is_down_is_lost(pipe, pod_v1, elastic, filebeat):
    admin = elastic[0]
    stopped = subprocess.run([str(REPO / "scripts/pipeline"), "stop", "--state", str(pipe.state), "--parts",
                              "elasticsearch"], capture_output=True, text=True)
    assert stopped.returncode == 0, stopped.stderr
    marks = [f"/index.jsp?while-down-{n}" for n in range(5)]
    for mark in marks:
        assert pod_v1.get(mark)[0] == 200
    restarted = subprocess.run([str(REPO / "scripts/pipeline"), "start", "--state", str(pipe.state), "--parts",
                                "elasticsearch"], capture_output=True, text=True, timeout=400)
    assert restarted.returncode == 0, restarted.stderr
    assert (Path(filebeat.folder) / "data" / "registry").is_dir(), "Filebeat keeps no registry"

    def shipped() -> bool:
        docs = admin.search(today_index(), {"term": {"gy.ltype": "accesslogs"}}, size=1000)
        return all(any(mark in d["message"] for d in docs) for mark in marks)

    wait_for("the lines logged while Elasticsearch was down", shipped, seconds=180, every=3)


# The health gate, judged from what real Filebeat shipped of a real Tomcat's logs.

GOOD, BROKEN = "v4.0.0", "v5.0.0"
GATE = "gate:\n  windowSeconds: 30\n  lagSeconds: 15\n  checks: [availability, errors]\n  maxErrorsPerMinute: 2\n"


@pytest.fixture(scope="module")
def gated(pipe, site, elastic, filebeat):
    """The stack with its gate on, reading the pipeline's Elasticsearch; wars of a good and a
    broken version (the broken one's `/` throws)."""
    build_war(site.wars / DOMAIN / GOOD / "ROOT.war", token=f"token-{GOOD}")
    build_war(site.wars / DOMAIN / BROKEN / "ROOT.war", token=f"token-{BROKEN}", broken=True)
    domain_file = site.root / "domains" / f"{DOMAIN}.yaml"
    domain_file.write_text(domain_file.read_text() + GATE)
    set_config(site, "tomcat-cd:healthGate", "true")
    set_config(site, "tomcat-cd:elasticsearchUrl", pipe.endpoints["elasticsearch"]["url"])
    set_config(site, "tomcat-cd:elasticsearchUsername", "elastic")
    set_secret(site, "elasticsearchPassword", pipe.secret("elasticsearch"))
    yield site
    set_config(site, "tomcat-cd:healthGate", "false")


class Traffic:
    """While cdctl deploys and the gate watches: once the rollout has made the new pod, its
    container runs (the old one stops: they share the host's port), so that it serves by the
    time its rollout completes, as a real pod would; a client asks for `/` twice a second from
    its first answer until the verdict. (Started only when the gate's window opened, a Tomcat
    slow to start on a busy machine left the window without a single request.)"""

    def __init__(self, pipe: Pipeline, cluster, node_root: Path, old: RunningPod):
        self.pipe, self.cluster, self.node_root, self.old = pipe, cluster, node_root, old
        self.old_image = running_image(cluster)
        self.pod: RunningPod | None = None
        self.stop = threading.Event()
        self.answers: list[int] = []
        self.thread = threading.Thread(target=self._serve)
        self.thread.start()

    def on_line(self, line: str) -> None:
        if line.startswith(("gate passed", "gate FAILED")):
            self.stop.set()

    def _new_pod(self) -> str | None:
        return next((p["metadata"]["name"] for p in live_pods(self.cluster)
                     if p["spec"]["containers"][0]["image"] != self.old_image), None)

    def _serve(self) -> None:
        name = wait_for("the rollout's new pod", lambda: self._new_pod() or self.stop.is_set(), seconds=300)
        if self.stop.is_set():
            return
        self.old.stop()
        self.pod = RunningPod(self.pipe, deployment(self.cluster), name, self.node_root)
        wait_for("the new pod's health path", lambda: self.pod.get("/health.jsp")[0] == 200 or self.stop.is_set(),
                 seconds=60)
        while not self.stop.wait(0.5):
            self.answers.append(self.pod.get("/")[0])

    def close(self) -> RunningPod:
        self.stop.set()
        self.thread.join()
        return self.pod or self.old


def gated_deploy(pipe, site, cluster, node_root, running: RunningPod, version: str) -> tuple[subprocess.CompletedProcess,
                                                                                          Traffic]:
    traffic = Traffic(pipe, cluster, node_root, running)
    try:
        done = site.cdctl_streamed("deploy", DOMAIN, "--env", ENV, "--version", version, "--yes",
                                   on_line=traffic.on_line)
    finally:
        traffic.close()
    with open(site.root.parent / "cdctl.log", "a") as log:
        log.write(f"$ cdctl deploy {version} (gated)\n{done.stdout}\n{done.stderr}\nexit {done.returncode}\n")
    return done, traffic


@pytest.mark.gate
def test_a_good_version_passes_the_gate_and_a_broken_one_is_rolled_back_and_pinned(pipe, gated, cluster, pod_v1,
                                                                                    node_root):
    done, traffic = gated_deploy(pipe, gated, cluster, node_root, pod_v1, GOOD)
    good_pod = traffic.close()
    try:
        assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
        assert traffic.answers and set(traffic.answers) == {200}
        assert f"gate passed: {DOMAIN} {GOOD}: availability ok" in done.stdout
        assert "errors ok (0 error record(s)" in done.stdout and "5xx ok (0 of " in done.stdout
        good_image = running_image(cluster)

        done, traffic = gated_deploy(pipe, gated, cluster, node_root, good_pod, BROKEN)
    finally:
        good_pod.stop()
    traffic.close().stop()
    assert done.returncode == 4, done.stdout[-4000:] + done.stderr[-3000:]
    assert traffic.answers and set(traffic.answers) == {500}
    verdict = next(line for line in done.stdout.splitlines() if line.startswith("gate FAILED"))
    assert "errors FAILED" in verdict and "5xx FAILED" in verdict and "availability" not in verdict
    assert running_image(cluster) == good_image, "the rollback brought back the good version's exact image"
    history = json.loads(gated.cdctl("history", DOMAIN, "--env", ENV, "--json").stdout)
    assert [(r["version"], r["result"]) for r in history[:2]] == [(GOOD, "succeeded"), (BROKEN, "gate-failed")]
    assert "error record(s)" in history[0]["message"] and history[0]["pin"].startswith(f"pinned at {GOOD} by ")
    assert pipe.secret("elasticsearch") not in done.stdout + done.stderr

    refused = gated.cdctl("deploy", DOMAIN, "--env", ENV, "--version", BROKEN, "--yes")
    assert refused.returncode == 2 and f"{DOMAIN} is pinned at {GOOD} by " in refused.stderr, refused.stderr
    assert f"gate failed for {BROKEN}" in refused.stderr


class OnePod:
    """The API server's part, for a gate judged on records the test indexed itself."""

    def __init__(self, pod: str):
        self.pod = pod

    def availability(self, namespace: str, domain: str):
        return Availability(1, 1, 1, 0), [self.pod]


@pytest.mark.gate
@pytest.mark.parametrize("new_errors, passed", [(20, True), (40, False)])
def test_real_elasticsearch_counts_an_equal_rate_as_a_pass_and_a_worse_one_as_a_failure(pipe, elastic, new_errors,
                                                                                       passed):
    """The previous version logged 20 errors a minute; the new one as many (passes: the rule
    compares with the past) or twice as many (fails). Indexed by the test in the domain's daily
    index, the way Filebeat writes, under an environment name of each case's own (`gy.wtype`;
    pipe.gyyx.cn's real logs are develop's)."""
    admin = elastic[0]
    deployed, environment = time.time() - 60, f"rates-{new_errors}"
    old_pod, new_pod = f"old-{new_errors}", f"new-{new_errors}"
    bulk_index(admin, today_index(), records(DOMAIN, environment, old_pod, 100, errors=20, until=deployed) +
               records(DOMAIN, environment, new_pod, 100, errors=new_errors))
    reader = ElasticClient(pipe.endpoints["elasticsearch"]["url"], "elastic", pipe.secret("elasticsearch"))
    lines: list[str] = []
    target = GateTarget(DOMAIN, "v2", environment, environment, GateRule(window_seconds=0, lag_seconds=0))
    verdict = GateWatch(OnePod(new_pod), reader, lines.append).run(target, deploy_started=deployed)
    errors = next(r for r in verdict.results if r.check == "errors")
    assert errors.passed is passed, errors.figures
    rate, before = map(float, re.findall(r"([0-9.]+)/pod/min; limit 5, before ([0-9.]+)", errors.figures)[0])
    assert f"{new_errors} error record(s)" in errors.figures and 19 < before < 21
    assert rate == pytest.approx(before * new_errors / 20, abs=0.2)


@pytest.mark.gate
def test_every_deploy_verdict_and_rollback_left_a_marker_in_real_elasticsearch(pipe, gated, elastic):
    """Runs after the gate test: its two deploys, two verdicts and the rollback are each one
    document of tomcat-cd-events-yyyy.MM, beside the site's logs."""
    admin = elastic[0]
    month = datetime.datetime.now(datetime.timezone.utc).strftime("%Y.%m")
    found = admin.search(f"tomcat-cd-events-{month}", {"term": {"gy.wtype": ENV}}, size=200)
    trail = [(d["action"], d["result"], d.get("version")) for d in found if d["gy"]["domain"] == DOMAIN]
    gated_part = trail[trail.index(("deploy", "succeeded", GOOD)):]
    assert gated_part == [("deploy", "succeeded", GOOD), ("gate", "passed", GOOD), ("deploy", "succeeded", BROKEN),
                          ("gate", "failed", BROKEN), ("rollback", "succeeded", GOOD)], trail
    failed = next(d for d in found if d["event"]["kind"] == "gate-failed")
    rollback = next(d for d in found if d["action"] == "rollback" and d.get("version") == GOOD)
    assert "errors FAILED" in failed["gate"] and failed["digest"].startswith("sha256:")
    assert rollback["update"] == failed["update"] + 1 and "errors" in rollback["gate"]
    status = json.loads(gated.cdctl("status", "--env", ENV, "--json").stdout)
    row = next(r for r in status if r["domain"] == DOMAIN)
    assert row["version"] == GOOD and row["gate"].startswith(f"failed {BROKEN} (update ")
    assert row["replicas"] == "1/1" and row["digest"] == rollback["digest"]


@pytest.mark.gate
def test_promote_gives_develops_digest_masters_tag_and_master_runs_it_without_a_build(pipe, gated, cluster):
    """After the gate test develop runs GOOD again (pinned there, which does not stop a promote)."""
    master_file = gated.root / "Pulumi.master.yaml"
    develop = yaml.safe_load((gated.root / f"Pulumi.{ENV}.yaml").read_text())["config"]
    document = yaml.safe_load(master_file.read_text())
    document.pop("encryptionsalt", None)
    document["config"].pop("tomcat-cd:versions", None)
    for key in ("harborHost", "harborUsername", "baseImage", "buildImages", "builderEndpoint", "kubeconfig", "warRoot"):
        document["config"][f"tomcat-cd:{key}"] = develop[f"tomcat-cd:{key}"]
    document["config"]["tomcat-cd:healthGate"] = False
    master_file.write_text(yaml.safe_dump(document, sort_keys=False))
    assert gated.cdctl("pulumi", "stack", "init", "master").returncode == 0
    set_secret(gated, "harborPassword", pipe.secret("registry"), stack="master")
    develop_image = running_image(cluster)
    digest = develop_image.split("@", 1)[1]

    done = deploy(gated, "promote", DOMAIN, "--version", GOOD)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    assert "docker-build:index:Image" not in done.stdout, "a promote builds nothing"
    master_tag = develop_image.split("@")[0].rsplit(":", 1)[1].replace(f"-{ENV}-", "-master-")
    repository = develop_image.split("@")[0].rsplit(":", 1)[0]
    assert master_tag in pipe.crane("ls", repository).split()
    assert pipe.crane("digest", f"{repository}:{master_tag}").strip() == digest
    promoted = kubectl(cluster, "-n", "master", "get", "deployment", NAME, "-o", "json")
    assert promoted.returncode == 0, promoted.stderr
    assert pod.container(json.loads(promoted.stdout))["image"] == f"{repository}:{master_tag}@{digest}"
    assert pipe.secret("registry") not in done.stdout + done.stderr
