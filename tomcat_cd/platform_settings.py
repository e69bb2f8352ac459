"""Settings of the `platform` stack: what both environments share (logging, monitoring).

Like the site stacks' settings, read from `pulumi.Config` by the program and from
`Pulumi.platform.yaml` by cdctl, through one parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

from tomcat_cd import conventions
from tomcat_cd.errors import Problem, Problems, raise_if_any
from tomcat_cd.fields import QUANTITY, Reader
from tomcat_cd.settings import TARGETS, is_secret_marker

PLATFORM_STACK = "platform"
SECRET_KEYS = frozenset({"elasticPassword", "kibanaPassword"})
KNOWN_KEYS = frozenset({"role", "domainsDir", "target", "kubeconfig", "renderDir", "elastic", "kibana",
                        "filebeat", "weaveScope", "inventory"}) | SECRET_KEYS
IMAGE_TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
HOST_ADDRESS = re.compile(r"^[A-Za-z0-9.:-]+$")

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
    nodes: tuple[str, ...] = ()
    """Addresses of every Kubernetes node (`inventory.nodes`); Nginx balances over them."""
    passwords_set: frozenset[str] = frozenset()
    """Which of elasticPassword/kibanaPassword are configured (values stay in Pulumi)."""

    @property
    def namespace(self) -> str:
        return "logging"


def _node_addresses(inventory: Reader) -> tuple[str, ...]:
    inventory.reject_unknown({"nodes"})
    addresses = []
    for index, node in enumerate(inventory.items("nodes")):
        field = f"tomcat-cd:inventory.nodes[{index}]"
        entry = Reader(node if isinstance(node, Mapping) else {}, inventory.problems, f"{field}.")
        if not isinstance(node, Mapping):
            inventory.problems.add(field, "must be a mapping with name and address")
            continue
        entry.reject_unknown({"name", "address"})
        entry.string("name")
        address = entry.string("address", pattern=HOST_ADDRESS, what="an IP address or host name")
        if address:
            addresses.append(address)
    return tuple(addresses)


def platform_ports(settings: PlatformSettings) -> dict[int, str]:
    """NodePort -> the platform setting that takes it."""
    ports = {settings.kibana_node_port: "tomcat-cd:kibana.nodePort"}
    if settings.weave_scope:
        ports[settings.weave_scope_node_port] = "tomcat-cd:weaveScope.nodePort"
    return ports


def port_clashes(settings: PlatformSettings, sites: list) -> list[tuple[Any, str, int, str]]:
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
    reader.reject_unknown(set(KNOWN_KEYS))
    for key in SECRET_KEYS:
        if values.get(key) is not None and not is_secret_marker(values[key]):
            reader.problems.add(f"tomcat-cd:{key}", f"must be a secret: pulumi config set --secret {key} -s {stack}")
    kubeconfig = reader.string("kubeconfig", None)
    target = reader.string("target", "cluster" if kubeconfig else "render")
    if target not in TARGETS:
        reader.problems.add("tomcat-cd:target", f"must be render or cluster, got {target!r}")
    elastic = reader.nested("elastic")
    elastic.reject_unknown({"version", "replicas", "heap", "cpu", "memory", "retentionDays"})
    kibana = reader.nested("kibana")
    kibana.reject_unknown({"nodePort"})
    filebeat = reader.nested("filebeat")
    filebeat.reject_unknown({"version"})
    scope = reader.nested("weaveScope")
    scope.reject_unknown({"enabled", "nodePort"})
    low, high = PLATFORM_PORTS
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
        nodes=_node_addresses(reader.nested("inventory")),
        passwords_set=frozenset(k for k in SECRET_KEYS if values.get(k) is not None),
    )
    if settings.weave_scope and settings.kibana_node_port == settings.weave_scope_node_port:
        reader.problems.add("tomcat-cd:weaveScope.nodePort",
                            f"{settings.weave_scope_node_port} is also tomcat-cd:kibana.nodePort")
    raise_if_any(problems)
    return settings
