"""The pipeline tests' kubelet stand-in (tests/pipeline/pod.py) on a rendered Deployment:
what it passes to `docker run`, and that it refuses what it does not translate."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import pod
from tomcat_cd.core.plan import build_plan
from tomcat_cd.core.settings import load_stack_file

POD = "test-gyyx-cn-5d8f7c9b6-x2x7q"


@pytest.fixture
def deployment(project):
    settings = load_stack_file(project.root, "develop")
    plan = build_plan(settings, project.root, "abc1234")
    return next(site.deployment for site in plan.sites if site.domain == "test.gyyx.cn")


def test_the_container_gets_the_pod_specs_env_hosts_volumes_and_limit(deployment, tmp_path):
    args = pod.docker_run_args(deployment, POD, tmp_path, "c")
    pairs = list(zip(args, args[1:]))
    assert ("--env", f"POD_NAME={POD}") in pairs and ("--env", "APP_PROFILE=production") in pairs
    assert ("--env", "JAVA_OPTS=-Xms512m -Xmx768m -Dfile.encoding=UTF-8 -Duser.timezone=Asia/Shanghai") in pairs
    assert ("--add-host", "db.internal:10.0.0.5") in pairs and ("--add-host", "sso.gyyx.cn:10.0.0.9") in pairs
    node = tmp_path / "data/nodelogs/develop"
    assert ("--volume", f"{node}/tomcatlogs/test.gyyx.cn/{POD}:/usr/local/tomcat/logs") in pairs
    assert ("--volume", f"{node}/devlogs/test.gyyx.cn/{POD}:/data/logs") in pairs
    assert ("--memory", "1g") in pairs and args[-1] == pod.container(deployment)["image"]
    assert pod.probe_paths(deployment) == {"startupProbe": "/health", "readinessProbe": "/health"}
    assert pod.http_port(deployment) == 8080


@pytest.mark.parametrize("where,field", [("pod", "initContainers"), ("container", "workingDir")])
def test_a_field_it_does_not_translate_is_refused(deployment, tmp_path: Path, where, field):
    target = pod.pod_spec(deployment) if where == "pod" else pod.container(deployment)
    target[field] = "x"
    with pytest.raises(pod.UnsupportedField, match=field):
        pod.docker_run_args(deployment, POD, tmp_path, "c")
