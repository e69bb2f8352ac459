"""Stack settings: defaults, the versions map, secrets, and the environment of a stack."""

from __future__ import annotations

import subprocess

import pytest

from conftest import REPO
from tomcat_cd.core.errors import ConfigError, Problems
from tomcat_cd.core.checkout import cd_git_id
from tomcat_cd.core.settings import SiteMaps, load_stack_file, parse_settings, read_site_maps
from tomcat_cd.core.stack_file import IMAGES_KEPT


def problems(stack: str, values: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(stack, values, f"Pulumi.{stack}.yaml")
    return [str(p) for p in caught.value.problems]


def test_repository_stacks_read_with_their_environment_and_defaults():
    # Settings only: nothing here looks at the warRoot folder itself.
    develop = load_stack_file(REPO, "develop")
    master = load_stack_file(REPO, "master")
    assert (develop.environment, develop.namespace, develop.protect_namespace) == ("develop", "develop", False)
    assert (master.environment, master.namespace, master.protect_namespace) == ("master", "master", True)
    assert develop.versions == {"shop.gyyx.cn": "v2.4.1", "test.gyyx.cn": "v1.2.0"}
    assert master.war_root == "/data/jks-cd-config" and master.domains_dir == "domains"
    # No cluster configured: objects are rendered to files and no image is built.
    assert (master.target, master.build_images) == ("render", False)
    assert master.pull_secret_name is None  # no robot account configured in the repository


def test_structured_values_from_pulumi_arrive_as_json_text():
    settings = parse_settings("develop", {
        "harborHost": "harbor.example.com",
        "versions": '{"a.example.com": "v1"}',
        "buildImages": "false",
        "protectNamespace": "true",
    }, "Pulumi.develop.yaml")
    assert settings.versions == {"a.example.com": "v1"}
    assert settings.build_images is False and settings.protect_namespace is True


def test_unknown_stack_name_needs_an_explicit_environment():
    assert problems("staging", {"harborHost": "h.example.com"}) == [
        "Pulumi.staging.yaml: tomcat-cd:environment: unknown environment 'staging' for stack 'staging': "
        "name the stack master or develop, or set tomcat-cd:environment"
    ]
    copy = parse_settings("develop-e2e", {"harborHost": "h.example.com", "environment": "develop"}, "x")
    assert copy.environment == "develop" and copy.stack == "develop-e2e"


@pytest.mark.parametrize("values,expected", [
    ({}, "Pulumi.develop.yaml: tomcat-cd:harborHost: is required"),
    ({"harborHost": "h.example.com", "harborPasword": "x"},
     "Pulumi.develop.yaml: tomcat-cd:harborPasword: unknown key (known keys: baseImage, buildImages, builder, builderEndpoint, "
     "builds, checkpoints, domainsDir, elasticsearchPassword, elasticsearchUrl, elasticsearchUsername, environment, harborHost, "
     "harborPassword, harborUsername, healthGate, images, kubeconfig, markers, nodeAddress, notifyFormat, notifyOn, "
     "notifySecret, notifyUrl, parallel, pins, "
     "protectNamespace, renderDir, target, versions, warRoot)"),
    ({"harborHost": "h.example.com", "target": "k8s"},
     "Pulumi.develop.yaml: tomcat-cd:target: must be render or cluster, got 'k8s'"),
    ({"harborHost": "h.example.com", "harborPassword": "plain"},
     "Pulumi.develop.yaml: tomcat-cd:harborPassword: must be a secret: pulumi config set --secret harborPassword -s develop"),
    ({"harborHost": "h.example.com", "versions": {"Not A Domain": "v1"}},
     'Pulumi.develop.yaml: tomcat-cd:versions["Not A Domain"]: is not a domain such as test.gyyx.cn'),
    ({"harborHost": "h.example.com", "versions": {"a.example.com": "v1 beta"}},
     "Pulumi.develop.yaml: tomcat-cd:versions[\"a.example.com\"]: must be a version such as v1.2.0 "
     "(letters, digits, . _ -), got 'v1 beta'"),
    ({"harborHost": "h.example.com", "versions": {"a.example.com": 1.2}},
     "Pulumi.develop.yaml: tomcat-cd:versions[\"a.example.com\"]: must be a version such as v1.2.0 "
     "(letters, digits, . _ -), got a number (set it with pulumi config set --path --type string)"),
    ({"harborHost": "h.example.com", "buildImages": "no"},
     "Pulumi.develop.yaml: tomcat-cd:buildImages: must be true or false, got a string"),
])
def test_bad_stack_values(values, expected):
    assert problems("develop", values) == [expected]


def test_a_secret_from_the_stack_file_is_recognised_without_its_value(project):
    project.stack("develop", """
        config:
          tomcat-cd:harborHost: harbor.example.com
          tomcat-cd:harborUsername: robot$cd
          tomcat-cd:harborPassword:
            secure: AAABAJ0ciphertext
        """)
    settings = load_stack_file(project.root, "develop")
    assert settings.harbor_password_set and settings.pull_secret_name == "harbor-pull"
    assert "AAAB" not in repr(settings)


@pytest.mark.parametrize("values,target,build", [
    ({}, "render", False),
    ({"target": "cluster"}, "cluster", True),
    ({"kubeconfig": "/etc/kube/prod.conf"}, "cluster", True),
    ({"target": "cluster", "buildImages": False}, "cluster", False),
])
def test_target_and_image_builds_follow_whether_a_cluster_is_configured(values, target, build):
    settings = parse_settings("master", {"harborHost": "h.example.com", **values}, "Pulumi.master.yaml")
    assert (settings.target, settings.build_images) == (target, build)


def test_version_overrides_and_missing_stack_file(project):
    settings = load_stack_file(project.root, "master", {"test.gyyx.cn": "v9.9.9"})
    assert settings.versions["test.gyyx.cn"] == "v9.9.9"
    assert settings.versions["api.gyyx.cn"] == "v3.0.2"
    with pytest.raises(ConfigError, match=r"Pulumi.prod.yaml: no such stack file .* \(stacks: develop, master, platform\)"):
        load_stack_file(project.root, "prod")


def test_cd_git_id_from_environment_or_git(monkeypatch, tmp_path):
    monkeypatch.setenv("CD_GIT_ID", "0123456789abcdef")
    assert cd_git_id(tmp_path) == "0123456"
    monkeypatch.setenv("CD_GIT_ID", "nothex!")
    with pytest.raises(ConfigError, match="CD_GIT_ID: must be a hex git id"):
        cd_git_id(tmp_path)
    monkeypatch.delenv("CD_GIT_ID")
    with pytest.raises(ConfigError, match="not a git checkout with a commit: set CD_GIT_ID"):
        cd_git_id(tmp_path)


def test_builds_name_the_image_tag_of_each_deployed_site(project, tmp_path):
    from tomcat_cd.core.plan import build_plan
    project.stack("develop", """
        config:
          tomcat-cd:harborHost: harbor.gyyx.cn
          tomcat-cd:versions: {test.gyyx.cn: v1.2.0, shop.gyyx.cn: v2.4.1}
          tomcat-cd:builds:
            test.gyyx.cn: {buildId: 92, gitId: 3fdd00f, by: jenkins}
        """)
    settings = load_stack_file(project.root, "develop")
    assert settings.builds["test.gyyx.cn"].build_id == "92"  # a build number set without --type string
    images = {s.domain: s.image for s in build_plan(settings, project.root, "abc1234").sites}
    assert images == {"shop.gyyx.cn": "harbor.gyyx.cn/shop.gyyx.cn/shop.gyyx.cn:v2.4.1-develop-abc1234",
                      "test.gyyx.cn": "harbor.gyyx.cn/test.gyyx.cn/test.gyyx.cn:v1.2.0-develop-3fdd00f"}
    # A new version (Jenkins' VERSION) is a new build, tagged with this checkout's git id.
    overridden = load_stack_file(project.root, "develop", {"test.gyyx.cn": "v1.3.0"})
    assert "test.gyyx.cn" not in overridden.builds


def test_bad_build_records():
    assert problems("develop", {"harborHost": "h.example.com",
                                "builds": {"a.example.com": {"gitId": "zzz", "when": "now"}}}) == [
        'Pulumi.develop.yaml: tomcat-cd:builds["a.example.com"].gitId: must be a hex git id, got \'zzz\'',
        'Pulumi.develop.yaml: tomcat-cd:builds["a.example.com"].when: unknown key (known keys: buildId, by, gitId, warSha256)',
    ]


def test_tool_pins_agree_with_the_python_sdks():
    """The engine's plugins must be the versions the Python SDKs ask for."""
    pins = dict(line.split("==") for line in (REPO / "requirements.txt").read_text().split() if "==" in line)
    env = dict(line.split("=", 1) for line in (REPO / "scripts/versions.env").read_text().splitlines()
               if "=" in line and not line.startswith("#"))
    assert env["PULUMI_KUBERNETES_VERSION"] == pins["pulumi-kubernetes"]
    assert env["PULUMI_COMMAND_VERSION"] == pins["pulumi-command"]


@pytest.mark.parametrize("values,expected", [
    ({"kibana": {"nodePort": 29999}}, "Pulumi.platform.yaml: tomcat-cd:kibana.nodePort: must be between 30000 and 32767, got 29999"),
    ({"weaveScope": {"nodePort": 30601}}, "Pulumi.platform.yaml: tomcat-cd:weaveScope.nodePort: 30601 is also tomcat-cd:kibana.nodePort"),
    ({"elastic": {"heap": "lots"}}, "Pulumi.platform.yaml: tomcat-cd:elastic.heap: must be a JVM heap size such as 1g, got 'lots'"),
    ({"elasticPassword": "plain"}, "Pulumi.platform.yaml: tomcat-cd:elasticPassword: must be a secret: pulumi config set --secret elasticPassword -s platform"),
])
def test_platform_settings_problems(values, expected):
    from tomcat_cd.core.platform_settings import parse_platform_settings
    with pytest.raises(ConfigError) as caught:
        parse_platform_settings("platform", values, "Pulumi.platform.yaml")
    assert [str(p) for p in caught.value.problems] == [expected]


def test_platform_ports_default_below_every_site_port(project):
    from tomcat_cd.core.platform_settings import parse_platform_settings
    from tomcat_cd.core.model import load_sites
    settings = parse_platform_settings("platform", {}, "Pulumi.platform.yaml")
    lowest_site_port = min(s.node_port(env) for s in load_sites(project.domains) for env in ("master", "develop"))
    assert max(settings.kibana_node_port, settings.weave_scope_node_port) < 31001 <= lowest_site_port


def test_a_cluster_platform_needs_its_passwords(project):
    from tomcat_cd.core.platform_plan import build_platform_plan
    from tomcat_cd.core.platform_settings import parse_platform_settings
    settings = parse_platform_settings("platform", {"target": "cluster"}, "Pulumi.platform.yaml")
    with pytest.raises(ConfigError) as caught:
        build_platform_plan(settings, project.root)
    assert [p.field for p in caught.value.problems] == ["tomcat-cd:elasticPassword", "tomcat-cd:filebeatPassword",
                                                        "tomcat-cd:kibanaPassword"]


def test_stack_files_rewritten_by_pulumi_read_the_same(project):
    """`pulumi config set` rewrites the stack file with every scalar quoted."""
    project.stack("develop", """
        config:
          tomcat-cd:harborHost: harbor.gyyx.cn
          tomcat-cd:buildImages: "false"
          tomcat-cd:protectNamespace: "true"
          tomcat-cd:versions:
            test.gyyx.cn: v1.2.0
        """)
    settings = load_stack_file(project.root, "develop")
    assert (settings.build_images, settings.protect_namespace) == (False, True)


def test_the_git_id_read_from_dot_git_is_the_one_git_gives(monkeypatch, tmp_path):
    monkeypatch.delenv("CD_GIT_ID")
    repo = tmp_path / "repo"
    git = lambda *args, cwd=repo: subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                                                 cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()
    repo.mkdir()
    git("init", "-q")
    with pytest.raises(ConfigError, match="not a git checkout with a commit"):
        cd_git_id(repo)  # no commit yet
    (repo / "a").write_text("1")
    git("add", "a")
    git("commit", "-qm", "one")
    assert cd_git_id(repo) == git("rev-parse", "--short=7", "HEAD")  # a loose ref
    git("pack-refs", "--all")
    (repo / "sub").mkdir()
    assert cd_git_id(repo / "sub") == git("rev-parse", "--short=7", "HEAD")  # packed, from a subfolder
    first = git("rev-parse", "HEAD")
    (repo / "a").write_text("2")
    git("commit", "-qam", "two")
    git("worktree", "add", "-q", "--detach", str(tmp_path / "tree"), first)
    assert cd_git_id(tmp_path / "tree") == first[:7]  # a worktree with a detached HEAD
    git("checkout", "-q", "--detach", first)
    assert cd_git_id(repo) == first[:7]


PUSHED = [f"harbor.gyyx.cn/test.gyyx.cn/test.gyyx.cn:v{n}-develop-abc1234@sha256:{str(n) * 64}" for n in range(1, 10)]


def test_the_record_keeps_the_newest_pushed_images_of_each_domain_first():
    maps = SiteMaps(images={"test.gyyx.cn": tuple(PUSHED[:3])})
    newer = maps.with_pushed({"test.gyyx.cn": PUSHED[1], "shop.gyyx.cn": PUSHED[4]})
    assert newer.images == {"shop.gyyx.cn": (PUSHED[4],), "test.gyyx.cn": (PUSHED[1], PUSHED[0], PUSHED[2])}
    many = SiteMaps()
    for ref in PUSHED + [p.replace("develop", "master") for p in PUSHED]:
        many = many.with_pushed({"test.gyyx.cn": ref})
    assert len(many.images["test.gyyx.cn"]) == IMAGES_KEPT and many.images["test.gyyx.cn"][0].endswith("9" * 64)
    assert newer.with_site("test.gyyx.cn", None, None).images == newer.images  # a delete keeps them for a rollback


def test_a_pushed_image_must_name_its_digest():
    problems: list = []
    maps = read_site_maps({"images": {"test.gyyx.cn": [PUSHED[0], "harbor.gyyx.cn/test.gyyx.cn/test.gyyx.cn:v1"]}},
                          Problems("Pulumi.develop.yaml", problems))
    assert maps.images == {}
    assert [str(p) for p in problems] == [
        'Pulumi.develop.yaml: tomcat-cd:images["test.gyyx.cn"][1]: must be an image pushed by digest '
        "(<host>/<repo>:<tag>@sha256:<hex>), got 'harbor.gyyx.cn/test.gyyx.cn/test.gyyx.cn:v1'"]


@pytest.mark.parametrize("given,expected", [(None, 128), ("16", 16), (200, 200)])
def test_parallel_defaults_to_128_and_reads_as_pulumi_hands_it_over(given, expected):
    values = {"harborHost": "h.example.com", **({"parallel": given} if given is not None else {})}
    assert parse_settings("develop", values, "Pulumi.develop.yaml").parallel == expected


def test_parallel_is_bounded():
    with pytest.raises(ConfigError, match=r"tomcat-cd:parallel: must be between 1 and 1000"):
        parse_settings("develop", {"harborHost": "h.example.com", "parallel": 0}, "Pulumi.develop.yaml")
