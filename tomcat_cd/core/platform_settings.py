"""Settings of the `platform` stack: what both environments share (logging, monitoring).

Like the site stacks' settings, read from `pulumi.Config` by the program and from
`Pulumi.platform.yaml` by cdctl, through one parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from tomcat_cd.core import conventions
from tomcat_cd.core.errors import Problem, Problems, raise_if_any
from tomcat_cd.core.fields import QUANTITY, Reader
from tomcat_cd.core.hosts.inventory import (DEFAULT_KEY_SECRET, Cluster, Harbor, Inventory, parse_cluster, parse_harbor,
                                       parse_inventory, parse_offsite)
from tomcat_cd.core.settings import check_secrets, read_target
from tomcat_cd.core.versions import kubernetes_version

if TYPE_CHECKING:  # the model reads no platform settings; only the port check needs its type
    from tomcat_cd.core.model import Site

PLATFORM_STACK = "platform"
SECRET_KEYS = frozenset({"elasticPassword", "kibanaPassword", "filebeatPassword"})
HARBOR_SECRET_KEYS = frozenset({"harborAdminPassword", "harborDatabasePassword", "harborRobotSecret"})
KNOWN_KEYS = frozenset({"role", "domainsDir", "target", "kubeconfig", "renderDir", "elastic", "kibana",
                        "filebeat", "weaveScope", "inventory", "bootstrap", "cluster", "harbor", "jenkins",
                        "backups", DEFAULT_KEY_SECRET}) | SECRET_KEYS | HARBOR_SECRET_KEYS
IMAGE_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
JENKINS_VERSION = re.compile(r"^[0-9]+\.[0-9]+(\.[0-9]+)?$")

# Platform NodePorts default below the site ranges (develop 31001+, master 32001+); any
# NodePort is allowed, and a clash with a site is refused naming both (platform_ports).
PLATFORM_PORTS = (30000, conventions.MASTER_LAST_NODE_PORT)


@dataclass(frozen=True)
class Elastic:
    """Elasticsearch. Defaults: Elastic 8.19.21, one node, 1g heap, 2Gi memory, 10 days of logs."""

    version: str = "8.19.21"
    replicas: int = 1
    heap: str = "1g"
    cpu: str = "1"
    memory: str = "2Gi"
    retention_days: int = 10


@dataclass(frozen=True)
class PlatformSettings:
    stack: str
    target: str = "render"
    """`render` (default unless `kubeconfig` is set) or `cluster`, as for the site stacks."""
    kubeconfig: str | None = None
    render_dir: str | None = None
    domains_dir: str = "domains"
    """Every domain file gets a Kibana data view `<domain>-*`."""
    elastic: Elastic = Elastic()
    kibana_node_port: int = 30601
    """Kibana's NodePort (default 30601), outside the site ranges."""
    filebeat_version: str | None = None
    """Filebeat image tag; defaults to Elasticsearch's version."""
    weave_scope: bool = True
    """Deploy Weave Scope (archived upstream; last images pinned). Default true."""
    weave_scope_node_port: int = 30040
    inventory: Inventory = Inventory()
    """The machines (`inventory`): Nginx balances over its nodes, bootstrap runs on all of them."""
    bootstrap: bool = False
    """Run the host scripts over SSH on `pulumi up` (default false: render writes them for review)."""
    cluster: Cluster | None = None
    harbor: Harbor | None = None
    jenkins_version: str | None = None
    offsite: str | None = None
    passwords_set: frozenset[str] = frozenset()
    """Which secrets are configured (values stay in Pulumi)."""

    @property
    def nodes(self) -> tuple[str, ...]:
        """Addresses of every Kubernetes node."""
        return tuple(host.address for host in self.inventory.nodes)

    def required_secrets(self) -> frozenset[str]:
        """Secrets `pulumi up` needs: the passwords in a cluster, the SSH keys and Harbor's for bootstrap."""
        needed = set(SECRET_KEYS) if self.target == "cluster" else set()
        if self.bootstrap:
            needed |= self.inventory.key_secrets()
            if self.harbor:
                needed |= HARBOR_SECRET_KEYS
        return frozenset(needed)

    @property
    def namespace(self) -> str:
        return "logging"


def secret_keys(inventory_value: Any) -> frozenset[str]:
    """Every config key that must hold a secret: the passwords, and the SSH private keys the
    inventory names (read before the settings, so the program knows which secrets to ask for)."""
    reader = Reader({"inventory": inventory_value}, Problems("", []), "", decode_json=True)
    return _secret_keys(parse_inventory(reader.nested("inventory")))


def _secret_keys(inventory: Inventory) -> frozenset[str]:
    return SECRET_KEYS | HARBOR_SECRET_KEYS | inventory.key_secrets()


def platform_ports(settings: PlatformSettings) -> dict[int, str]:
    """NodePort -> the platform setting that takes it."""
    ports = {settings.kibana_node_port: "tomcat-cd:kibana.nodePort"}
    if settings.weave_scope:
        ports[settings.weave_scope_node_port] = "tomcat-cd:weaveScope.nodePort"
    return ports


def port_clashes(settings: PlatformSettings, sites: list[Site]) -> list[tuple[Site, str, int, str]]:
    """(site, environment, port, platform setting) for every site port a platform service also takes."""
    taken = platform_ports(settings)
    return [(site, env, site.node_port(env), taken[site.node_port(env)])
            for site in sites for env in conventions.ENVIRONMENTS if site.node_port(env) in taken]


def is_platform(stack: str, values: Mapping[str, Any]) -> bool:
    """The platform stack is named `platform`, or a copy of it says `role: platform`."""
    return stack == PLATFORM_STACK or values.get("role") == PLATFORM_STACK


def parse_platform_settings(stack: str, values: Mapping[str, Any], source: str) -> PlatformSettings:
    problems: list[Problem] = []
    reader = Reader(values, Problems(source, problems), prefix=f"{conventions.PROJECT}:", decode_json=True)
    inventory = parse_inventory(reader.nested("inventory"))
    secrets = _secret_keys(inventory)
    reader.reject_unknown(set(KNOWN_KEYS | secrets))
    check_secrets(reader.problems, values, secrets, stack)
    target, kubeconfig = read_target(reader)
    elastic = reader.nested("elastic")
    elastic.reject_unknown({"version", "replicas", "heap", "cpu", "memory", "retentionDays"})
    kibana = reader.nested("kibana")
    kibana.reject_unknown({"nodePort"})
    filebeat = reader.nested("filebeat")
    filebeat.reject_unknown({"version"})
    scope = reader.nested("weaveScope")
    scope.reject_unknown({"enabled", "nodePort"})
    low, high = PLATFORM_PORTS
    jenkins = reader.nested("jenkins")
    jenkins.reject_unknown({"version"})
    settings = PlatformSettings(
        stack=stack,
        target=target,
        kubeconfig=kubeconfig,
        render_dir=reader.string("renderDir", None),
        domains_dir=reader.string("domainsDir", "domains"),
        elastic=Elastic(
            version=elastic.string("version", Elastic.version, IMAGE_TAG, "an image tag such as 8.19.21"),
            replicas=elastic.integer("replicas", Elastic.replicas, low=1, high=9),
            heap=elastic.string("heap", Elastic.heap, re.compile(r"^[0-9]+[mg]$"), "a JVM heap size such as 1g"),
            cpu=elastic.string("cpu", Elastic.cpu, QUANTITY, "a CPU quantity such as 1"),
            memory=elastic.string("memory", Elastic.memory, QUANTITY, "a memory quantity such as 2Gi"),
            retention_days=elastic.integer("retentionDays", Elastic.retention_days, low=1, high=3650),
        ),
        kibana_node_port=kibana.integer("nodePort", 30601, low=low, high=high),
        filebeat_version=filebeat.string("version", None, IMAGE_TAG, "an image tag such as 8.19.21"),
        weave_scope=scope.boolean("enabled", True),
        weave_scope_node_port=scope.integer("nodePort", 30040, low=low, high=high),
        inventory=inventory,
        bootstrap=reader.boolean("bootstrap", False),
        cluster=parse_cluster(reader.nested("cluster"), kubernetes_version()) if inventory.control_planes else None,
        harbor=parse_harbor(reader.nested("harbor"), inventory),
        jenkins_version=jenkins.string("version", None, JENKINS_VERSION, "a Jenkins release such as 2.516.3"),
        offsite=parse_offsite(reader.nested("backups")),
        passwords_set=frozenset(k for k in secrets if values.get(k) is not None),
    )
    if settings.weave_scope and settings.kibana_node_port == settings.weave_scope_node_port:
        reader.problems.add("tomcat-cd:weaveScope.nodePort",
                            f"{settings.weave_scope_node_port} is also tomcat-cd:kibana.nodePort")
    raise_if_any(problems)
    return settings
