"""The Pulumi program: one function, run by `pulumi up` (__main__.py) and by cdctl."""

from __future__ import annotations

import os
import socket
from contextlib import contextmanager
from typing import Any, Iterator
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from components.environment import Environment, EnvironmentArgs
from components.hosts import HostBootstrap, HostBootstrapArgs
from components.platform import Logging, Monitoring, ObjectsArgs
from components.tomcat_site import ImageBuild, RegistryLogin, TomcatSite, TomcatSiteArgs
from tomcat_cd.core import conventions, platform_settings
from tomcat_cd.core.builders import buildx, kubernetes
from tomcat_cd.core.errors import ConfigError, Problem, raise_if_any
from tomcat_cd.core.plan import SitePlan, StackPlan, build_plan
from tomcat_cd.core.platform_plan import PlatformPlan, build_platform_plan
from tomcat_cd.core.platform_settings import PlatformSettings
from tomcat_cd.core.render import write_build_context
from tomcat_cd.core.urns import TARGETED_SITE_ENV
from tomcat_cd.core.settings import KNOWN_KEYS, SECRET_KEYS, StackSettings, parse_settings, secret_marker
from tomcat_cd.core.checkout import cd_git_id

STATE_DIR_ENV = "TOMCAT_CD_STATE_DIR"


def config_values(known: frozenset[str], secret_keys: frozenset[str]) -> dict[str, Any]:
    """The stack's `tomcat-cd:` values as Pulumi hands them to the program; a secret is
    passed on as a marker, its value left in Pulumi."""
    config = pulumi.Config(conventions.PROJECT)
    values = {}
    for key in sorted(known):
        value = config.get(key)
        if value is None:
            continue
        secret = key in secret_keys and pulumi.runtime.is_config_secret(config.full_key(key))
        values[key] = secret_marker() if secret else value
    return values


def settings_from_config(stack: str) -> StackSettings:
    return parse_settings(stack, config_values(KNOWN_KEYS, SECRET_KEYS), f"Pulumi.{stack}.yaml")


def _secret_docker_config(registry: str, username: str) -> pulumi.Output[str]:
    password = pulumi.Config(conventions.PROJECT).require_secret("harborPassword")
    return password.apply(lambda p: kubernetes.docker_config_json(registry, username, p))


@contextmanager
def refusing_bad_input() -> Iterator[None]:
    """Bad input stops the program before a single resource is registered: nothing changes."""
    try:
        yield
    except ConfigError as err:
        for problem in err.problems:
            pulumi.log.error(str(problem))
        raise pulumi.RunError(f"{len(err.problems)} problem(s) in the domain files or stack config; nothing was changed") from None


def load_plan(project_dir: Path) -> StackPlan:
    with refusing_bad_input():
        settings = settings_from_config(pulumi.get_stack())
        plan = build_plan(settings, project_dir, cd_git_id(project_dir), _secret_docker_config)
        if settings.build_images:
            raise_if_any(plan.missing_war_problems())
        raise_if_any(_weak_secret_problems(settings))
        return plan


def kubernetes_provider(settings: StackSettings | PlatformSettings, project_dir: Path,
                        kubeconfig: pulumi.Input[str] | None = None) -> k8s.Provider:
    """Render mode writes every object as YAML and needs no cluster; cluster mode applies them
    (with `kubeconfig`: the admin kubeconfig of a cluster this stack bootstrapped)."""
    if settings.target == "render":
        # Relative to the project folder, where the provider runs: the provider's inputs must
        # not depend on where a checkout lives, or two checkouts of one stack would replace
        # each other's provider (and with it every object) at every deploy.
        folder = settings.render_dir or conventions.render_dir(settings.stack)
        # kubeconfig="" keeps an ambient KUBECONFIG out: render mode refuses any cluster setting.
        return k8s.Provider("render", render_yaml_to_directory=folder, kubeconfig="")
    return k8s.Provider("cluster", kubeconfig=settings.kubeconfig or kubeconfig)


def _weak_secret_problems(settings: StackSettings) -> list[Problem]:
    """The example stacks use an empty passphrase; a real cluster's secrets must not."""
    empty = os.environ.get("PULUMI_CONFIG_PASSPHRASE") == "" and not os.environ.get("PULUMI_CONFIG_PASSPHRASE_FILE")
    if settings.target == "cluster" and settings.harbor_password_set and empty:
        return [Problem(f"Pulumi.{settings.stack}.yaml", "tomcat-cd:harborPassword",
                        "is protected by an empty passphrase: run pulumi stack change-secrets-provider "
                        f"passphrase -s {settings.stack} and keep the passphrase in a credential store")]
    return []


def deploy(plan: StackPlan, project_dir: Path) -> dict[str, TomcatSite]:
    settings = plan.settings
    registered = sites_to_register(plan)
    if settings.build_images and settings.builder_endpoint and any(site.needs_build for site in registered):
        # First, before any resource, so that the engine's error names no resource.
        _refuse_an_unreachable_builder(settings)
    with_provider = pulumi.ResourceOptions(providers=[kubernetes_provider(settings, project_dir)])
    environment = Environment(settings.environment, EnvironmentArgs(
        namespace=plan.namespace, pull_secret=plan.pull_secret, protect=settings.protect_namespace),
        with_provider)
    registry = _registry_login(settings) if settings.build_images else None
    if registry is not None and settings.builder and settings.builder_endpoint:
        _ensure_remote_builder(settings.builder, settings.builder_endpoint)
    sites = {}
    for site in registered:
        build = None
        if registry is not None and site.needs_build:
            build = ImageBuild(_stage_build_context(site, settings, project_dir), registry, settings.builder)
        sites[site.domain] = TomcatSite(site.site.name, TomcatSiteArgs(plan=site, build=build),
            pulumi.ResourceOptions.merge(with_provider, pulumi.ResourceOptions(depends_on=environment.children)))
    pulumi.export("environment", settings.environment)
    pulumi.export("namespace", environment.namespace_name)
    # From the plan, not the resources: whole even when a targeted update registers one site.
    pulumi.export("sites", {site.domain: {"image": site.pushed_image or site.image,
                                          "nodePort": site.site.node_port(settings.environment)}
                            for site in plan.sites})
    return sites


def sites_to_register(plan: StackPlan) -> tuple[SitePlan, ...]:
    """Every site; or, in the targeted update `cdctl deploy` runs for one site, that site
    alone. A targeted update leaves the resources it does not target as they are, even
    unregistered, so evaluating the other sites only cost time (about 25 ms each)."""
    only = os.environ.get(TARGETED_SITE_ENV)
    if not only:
        return plan.sites
    pulumi.log.info(f"targeted update of {only}: the other sites are not evaluated and stay as they are")
    return tuple(site for site in plan.sites if site.domain == only)


def _registry_login(settings: StackSettings) -> RegistryLogin:
    config = pulumi.Config(conventions.PROJECT)
    return RegistryLogin(settings.harbor_host, config.require("harborUsername"), config.require_secret("harborPassword"))


def _ensure_remote_builder(name: str, endpoint: str) -> None:
    """The buildx instance file of a remote builder, where the Docker Build provider (started
    by this engine, with this environment) looks: `$DOCKER_CONFIG`, else `~/.docker`."""
    folder = Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "buildx" / "instances"
    path, text = folder / name, buildx.instance_text(name, endpoint)
    if not path.is_file() or path.read_text() != text:
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        pulumi.log.info(f"buildx builder {name} now reaches {endpoint} ({path})")


def builder_unreachable(endpoint: str, timeout: float = 5.0) -> str | None:
    """Why a BuildKit endpoint (`tcp://host:port`, `unix:///path`) takes no connection, or None."""
    scheme, _, address = endpoint.partition("://")
    try:
        if scheme == "unix":
            with socket.socket(socket.AF_UNIX) as unix:
                unix.settimeout(timeout)
                unix.connect(address)
        else:
            host, _, port = address.rstrip("/").rpartition(":")
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
                pass
    except ValueError:
        return f"no port in {address!r}"
    except OSError as err:
        return err.strerror or str(err)
    return None


def _refuse_an_unreachable_builder(settings: StackSettings) -> None:
    """Before any step: buildx would wait 20 s for a builder that does not answer and then
    say only "context deadline exceeded"."""
    assert settings.builder_endpoint is not None
    reason = builder_unreachable(settings.builder_endpoint)
    if reason is not None:
        raise pulumi.RunError(str(Problem(
            f"Pulumi.{settings.stack}.yaml", "tomcat-cd:builderEndpoint",
            f"builder {settings.builder} at {settings.builder_endpoint} takes no connection ({reason}): "
            "no image was built and nothing was changed")))


def _stage_build_context(site: SitePlan, settings: StackSettings, project_dir: Path) -> str:
    """The laid-out context, named relative to the project (where Pulumi runs the program and
    its providers) unless TOMCAT_CD_STATE_DIR moves it: no input depends on the checkout's path."""
    relative = Path("build") / settings.stack / site.domain
    state = os.environ.get(STATE_DIR_ENV)
    write_build_context(site.build, Path(state or project_dir / conventions.STATE_DIR) / relative, with_war=True)
    return str(Path(state) / relative) if state else str(Path(conventions.STATE_DIR) / relative)


def load_platform_plan(project_dir: Path) -> PlatformPlan:
    stack = pulumi.get_stack()
    with refusing_bad_input():
        secret_keys = platform_settings.secret_keys(pulumi.Config(conventions.PROJECT).get("inventory"))
        values = config_values(platform_settings.KNOWN_KEYS | secret_keys, secret_keys)
        settings = platform_settings.parse_platform_settings(stack, values, f"Pulumi.{stack}.yaml")
        return build_platform_plan(settings, project_dir, pulumi.Config(conventions.PROJECT).require_secret)


def deploy_platform(plan: PlatformPlan, project_dir: Path) -> None:
    hosts = None
    if plan.settings.bootstrap and plan.steps:
        hosts = HostBootstrap("hosts", HostBootstrapArgs(plan.steps, pulumi.Config(conventions.PROJECT).require_secret))
        pulumi.export("remoteSteps", [step.name for step in plan.steps])
    kubeconfig = hosts.admin_kubeconfig if hosts else None
    with_provider = pulumi.ResourceOptions(providers=[kubernetes_provider(plan.settings, project_dir, kubeconfig)],
                                           depends_on=[hosts] if hosts else None)
    logging = Logging("logging", ObjectsArgs(plan.logging), with_provider)
    pulumi.export("kibanaNodePort", plan.settings.kibana_node_port)
    pulumi.export("kibanaDataViews", [f"{domain}-*" for domain in plan.domains])
    if plan.monitoring:
        Monitoring("monitoring", ObjectsArgs(plan.monitoring),
                   pulumi.ResourceOptions.merge(with_provider, pulumi.ResourceOptions(depends_on=[logging])))
        pulumi.export("weaveScopeNodePort", plan.settings.weave_scope_node_port)


def run(project_dir: Path | None = None) -> None:
    """`project_dir`: the folder of Pulumi.yaml and domains/; Pulumi runs a program there."""
    project_dir = project_dir or Path.cwd()
    stack = pulumi.get_stack()
    if platform_settings.is_platform(stack, {"role": pulumi.Config(conventions.PROJECT).get("role")}):
        deploy_platform(load_platform_plan(project_dir), project_dir)
    else:
        deploy(load_plan(project_dir), project_dir)
