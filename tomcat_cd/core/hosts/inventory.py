"""The machines the platform stack manages over SSH, and how the cluster on them is built.

Read from `tomcat-cd:inventory`, `tomcat-cd:cluster`, `tomcat-cd:harbor`, `tomcat-cd:jenkins` and
`tomcat-cd:backups` of the platform stack; private keys are Pulumi secrets named by each host.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from tomcat_cd.core import conventions
from tomcat_cd.core.errors import Problems

NODE_NAME = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
ADDRESS = re.compile(r"[A-Za-z0-9.:-]+")
ENDPOINT = re.compile(r"[A-Za-z0-9.-]+:[0-9]{1,5}")
SECRET_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]*")
CIDR = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3}){3}/[0-9]{1,2}")
USER = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
RSYNC_TARGET = re.compile(r"[A-Za-z0-9._@-]+:/[A-Za-z0-9._/-]*")
IMAGE = re.compile(r"[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+:[A-Za-z0-9._-]+")
VERSION = re.compile(r"v?[0-9]+\.[0-9]+\.[0-9]+")

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


def check_inventory(inventory: Inventory, problems: Problems, prefix: str) -> None:
    """What no single field shows: etcd's quorum, joins without a control plane, names and
    addresses used twice."""
    count = len(inventory.control_planes)
    if count and count % 2 == 0:
        problems.add(f"{prefix}controlPlanes", f"must be an odd number (1, 3, 5): stacked etcd with {count} members "
                                               f"survives no more failures than with {count - 1}")
    if inventory.workers and not count:
        problems.add(f"{prefix}workers", "needs controlPlanes to join")
    if count and not inventory.control_plane_endpoint:
        problems.add(f"{prefix}controlPlaneEndpoint",
                     "is required with controlPlanes: the load-balanced API address every node joins")
    seen: dict[str, str] = {}
    for host in inventory.nodes:
        if host.name in seen:
            problems.add(f"{prefix}controlPlanes", f"node name {host.name} appears twice")
        seen[host.name] = host.address
    addresses = [host.address for host in inventory.nodes]
    for address in sorted({a for a in addresses if addresses.count(a) > 1}):
        problems.add(f"{prefix}workers", f"node address {address} appears twice")


def node_folders() -> list[str]:
    """Every folder a node needs, parents first (SEED_CONVENTIONS, "Node folders")."""
    folders = [conventions.NODE_DATA_ROOT, conventions.FILEBEAT_DATA_DIR, conventions.CONTAINER_RUNTIME_DIR,
               conventions.NODE_LOG_ROOT]
    for environment in conventions.ENVIRONMENTS:
        folders.append(f"{conventions.NODE_LOG_ROOT}/{environment}")
        folders += [f"{conventions.NODE_LOG_ROOT}/{environment}/{kind}" for kind in conventions.LOG_KINDS]
    return folders
