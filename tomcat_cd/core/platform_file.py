"""The schema of the platform stack's `tomcat-cd:` config (logging, monitoring, the inventory
of machines and what runs on them), as pydantic models. The checks across fields (an odd
number of control planes, names and addresses used twice, a port taken twice) are the
parser's (tomcat_cd.core.platform_settings)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Mapping

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from tomcat_cd.core.fields import QUANTITY
from tomcat_cd.core.hosts.inventory import (ADDRESS, CIDR, DASHBOARD_IMAGES, DEFAULT_KEY_SECRET, ENDPOINT, IMAGE,
                                            NODE_NAME, RSYNC_TARGET, SECRET_NAME, USER, VERSION, WEAVE_NET_MANIFEST,
                                            WEAVE_NET_POD_SUBNET)
from tomcat_cd.core.schema import AS_STRING_LIST, Between, Matches, OneOf, Strict, TextBool, TextInt, json_text_decoded, own_error
from tomcat_cd.core.stack_file import TARGETS

IMAGE_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
JENKINS_VERSION = re.compile(r"[0-9]+\.[0-9]+(\.[0-9]+)?")
HEAP = re.compile(r"[0-9]+[mg]")
HOST_KEY = re.compile(r"(ssh|ecdsa)-[a-z0-9-]+ [A-Za-z0-9+/=]+")
# Platform NodePorts default below the site ranges (develop 31001+, master 32001+); any
# NodePort is allowed, and a clash with a site is refused naming both (platform_ports).
PLATFORM_PORTS = (30000, 32767)

Port = Annotated[TextInt, Between(1, 65535)]
PlatformPort = Annotated[TextInt, Between(*PLATFORM_PORTS)]
ImageTag = Annotated[str, Matches(IMAGE_TAG, "an image tag such as 8.19.21")]


def _image(value: str) -> str:
    if not IMAGE.fullmatch(value):
        raise own_error(f"must be a full image reference such as {DASHBOARD_IMAGES[0]}, got {value!r}")
    return value


class ElasticFields(Strict):
    version: ImageTag = "8.19.21"
    replicas: Annotated[TextInt, Between(1, 9)] = 1
    heap: Annotated[str, Matches(HEAP, "a JVM heap size such as 1g")] = "1g"
    cpu: Annotated[str, Matches(QUANTITY, "a CPU quantity such as 1")] = "1"
    memory: Annotated[str, Matches(QUANTITY, "a memory quantity such as 2Gi")] = "2Gi"
    retention_days: Annotated[TextInt, Between(1, 3650)] = 10


class KibanaFields(Strict):
    node_port: PlatformPort = 30601


class FilebeatFields(Strict):
    version: ImageTag | None = None


class WeaveScopeFields(Strict):
    enabled: TextBool = True
    node_port: PlatformPort = 30040


class JenkinsFields(Strict):
    version: Annotated[str, Matches(JENKINS_VERSION, "a Jenkins release such as 2.516.3")] | None = None


class BackupsFields(Strict):
    offsite: Annotated[str, Matches(RSYNC_TARGET, "an rsync target such as backup@10.0.0.50:/srv/backups")] | None = None


class ClusterFields(Strict):
    kubernetes_version: Annotated[str, Matches(VERSION, "a version such as v1.33.5")] | None = None
    cni_manifest: Annotated[str, Matches(re.compile(r"https://\S+"), "an https URL")] = WEAVE_NET_MANIFEST
    pod_subnet: Annotated[str, Matches(CIDR, "a CIDR such as 10.32.0.0/12")] = WEAVE_NET_POD_SUBNET
    service_subnet: Annotated[str, Matches(CIDR, "a CIDR such as 10.96.0.0/12")] = "10.96.0.0/12"
    dashboard_images: Annotated[list[Annotated[str, AfterValidator(_image)]], AS_STRING_LIST] | None = None


class HarborFields(Strict):
    hostname: Annotated[str, Matches(ADDRESS, "the name clients use for Harbor")] | None = None
    version: Annotated[str, Matches(re.compile(r"v[0-9]+\.[0-9]+\.[0-9]+"), "a release such as v2.13.2")] = "v2.13.2"
    scheme: Annotated[str, Matches(re.compile(r"https?"), "https or http")] = "https"
    robot: Annotated[str, Matches(re.compile(r"[a-z0-9][a-z0-9._-]{0,62}"), "a robot name")] = "tomcat-cd"
    port: Port | None = None


class HostFields(Strict):
    name: Annotated[str, Matches(NODE_NAME, "a lower-case host name such as k8s-node-1")]
    address: Annotated[str, Matches(ADDRESS, "an IP address or host name")]
    user: Annotated[str, Matches(USER, "a user name such as root or deploy")] = "root"
    port: Port = 22
    host_key: Annotated[str, Matches(HOST_KEY, "a public key line such as 'ssh-ed25519 AAAA...'")] | None = None
    key_secret: Annotated[str, Matches(SECRET_NAME, "a config key such as sshPrivateKey")] = DEFAULT_KEY_SECRET


class SshDefaults(Strict):
    user: Any = None
    port: Any = None
    key_secret: Any = None


def _host_mapping(value: Any) -> Any:
    if not isinstance(value, Mapping):
        raise own_error("must be a mapping with name and address")
    return value


Machine = Annotated[HostFields, BeforeValidator(_host_mapping)]


class InventoryFields(Strict):
    control_plane_endpoint: Annotated[str, Matches(
        ENDPOINT, "host:port of the load-balanced API, such as k8s-api.example.com:6443")] | None = None
    control_planes: list[Machine] = Field(default_factory=list)
    workers: list[Machine] = Field(default_factory=list)
    harbor: Machine | None = None
    jenkins: Machine | None = None
    gitlab: Machine | None = None
    nginx: list[Machine] = Field(default_factory=list)
    ssh: SshDefaults = SshDefaults()

    @model_validator(mode="before")
    @classmethod
    def with_ssh_defaults(cls, values: Any) -> Any:
        """`ssh` gives every host its user, port and key secret unless the host names its own."""
        if not isinstance(values, Mapping) or not isinstance(values.get("ssh"), Mapping):
            return values
        ssh = {k: v for k, v in values["ssh"].items() if v is not None}
        merged = dict(values)
        for key in ("controlPlanes", "workers", "nginx"):
            if isinstance(values.get(key), list):
                merged[key] = [{**ssh, **h} if isinstance(h, Mapping) else h for h in values[key]]
        for key in ("harbor", "jenkins", "gitlab"):
            if isinstance(values.get(key), Mapping):
                merged[key] = {**ssh, **values[key]}
        return merged


STRUCTURED = ("elastic", "kibana", "filebeat", "weaveScope", "inventory", "cluster", "harbor", "jenkins", "backups")


class PlatformFile(Strict):
    """The platform stack's `tomcat-cd:` keys (without the prefix), its secrets set apart."""

    role: str | None = None
    domains_dir: str = "domains"
    target: Annotated[str, OneOf(TARGETS)] | None = None
    kubeconfig: str | None = None
    render_dir: str | None = None
    elastic: ElasticFields = ElasticFields()
    kibana: KibanaFields = KibanaFields()
    filebeat: FilebeatFields = FilebeatFields()
    weave_scope: WeaveScopeFields = WeaveScopeFields()
    inventory: InventoryFields = InventoryFields()
    bootstrap: TextBool = False
    cluster: ClusterFields = ClusterFields()
    harbor: HarborFields = HarborFields()
    jenkins: JenkinsFields = JenkinsFields()
    backups: BackupsFields = BackupsFields()

    @model_validator(mode="before")
    @classmethod
    def as_given(cls, values: Any) -> Any:
        return json_text_decoded(values, STRUCTURED)
