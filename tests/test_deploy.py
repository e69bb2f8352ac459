"""The deploy driver with the Pulumi CLI layer faked: which resources an update targets,
what it writes to the stack config, and how a failed step restores it. The same driver
runs against the real engine in test_engine.py."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from pulumi import automation as auto
from pulumi.automation._cmd import CommandResult

from tomcat_cd.driver.deploy import Cancelled, Deployer, StepFailed
from tomcat_cd.core.settings import Build

SITE = "urn:pulumi:develop::tomcat-cd::tomcat-cd:index:TomcatSite"


class FakeStack:
    """The slice of `auto.Stack` the driver uses, over an in-memory config and state."""

    def __init__(self, config: dict, resources: list[dict], fail_on: str | None = None):
        self.config = config
        self.resources = resources
        self.fail_on = fail_on
        self.updates = 2 if resources else 0
        self.calls: list[tuple] = []
        self.workspace = SimpleNamespace(project_settings=lambda: SimpleNamespace(name="tomcat-cd"), env_vars={})
        self.targeted_site: list[str | None] = []
        """TOMCAT_CD_TARGETED_SITE as each preview/up saw it."""

    def get_all_config(self):
        return {k: auto.ConfigValue(json.dumps(v)) for k, v in self.config.items()}

    def export_stack(self):
        return SimpleNamespace(deployment={"resources": self.resources})

    def _run(self, kind, **kwargs):
        self.calls.append((kind, kwargs.get("target"), kwargs.get("message")))
        self.targeted_site.append(self.workspace.env_vars.get("TOMCAT_CD_TARGETED_SITE"))
        if self.fail_on == kind:
            raise auto.errors.CommandError(CommandResult(stdout="", stderr="error: boom in " + kind, code=1))

    def preview(self, **kwargs):
        self._run("preview", **kwargs)

    def up(self, **kwargs):
        self._run("up", **kwargs)

    def history(self, page_size=None, show_secrets=True):
        # The file backend numbers every update 0; the driver counts positions.
        updates = [SimpleNamespace(version=0)] * (self.updates + sum(kind == "up" for kind, *_ in self.calls))
        return updates[:page_size] if page_size else updates


@pytest.fixture
def driver(tmp_path, monkeypatch):
    def make(config: dict, resources: list[dict], fail_on: str | None = None):
        stack = FakeStack(config, resources, fail_on)
        deployer = Deployer(tmp_path, "develop", out=lambda line: None, color="never")
        monkeypatch.setattr(deployer, "stack", lambda: stack)
        monkeypatch.setattr(deployer, "_run_up", lambda stack, targets, message, refresh:
                            stack.up(target=targets, message=message))

        def fake_cli(*args: str) -> None:
            # What `pulumi config set-all --json` / `config rm` would do to the stack file.
            if args[:2] == ("config", "set-all"):
                for key, value in json.loads(args[3]).items():
                    stack.config[key] = value["objectValue"]
            elif args[:2] == ("config", "rm"):
                stack.config.pop(args[2])
        monkeypatch.setattr(deployer, "_pulumi", fake_cli)
        return deployer, stack
    return make


ENVIRONMENT = [{"type": "tomcat-cd:index:Environment", "urn": "urn:pulumi:develop::tomcat-cd::tomcat-cd:index:Environment::develop"}]
TEST_SITE = [{"type": "tomcat-cd:index:TomcatSite", "urn": f"{SITE}::test-gyyx-cn"},
             {"urn": f"{SITE}$kubernetes:apps/v1:Deployment::test-gyyx-cn-deployment"},
             {"urn": f"{SITE}$kubernetes:core/v1:Service::test-gyyx-cn-service"}]


def test_a_deploy_targets_the_site_and_records_version_and_build(driver):
    deployer, stack = driver({"tomcat-cd:versions": {"test.gyyx.cn": "v1.2.0", "api.gyyx.cn": "v3"}},
                             ENVIRONMENT + TEST_SITE)
    number = deployer.change_site("test.gyyx.cn", "1.10", Build("93", "3fdd00f", "jenkins"), "deploy")
    assert number == 3
    assert stack.config["tomcat-cd:versions"] == {"api.gyyx.cn": "v3", "test.gyyx.cn": "1.10"}
    assert stack.config["tomcat-cd:builds"] == {"test.gyyx.cn": {"buildId": "93", "gitId": "3fdd00f", "by": "jenkins"}}
    # --yes: no separate preview; the update targets the site, its Deployment and Service.
    assert stack.calls == [("up", [f"{SITE}::test-gyyx-cn",
                                   f"{SITE}$kubernetes:apps/v1:Deployment::test-gyyx-cn-deployment",
                                   f"{SITE}$kubernetes:core/v1:Service::test-gyyx-cn-service"], "deploy")]
    # The program registers that one site only, during that update only.
    assert stack.targeted_site == ["test.gyyx.cn"] and stack.workspace.env_vars == {}


def test_a_new_site_with_images_targets_its_image_too(driver):
    deployer, stack = driver({}, ENVIRONMENT)
    deployer.change_site("new.gyyx.cn", "v1", Build("1", "abcdef1"), "deploy", build_images=True)
    targets = stack.calls[0][1]
    assert f"{SITE}$docker:index/image:Image::new-gyyx-cn-image" in targets and len(targets) == 4


def test_the_first_update_of_a_stack_updates_everything(driver):
    deployer, stack = driver({}, [])
    deployer.change_site("test.gyyx.cn", "v1", Build("1", "abcdef1"), "deploy")
    assert stack.calls == [("up", None, "deploy")]
    assert stack.targeted_site == [None], "a full update registers every site"


def test_a_delete_targets_what_exists_and_drops_the_records(driver):
    deployer, stack = driver({"tomcat-cd:versions": {"test.gyyx.cn": "v1.2.0"},
                              "tomcat-cd:builds": {"test.gyyx.cn": {"gitId": "3fdd00f"}}}, ENVIRONMENT + TEST_SITE)
    deployer.change_site("test.gyyx.cn", None, None, "delete")
    assert "tomcat-cd:versions" not in stack.config and "tomcat-cd:builds" not in stack.config
    assert len(stack.calls[0][1]) == 3


@pytest.mark.parametrize("fail_on", ["up", "preview"])
def test_a_failed_step_is_named_and_the_config_restored(driver, fail_on):
    before = {"tomcat-cd:versions": {"test.gyyx.cn": "v1.2.0"}}
    deployer, stack = driver(json.loads(json.dumps(before)), ENVIRONMENT + TEST_SITE, fail_on=fail_on)
    confirm = (lambda: True) if fail_on == "preview" else None
    with pytest.raises(StepFailed) as caught:
        deployer.change_site("test.gyyx.cn", "v1.3.0", Build("94", "3fdd00f"), "deploy", confirm)
    step = "update" if fail_on == "up" else "preview"
    assert str(caught.value) == f"step '{step}' failed: error: boom in {fail_on}"
    assert stack.config == before


def test_saying_no_after_the_preview_changes_nothing(driver):
    before = {"tomcat-cd:versions": {"test.gyyx.cn": "v1.2.0"}}
    deployer, stack = driver(json.loads(json.dumps(before)), ENVIRONMENT + TEST_SITE)
    with pytest.raises(Cancelled):
        deployer.change_site("test.gyyx.cn", "v1.3.0", Build("94", "3fdd00f"), "deploy", confirm=lambda: False)
    assert [call[0] for call in stack.calls] == ["preview"]
    assert stack.config == before
