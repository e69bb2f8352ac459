"""The version record under faults and misuse, through the real engine in local mode: a delete
never becomes a whole-stack update, history reads past Pulumi's page of 10, an interrupted or
killed update leaves no lock, process or wrong stack file behind, and two checkouts sharing one
backend agree on what runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from engine_harness import at_once, make_engine_project, ok, require_engine

pytestmark = pytest.mark.engine
GIT = "abc1234"
SLOW_PROGRAM = Path(__file__).resolve().parent / "slow_program"


@pytest.fixture
def project(tmp_path):
    require_engine()
    project = make_engine_project(tmp_path)
    for domain, versions in (("test.gyyx.cn", ("v1.2.0", "v1.3.0")), ("shop.gyyx.cn", ("v2.4.1", "v2.5.0")),
                             ("api.gyyx.cn", ("v3.0.2",))):
        for version in versions:
            project.add_war(domain, version)
    return project


def state_urns(project, stack: str = "develop") -> set[str]:
    return set(project.resources(stack))


def deployed_images(project, stack: str = "develop") -> dict[str, str]:
    return {r["outputs"]["metadata"]["name"]: r["outputs"]["spec"]["template"]["spec"]["containers"][0]["image"]
            for r in project.resources(stack).values() if r["type"] == "kubernetes:apps/v1:Deployment"}


def stack_locks(project, stack: str = "develop") -> list[Path]:
    """The lock files the file backend holds for the stack (an update's, while it runs)."""
    return list((project.root / ".state/pulumi/.pulumi").glob(f"locks/*/tomcat-cd/{stack}/*.json"))


def checkout_versions(project, stack: str = "develop") -> dict:
    return project.stack_config(stack).get("tomcat-cd:versions", {})


def deploy(project, domain: str, version: str, **env: str) -> subprocess.CompletedProcess:
    return project.cdctl("deploy", domain, "--version", version, "--env", "develop", "--yes", CD_GIT_ID=GIT, **env)


def test_a_delete_of_a_domain_nothing_deployed_never_touches_the_other_sites(project):
    ok(project.pulumi("up", "-s", "develop", "--yes", "--skip-preview"))
    before = state_urns(project)
    # What a Jenkins abort during a first deploy leaves: the domain in the map, nothing in the state.
    ok(project.pulumi("config", "set", "--path", 'versions["api.gyyx.cn"]', "v1", "-s", "develop"))
    deleted = project.cdctl("delete", "api.gyyx.cn", "--env", "develop", "--yes")
    assert deleted.returncode == 2, deleted.stdout + deleted.stderr
    assert "error: Pulumi.develop.yaml: tomcat-cd:versions[\"api.gyyx.cn\"]: api.gyyx.cn is not deployed in develop" \
        in deleted.stderr
    assert state_urns(project) == before, "the other sites are all still there"
    assert "api.gyyx.cn" not in checkout_versions(project), "the checkout's file holds what runs again"


def test_a_recorded_site_whose_resources_are_gone_is_removed_from_the_record_alone(project):
    ok(project.pulumi("up", "-s", "develop", "--yes", "--skip-preview"))
    ok(deploy(project, "api.gyyx.cn", "v3.0.2"))
    # Children (their type path has a `$`) before the component that is their parent.
    for urn in sorted((u for u in state_urns(project) if "api-gyyx-cn" in u), key=lambda u: "$" not in u):
        ok(project.pulumi("state", "delete", urn, "-s", "develop", "--yes", "--force"))
    others = state_urns(project)
    ok(project.cdctl("delete", "api.gyyx.cn", "--env", "develop", "--yes"))
    assert state_urns(project) == others
    newest = json.loads(ok(project.pulumi("stack", "history", "-s", "develop", "--json", "--page-size", "1")))[0]
    assert "api.gyyx.cn" not in json.loads(newest["config"]["tomcat-cd:versions"]["value"])


def test_history_and_rollback_see_past_pulumis_page_of_ten(project):
    ok(project.pulumi("up", "-s", "develop", "--yes", "--skip-preview"))
    ok(deploy(project, "test.gyyx.cn", "v1.3.0"))
    for step in range(11):  # other sites' deploys push test.gyyx.cn's off the first page
        last = ok(deploy(project, "shop.gyyx.cn", ("v2.5.0", "v2.4.1")[step % 2]))
    assert "(update 13 of stack develop)" in last
    history = json.loads(ok(project.cdctl("history", "test.gyyx.cn", "--env", "develop", "--json")))
    assert [(r["update"], r["version"]) for r in history] == [(2, "v1.3.0"), (1, "v1.2.0")]
    rolled = ok(project.cdctl("rollback", "test.gyyx.cn", "--env", "develop", "--to", "v1.2.0", "--yes",
                              CD_GIT_ID=GIT))
    assert "(update 14 of stack develop)" in rolled
    assert deployed_images(project)["test-gyyx-cn"].endswith(":v1.2.0-develop-" + project_git_id(project))


def project_git_id(project) -> str:
    return subprocess.run(["git", "rev-parse", "--short=7", "HEAD"], cwd=project.root, capture_output=True,
                          text=True, check=True).stdout.strip()


def processes_in(folder: Path) -> list[str]:
    """Processes (pulumi and its plugins) working in the project folder."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and Path(os.readlink(entry / "cwd")) == folder:
                found.append((entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return found


def start_slow_deploy(project, tmp_path, domain: str, version: str) -> tuple[subprocess.Popen, Path]:
    return start_slow_cdctl(project, tmp_path, "deploy", domain, "--version", version, "--env", "develop", "--yes")


def start_slow_cdctl(project, tmp_path, *args: str, extra_env: dict[str, str] | None = None,
                     **popen) -> tuple[subprocess.Popen, Path]:
    """cdctl ARGS, returned once the Pulumi program it runs has started (and sleeps)."""
    marker = tmp_path / "program-started"
    env = project.env(CD_GIT_ID=GIT, TOMCAT_CD_TEST_SLOW_PROGRAM=str(marker), **(extra_env or {}))
    env["PYTHONPATH"] = f"{SLOW_PROGRAM}{os.pathsep}{project.root}"
    process = subprocess.Popen([sys.executable, "-m", "cdctl", "--project-dir", str(project.root), *args],
                               cwd=project.root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               **popen)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the program never started"
        time.sleep(0.1)
    return process, marker


def wait_until_gone(project, seconds: float = 20) -> list[str]:
    deadline = time.monotonic() + seconds
    while processes_in(project.root) and time.monotonic() < deadline:
        time.sleep(0.2)
    return processes_in(project.root)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM (a Jenkins abort)", "SIGINT"])
def test_an_interrupted_deploy_restores_the_stack_file_and_leaves_no_lock_or_process(project, tmp_path, signum):
    ok(project.pulumi("up", "-s", "develop", "--yes", "--skip-preview"))
    before = deployed_images(project)
    process, _ = start_slow_deploy(project, tmp_path, "test.gyyx.cn", "v1.3.0")
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signum, out + err
    assert f"error: interrupted by {signal.Signals(signum).name}" in err
    assert checkout_versions(project)["test.gyyx.cn"] == "v1.2.0", "the stack file says what runs"
    assert wait_until_gone(project) == [], "pulumi and its plugins are gone"
    assert deployed_images(project) == before
    history = json.loads(ok(project.cdctl("history", "test.gyyx.cn", "--env", "develop", "--json")))
    assert [r["result"] for r in history if r["version"] == "v1.3.0"] in ([], ["failed"]), history
    # No stale lock: the next deploy goes straight through.
    assert "locked" not in ok(deploy(project, "test.gyyx.cn", "v1.3.0"))


@pytest.mark.parametrize("signum, to_group", [(signal.SIGINT, True), (signal.SIGTERM, False)],
                         ids=["Ctrl-C at a terminal", "SIGTERM to cdctl"])
def test_an_interrupted_cdctl_pulumi_up_lets_pulumi_cancel_and_leaves_no_lock_or_process(project, tmp_path, signum,
                                                                                          to_group):
    ok(project.pulumi("up", "-s", "develop", "--yes", "--skip-preview"))
    # The program takes seconds to stop, as one in the middle of its work would.
    process, _ = start_slow_cdctl(project, tmp_path, "pulumi", "up", "-s", "develop", "--yes", "--skip-preview",
                                  extra_env={"TOMCAT_CD_TEST_SLOW_IGNORES_SIGINT": "1",
                                             "TOMCAT_CD_TEST_SLOW_SECONDS": "3"},
                                  start_new_session=True)
    if to_group:
        os.killpg(process.pid, signum)  # a terminal's Ctrl-C reaches cdctl and pulumi both
    else:
        process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 128 + signum, out + err
    assert "received; cancelling" in out, out
    assert wait_until_gone(project) == [], "pulumi and its plugins are gone"
    assert not stack_locks(project), out + err
    assert f"error: interrupted by {signal.Signals(signum).name}" in err
    assert "locked" not in ok(project.pulumi("up", "-s", "develop", "--yes", "--skip-preview"))


def test_a_lock_left_by_a_killed_pulumi_is_named_and_unlock_releases_it(project, tmp_path):
    ok(project.pulumi("up", "-s", "develop", "--yes", "--skip-preview"))
    # A pulumi killed outright (the OOM killer, kill -9 on the agent): its lock file stays.
    lock = project.root / ".state/pulumi/.pulumi/locks/organization/tomcat-cd/develop"
    lock.mkdir(parents=True, exist_ok=True)
    gone = subprocess.Popen(["true"])
    gone.wait()
    (lock / "0123-stale.json").write_text(json.dumps({"pid": gone.pid, "username": "jenkins",
                                                     "hostname": os.uname().nodename,
                                                     "timestamp": "2026-12-01T10:00:00Z"}))
    started = time.monotonic()
    refused = deploy(project, "test.gyyx.cn", "v1.3.0")
    assert refused.returncode == 1
    assert time.monotonic() - started < 60, "a dead holder is named at once, not waited for"
    assert (f"stack develop is locked by an update that is no longer running (pid {gone.pid} of jenkins"
            in refused.stderr) and "Run: cdctl unlock --env develop" in refused.stderr
    assert checkout_versions(project)["test.gyyx.cn"] == "v1.2.0"
    unlocked = ok(project.cdctl("unlock", "--env", "develop"))
    assert f"released the lock of pid {gone.pid} of jenkins" in unlocked
    ok(deploy(project, "test.gyyx.cn", "v1.3.0"))


def test_a_pulumi_killed_mid_update_leaves_no_lock_and_no_plugin(project, tmp_path):
    ok(project.pulumi("up", "-s", "develop", "--yes", "--skip-preview"))
    process, _ = start_slow_deploy(project, tmp_path, "test.gyyx.cn", "v1.3.0")
    pulumi = [int(e.name) for e in Path("/proc").iterdir() if e.name.isdigit() and _parent(e) == process.pid]
    assert pulumi, "cdctl runs pulumi as its child"
    os.kill(pulumi[0], signal.SIGKILL)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 1, out + err
    assert wait_until_gone(project) == []
    assert checkout_versions(project)["test.gyyx.cn"] == "v1.2.0"
    assert not stack_locks(project)
    history = json.loads(ok(project.cdctl("history", "test.gyyx.cn", "--env", "develop", "--json")))
    assert "succeeded" not in [r["result"] for r in history if r["version"] == "v1.3.0"], history
    ok(deploy(project, "test.gyyx.cn", "v1.3.0"))


def _parent(proc: Path) -> int | None:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def test_two_checkouts_sharing_one_backend_agree_on_what_runs(tmp_path):
    require_engine()
    backend = tmp_path / "backend"
    backend.mkdir()
    for name in ("workspace-a", "workspace-b"):
        (tmp_path / name).mkdir()
    checkouts = [make_engine_project(tmp_path / name) for name in ("workspace-a", "workspace-b")]
    for checkout in checkouts:
        for domain, version in (("test.gyyx.cn", "v1.3.0"), ("shop.gyyx.cn", "v2.5.0"), ("shop.gyyx.cn", "v2.4.1"),
                                ("test.gyyx.cn", "v1.2.0")):
            checkout.add_war(domain, version)
    shared = {"PULUMI_BACKEND_URL": f"file://{backend}", "CD_GIT_ID": GIT}
    a, b = checkouts
    ok(a.cdctl("pulumi", "up", "-s", "develop", "--yes", "--skip-preview", **shared))
    ok(b.cdctl("deploy", "shop.gyyx.cn", "--version", "v2.5.0", "--env", "develop", "--yes", **shared))
    ok(a.cdctl("deploy", "test.gyyx.cn", "--version", "v1.3.0", "--env", "develop", "--yes", **shared))
    # At once, from both: each waits for the other, and neither loses the other's site.
    for result in at_once(lambda: a.cdctl("deploy", "shop.gyyx.cn", "--version", "v2.4.1", "--env", "develop",
                                          "--yes", **shared),
                          lambda: b.cdctl("deploy", "test.gyyx.cn", "--version", "v1.2.0", "--env", "develop",
                                          "--yes", **shared)):
        ok(result)
    newest = json.loads(ok(a.cdctl("pulumi", "stack", "history", "-s", "develop", "--json", "--page-size", "1",
                                   **shared)))[0]
    assert json.loads(newest["config"]["tomcat-cd:versions"]["value"]) == {"shop.gyyx.cn": "v2.4.1",
                                                                             "test.gyyx.cn": "v1.2.0"}
    histories = [json.loads(ok(c.cdctl("history", d, "--env", "develop", "--json", **shared)))
                 for c in checkouts for d in ("test.gyyx.cn", "shop.gyyx.cn")]
    assert histories[:2] == histories[2:], "both checkouts read one history"
    assert [r["version"] for r in histories[0]] == ["v1.2.0", "v1.3.0", "v1.2.0"]
    # A full update from either checkout changes nothing: neither brings back an old version.
    for checkout in checkouts:
        ok(checkout.cdctl("pulumi", "preview", "-s", "develop", "--expect-no-changes", **shared))


def test_the_first_deploy_after_setting_harbors_credentials_makes_the_pull_secret_first(project):
    ok(project.pulumi("up", "-s", "develop", "--yes", "--skip-preview"))
    ok(project.pulumi("config", "set", "tomcat-cd:harborUsername", "robot$tomcat-cd", "-s", "develop"))
    ok(project.pulumi("config", "set", "--secret", "tomcat-cd:harborPassword", "robot-pw-for-test", "-s", "develop"))
    ok(deploy(project, "test.gyyx.cn", "v1.3.0"))
    manifests = project.manifests("develop")
    assert ("Secret", "harbor-pull") in manifests
    assert manifests[("Deployment", "test-gyyx-cn")]["spec"]["template"]["spec"]["imagePullSecrets"] == [
        {"name": "harbor-pull"}]


def test_a_stack_without_config_is_a_clear_error_not_a_crash(project):
    path = project.root / "Pulumi.develop.yaml"
    document = yaml.safe_load(path.read_text())
    path.write_text(yaml.safe_dump({"encryptionsalt": document["encryptionsalt"]}))
    preview = project.pulumi("preview", "-s", "develop")
    assert preview.returncode != 0
    assert "Pulumi.develop.yaml: tomcat-cd:harborHost: is required" in preview.stdout + preview.stderr
    assert "Traceback" not in preview.stdout + preview.stderr


@pytest.mark.parametrize("command", [["history", "test.gyyx.cn"], ["unlock"]])
def test_a_stack_never_deployed_is_said_so_in_one_line(project, command):
    result = project.cdctl(*command, "--env", "master")
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines()[0] == "error: stack master: has no update history yet (never deployed)"


def test_unlock_and_schema_explain_themselves():
    from conftest import cdctl

    assert "Release a Pulumi stack lock whose holder is gone" in cdctl("unlock", "--help").out
    assert "yaml-language-server" in cdctl("schema", "--help").out
