"""Pure builders: every convention of SEED_CONVENTIONS.md asserted on the objects themselves."""

from __future__ import annotations

import posixpath
from pathlib import Path
from xml.etree import ElementTree

import pytest

from tomcat_cd.core import conventions
from tomcat_cd.core.builders import dockerfile, kubernetes, tomcat
from tomcat_cd.core.model import load_sites

GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture
def test_site(project):
    return {s.domain: s for s in load_sites(project.domains)}["test.gyyx.cn"]


def container(deployment):
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    return only


@pytest.mark.parametrize("domain,name", [("test.gyyx.cn", "test-gyyx-cn"), ("a.b.c.d.example.com", "a-b-c-d-example-com")])
def test_object_names_are_the_domain_with_dashes(domain, name):
    assert conventions.k8s_name(domain) == name


@pytest.mark.parametrize("environment,port", [("master", 32001), ("develop", 31001)])
def test_ports_are_paired_one_to_one(test_site, environment, port):
    svc = kubernetes.service(test_site, environment, "v1.2.0")
    (p,) = svc["spec"]["ports"]
    assert svc["spec"]["type"] == "NodePort"
    assert (p["nodePort"], p["port"], p["targetPort"]) == (port, 8080, "http")
    assert svc["metadata"]["namespace"] == environment
    assert svc["spec"]["selector"] == {"app": "test-gyyx-cn"}


def test_image_names_follow_harbor_projects():
    assert conventions.image_ref("harbor.gyyx.cn", "test.gyyx.cn", "v1.2.0", "develop", "3fdd00f") == \
        "harbor.gyyx.cn/test.gyyx.cn/test.gyyx.cn:v1.2.0-develop-3fdd00f"
    assert conventions.base_image_ref("h.io", "tomcat:9.0-jdk8") == "h.io/template/tomcat:9.0-jdk8"
    assert conventions.base_image_ref("h.io", "base/tomcat:9") == "h.io/base/tomcat:9"
    assert conventions.base_image_ref("h.io", "other.io/x/tomcat:9") == "other.io/x/tomcat:9"
    assert conventions.war_path("/data/jks-cd-config", "test.gyyx.cn", "v1.2.0") == \
        "/data/jks-cd-config/test.gyyx.cn/v1.2.0/ROOT.war"


def test_deployment_identity_selector_and_rollout(test_site):
    dep = kubernetes.deployment(test_site, "master", "v1.2.0", "img:1", "harbor-pull")
    spec = dep["spec"]
    assert dep["metadata"]["name"] == "test-gyyx-cn" and dep["metadata"]["namespace"] == "master"
    assert spec["replicas"] == 2
    template_labels = spec["template"]["metadata"]["labels"]
    assert spec["selector"]["matchLabels"].items() <= template_labels.items()
    # Never fewer ready pods than desired while a new version rolls out.
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}}
    assert spec["template"]["spec"]["imagePullSecrets"] == [{"name": "harbor-pull"}]
    assert dep["metadata"]["annotations"]["tomcat-cd/version"] == "v1.2.0"


def test_hosts_become_host_aliases(test_site):
    pod = kubernetes.deployment(test_site, "develop", "v1", "img", None)["spec"]["template"]["spec"]
    assert pod["hostAliases"] == [{"ip": "10.0.0.5", "hostnames": ["db.internal", "cache.internal"]},
                                  {"ip": "10.0.0.9", "hostnames": ["sso.gyyx.cn"]}]
    assert "imagePullSecrets" not in pod


def test_probes_resources_and_jvm_options(test_site):
    c = container(kubernetes.deployment(test_site, "develop", "v1", "img", None))
    assert c["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert c["startupProbe"]["failureThreshold"] * c["startupProbe"]["periodSeconds"] == 300
    assert c["livenessProbe"]["tcpSocket"] == {"port": "http"}
    assert c["resources"] == {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "1Gi"}}
    env = {e["name"]: e for e in c["env"]}
    assert env["JAVA_OPTS"]["value"] == "-Xms512m -Xmx768m -Dfile.encoding=UTF-8 -Duser.timezone=Asia/Shanghai"
    assert env["APP_PROFILE"]["value"] == "production"
    assert env["POD_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}


@pytest.mark.parametrize("environment", ["master", "develop"])
def test_each_pod_writes_each_log_kind_into_its_own_node_folder(test_site, environment):
    """hostPath + subPathExpr must compose to /data/nodelogs/<env>/<kind>/<domain>/<pod>/."""
    dep = kubernetes.deployment(test_site, environment, "v1", "img", None)
    pod = dep["spec"]["template"]["spec"]
    volumes = {v["name"]: v["hostPath"] for v in pod["volumes"]}
    mounts = {m["name"]: m for m in container(dep)["volumeMounts"]}
    pod_name = "test-gyyx-cn-76d9d8d5b5-hdnql"
    seen = {}
    for kind in ("accesslogs", "devlogs", "tomcatlogs"):
        assert volumes[kind]["type"] == "DirectoryOrCreate"
        sub = mounts[kind]["subPathExpr"].replace("$(POD_NAME)", pod_name)
        seen[kind] = (posixpath.join(volumes[kind]["path"], sub), mounts[kind]["mountPath"])
    assert seen == {
        "accesslogs": (f"/data/nodelogs/{environment}/accesslogs/test.gyyx.cn/{pod_name}", "/usr/local/tomcat/accesslogs"),
        "devlogs": (f"/data/nodelogs/{environment}/devlogs/test.gyyx.cn/{pod_name}", "/data/logs"),
        "tomcatlogs": (f"/data/nodelogs/{environment}/tomcatlogs/test.gyyx.cn/{pod_name}", "/usr/local/tomcat/logs"),
    }


def test_pull_secret_carries_a_docker_config_for_harbor():
    config = kubernetes.docker_config_json("harbor.example.com", "robot$cd", "pw")
    assert config == ('{"auths": {"harbor.example.com": {"auth": "cm9ib3QkY2Q6cHc=", '
                      '"password": "pw", "username": "robot$cd"}}}')
    secret = kubernetes.pull_secret("master", config)
    assert secret["type"] == "kubernetes.io/dockerconfigjson"
    assert secret["metadata"] == {"name": "harbor-pull", "namespace": "master"}


def test_tomcat_access_log_valve_writes_into_the_accesslogs_mount():
    root = ElementTree.fromstring(tomcat.server_xml())
    (valve,) = [v for v in root.iter("Valve") if v.get("className").endswith("AccessLogValve")]
    resolved = posixpath.normpath(posixpath.join(conventions.CATALINA_HOME, valve.get("directory")))
    assert resolved == conventions.LOG_KINDS["accesslogs"]
    # Tomcat names the file prefix + date + suffix: localhost_access_log.2018-12-24.txt
    assert valve.get("prefix") + "2018-12-24" + valve.get("suffix") == "localhost_access_log.2018-12-24.txt"
    (connector,) = root.iter("Connector")
    assert connector.get("port") == "8080"
    assert root.get("port") == "-1"  # no shutdown port inside a pod
    assert tomcat.access_log_problem(tomcat.server_xml()) is None


def test_juli_writes_tomcat_logs_into_the_tomcatlogs_mount():
    props = dict(line.split(" = ", 1) for line in tomcat.logging_properties().splitlines()
                 if " = " in line and not line.startswith("#"))
    for handler in ("1catalina", "2localhost", "3manager", "4host-manager"):
        directory = props[f"{handler}.org.apache.juli.AsyncFileHandler.directory"]
        assert directory.replace("${catalina.base}", conventions.CATALINA_HOME) == conventions.LOG_KINDS["tomcatlogs"]
        assert props[f"{handler}.org.apache.juli.AsyncFileHandler.prefix"] == handler[1:] + "."


@pytest.mark.parametrize("text,reason", [
    ("<Server><Service><Engine><Host/></Engine></Service></Server>",
     "has no AccessLogValve: access logs would not reach accesslogs/"),
    ('<Server><Valve className="org.apache.catalina.valves.AccessLogValve" directory="logs"/></Server>',
     "AccessLogValve directory must be \"accesslogs\", got 'logs'"),
])
def test_a_site_server_xml_that_loses_access_logs_is_refused(text, reason):
    assert tomcat.access_log_problem(text) == reason


def test_dockerfile_puts_the_war_in_the_last_layer():
    text = dockerfile.dockerfile("h.io/template/tomcat:9.0-jdk8", "a.example.com", has_config=True)
    steps = [line.split()[0] for line in text.splitlines() if line and not line.startswith("#")]
    assert steps == ["FROM", "LABEL", "ENV", "COPY", "COPY", "COPY", "EXPOSE"]
    copies = [line for line in text.splitlines() if line.startswith("COPY")]
    assert copies[-1] == "COPY ROOT.war /usr/local/tomcat/webapps/ROOT.war"
    assert "COPY config/ /data/conf/" in copies
    assert "config/" not in dockerfile.dockerfile("b", "a.example.com", has_config=False)


@pytest.mark.parametrize("name,make", [
    ("server.xml", tomcat.server_xml),
    ("logging.properties", tomcat.logging_properties),
])
def test_generated_tomcat_files_match_golden(name, make):
    assert make() == (GOLDEN / name).read_text(encoding="utf-8"), f"regenerate tests/golden/{name} if intended"
