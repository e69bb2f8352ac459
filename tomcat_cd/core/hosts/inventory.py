"""The machines the platform stack manages over SSH, and how the cluster on them is built.

Read from `tomcat-cd:inventory`, `tomcat-cd:cluster`, `tomcat-cd:harbor`, `tomcat-cd:jenkins` and
`tomcat-cd:backups` of the platform stack; private keys are Pulumi secrets named by each host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from tomcat_cd.core import conventions
from tomcat_cd.core.fields import Reader

NODE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
ADDRESS = re.compile(r"^[A-Za-z0-9.:-]+$")
ENDPOINT = re.compile(r"^[A-Za-z0-9.-]+:[0-9]{1,5}$")
SECRET_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*$")
CIDR = re.compile(r"^[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}$")
USER = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
RSYNC_TARGET = re.compile(r"^[A-Za-z0-9._@-]+:/[A-Za-z0-9._/-]*$")
IMAGE = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+:[A-Za-z0-9._-]+$")
VERSION = re.compile(r"^v?[0-9]+\.[0-9]+\.[0-9]+$")

DEFAULT_KEY_SECRET = "sshPrivateKey"
# Weave Net, the original's pod network, is archived upstream: its last release is pinned.
WEAVE_NET_MANIFEST = "https://github.com/weaveworks/weave/releases/download/v2.8.1/weave-daemonset-k8s-1.11.yaml"
WEAVE_NET_POD_SUBNET = "10.32.0.0/12"
DASHBOARD_IMAGES = ("docker.io/kubernetesui/dashboard:v2.7.0", "docker.io/kubernetesui/metrics-scraper:v1.0.8")


@dataclass(frozen=True)
class Host:
    name: str
    address: str
    user: str = "root"
    port: int = 22
    host_key: str | None = None
    """The server's public key (`ssh-keyscan`); without it the host key is not checked."""
    key_secret: str = DEFAULT_KEY_SECRET
    """The Pulumi secret (config key) holding the private key for this host."""

    @property
    def runner(self) -> str:
        """The command line that runs a script given on standard input, as root."""
        return "bash -s" if self.user == "root" else "sudo -n bash -s"


@dataclass(frozen=True)
class Cluster:
    kubernetes_version: str
    """Pinned in scripts/versions.env (KUBERNETES_VERSION), shared with the local test cluster."""
    cni_manifest: str = WEAVE_NET_MANIFEST
    pod_subnet: str = WEAVE_NET_POD_SUBNET
    service_subnet: str = "10.96.0.0/12"
    dashboard_images: tuple[str, ...] = DASHBOARD_IMAGES

    @property
    def package_version(self) -> str:
        """Debian package version at pkgs.k8s.io: 1.33.5 -> 1.33.5-1.1."""
        return f"{self.kubernetes_version.lstrip('v')}-1.1"

    @property
    def minor(self) -> str:
        major, minor, _ = self.kubernetes_version.lstrip("v").split(".")
        return f"v{major}.{minor}"


@dataclass(frozen=True)
class Harbor:
    hostname: str
    version: str = "v2.13.2"
    scheme: str = "https"
    robot: str = "tomcat-cd"
    port: int | None = None
    """Harbor's port when not the scheme's own (443, 80); then image names carry it too."""

    @property
    def api_port(self) -> int:
        return self.port or (443 if self.scheme == "https" else 80)

    @property
    def registry(self) -> str:
        """The registry as clients name it: `harbor.gyyx.cn`, or `harbor.gyyx.cn:8443`."""
        return f"{self.hostname}:{self.port}" if self.port else self.hostname

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.registry}"


@dataclass(frozen=True)
class Inventory:
    control_planes: tuple[Host, ...] = ()
    workers: tuple[Host, ...] = ()
    control_plane_endpoint: str | None = None
    harbor: Host | None = None
    jenkins: Host | None = None
    gitlab: Host | None = None
    nginx: tuple[Host, ...] = ()
    offsite: str | None = None
    """Where backups are copied (rsync over SSH, `user@host:/path`); none: kept on the host only."""

    @property
    def nodes(self) -> tuple[Host, ...]:
        return self.control_planes + self.workers

    def hosts(self) -> tuple[Host, ...]:
        services = tuple(h for h in (self.harbor, self.jenkins, self.gitlab) if h)
        return self.nodes + services + self.nginx

    def key_secrets(self) -> frozenset[str]:
        return frozenset(host.key_secret for host in self.hosts())


INVENTORY_KEYS = {"controlPlaneEndpoint", "controlPlanes", "workers", "harbor", "jenkins", "gitlab",
                  "nginx", "ssh"}


def _host(node: Any, where: str, reader: Reader, ssh: Mapping[str, Any]) -> Host | None:
    if not isinstance(node, Mapping):
        reader.problems.add(where, "must be a mapping with name and address")
        return None
    entry = Reader({**ssh, **node}, reader.problems, f"{where}.", reader.decode_json)
    entry.reject_unknown({"name", "address", "user", "port", "hostKey", "keySecret"})
    name = entry.string("name", pattern=NODE_NAME, what="a lower-case host name such as k8s-node-1")
    address = entry.string("address", pattern=ADDRESS, what="an IP address or host name")
    host = Host(
        name=name or "", address=address or "",
        user=entry.string("user", "root", USER, "a user name such as root or deploy"),
        port=entry.integer("port", 22, low=1, high=65535),
        host_key=entry.string("hostKey", None, re.compile(r"^(ssh|ecdsa)-[a-z0-9-]+ [A-Za-z0-9+/=]+$"),
                              "a public key line such as 'ssh-ed25519 AAAA...'"),
        key_secret=entry.string("keySecret", DEFAULT_KEY_SECRET, SECRET_NAME, "a config key such as sshPrivateKey"),
    )
    return host if name and address else None


def _hosts(reader: Reader, key: str, ssh: Mapping[str, Any]) -> tuple[Host, ...]:
    return tuple(host for index, node in enumerate(reader.items(key))
                 if (host := _host(node, reader.path(f"{key}[{index}]"), reader, ssh)))


def _single(reader: Reader, key: str, ssh: Mapping[str, Any]) -> Host | None:
    node = reader.mapping(key)
    return _host(node, reader.path(key), reader, ssh) if node is not None else None


def parse_inventory(reader: Reader) -> Inventory:
    reader.reject_unknown(INVENTORY_KEYS)
    ssh = reader.mapping("ssh") or {}
    defaults = Reader(ssh, reader.problems, reader.path("ssh."), reader.decode_json)
    defaults.reject_unknown({"user", "port", "keySecret"})
    inventory = Inventory(
        control_planes=_hosts(reader, "controlPlanes", ssh),
        workers=_hosts(reader, "workers", ssh),
        control_plane_endpoint=reader.string("controlPlaneEndpoint", None, ENDPOINT,
                                             "host:port of the load-balanced API, such as k8s-api.example.com:6443"),
        harbor=_single(reader, "harbor", ssh),
        jenkins=_single(reader, "jenkins", ssh),
        gitlab=_single(reader, "gitlab", ssh),
        nginx=_hosts(reader, "nginx", ssh),
    )
    _check_inventory(inventory, reader)
    return inventory


def _check_inventory(inventory: Inventory, reader: Reader) -> None:
    count = len(inventory.control_planes)
    if count and count % 2 == 0:
        reader.problems.add(reader.path("controlPlanes"),
                            f"must be an odd number (1, 3, 5): stacked etcd with {count} members "
                            f"survives no more failures than with {count - 1}")
    if inventory.workers and not count:
        reader.problems.add(reader.path("workers"), "needs controlPlanes to join")
    if count and not inventory.control_plane_endpoint:
        reader.problems.add(reader.path("controlPlaneEndpoint"),
                            "is required with controlPlanes: the load-balanced API address every node joins")
    seen: dict[str, str] = {}
    for host in inventory.nodes:
        if host.name in seen:
            reader.problems.add(reader.path("controlPlanes"), f"node name {host.name} appears twice")
        seen[host.name] = host.address
    addresses = [host.address for host in inventory.nodes]
    for address in sorted({a for a in addresses if addresses.count(a) > 1}):
        reader.problems.add(reader.path("workers"), f"node address {address} appears twice")


def parse_cluster(reader: Reader, kubernetes_version: str) -> Cluster:
    reader.reject_unknown({"kubernetesVersion", "cniManifest", "podSubnet", "serviceSubnet", "dashboardImages"})
    images = reader.string_list("dashboardImages") or DASHBOARD_IMAGES
    for index, image in enumerate(images):
        if not IMAGE.fullmatch(image):
            reader.problems.add(reader.path(f"dashboardImages[{index}]"),
                                f"must be a full image reference such as {DASHBOARD_IMAGES[0]}, got {image!r}")
    return Cluster(
        kubernetes_version=reader.string("kubernetesVersion", kubernetes_version, VERSION, "a version such as v1.33.5"),
        cni_manifest=reader.string("cniManifest", WEAVE_NET_MANIFEST, re.compile(r"^https://\S+$"), "an https URL"),
        pod_subnet=reader.string("podSubnet", WEAVE_NET_POD_SUBNET, CIDR, "a CIDR such as 10.32.0.0/12"),
        service_subnet=reader.string("serviceSubnet", "10.96.0.0/12", CIDR, "a CIDR such as 10.96.0.0/12"),
        dashboard_images=tuple(images),
    )


def parse_harbor(reader: Reader, inventory: Inventory) -> Harbor | None:
    reader.reject_unknown({"hostname", "version", "scheme", "robot", "port"})
    if inventory.harbor is None:
        return None
    return Harbor(
        hostname=reader.string("hostname", inventory.harbor.address, ADDRESS, "the name clients use for Harbor"),
        version=reader.string("version", Harbor.version, re.compile(r"^v[0-9]+\.[0-9]+\.[0-9]+$"), "a release such as v2.13.2"),
        scheme=reader.string("scheme", "https", re.compile(r"^https?$"), "https or http"),
        robot=reader.string("robot", Harbor.robot, re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$"), "a robot name"),
        port=reader.integer("port", None, low=1, high=65535),
    )


def parse_offsite(reader: Reader) -> str | None:
    reader.reject_unknown({"offsite"})
    offsite: str | None = reader.string("offsite", None, RSYNC_TARGET, "an rsync target such as backup@10.0.0.50:/srv/backups")
    return offsite


def node_folders() -> list[str]:
    """Every folder a node needs, parents first (SEED_CONVENTIONS, "Node folders")."""
    folders = [conventions.NODE_DATA_ROOT, conventions.FILEBEAT_DATA_DIR, conventions.CONTAINER_RUNTIME_DIR,
               conventions.NODE_LOG_ROOT]
    for environment in conventions.ENVIRONMENTS:
        folders.append(f"{conventions.NODE_LOG_ROOT}/{environment}")
        folders += [f"{conventions.NODE_LOG_ROOT}/{environment}/{kind}" for kind in conventions.LOG_KINDS]
    return folders
