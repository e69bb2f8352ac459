"""status, diff and promote through the real Pulumi engine in local mode; the status page in a
real headless browser (Debian's Chromium, driven through ChromeDriver's W3C protocol)."""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import sys

import pytest
import yaml

from browser import Browser, require_browser
from engine_harness import make_engine_project, require_engine
from test_engine import ok
from test_trace import SECRET, URL_TOKEN, Receiver

pytestmark = pytest.mark.engine
DOMAIN = "test.gyyx.cn"


def commit(project, message: str) -> str:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", message], cwd=project.root,
                   check=True)
    return subprocess.run(["git", "rev-parse", "--short=7", "HEAD"], cwd=project.root, capture_output=True,
                          text=True, check=True).stdout.strip()


@pytest.fixture
def two_deploys(tmp_path):
    """develop ran v1.2.0 (build 92; updates 1, the namespace, and 2), then v1.3.0 (build 93,
    update 3) with APP_PROFILE changed in the domain file in between."""
    require_engine()
    project = make_engine_project(tmp_path)
    for version in ("v1.2.0", "v1.3.0"):
        project.add_war(DOMAIN, version)
    ok(project.cdctl("deploy", DOMAIN, "--env", "develop", "--version", "v1.2.0", "--build-id", "92", "--yes"))
    domain_file = project.root / "domains" / f"{DOMAIN}.yaml"
    domain_file.write_text(domain_file.read_text().replace("APP_PROFILE: production", "APP_PROFILE: staging"))
    project.git_id = commit(project, "staging profile")
    ok(project.cdctl("deploy", DOMAIN, "--env", "develop", "--version", "v1.3.0", "--build-id", "93", "--yes"))
    return project


def test_diff_shows_the_record_and_every_changed_field_of_the_rendered_objects(two_deploys):
    shown = ok(two_deploys.cdctl("diff", DOMAIN, "--env", "develop"))
    assert shown.splitlines()[0] == f"{DOMAIN} in develop: update 1 (v1.2.0) -> update 3 (v1.3.0)"
    assert "  version     v1.2.0 -> v1.3.0" in shown and "  build_id    92 -> 93" in shown
    war = (two_deploys.wars / DOMAIN / "v1.3.0" / "ROOT.war").read_bytes()
    assert f"-> {hashlib.sha256(war).hexdigest()}" in shown
    assert "-            value: production\n" in shown and "+            value: staging\n" in shown
    assert "-      tomcat-cd/version: v1.2.0\n+      tomcat-cd/version: v1.3.0\n" in shown
    by_version = json.loads(ok(two_deploys.cdctl("diff", DOMAIN, "--env", "develop", "v1.2.0", "3", "--json")))
    assert by_version["from"]["update"] == 1 and by_version["to"]["build_id"] == "93"
    assert {c["field"] for c in by_version["changed"]} == {"version", "build_id", "git_id", "war_sha256"}
    same = ok(two_deploys.cdctl("diff", DOMAIN, "--env", "develop", "3", "3"))
    assert "the record is the same" in same and "the Kubernetes objects are the same" in same
    unknown = two_deploys.cdctl("diff", DOMAIN, "--env", "develop", "v9.9.9")
    assert unknown.returncode == 2 and "'v9.9.9' is no update number nor version" in unknown.stderr


def test_status_lists_every_domain_in_both_environments_with_its_build_and_pin(two_deploys):
    ok(two_deploys.cdctl("pin", DOMAIN, "--env", "develop", "--reason", "QA signs off v1.3.0"))
    rows = {(r["domain"], r["environment"]): r for r in json.loads(ok(two_deploys.cdctl("status", "--json")))}
    assert {d for d, _ in rows} == {"test.gyyx.cn", "shop.gyyx.cn", "api.gyyx.cn"}
    row = rows[(DOMAIN, "develop")]
    assert (row["version"], row["build_id"], row["git_id"], row["update"]) == ("v1.3.0", "93", two_deploys.git_id, 3)
    assert row["pin"].startswith("pinned at v1.3.0 by ") and row["pin"].endswith(": QA signs off v1.3.0")
    assert rows[(DOMAIN, "master")]["version"] is None, "master was never deployed"
    table = ok(two_deploys.cdctl("status", "--env", "develop"))
    line = next(line for line in table.splitlines() if line.startswith(DOMAIN))
    assert " v1.3.0 " in line and " 93 " in line and "QA signs off" in line


def test_promote_carries_the_build_git_id_and_war_over_and_is_refused_when_it_is_not_the_tested_thing(two_deploys,
                                                                                                     tmp_path):
    project = two_deploys
    later = (project.root / "README.promote")
    later.write_text("a later commit: promote must not retag with it\n")
    subprocess.run(["git", "add", "-A"], cwd=project.root, check=True)
    commit(project, "later")
    refused = project.cdctl("promote", DOMAIN, "--version", "v1.2.0", "--yes")
    assert refused.returncode == 2 and "runs v1.3.0, not v1.2.0 (--version)" in refused.stderr
    # At a terminal it shows what differs and asks; "n" changes nothing.
    asked = subprocess.run(["script", "-qec", f"{sys.executable} -m cdctl --project-dir {project.root} promote {DOMAIN}",
                            "/dev/null"], input="n\n", capture_output=True, text=True, cwd=project.root,
                           env=project.env(), timeout=300)
    assert "spec.replicas: 1 in develop -> 2 in master" in asked.stdout and "Apply this change? [y/N]" in asked.stdout
    assert "cancelled: nothing was changed" in asked.stdout, asked.stdout[-2000:]
    assert ("Deployment", "test-gyyx-cn") not in project.manifests("master")

    done = project.cdctl("promote", DOMAIN, "--version", "v1.3.0", "--yes")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"{DOMAIN} differs between develop and master:\n  spec.replicas: 1 in develop -> 2 in master" in done.stdout
    deployment = project.manifests("master")[("Deployment", "test-gyyx-cn")]
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.endswith(f":v1.3.0-master-{project.git_id}"), image
    master = {r["environment"]: r for r in json.loads(ok(project.cdctl("status", "--json")))
              if r["domain"] == DOMAIN}
    assert (master["master"]["build_id"], master["master"]["git_id"], master["master"]["war_sha256"]) == (
        "93", project.git_id, master["develop"]["war_sha256"])
    history = json.loads(ok(project.cdctl("history", DOMAIN, "--env", "master", "--json")))
    assert history[0]["message"].startswith(f"promote {DOMAIN} v1.3.0 from develop (update 3) build 93 ")

    # master's own copy of the war is not the one develop ran: refused, nothing changed.
    other_root = tmp_path / "master-wars"
    (other_root / DOMAIN / "v1.3.0").mkdir(parents=True)
    (other_root / DOMAIN / "v1.3.0" / "ROOT.war").write_bytes(b"PK\x03\x04 rebuilt, not the tested bytes")
    stack = project.root / "Pulumi.master.yaml"
    stack.write_text(stack.read_text().replace(str(project.wars), str(other_root)))
    refused = project.cdctl("promote", DOMAIN, "--yes")
    assert refused.returncode == 2 and "is not what develop ran" in refused.stderr, refused.stderr


@pytest.mark.browser
def test_the_status_page_loads_in_a_real_browser_and_its_diff_link_opens_the_diff(two_deploys, tmp_path):
    require_browser()
    out = tmp_path / "page"
    ok(two_deploys.cdctl("status", "--html", str(out)))
    with Browser(tmp_path / "browser") as browser:
        browser.open("data:text/html,<title>x</title><script>throw new Error('the check sees this')</script>")
        assert any("the check sees this" in e for e in browser.console_errors()), "console errors are read"
        browser.open((out / "index.html").as_uri())
        assert browser.title() == "tomcat-cd status"
        rows = browser.texts("#sites tbody tr")
        assert any(row.startswith(f"{DOMAIN} develop v1.3.0") for row in rows), rows
        assert sum(row.startswith("shop.gyyx.cn") for row in rows) == 2
        browser.type_into("#filter", "shop")
        assert [r for r in browser.texts("#sites tbody tr", visible_only=True)] and all(
            r.startswith("shop.gyyx.cn") for r in browser.texts("#sites tbody tr", visible_only=True))
        browser.screenshot(tmp_path / "status-page.png")
        assert browser.console_errors() == []
        browser.click(f"a.diff[href='diff-develop-{DOMAIN}-1-3.html']")
        assert browser.title() == f"{DOMAIN} in develop: update 1 → 3"
        assert "+            value: staging" in browser.texts("#objects")[0]
        assert browser.console_errors() == []
        browser.screenshot(tmp_path / "diff-page.png")
    assert (tmp_path / "status-page.png").stat().st_size > 1000


def test_markers_and_notifications_never_fail_a_deploy_and_dingtalk_gets_a_signed_message(tmp_path):
    require_engine()
    project = make_engine_project(tmp_path)
    for version in ("v1.2.0", "v1.3.0"):
        project.add_war(DOMAIN, version)
    stack = project.root / "Pulumi.develop.yaml"
    document = yaml.safe_load(stack.read_text())
    # Nothing listens on the port of a socket just closed: the marker cannot be written.
    document["config"].update({"tomcat-cd:elasticsearchUrl": f"http://127.0.0.1:{closed_port()}",
                               "tomcat-cd:notifyFormat": "dingtalk"})
    stack.write_text(yaml.safe_dump(document, sort_keys=False))
    with Receiver([], secret=SECRET) as robot:
        done = project.cdctl("deploy", DOMAIN, "--env", "develop", "--version", "v1.2.0", "--build-id", "7", "--yes",
                             TOMCAT_CD_NOTIFY_URL=robot.url, TOMCAT_CD_NOTIFY_SECRET=SECRET)
        assert done.returncode == 0, done.stderr[-3000:]
        assert "warning: the deploy marker was not written to tomcat-cd-events-" in done.stderr
        (query, body), = robot.bodies
        assert f"deploy {DOMAIN} v1.2.0 to develop: succeeded (update 2, build 7, by " in body["markdown"]["text"]
        refused = project.cdctl("deploy", DOMAIN, "--env", "develop", "--version", "v1.3.0", "--yes",
                                TOMCAT_CD_NOTIFY_URL=robot.url, TOMCAT_CD_NOTIFY_SECRET="not-the-robots-secret")
    assert refused.returncode == 0, refused.stderr[-3000:]
    assert "warning: the dingtalk notification was not sent: answered 403 (2 attempts)" in refused.stderr
    assert URL_TOKEN not in done.stdout + done.stderr + refused.stdout + refused.stderr
    assert SECRET not in done.stdout + done.stderr + refused.stdout + refused.stderr


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
