"""End to end through the real Pulumi engine (built by scripts/install-pulumi), in local
mode: a file backend in the project's .state/ and the Kubernetes provider rendering
every object it would apply to .state/manifests/<stack>/.
"""

from __future__ import annotations

import base64
import json
import subprocess

import pytest

from engine_harness import at_once, make_engine_project, ok, rendered_objects, require_engine
from tomcat_cd.core.urns import StackNames
from tomcat_cd.driver.record import running_images

pytestmark = pytest.mark.engine
PASSWORD = "e2e-harbor-robot-password-7f3a"


@pytest.fixture
def engine_project(tmp_path):
    require_engine()
    project = make_engine_project(tmp_path)
    for domain, version in (("test.gyyx.cn", "v1.2.0"), ("test.gyyx.cn", "v1.3.0"), ("shop.gyyx.cn", "v2.4.1"),
                            ("shop.gyyx.cn", "v2.5.0")):
        project.add_war(domain, version)
    return project


def up(project, stack: str = "develop") -> str:
    return ok(project.pulumi("up", "-s", stack, "--yes", "--skip-preview"))


def history(project, domain: str, stack: str = "develop") -> list[dict]:
    return json.loads(ok(project.cdctl("history", domain, "--env", stack, "--json")))


def image_of(project, domain: str, stack: str = "develop") -> str:
    name = domain.replace(".", "-")
    deployment = project.manifests(stack)[("Deployment", name)]
    return deployment["spec"]["template"]["spec"]["containers"][0]["image"]


def assert_engine_wrote_what_render_writes(project, stack: str, out, unlike: tuple = ()) -> None:
    """The manifests `pulumi up` made equal `cdctl render`'s, object for object (but `unlike`)."""
    ok(project.cdctl("render", "--stack", stack, "--out", str(out)))
    rendered = rendered_objects(out)
    applied = project.manifests(stack)
    assert sorted(applied) == sorted(rendered)
    for key, obj in rendered.items():
        if key not in unlike:
            assert applied[key] == obj, key


def test_pulumi_up_writes_exactly_what_cdctl_render_writes(engine_project, tmp_path):
    up(engine_project)
    assert_engine_wrote_what_render_writes(engine_project, "develop", tmp_path / "render")


def test_deploy_history_and_rollback_through_the_stack_history(engine_project):
    up(engine_project)
    git_id = subprocess.run(["git", "rev-parse", "--short=7", "HEAD"], cwd=engine_project.root,
                            capture_output=True, text=True, check=True).stdout.strip()
    deployed = engine_project.cdctl("deploy", "test.gyyx.cn", "--version", "v1.3.0", "--env", "develop",
                                    "--build-id", "93", "--yes")
    assert "done: deploy test.gyyx.cn v1.3.0 build 93" in ok(deployed)
    assert image_of(engine_project, "test.gyyx.cn") == f"harbor.gyyx.cn/test.gyyx.cn/test.gyyx.cn:v1.3.0-develop-{git_id}"

    stack_history = json.loads(ok(engine_project.pulumi("stack", "history", "-s", "develop", "--json")))
    assert len(stack_history) == 2
    newest = stack_history[0]
    assert json.loads(newest["config"]["tomcat-cd:versions"]["value"])["test.gyyx.cn"] == "v1.3.0"
    assert json.loads(newest["config"]["tomcat-cd:builds"]["value"])["test.gyyx.cn"]["buildId"] == "93"
    assert newest["message"].startswith("deploy test.gyyx.cn v1.3.0 build 93 git ")

    records = history(engine_project, "test.gyyx.cn")
    assert [(r["update"], r["version"], r["build_id"], r["git_id"], r["result"]) for r in records] == [
        (2, "v1.3.0", "93", git_id, "succeeded"),
        # No build record: the git id is the commit Pulumi recorded with that whole-stack update.
        (1, "v1.2.0", "", git_id, "succeeded"),
    ]

    rolled = ok(engine_project.cdctl("rollback", "test.gyyx.cn", "--env", "develop", "--yes"))
    assert "done: rollback test.gyyx.cn to v1.2.0" in rolled and "(update 3 of stack develop)" in rolled
    assert image_of(engine_project, "test.gyyx.cn") == f"harbor.gyyx.cn/test.gyyx.cn/test.gyyx.cn:v1.2.0-develop-{git_id}"
    assert [r["version"] for r in history(engine_project, "test.gyyx.cn")] == ["v1.2.0", "v1.3.0", "v1.2.0"]
    # The other site was never touched: a targeted update.
    assert image_of(engine_project, "shop.gyyx.cn").startswith("harbor.gyyx.cn/shop.gyyx.cn/shop.gyyx.cn:v2.4.1-")


def test_a_one_site_deploy_evaluates_that_site_alone_and_keeps_the_others(engine_project):
    up(engine_project)
    before = {key: obj for key, obj in engine_project.manifests("develop").items() if "shop" in key[1]}
    deployed = ok(engine_project.cdctl("deploy", "test.gyyx.cn", "--version", "v1.3.0", "--env", "develop", "--yes"))
    assert "targeted update of test.gyyx.cn: the other sites are not evaluated" in deployed
    assert {key: obj for key, obj in engine_project.manifests("develop").items() if "shop" in key[1]} == before
    outputs = json.loads(ok(engine_project.pulumi("stack", "output", "sites", "-s", "develop", "--json")))
    assert sorted(outputs) == ["shop.gyyx.cn", "test.gyyx.cn"] and outputs["test.gyyx.cn"]["image"].split(":")[1].startswith("v1.3.0-")
    # A full update, every site evaluated, finds the state as the program describes it.
    ok(engine_project.pulumi("preview", "-s", "develop", "--expect-no-changes"))
    # The switch never leaks from the caller's environment into a full update.
    leaked = ok(engine_project.cdctl("pulumi", "preview", "-s", "develop", "--expect-no-changes",
                                     TOMCAT_CD_TARGETED_SITE="test.gyyx.cn"))
    assert "targeted update" not in leaked


def test_rollback_keeps_the_image_tag_of_the_build_it_restores(engine_project):
    up(engine_project)
    ok(engine_project.cdctl("deploy", "test.gyyx.cn", "--version", "v1.3.0", "--env", "develop", "--yes",
                            CD_GIT_ID="1111111"))
    ok(engine_project.cdctl("deploy", "test.gyyx.cn", "--version", "v1.2.0", "--env", "develop", "--yes",
                            CD_GIT_ID="2222222"))
    # A later commit of the CD repository must not retag the version being brought back.
    ok(engine_project.cdctl("rollback", "test.gyyx.cn", "--env", "develop", "--yes", CD_GIT_ID="3333333"))
    assert image_of(engine_project, "test.gyyx.cn").endswith(":v1.3.0-develop-1111111")


def test_delete_removes_only_that_sites_files(engine_project):
    up(engine_project)
    before = engine_project.manifests("develop")
    ok(engine_project.cdctl("delete", "shop.gyyx.cn", "--env", "develop", "--yes"))
    after = engine_project.manifests("develop")
    assert set(before) - set(after) == {("Deployment", "shop-gyyx-cn"), ("Service", "shop-gyyx-cn")}
    assert all(after[key] == before[key] for key in after)
    assert "shop.gyyx.cn" not in engine_project.stack_config("develop")["tomcat-cd:versions"]
    assert history(engine_project, "shop.gyyx.cn")[0]["version"] is None


def test_two_deploys_at_once_both_land(engine_project):
    up(engine_project)
    deploy = lambda domain, version: lambda: engine_project.cdctl(  # noqa: E731
        "deploy", domain, "--version", version, "--env", "develop", "--yes")
    for result in at_once(deploy("test.gyyx.cn", "v1.3.0"), deploy("shop.gyyx.cn", "v2.5.0")):
        ok(result)
    versions = engine_project.stack_config("develop")["tomcat-cd:versions"]
    assert (versions["test.gyyx.cn"], versions["shop.gyyx.cn"]) == ("v1.3.0", "v2.5.0")
    assert ":v1.3.0-" in image_of(engine_project, "test.gyyx.cn")
    assert ":v2.5.0-" in image_of(engine_project, "shop.gyyx.cn")


def test_a_failing_deploy_changes_nothing(engine_project):
    up(engine_project)
    config_before = (engine_project.root / "Pulumi.develop.yaml").read_text()
    manifests_before = engine_project.manifests("develop")

    missing_war = engine_project.cdctl("deploy", "test.gyyx.cn", "--version", "v9.9.9", "--env", "develop", "--yes")
    assert missing_war.returncode == 2
    assert missing_war.stderr.splitlines()[0].startswith(
        'error: Pulumi.develop.yaml: tomcat-cd:versions["test.gyyx.cn"]: war not found: ')

    (engine_project.root / "domains/test.gyyx.cn.yaml").write_text("nodePort: 32001\nreplicas: lots\n")
    bad_file = engine_project.cdctl("deploy", "test.gyyx.cn", "--version", "v1.3.0", "--env", "develop", "--yes")
    assert bad_file.returncode == 2
    assert "error: domains/test.gyyx.cn.yaml: replicas: must be a mapping, got a string" in bad_file.stderr

    # The same bad file reaching the engine (plain pulumi up) fails before any change.
    failed_up = engine_project.pulumi("up", "-s", "develop", "--yes", "--skip-preview")
    assert failed_up.returncode != 0
    assert "domains/test.gyyx.cn.yaml: replicas: must be a mapping, got a string" in failed_up.stdout

    assert (engine_project.root / "Pulumi.develop.yaml").read_text() == config_before
    assert engine_project.manifests("develop") == manifests_before
    results = [r["result"] for r in json.loads(ok(engine_project.pulumi("stack", "history", "-s", "develop", "--json")))]
    assert results == ["failed", "succeeded"]


def test_a_builder_that_takes_no_connection_is_refused_by_name_before_any_step(engine_project):
    up(engine_project)
    config_before = (engine_project.root / "Pulumi.develop.yaml").read_text()
    manifests_before = engine_project.manifests("develop")
    for key, value in (("buildImages", "true"), ("builderEndpoint", "unix:///nonexistent/buildkitd.sock"),
                       ("harborUsername", "robot")):
        ok(engine_project.pulumi("config", "set", key, value, "-s", "develop"))
    ok(engine_project.pulumi("config", "set", "--secret", "harborPassword", PASSWORD, "-s", "develop"))
    configured = (engine_project.root / "Pulumi.develop.yaml").read_text()
    result = engine_project.cdctl("deploy", "test.gyyx.cn", "--version", "v1.3.0", "--env", "develop", "--yes",
                                  DOCKER_CONFIG=str(engine_project.root.parent / "docker-config"))
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert ("Pulumi.develop.yaml: tomcat-cd:builderEndpoint: builder tomcat-cd at unix:///nonexistent/buildkitd.sock "
            "takes no connection (No such file or directory): no image was built and nothing was changed") in errors[0]
    assert "docker-build:index:Image" not in result.stdout, "no image step started"
    assert (engine_project.root / "Pulumi.develop.yaml").read_text() == configured != config_before
    assert engine_project.manifests("develop") == manifests_before


def test_no_plain_secret_in_state_config_or_output(engine_project):
    project = engine_project
    ok(project.pulumi("config", "set", "harborUsername", "robot$tomcat-cd", "-s", "develop"))
    set_secret = project.pulumi("config", "set", "--secret", "harborPassword", PASSWORD, "-s", "develop")
    outputs = [ok(set_secret), up(project)]
    outputs.append(ok(project.cdctl("deploy", "test.gyyx.cn", "--version", "v1.3.0", "--env", "develop", "--yes")))
    outputs.append(ok(project.pulumi("stack", "export", "-s", "develop")))
    outputs.append(ok(project.pulumi("stack", "history", "-s", "develop", "--json")))
    stack_file = (project.root / "Pulumi.develop.yaml").read_text()
    state_files = [p.read_text() for p in (project.root / ".state/pulumi").rglob("*.json")]
    assert state_files, "the file backend keeps the state as JSON"
    for text in [stack_file, *state_files, *outputs]:
        assert PASSWORD not in text
    # Render mode writes Secret data unencrypted (base64), as documented: only under .state/manifests.
    secret = project.manifests("develop")[("Secret", "harbor-pull")]
    assert PASSWORD in base64.b64decode(secret["data"][".dockerconfigjson"]).decode()


def test_a_failing_update_names_its_step_and_restores_the_config(engine_project):
    up(engine_project)
    config_before = (engine_project.root / "Pulumi.develop.yaml").read_text()
    # Make the provider's write fail at update time, after every check has passed.
    manifests = engine_project.root / ".state/manifests/develop/1-manifest"
    target = manifests / "apps_v1-deployment-develop-test-gyyx-cn.yaml"
    target.unlink()
    target.mkdir()
    (target / "blocker").write_text("a folder where the provider writes a file")
    result = engine_project.cdctl("deploy", "test.gyyx.cn", "--version", "v1.3.0", "--env", "develop", "--yes")
    assert result.returncode == 1
    assert "error: step 'update' failed: " in result.stderr
    assert "the previous state of develop is unchanged" in result.stderr
    assert (engine_project.root / "Pulumi.develop.yaml").read_text() == config_before
    results = [r["result"] for r in json.loads(ok(engine_project.pulumi("stack", "history", "-s", "develop", "--json")))]
    assert results == ["failed", "succeeded"]


def test_pulumi_up_of_the_platform_stack_writes_what_render_writes(engine_project, tmp_path):
    for key, value in (("elasticPassword", "es-e2e-pw-1234"), ("kibanaPassword", "kb-e2e-pw-1234"),
                       ("filebeatPassword", "fb-e2e-pw-1234")):
        ok(engine_project.pulumi("config", "set", "--secret", key, value, "-s", "platform"))
    output = up(engine_project, "platform")
    assert "kibanaDataViews" in output
    # Render shows placeholders for the passwords, the engine the secrets themselves.
    assert_engine_wrote_what_render_writes(engine_project, "platform", tmp_path / "render",
                                           unlike=(("Secret", "elastic-credentials"),))
    for text in [(engine_project.root / "Pulumi.platform.yaml").read_text(), output]:
        assert "es-e2e-pw-1234" not in text


def test_the_state_read_from_a_file_backend_is_what_pulumi_stack_export_prints(engine_project):
    """cdctl reads a file backend's checkpoint itself (fast with many sites): the same state."""
    from tomcat_cd.driver.pulumi_cli import PulumiCli, urns_of
    up(engine_project)
    cli = PulumiCli(engine_project.root, "develop")
    printed = json.loads(ok(engine_project.pulumi("stack", "export", "-s", "develop")))
    assert cli._checkpoint_file() is not None
    direct = cli.export()
    assert urns_of(direct) == urns_of(printed) and len(urns_of(direct)) >= 10
    assert direct["deployment"]["resources"] == printed["deployment"]["resources"]


def test_cdctl_reads_the_stack_files_config_as_pulumi_config_prints_it(engine_project):
    """cdctl reads the checkout's stack config from the file itself (one CLI call fewer per change)."""
    from tomcat_cd.driver.pulumi_cli import PulumiCli
    up(engine_project)
    ok(engine_project.cdctl("deploy", "test.gyyx.cn", "--version", "v1.3.0", "--env", "develop", "--yes"))
    ok(engine_project.cdctl("pulumi", "config", "set", "--secret", "tomcat-cd:harborPassword", PASSWORD, "-s", "develop"))
    printed = json.loads(ok(engine_project.pulumi("config", "--json", "--show-secrets=false", "-s", "develop")))
    direct = PulumiCli(engine_project.root, "develop").config()
    assert {f"tomcat-cd:{key}" for key in direct} == {key for key in printed if key.startswith("tomcat-cd:")}
    for key in ("versions", "builds"):
        assert direct[key] == printed[f"tomcat-cd:{key}"]["objectValue"] and direct[key]["test.gyyx.cn"]
    assert printed["tomcat-cd:harborPassword"]["secret"] and PASSWORD not in json.dumps(direct)


def test_each_update_keeps_one_copy_of_its_state_in_the_history_and_no_second_in_backups(engine_project):
    """cdctl turns the file backend's backups off: they held the same bytes as the history."""
    up(engine_project)
    ok(engine_project.cdctl("deploy", "test.gyyx.cn", "--version", "v1.3.0", "--env", "develop", "--yes"))
    backend = engine_project.root / ".state" / "pulumi" / ".pulumi"
    checkpoints = sorted((backend / "history" / "tomcat-cd" / "develop").glob("develop-*.checkpoint.json"))
    updates = json.loads(ok(engine_project.pulumi("stack", "history", "-s", "develop", "--json")))
    assert len(checkpoints) == len(updates) == 2
    assert checkpoints[-1].read_bytes() == (backend / "stacks" / "tomcat-cd" / "develop.json").read_bytes()
    assert not [path for path in backend.glob("backups/**/*") if path.is_file()]


def test_a_one_site_deploy_makes_only_the_engine_calls_it_needs(engine_project):
    """On a stack the file backend holds: no `stack select`, the stack file's config read from
    the file (no `pulumi config` call), one update, and the update's log names the site's
    change, not the stack's outputs."""
    up(engine_project)
    done, calls = engine_project.engine_calls("deploy", "test.gyyx.cn", "--version", "v1.3.0", "--env", "develop",
                                              "--yes")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    verbs = [" ".join(call[:2]) for call in calls]
    assert "stack select" not in verbs
    assert [call[:2] for call in calls if call[0] == "config"] == [["config", "set-all"]]  # the record's write
    updates = [call for call in calls if call[0] == "up"]
    assert len(updates) == 1 and "--suppress-outputs" in updates[0]
    assert "v1.3.0" in done.stdout and "--outputs:--" not in done.stdout and "nodePort" not in done.stdout
    assert image_of(engine_project, "test.gyyx.cn").split(":")[-1].startswith("v1.3.0")


def test_a_deploy_to_a_stack_the_backend_lacks_makes_it_first(engine_project):
    done, calls = engine_project.engine_calls("deploy", "test.gyyx.cn", "--version", "v1.3.0", "--env", "develop",
                                              "--yes")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert calls[0][:3] == ["stack", "select", "--create"]


def test_a_first_import_saves_the_state_when_it_ends_and_later_updates_after_each_step(engine_project):
    """checkpoints: auto. The import's one save still holds every resource it made."""
    from tomcat_cd.driver.pulumi_cli import PulumiCli
    first = engine_project.pulumi("up", "-s", "develop", "--yes", "--skip-preview")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "stack develop: the state is saved when the update ends, not after each step (checkpoints: auto, " \
           "an empty stack)" in first.stderr
    urns = PulumiCli(engine_project.root, "develop").resource_urns()
    assert {urn.rsplit("::", 1)[1] for urn in urns} >= {"test-gyyx-cn-deployment", "shop-gyyx-cn-service", "develop"}
    again = engine_project.pulumi("up", "-s", "develop", "--yes", "--skip-preview")
    assert again.returncode == 0 and "the state is saved when the update ends" not in again.stderr
    assert PulumiCli(engine_project.root, "develop").resource_urns() == urns


def test_a_targeted_update_sends_no_events_for_what_it_leaves_as_it_is(engine_project):
    """tomcat-cd's build of Pulumi carries tools/pulumi/untargeted-same-events.patch: the
    resources a targeted update leaves as they are get no events (each was a deep copy of their
    state), are still counted as unchanged, and keep their state."""
    up(engine_project)
    names = StackNames("develop")
    shop = set(names.site("shop.gyyx.cn", with_image=False))
    # A component's own outputs event stays (it is small, and its outputs may change).
    shop_objects = {names.site_child("shop.gyyx.cn", part) for part in ("deployment", "service")}
    before = {urn: resource for urn, resource in engine_project.resources().items() if urn in shop}
    log = engine_project.root.parent / "events.json"
    # Every site registered (no cdctl deploy around it), one targeted: shop's are untargeted sames.
    shown = ok(engine_project.cdctl("pulumi", "up", "-s", "develop", "--yes", "--skip-preview", "--refresh=false",
                                    f"--target={names.site_child('test.gyyx.cn', 'deployment')}",
                                    f"--event-log={log}", PULUMI_DEBUG_COMMANDS="true"))
    events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    evented = {(event.get("resourcePreEvent") or event.get("resOutputsEvent"))["metadata"]["urn"]
               for event in events if "resourcePreEvent" in event or "resOutputsEvent" in event}
    announced = {event["resourcePreEvent"]["metadata"]["urn"] for event in events if "resourcePreEvent" in event}
    assert names.site_child("test.gyyx.cn", "deployment") in announced
    assert not evented & shop_objects and not announced & shop
    summary = next(event["summaryEvent"] for event in events if "summaryEvent" in event)
    assert summary["resourceChanges"]["same"] >= len(shop) and "unchanged" in shown
    assert {urn: resource for urn, resource in engine_project.resources().items() if urn in shop} == before


def test_a_one_site_update_saves_the_whole_state_three_times_and_not_for_the_sites_component(engine_project):
    """Each save writes the whole state (0.16 s among 200 sites): when the Deployment's update
    begins and ends, and for the stack's outputs. The site's component keeps its outputs (the
    image it runs is read from its Deployment), so the engine skips the save it would cost."""
    up(engine_project)
    names = StackNames("develop")
    component = names.site("test.gyyx.cn")[0]
    before = engine_project.resources()[component]
    # A new CD commit names a new image (a deploy's new version would too); the engine's log
    # counts the saves.
    targets = [f"--target={urn}" for urn in names.site("test.gyyx.cn", with_image=False)]
    done = engine_project.cdctl("pulumi", "up", "-s", "develop", "--yes", "--skip-preview", "--refresh=false", *targets,
                                "-v=9", "--logtostderr", "--logflow", CD_GIT_ID="fedcba9")
    ok(done)
    assert done.stderr.count("Saved stack organization/tomcat-cd/develop checkpoint") == 3
    after = engine_project.resources()
    assert after[component]["outputs"] == before["outputs"] == {"domain": "test.gyyx.cn", "node_port": 31001}
    image = running_images({"deployment": {"resources": list(after.values())}})["test.gyyx.cn"]
    assert image == image_of(engine_project, "test.gyyx.cn") and image.endswith(":v1.2.0-develop-fedcba9")
