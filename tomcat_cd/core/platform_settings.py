"""Settings of the `platform` stack: what both environments share (logging, monitoring).

Like the site stacks' settings, read from `pulumi.Config` by the program and from
`Pulumi.platform.yaml` by cdctl, through one parser.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from tomcat_cd.core import conventions
from tomcat_cd.core.errors import ConfigError, Problem, Problems, raise_if_any
from tomcat_cd.core.hosts.inventory import (DASHBOARD_IMAGES, DEFAULT_KEY_SECRET, Cluster, Harbor, Host, Inventory,
                                            check_inventory)
from tomcat_cd.core.platform_file import HostFields, InventoryFields, PlatformFile
from tomcat_cd.core.schema import keys_of, validated
from tomcat_cd.core.settings import check_secrets
from tomcat_cd.core.versions import kubernetes_version

if TYPE_CHECKING:  # the model reads no platform settings; only the port check needs its type
    from tomcat_cd.core.model import Site

PLATFORM_STACK = "platform"
SECRET_KEYS = frozenset({"elasticPassword", "kibanaPassword", "filebeatPassword"})
HARBOR_SECRET_KEYS = frozenset({"harborAdminPassword", "harborDatabasePassword", "harborRobotSecret"})
KNOWN_KEYS = frozenset(keys_of(PlatformFile)) | {DEFAULT_KEY_SECRET} | SECRET_KEYS | HARBOR_SECRET_KEYS


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
    fields = validated(PlatformFile, {"inventory": inventory_value}, Problems("", []))
    return _secret_keys(_inventory(fields.inventory) if fields else Inventory())


def _host(fields: HostFields | None) -> Host | None:
    if fields is None:
        return None
    return Host(fields.name, fields.address, fields.user, fields.port, fields.host_key, fields.key_secret)


def _hosts(machines: list[HostFields]) -> tuple[Host, ...]:
    return tuple(host for host in map(_host, machines) if host)


def _inventory(fields: InventoryFields) -> Inventory:
    return Inventory(control_planes=_hosts(fields.control_planes), workers=_hosts(fields.workers),
                     control_plane_endpoint=fields.control_plane_endpoint, harbor=_host(fields.harbor),
                     jenkins=_host(fields.jenkins), gitlab=_host(fields.gitlab), nginx=_hosts(fields.nginx))


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
    sink = Problems(source, problems)
    prefix = f"{conventions.PROJECT}:"
    # The secrets' names come from the inventory: read it first, then set them apart.
    secrets = secret_keys(values.get("inventory"))
    known = keys_of(PlatformFile).keys() | secrets
    for key in sorted(set(values) - known, key=str):
        sink.add(f"{prefix}{key}", f"unknown key (known keys: {', '.join(sorted(known))})")
    check_secrets(sink, values, secrets, stack)
    fields = validated(PlatformFile, {k: v for k, v in values.items() if k not in secrets and k in known},
                       sink, prefix)
    if fields is None:
        raise ConfigError(problems)
    inventory = _inventory(fields.inventory)
    check_inventory(inventory, sink, f"{prefix}inventory.")
    elastic = fields.elastic
    harbor = fields.harbor
    settings = PlatformSettings(
        stack=stack,
        target=fields.target or ("cluster" if fields.kubeconfig else "render"),
        kubeconfig=fields.kubeconfig,
        render_dir=fields.render_dir,
        domains_dir=fields.domains_dir,
        elastic=Elastic(elastic.version, elastic.replicas, elastic.heap, elastic.cpu, elastic.memory,
                        elastic.retention_days),
        kibana_node_port=fields.kibana.node_port,
        filebeat_version=fields.filebeat.version,
        weave_scope=fields.weave_scope.enabled,
        weave_scope_node_port=fields.weave_scope.node_port,
        inventory=inventory,
        bootstrap=fields.bootstrap,
        cluster=Cluster(fields.cluster.kubernetes_version or kubernetes_version(), fields.cluster.cni_manifest,
                        fields.cluster.pod_subnet, fields.cluster.service_subnet,
                        tuple(fields.cluster.dashboard_images or DASHBOARD_IMAGES)) if inventory.control_planes else None,
        harbor=Harbor(harbor.hostname or inventory.harbor.address, harbor.version, harbor.scheme, harbor.robot,
                      harbor.port) if inventory.harbor else None,
        jenkins_version=fields.jenkins.version,
        offsite=fields.backups.offsite,
        passwords_set=frozenset(k for k in secrets if values.get(k) is not None),
    )
    if settings.weave_scope and settings.kibana_node_port == settings.weave_scope_node_port:
        sink.add("tomcat-cd:weaveScope.nodePort", f"{settings.weave_scope_node_port} is also tomcat-cd:kibana.nodePort")
    raise_if_any(problems)
    return settings
