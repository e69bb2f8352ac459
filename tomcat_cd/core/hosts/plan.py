"""Every remote step of the platform stack, in the order they must run, and what each one needs.

A pure description: `cdctl render --stack platform` writes the scripts from it, and the
HostBootstrap component turns each step into a `pulumi_command.remote.Command`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping

from tomcat_cd.core import conventions
from tomcat_cd.core.hosts import cluster, services
from tomcat_cd.core.hosts.inventory import Cluster, Harbor, Host
from tomcat_cd.core.hosts.script import script

if TYPE_CHECKING:
    from tomcat_cd.core.platform_settings import PlatformSettings

FIRST = "kubeadm-init"
CREDENTIALS = "join-credentials"
POD_NETWORK = "pod-network"
ADMIN_KUBECONFIG = "admin-kubeconfig"


@dataclass(frozen=True)
class FromConfig:
    """A secret kept in the stack's config."""

    key: str


@dataclass(frozen=True)
class FromStep:
    """A field of the JSON another step prints as the last line of its output (kept secret)."""

    step: str
    field: str


@dataclass(frozen=True)
class RemoteStep:
    name: str
    host: Host
    script: str
    after: tuple[str, ...] = ()
    secrets: Mapping[str, FromConfig | FromStep] = field(default_factory=dict)
    delete_script: str | None = None
    """Run when the step leaves the stack (a node removed from the inventory)."""
    secret_output: bool = False
    """What it prints is a secret for later steps (join credentials, the admin kubeconfig)."""
    triggers: tuple[str, ...] = ()
    """Values whose change runs the step again even when its script is the same."""

    @property
    def path(self) -> str:
        return f"hosts/{self.host.name}/{self.name}.sh"


def _nodes_steps(settings: PlatformSettings, spec: Cluster) -> list[RemoteStep]:
    inventory, harbor = settings.inventory, settings.harbor
    first, *other_planes = inventory.control_planes
    steps = [RemoteStep(f"prepare-{node.name}", node, cluster.prepare_node(node, spec, harbor))
             for node in inventory.nodes]
    steps.append(RemoteStep(FIRST, first, cluster.init_first_control_plane(inventory, spec),
                            after=(f"prepare-{first.name}",)))
    joining = [node for node in inventory.nodes if node != first]
    steps.append(RemoteStep(CREDENTIALS, first, cluster.join_credentials(inventory), after=(FIRST,),
                            secret_output=True, triggers=tuple(node.name for node in joining)))
    steps.append(RemoteStep(ADMIN_KUBECONFIG, first, cluster.admin_kubeconfig(inventory), after=(FIRST,),
                            secret_output=True))
    # Control planes join one at a time: etcd adds one member per change.
    previous: tuple[str, ...] = ()
    for node in other_planes:
        steps.append(_join(settings, node, True, after=(f"prepare-{node.name}", CREDENTIALS) + previous))
        previous = (f"join-{node.name}",)
    planes_joined = tuple(f"join-{node.name}" for node in other_planes)
    steps += [_join(settings, node, False, after=(f"prepare-{node.name}", CREDENTIALS) + planes_joined)
              for node in inventory.workers]
    all_joined = tuple(f"join-{node.name}" for node in joining) or (FIRST,)
    steps.append(RemoteStep(POD_NETWORK, first, cluster.pod_network(inventory, spec), after=all_joined))
    steps += [RemoteStep(f"prepull-{node.name}", node, cluster.prepull_dashboard(node, spec), after=(POD_NETWORK,))
              for node in inventory.nodes]
    for node in joining:
        # Removing a node from the inventory deletes `ready-` first (drain, delete the node),
        # then `member-` on the node itself (kubeadm reset): Pulumi deletes in reverse order.
        member = f"member-{node.name}"
        steps.append(RemoteStep(member, node, script(f"{node.name} is a member of the cluster", node,
                                                     "say ok 'joined'\n"),
                                after=(f"join-{node.name}",), delete_script=cluster.reset_node(node)))
        steps.append(RemoteStep(f"ready-{node.name}", first, cluster.wait_ready(inventory, node),
                                after=(f"prepull-{node.name}", member),
                                delete_script=cluster.drain_and_delete(inventory, node)))
    return steps


def _join(settings: PlatformSettings, node: Host, control_plane: bool, after: tuple[str, ...]) -> RemoteStep:
    names = cluster.CONTROL_PLANE_JOIN_SECRETS if control_plane else cluster.JOIN_SECRETS
    return RemoteStep(f"join-{node.name}", node, cluster.join_node(settings.inventory, node, control_plane),
                      after=after, secrets={name: FromStep(CREDENTIALS, cluster.CREDENTIAL_FIELDS[name])
                                            for name in names})


def _harbor_steps(host: Host, harbor: Harbor, domains: list[str]) -> list[RemoteStep]:
    steps = [RemoteStep("harbor-install", host, services.install_harbor(host, harbor),
                        secrets=_from_config(services.HARBOR_INSTALL_SECRETS))]
    for project in [conventions.HARBOR_TEMPLATE_PROJECT, *domains]:
        steps.append(RemoteStep(f"harbor-project-{project}", host, services.harbor_project(host, harbor, project),
                                after=("harbor-install",), secrets=_from_config(services.HARBOR_SECRETS)))
    steps.append(RemoteStep("harbor-robot", host, services.harbor_robot(host, harbor), after=("harbor-install",),
                            secrets=_from_config(services.HARBOR_ROBOT_SECRETS)))
    return steps


def _from_config(needs: Mapping[str, str]) -> dict[str, FromConfig]:
    """`needs` names each variable's source as `tomcat-cd:<key>`."""
    return {name: FromConfig(source.split(":", 1)[1]) for name, source in needs.items()}


def remote_steps(settings: PlatformSettings, domains: list[str], nginx_configs: Mapping[str, str]) -> list[RemoteStep]:
    """Every step for the inventory of a PlatformSettings, dependencies before dependents."""
    inventory = settings.inventory
    steps: list[RemoteStep] = []
    # The settings hold a cluster spec with control planes and Harbor's with its host.
    if inventory.control_planes and settings.cluster is not None:
        steps += _nodes_steps(settings, settings.cluster)
    if inventory.harbor is not None and settings.harbor is not None:
        steps += _harbor_steps(inventory.harbor, settings.harbor, domains)
    if inventory.jenkins:
        version = settings.jenkins_version or services.JENKINS_VERSION
        steps.append(RemoteStep("jenkins-install", inventory.jenkins,
                                services.install_jenkins(inventory.jenkins, settings.offsite, domains, version)))
    if inventory.gitlab:
        steps.append(RemoteStep("gitlab-backup", inventory.gitlab,
                                services.gitlab_backup(inventory.gitlab, settings.offsite)))
    if nginx_configs:
        steps += [RemoteStep(f"nginx-{host.name}", host, services.nginx_front(host, dict(nginx_configs)))
                  for host in inventory.nginx]
    return steps


def step_order(steps: list[RemoteStep]) -> str:
    """hosts/ORDER.txt: what runs where, after what."""
    lines = ["# Remote steps of the platform stack, in order (pulumi up runs independent ones at once).",
             "# step  host  after"]
    lines += [f"{step.name}  {step.host.name}  {','.join(step.after) or '-'}" for step in steps]
    return "\n".join(lines) + "\n"
