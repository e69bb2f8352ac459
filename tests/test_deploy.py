"""The deploy driver with the Pulumi CLI faked: which updates a change runs and what they
target, what it writes to the checkout's stack config, and how a failed, refused or
interrupted step restores it. The same driver runs against the real engine in
test_engine.py and test_soundness.py."""

from __future__ import annotations

import json

import pytest
import yaml

from tomcat_cd.core.errors import ConfigError
from tomcat_cd.core.settings import Build, StackSettings
from tomcat_cd.core.urns import StackNames
from tomcat_cd.driver import deploy, update
from tomcat_cd.driver.deploy import Cancelled, Deployer, SiteChange
from tomcat_cd.driver.pulumi_cli import EngineError, last_error_line

NAMES = StackNames("develop")
ENVIRONMENT = NAMES.environment("develop", with_pull_secret=False)
PULL_SECRET = NAMES.environment("develop", with_pull_secret=True)[-1]
TEST_SITE = NAMES.site("test.gyyx.cn", with_image=False)
SHOP_SITE = NAMES.site("shop.gyyx.cn", with_image=False)


def update_config(versions: dict) -> dict:
    return {"kind": "update", "result": "succeeded",
            "config": {"tomcat-cd:versions": {"value": json.dumps(versions), "secret": False}}}


class FakeCli:
    """The calls the driver makes of PulumiCli, over an in-memory checkout, state and history."""

    def __init__(self, checkout: dict, state: set[str], history: list[dict]):
        self.stack = "develop"
        self.env = {"PULUMI_BACKEND_URL": "s3://not-a-file-backend"}
        self.checkout = checkout
        self.state = state
        self.outputs: dict[str, dict] = {}
        self.parents: dict[str, str] = {}
        self.updates = history
        self.project_dir = None

    def select(self, create: bool = True) -> None:
        pass

    def config(self) -> dict:
        """The checkout's `tomcat-cd:` values, without the prefix, as the stack file holds them."""
        return {k.split(":", 1)[1]: v for k, v in self.checkout.items()}

    def set_config(self, values: dict, removed: list[str]) -> None:
        self.checkout.update(values)
        for key in removed:
            self.checkout.pop(key)

    def resource_urns(self) -> set[str]:
        return set(self.state)

    def runs(self, domain: str, image: str) -> None:
        """The state has the site's Deployment running `image`, as its outputs say."""
        component, deployment = NAMES.site(domain)[0], NAMES.site_child(domain, "deployment")
        self.outputs[component] = {"domain": domain, "node_port": 31001}
        self.outputs[deployment] = {"spec": {"template": {"spec": {"containers": [{"name": "tomcat", "image": image}]}}}}
        self.parents[deployment] = component

    def export(self) -> dict:
        """The state as `pulumi stack export` has it: each resource with its parent and outputs."""
        resources = [{"urn": urn, "type": urn.split("::")[2].rsplit("$", 1)[-1], "parent": self.parents.get(urn),
                      "outputs": self.outputs.get(urn, {})} for urn in sorted(self.state)]
        return {"deployment": {"resources": resources}}

    def newest_succeeded(self):
        return next((u for u in self.updates if u["result"] == "succeeded"), None)

    def history(self) -> list[dict]:
        return self.updates

    def update_count(self) -> int:
        return len(self.updates)


@pytest.fixture
def driver(tmp_path, monkeypatch):
    runs: list[tuple[update.TargetedUpdate, bool]] = []

    def make(checkout: dict, state: set[str], history: list[dict], fail_on: str | None = None):
        cli = FakeCli(checkout, state, history)
        deployer = Deployer(tmp_path, "develop", out=lambda line: None)
        monkeypatch.setattr(deployer, "cli", lambda: cli)

        def run(cli_, planned, out, preview=False):
            runs.append((planned, preview))
            if fail_on == ("preview" if preview else "update"):
                raise EngineError(fail_on, "error: boom")
            if fail_on == "dependency" and planned.only_site and not any(PULL_SECRET == u for u in cli.state):
                raise EngineError("update", f"error: depends on {PULL_SECRET} which was not specified in --target list")
            if not preview and not planned.only_site:
                cli.state |= set(planned.targets)
            if not preview:
                cli.updates.insert(0, update_config(cli.checkout.get("tomcat-cd:versions", {})))
        monkeypatch.setattr(deploy.update, "run", run)
        return deployer, cli, runs
    return make


def settings(pull_secret: bool = False, build_images: bool = False) -> StackSettings:
    return StackSettings(stack="develop", environment="develop", harbor_host="h", build_images=build_images,
                         harbor_username="robot" if pull_secret else None, harbor_password_set=pull_secret)


DEPLOYED = {"tomcat-cd:versions": {"shop.gyyx.cn": "v2.4.1", "test.gyyx.cn": "v1.2.0"}}


def test_a_deploy_targets_the_site_alone_and_records_version_and_build(driver):
    deployer, cli, runs = driver(dict(DEPLOYED), set(ENVIRONMENT + TEST_SITE + SHOP_SITE), [update_config(DEPLOYED["tomcat-cd:versions"])])
    number = deployer.change_site(SiteChange("test.gyyx.cn", "v1.3.0", Build("93", "abc1234", "jenkins"), "deploy"), settings())
    ((planned, preview),) = runs
    assert planned.targets == tuple(TEST_SITE) and planned.only_site and not preview
    assert cli.checkout["tomcat-cd:versions"] == {"shop.gyyx.cn": "v2.4.1", "test.gyyx.cn": "v1.3.0"}
    assert cli.checkout["tomcat-cd:builds"] == {"test.gyyx.cn": {"buildId": "93", "gitId": "abc1234", "by": "jenkins"}}
    assert number == 2


def test_what_runs_comes_from_the_backend_not_the_checkout(driver):
    # Another checkout deployed shop v2.5.0; this checkout's file still says v2.4.1.
    running = {"shop.gyyx.cn": "v2.5.0", "test.gyyx.cn": "v1.2.0"}
    deployer, cli, _ = driver(dict(DEPLOYED), set(ENVIRONMENT + TEST_SITE + SHOP_SITE), [update_config(running)])
    deployer.change_site(SiteChange("test.gyyx.cn", "v1.3.0", None, "deploy"), settings())
    assert cli.checkout["tomcat-cd:versions"] == {"shop.gyyx.cn": "v2.5.0", "test.gyyx.cn": "v1.3.0"}


def test_a_first_deploy_makes_the_environment_first_with_every_site_registered(driver):
    deployer, _, runs = driver({}, set(), [])
    deployer.change_site(SiteChange("test.gyyx.cn", "v1.2.0", None, "deploy"), settings())
    (environment, _), (site, _) = runs
    assert environment.targets == tuple(ENVIRONMENT) and not environment.only_site
    assert site.targets == tuple(TEST_SITE) and site.only_site


def test_a_new_pull_secret_is_made_before_the_site_that_uses_it(driver):
    deployer, _, runs = driver(dict(DEPLOYED), set(ENVIRONMENT + TEST_SITE + SHOP_SITE), [update_config(DEPLOYED["tomcat-cd:versions"])])
    deployer.change_site(SiteChange("test.gyyx.cn", "v1.3.0", None, "deploy"), settings(pull_secret=True))
    (environment, _), (site, _) = runs
    assert environment.targets == (PULL_SECRET,) and not environment.only_site
    assert site.targets == tuple(TEST_SITE)


def test_a_dependency_the_record_wrongly_vouched_for_is_made_then_the_site_updated(driver):
    # The last update ran with Harbor's credentials, but the pull secret is not in the state
    # (removed by hand, or a plain `pulumi up --target` skipped it).
    recorded = update_config(DEPLOYED["tomcat-cd:versions"])
    recorded["config"].update({"tomcat-cd:harborUsername": {"value": "robot"}, "tomcat-cd:harborPassword": {"secret": True}})
    deployer, cli, runs = driver(dict(DEPLOYED), set(ENVIRONMENT + TEST_SITE + SHOP_SITE), [recorded],
                                 fail_on="dependency")
    deployer.change_site(SiteChange("test.gyyx.cn", "v1.3.0", None, "deploy"), settings(pull_secret=True))
    assert [(p.targets, p.only_site) for p, _ in runs] == [
        (tuple(TEST_SITE), True), ((PULL_SECRET,), False), (tuple(TEST_SITE), True)]


def test_a_delete_targets_what_exists_of_the_site(driver):
    deployer, cli, runs = driver(dict(DEPLOYED), set(ENVIRONMENT + TEST_SITE[:2] + SHOP_SITE), [update_config(DEPLOYED["tomcat-cd:versions"])])
    deployer.change_site(SiteChange("test.gyyx.cn", None, None, "delete"), settings())
    ((planned, _),) = runs
    assert planned.targets == tuple(TEST_SITE[:2]) and planned.only_site
    assert cli.checkout["tomcat-cd:versions"] == {"shop.gyyx.cn": "v2.4.1"}


def test_a_delete_of_a_domain_only_in_the_checkout_is_refused_and_runs_nothing(driver):
    # `config set versions["api.gyyx.cn"]` by hand: nothing of it in the state or the record.
    checkout = {"tomcat-cd:versions": {**DEPLOYED["tomcat-cd:versions"], "api.gyyx.cn": "v1"}}
    deployer, cli, runs = driver(checkout, set(ENVIRONMENT + TEST_SITE + SHOP_SITE), [update_config(DEPLOYED["tomcat-cd:versions"])])
    with pytest.raises(ConfigError, match="api.gyyx.cn is not deployed in develop"):
        deployer.change_site(SiteChange("api.gyyx.cn", None, None, "delete"), settings())
    assert runs == []
    assert cli.checkout["tomcat-cd:versions"] == DEPLOYED["tomcat-cd:versions"], "the checkout now holds what runs"


def test_a_recorded_domain_with_nothing_left_is_removed_by_an_environment_update(driver):
    recorded = {**DEPLOYED["tomcat-cd:versions"], "api.gyyx.cn": "v1"}
    deployer, cli, runs = driver({"tomcat-cd:versions": dict(recorded)}, set(ENVIRONMENT + TEST_SITE + SHOP_SITE),
                                 [update_config(recorded)])
    deployer.change_site(SiteChange("api.gyyx.cn", None, None, "delete"), settings())
    ((planned, _),) = runs
    assert planned.targets == tuple(ENVIRONMENT) and not planned.only_site
    assert "api.gyyx.cn" not in cli.checkout["tomcat-cd:versions"]


def test_no_change_ever_runs_without_targets():
    with pytest.raises(ValueError, match="refusing a whole-stack update"):
        update.TargetedUpdate("test.gyyx.cn", (), "deploy")


@pytest.mark.parametrize("fail_on", ["preview", "update"])
def test_a_failed_step_is_named_and_the_checkout_restored_to_what_runs(driver, fail_on):
    deployer, cli, _ = driver(dict(DEPLOYED), set(ENVIRONMENT + TEST_SITE + SHOP_SITE), [update_config(DEPLOYED["tomcat-cd:versions"])],
                              fail_on=fail_on)
    with pytest.raises(EngineError, match=f"step '{fail_on}' failed: error: boom"):
        deployer.change_site(SiteChange("test.gyyx.cn", "v1.3.0", None, "deploy"), settings(), confirm=lambda: True)
    assert cli.checkout == DEPLOYED


def test_saying_no_after_the_preview_changes_nothing(driver):
    deployer, cli, runs = driver(dict(DEPLOYED), set(ENVIRONMENT + TEST_SITE + SHOP_SITE), [update_config(DEPLOYED["tomcat-cd:versions"])])
    with pytest.raises(Cancelled):
        deployer.change_site(SiteChange("test.gyyx.cn", "v1.3.0", None, "deploy"), settings(), confirm=lambda: False)
    assert [preview for _, preview in runs] == [True]
    assert cli.checkout == DEPLOYED


def test_an_interrupted_update_restores_the_checkout(driver, monkeypatch):
    deployer, cli, _ = driver(dict(DEPLOYED), set(ENVIRONMENT + TEST_SITE + SHOP_SITE), [update_config(DEPLOYED["tomcat-cd:versions"])])

    def interrupted(*args, **kwargs):
        raise update.Interrupted(15)
    monkeypatch.setattr(deploy.update, "run", interrupted)
    with pytest.raises(update.Interrupted):
        deployer.change_site(SiteChange("test.gyyx.cn", "v1.3.0", None, "deploy"), settings())
    assert cli.checkout == DEPLOYED


TEST_IMAGE = NAMES.site_child("test.gyyx.cn", "image")
V120 = f"h/test.gyyx.cn/test.gyyx.cn:v1.2.0-develop-abc1234@sha256:{'1' * 64}"
V130 = f"h/test.gyyx.cn/test.gyyx.cn:v1.3.0-develop-abc1234@sha256:{'3' * 64}"


def test_a_build_targets_the_image_and_the_digest_it_pushed_enters_the_record(driver):
    deployer, cli, runs = driver(dict(DEPLOYED), set(ENVIRONMENT + TEST_SITE + SHOP_SITE + [TEST_IMAGE]),
                                 [update_config(DEPLOYED["tomcat-cd:versions"])])
    cli.runs("test.gyyx.cn", V120)
    deployer.change_site(SiteChange("test.gyyx.cn", "v1.3.0", Build("94", "abc1234"), "deploy"),
                         settings(build_images=True))
    ((planned, _),) = runs
    assert TEST_IMAGE in planned.targets  # v1.3.0 has no digest yet: it is built
    assert cli.checkout["tomcat-cd:images"] == {"test.gyyx.cn": [V120]}  # what v1.2.0 pushed, from the state


@pytest.mark.parametrize("image_in_state", [True, False])
def test_a_rollback_to_a_recorded_digest_builds_nothing(driver, image_in_state):
    state = set(ENVIRONMENT + TEST_SITE + SHOP_SITE + ([TEST_IMAGE] if image_in_state else []))
    deployer, cli, runs = driver({**DEPLOYED, "tomcat-cd:images": {"test.gyyx.cn": [V130, V120]}}, state,
                                 [update_config(DEPLOYED["tomcat-cd:versions"])])
    cli.updates[0]["config"]["tomcat-cd:images"] = {"value": json.dumps({"test.gyyx.cn": [V130, V120]})}
    deployer.change_site(SiteChange("test.gyyx.cn", "v1.2.0", Build("93", "abc1234"), "rollback"),
                         settings(build_images=True))
    ((planned, _),) = runs
    # The last build's Image leaves the state (retained: its image stays in Harbor); none is made.
    assert (TEST_IMAGE in planned.targets) == image_in_state
    assert cli.checkout["tomcat-cd:images"] == {"test.gyyx.cn": [V130, V120]}


def test_the_engine_error_names_the_resource_whose_block_it_ends():
    output = """Updating (develop):
  pulumi:pulumi:Stack: (same)
    [urn=urn:pulumi:develop::tomcat-cd::pulumi:pulumi:Stack::tomcat-cd-develop]
    ~ docker-build:index:Image: (update)
        [urn=urn:pulumi:develop::tomcat-cd::tomcat-cd:index:TomcatSite$docker-build:index:Image::test-gyyx-cn-image]
        tags: ["h/test.gyyx.cn/test.gyyx.cn:v2"]
error: failed to solve: h/template/tomcat:9: 401 Unauthorized
error: update failed
"""
    assert last_error_line(output) == ("test-gyyx-cn-image (docker-build:index:Image): "
                                       "error: failed to solve: h/template/tomcat:9: 401 Unauthorized")
    assert last_error_line("error: no stack named 'develop' found\n") == "error: no stack named 'develop' found"


def test_an_error_the_program_raised_before_any_resource_is_the_stacks():
    output = """Updating (develop):
  pulumi:pulumi:Stack: (same)
    [urn=urn:pulumi:develop::tomcat-cd::pulumi:pulumi:Stack::tomcat-cd-develop]
error: Pulumi.develop.yaml: tomcat-cd:builderEndpoint: builder tomcat-cd at tcp://b:1234 takes no connection
error: an unhandled error occurred: Program exited with non-zero exit code: 1
"""
    assert last_error_line(output) == ("tomcat-cd-develop (pulumi:pulumi:Stack): error: Pulumi.develop.yaml: "
                                       "tomcat-cd:builderEndpoint: builder tomcat-cd at tcp://b:1234 takes no connection")


def test_a_whole_stack_run_gets_the_stacks_parallel_unless_the_caller_gave_one(project):
    from cdctl.engine_commands import _with_parallel
    from tomcat_cd.core.settings import load_stack_file
    assert _with_parallel(["up", "--yes"], load_stack_file(project.root, "develop").parallel) == [
        "up", "--yes", "--parallel=128"]
    for given in (["up", "-p", "4"], ["up", "--parallel=4"], ["preview", "--parallel", "4"]):
        assert _with_parallel(given, 128) == given
    stack = project.root / "Pulumi.develop.yaml"
    document = yaml.safe_load(stack.read_text())
    document["config"]["tomcat-cd:parallel"] = 16
    stack.write_text(yaml.safe_dump(document))
    assert _with_parallel(["destroy"], load_stack_file(project.root, "develop").parallel) == ["destroy", "--parallel=16"]


@pytest.mark.parametrize("checkpoints,resources,at_end", [
    ("auto", 0, True), ("auto", 1, False), ("each-step", 0, False), ("at-end", 600, True)])
def test_a_whole_stack_update_saves_the_state_at_the_end_only_where_a_crash_loses_nothing(checkpoints, resources,
                                                                                          at_end):
    from tomcat_cd.core.settings import saves_state_at_end
    assert saves_state_at_end(checkpoints, resources) is at_end


@pytest.mark.parametrize("given,expected", [
    (None, "auto"), ("at-end", "at-end"), ("sometimes", "must be one of auto, each-step, at-end, got 'sometimes'")])
def test_checkpoints_is_a_stack_setting(project, given, expected):
    from tomcat_cd.core.errors import ConfigError
    from tomcat_cd.core.settings import load_stack_file
    stack = project.root / "Pulumi.develop.yaml"
    document = yaml.safe_load(stack.read_text())
    if given is not None:
        document["config"]["tomcat-cd:checkpoints"] = given
    stack.write_text(yaml.safe_dump(document))
    try:
        assert load_stack_file(project.root, "develop").checkpoints == expected
    except ConfigError as err:
        assert str(err.problems[0]) == f"Pulumi.develop.yaml: tomcat-cd:checkpoints: {expected}"


PINNED = {"test.gyyx.cn": {"by": "alice", "at": "2026-12-02T10:00:00Z", "reason": "order page broken", "version": "v1.2.0"}}


def pinned_history(pins: dict) -> list[dict]:
    recorded = update_config(DEPLOYED["tomcat-cd:versions"])
    recorded["config"]["tomcat-cd:pins"] = {"value": json.dumps(pins), "secret": False}
    return [recorded]


@pytest.mark.parametrize("pins, says", [
    (PINNED, 'tomcat-cd:pins["test.gyyx.cn"]: test.gyyx.cn is pinned at v1.2.0 by alice at 2026-12-02T10:00:00Z: '
             "order page broken; to go past it: --force --reason TEXT, or cdctl unpin test.gyyx.cn --env develop"),
    ({"*": {"by": "bob", "at": "2026-12-02T11:00:00Z", "reason": "sale"}},
     'tomcat-cd:pins["*"]: develop is frozen by bob at 2026-12-02T11:00:00Z: sale; to go past it: --force --reason '
     "TEXT, or cdctl unfreeze --env develop"),
])
def test_a_pinned_domain_or_a_frozen_environment_refuses_a_deploy_and_runs_nothing(driver, pins, says):
    deployer, cli, runs = driver(dict(DEPLOYED), set(ENVIRONMENT + TEST_SITE + SHOP_SITE), pinned_history(pins))
    with pytest.raises(ConfigError) as refused:
        deployer.change_site(SiteChange("test.gyyx.cn", "v1.3.0", None, "deploy"), settings())
    assert [str(p) for p in refused.value.problems] == [f"stack develop: {says}"]
    assert runs == [] and "tomcat-cd:versions" in cli.checkout
    assert cli.checkout["tomcat-cd:versions"]["test.gyyx.cn"] == "v1.2.0"


def test_a_forced_deploy_goes_past_the_pin_and_lifts_it(driver):
    deployer, cli, runs = driver(dict(DEPLOYED), set(ENVIRONMENT + TEST_SITE + SHOP_SITE), pinned_history(PINNED))
    deployer.change_site(SiteChange("test.gyyx.cn", "v1.3.0", None, "deploy", forced="hotfix"), settings())
    assert [p.targets for p, _ in runs] == [tuple(TEST_SITE)]
    assert cli.checkout["tomcat-cd:versions"]["test.gyyx.cn"] == "v1.3.0" and "tomcat-cd:pins" not in cli.checkout


def test_a_pin_changes_the_record_alone_with_an_update_of_the_environment(driver):
    from tomcat_cd.core.settings import Pin
    deployer, cli, runs = driver(dict(DEPLOYED), set(ENVIRONMENT + TEST_SITE + SHOP_SITE),
                                 [update_config(DEPLOYED["tomcat-cd:versions"])])
    pin = Pin("alice", "2026-12-02T10:00:00Z", "order page broken", "v1.2.0")
    deployer.change_site(SiteChange("test.gyyx.cn", None, None, "pin", pin_change=("test.gyyx.cn", pin),
                                    record_only=True), settings())
    ((planned, _),) = runs
    assert planned.targets == tuple(ENVIRONMENT) and not planned.refresh
    assert cli.checkout["tomcat-cd:versions"] == DEPLOYED["tomcat-cd:versions"]
    assert cli.checkout["tomcat-cd:pins"] == PINNED
