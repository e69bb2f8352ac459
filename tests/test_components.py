"""The Pulumi program under Pulumi's mocks: what it registers, with which parents and options."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pulumi
import pytest

from pulumi_harness import IMAGE_TYPE, MOCK_DIGEST, Recorder, is_secret, k8s_objects, run_program
from tomcat_cd.core.plan import build_plan
from tomcat_cd.core.settings import parse_settings

from conftest import GIT_ID

CONFIG = {
    "harborHost": "harbor.gyyx.cn",
    "harborUsername": "robot$tomcat-cd",
    "harborPassword": "not-a-real-password",
    "buildImages": False,
}


def stack_config(project, stack: str) -> dict:
    """The stack file's values, as `pulumi config` would hand them to the program."""
    import yaml
    document = yaml.safe_load((project.root / f"Pulumi.{stack}.yaml").read_text())
    values = {k.split(":", 1)[1]: v for k, v in document["config"].items()}
    return {**values, **CONFIG}


@pytest.mark.parametrize("stack", ["develop", "master"])
def test_program_registers_exactly_what_render_writes(project, stack):
    """Render and the program share one code path: same objects, field for field."""
    config = stack_config(project, stack)
    recorder = run_program(project.root, stack, config, secret_keys=("harborPassword",))
    registered = k8s_objects(recorder)

    file_values = {k: v for k, v in config.items() if k != "harborPassword"}
    file_values["harborPassword"] = {"secure": "x"}
    settings = parse_settings(stack, file_values, f"Pulumi.{stack}.yaml")
    rendered = build_plan(settings, project.root, GIT_ID).objects()

    def comparable(objs):
        out = []
        for obj in objs:
            if obj["kind"] == "Secret":
                obj = {**obj, "stringData": {".dockerconfigjson": "<compared separately>"}}
            out.append(json.dumps(obj, sort_keys=True))
        return sorted(out)

    assert comparable(registered) == comparable(rendered)
    kinds = sorted(o["kind"] for o in registered)
    assert kinds.count("Deployment") == len(settings.versions) and kinds.count("Namespace") == 1


def test_pull_secret_is_a_pulumi_secret_holding_the_robot_login(project):
    recorder = run_program(project.root, "develop", stack_config(project, "develop"), secret_keys=("harborPassword",))
    (secret,) = recorder.of_type("kubernetes:core/v1:Secret")
    value = secret.inputs["stringData"]
    assert is_secret(value), f"{secret.name}: stringData must reach the engine as a secret"
    config = json.loads(value["value"][".dockerconfigjson"])
    assert config["auths"]["harbor.gyyx.cn"]["username"] == "robot$tomcat-cd"
    assert config["auths"]["harbor.gyyx.cn"]["password"] == "not-a-real-password"


def test_sites_are_components_parenting_their_objects(project):
    recorder = run_program(project.root, "master", stack_config(project, "master"), secret_keys=("harborPassword",))
    sites = recorder.of_type("tomcat-cd:index:TomcatSite")
    assert sorted(s.name for s in sites) == ["api-gyyx-cn", "shop-gyyx-cn", "test-gyyx-cn"]
    deployments = sorted(r.name for r in recorder.of_type("kubernetes:apps/v1:Deployment"))
    assert deployments == ["api-gyyx-cn-deployment", "shop-gyyx-cn-deployment", "test-gyyx-cn-deployment"]
    assert [r.name for r in recorder.of_type("tomcat-cd:index:Environment")] == ["master"]


def test_a_site_without_a_version_is_not_deployed(project):
    config = stack_config(project, "develop")
    config["versions"] = {"test.gyyx.cn": "v1.2.0"}
    recorder = run_program(project.root, "develop", config, secret_keys=("harborPassword",))
    assert [r.name for r in recorder.of_type("tomcat-cd:index:TomcatSite")] == ["test-gyyx-cn"]


@pytest.mark.parametrize("breakage", ["bad domain file", "port clash", "unknown version domain", "missing war"])
def test_bad_input_registers_nothing(project, tmp_path, breakage):
    config = stack_config(project, "develop")
    if breakage == "bad domain file":
        project.domain("broken.gyyx.cn", "nodePort: 99999\n")
    elif breakage == "port clash":
        project.domain("clash.gyyx.cn", "nodePort: 32001\n")
    elif breakage == "unknown version domain":
        config["versions"] = {**config["versions"], "nosuch.gyyx.cn": "v1"}
    else:
        config.update(buildImages=True, warRoot=str(tmp_path / "no-wars"))
    recorder = Recorder()
    with pytest.raises(pulumi.RunError, match=r"problem\(s\) in the domain files or stack config; nothing was changed"):
        run_program(project.root, "develop", config, secret_keys=("harborPassword",), recorder=recorder)
    assert recorder.resources == []


def _with_wars(tmp_path):
    wars = tmp_path / "wars"
    for domain, version in (("shop.gyyx.cn", "v2.4.1"), ("test.gyyx.cn", "v1.2.0")):
        (wars / domain / version).mkdir(parents=True)
        (wars / domain / version / "ROOT.war").write_bytes(b"PK\x03\x04 war of " + domain.encode())
    return wars


def test_image_build_context_is_staged_and_pushed_to_harbor(project, tmp_path, monkeypatch):
    monkeypatch.setenv("TOMCAT_CD_STATE_DIR", str(tmp_path / "state"))
    config = {**stack_config(project, "develop"), "buildImages": True, "warRoot": str(_with_wars(tmp_path)),
              "builder": "ci-builder"}
    recorder = run_program(project.root, "develop", config, secret_keys=("harborPassword",))
    images = {r.name: r.inputs for r in recorder.of_type(IMAGE_TYPE)}
    assert sorted(images) == ["shop-gyyx-cn-image", "test-gyyx-cn-image"]
    test_image = images["test-gyyx-cn-image"]
    tag = f"harbor.gyyx.cn/test.gyyx.cn/test.gyyx.cn:v1.2.0-develop-{GIT_ID}"
    assert test_image["tags"] == [tag] and test_image["push"] is True
    assert test_image["platforms"] == ["linux/amd64"] and test_image["builder"] == {"name": "ci-builder"}
    registries = test_image["registries"]
    assert is_secret(registries), "the registry login (with its password) must stay a secret"
    assert registries["value"] == [{"address": "harbor.gyyx.cn", "username": "robot$tomcat-cd",
                                    "password": "not-a-real-password"}]
    assert "buildArgs" not in test_image and "secrets" not in test_image  # the password goes nowhere else
    context = Path(test_image["context"]["location"])
    assert context == tmp_path / "state" / "build" / "develop" / "test.gyyx.cn"
    assert (context / "ROOT.war").read_bytes().endswith(b"test.gyyx.cn")
    assert (context / "config" / "hello.conf").is_file() and (context / "tomcat" / "server.xml").is_file()
    assert not any("not-a-real-password" in p.read_text(errors="replace") for p in context.rglob("*") if p.is_file())
    deployment = next(o for o in k8s_objects(recorder) if o["kind"] == "Deployment"
                      and o["metadata"]["name"] == "test-gyyx-cn")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == f"{tag}@{MOCK_DIGEST}"


def test_a_builder_endpoint_becomes_a_remote_buildx_builder(project, tmp_path, monkeypatch):
    monkeypatch.setenv("TOMCAT_CD_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    with socket.create_server(("127.0.0.1", 0)) as buildkitd:  # the program first tries a connection
        endpoint = f"tcp://127.0.0.1:{buildkitd.getsockname()[1]}"
        config = {**stack_config(project, "develop"), "buildImages": True, "warRoot": str(_with_wars(tmp_path)),
                  "builderEndpoint": endpoint}
        recorder = run_program(project.root, "develop", config, secret_keys=("harborPassword",))
    assert {r.inputs["builder"]["name"] for r in recorder.of_type(IMAGE_TYPE)} == {"tomcat-cd"}
    instance = json.loads((tmp_path / "docker/buildx/instances/tomcat-cd").read_text())
    assert instance["Driver"] == "remote" and instance["Nodes"][0]["Endpoint"] == endpoint


def test_a_builder_that_takes_no_connection_stops_the_program_before_any_resource(project, tmp_path, monkeypatch):
    monkeypatch.setenv("TOMCAT_CD_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    config = {**stack_config(project, "develop"), "buildImages": True, "warRoot": str(_with_wars(tmp_path)),
              "builderEndpoint": f"unix://{tmp_path / 'no-buildkitd.sock'}"}
    recorder = Recorder()
    with pytest.raises(pulumi.RunError, match=r"^Pulumi.develop.yaml: tomcat-cd:builderEndpoint: builder tomcat-cd "
                                              r"at unix://.*no-buildkitd.sock takes no connection \(No such file"):
        run_program(project.root, "develop", config, secret_keys=("harborPassword",), recorder=recorder)
    assert recorder.resources == [], "nothing registered"
    # With no image to build, the endpoint is not tried.
    config["buildImages"] = False
    deployments = run_program(project.root, "develop", config, secret_keys=("harborPassword",)).of_type(
        "kubernetes:apps/v1:Deployment")
    assert deployments


def test_a_version_whose_digest_the_record_holds_is_deployed_by_it_and_not_rebuilt(project, tmp_path, monkeypatch):
    monkeypatch.setenv("TOMCAT_CD_STATE_DIR", str(tmp_path / "state"))
    tag = f"harbor.gyyx.cn/test.gyyx.cn/test.gyyx.cn:v1.2.0-develop-{GIT_ID}"
    pushed = f"{tag}@sha256:{'a' * 64}"
    other_tag = f"harbor.gyyx.cn/shop.gyyx.cn/shop.gyyx.cn:v2.4.0-develop-{GIT_ID}@sha256:{'b' * 64}"
    config = {**stack_config(project, "develop"), "buildImages": True, "warRoot": str(_with_wars(tmp_path)),
              "images": {"test.gyyx.cn": [pushed], "shop.gyyx.cn": [other_tag]}}
    recorder = run_program(project.root, "develop", config, secret_keys=("harborPassword",))
    assert [r.name for r in recorder.of_type(IMAGE_TYPE)] == ["shop-gyyx-cn-image"]  # v2.4.1 has no digest yet
    deployment = next(o for o in k8s_objects(recorder) if o["kind"] == "Deployment"
                      and o["metadata"]["name"] == "test-gyyx-cn")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == pushed


def test_production_namespace_is_protected(project, monkeypatch):
    protected = []
    original = pulumi.CustomResource.__init__

    def spy(self, t, name, props=None, opts=None, *args, **kwargs):
        if t == "kubernetes:core/v1:Namespace":
            protected.append((name, bool(opts and opts.protect)))
        return original(self, t, name, props, opts, *args, **kwargs)

    monkeypatch.setattr(pulumi.CustomResource, "__init__", spy)
    run_program(project.root, "master", stack_config(project, "master"), secret_keys=("harborPassword",))
    run_program(project.root, "develop", stack_config(project, "develop"), secret_keys=("harborPassword",))
    assert protected == [("master-namespace", True), ("develop-namespace", False)]


def test_render_mode_by_default_and_cluster_mode_when_configured(project):
    recorder = run_program(project.root, "develop", stack_config(project, "develop"), secret_keys=("harborPassword",))
    (provider,) = recorder.of_type("pulumi:providers:kubernetes")
    assert provider.name == "render"
    # Relative to the project, where the provider runs: no input depends on the checkout's path.
    assert provider.inputs["renderYamlToDirectory"] == ".state/manifests/develop"
    assert provider.inputs["kubeconfig"] == ""  # an ambient KUBECONFIG must not reach render mode
    config = {**stack_config(project, "develop"), "kubeconfig": "/etc/kube/test.conf"}
    recorder = run_program(project.root, "develop", config, secret_keys=("harborPassword",))
    (provider,) = recorder.of_type("pulumi:providers:kubernetes")
    assert provider.name == "cluster" and provider.inputs["kubeconfig"] == "/etc/kube/test.conf"
    assert "renderYamlToDirectory" not in provider.inputs


def test_a_cluster_secret_behind_an_empty_passphrase_is_refused(project, monkeypatch):
    config = {**stack_config(project, "develop"), "target": "cluster"}
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "")
    monkeypatch.delenv("PULUMI_CONFIG_PASSPHRASE_FILE", raising=False)
    recorder = Recorder()
    with pytest.raises(pulumi.RunError):
        run_program(project.root, "develop", config, secret_keys=("harborPassword",), recorder=recorder)
    assert recorder.resources == []
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "a real one")
    assert run_program(project.root, "develop", config, secret_keys=("harborPassword",)).resources


PLATFORM_CONFIG = {"elastic": {"version": "8.19.21", "replicas": 1}, "elasticPassword": "es-test-pw",
                   "kibanaPassword": "kb-test-pw", "filebeatPassword": "fb-test-pw"}


def test_platform_program_registers_exactly_what_render_writes(project):
    from tomcat_cd.core.platform_plan import build_platform_plan
    from tomcat_cd.core.platform_settings import parse_platform_settings
    recorder = run_program(project.root, "platform", PLATFORM_CONFIG, secret_keys=("elasticPassword", "kibanaPassword", "filebeatPassword"))
    registered = k8s_objects(recorder)
    values = {**PLATFORM_CONFIG, **{k: {"secure": "x"} for k in ("elasticPassword", "kibanaPassword", "filebeatPassword")}}
    plan = build_platform_plan(parse_platform_settings("platform", values, "Pulumi.platform.yaml"), project.root,
                               secret={"elasticPassword": "es-test-pw", "kibanaPassword": "kb-test-pw", "filebeatPassword": "fb-test-pw"}.get)
    dump = lambda objs: sorted(json.dumps(o, sort_keys=True) for o in objs)
    assert dump(registered) == dump(plan.objects())
    (secret,) = recorder.of_type("kubernetes:core/v1:Secret")
    assert is_secret(secret.inputs["stringData"]), "the Elasticsearch passwords must stay secrets"
    groups = sorted(r.name for r in recorder.resources if r.typ.startswith("tomcat-cd:index:"))
    assert groups == ["logging", "monitoring"]


def test_weave_scope_is_behind_a_switch(project):
    config = {**PLATFORM_CONFIG, "weaveScope": {"enabled": False}}
    recorder = run_program(project.root, "platform", config, secret_keys=("elasticPassword", "kibanaPassword", "filebeatPassword"))
    assert not recorder.of_type("tomcat-cd:index:Monitoring")
    assert not [r for r in recorder.resources if "weave" in r.name]


def test_a_builder_endpoint_is_tried_with_a_real_connection(tmp_path):
    from tomcat_cd.program.main import builder_unreachable
    with socket.socket(socket.AF_UNIX) as unix, socket.create_server(("127.0.0.1", 0)) as tcp:
        unix.bind(str(tmp_path / "buildkitd.sock"))
        unix.listen()
        assert builder_unreachable(f"unix://{tmp_path / 'buildkitd.sock'}") is None
        assert builder_unreachable(f"tcp://127.0.0.1:{tcp.getsockname()[1]}") is None
        closed = tcp.getsockname()[1]
    assert builder_unreachable(f"tcp://127.0.0.1:{closed}") == "Connection refused"
    assert builder_unreachable(f"unix://{tmp_path / 'gone.sock'}") == "No such file or directory"
    assert builder_unreachable("tcp://buildkit") == "no port in 'buildkit'"
