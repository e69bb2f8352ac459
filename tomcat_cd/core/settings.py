"""Stack settings: the `tomcat-cd:` keys of `Pulumi.<stack>.yaml`.

The Pulumi program reads them through `pulumi.Config` (structured values arrive
as JSON text) and `cdctl` reads the stack file itself (which Pulumi rewrites with
every scalar quoted); both hand the raw values to `parse_settings`, which reads
strings as Pulumi does, so the two can never read a key differently.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping

import yaml

from tomcat_cd.core import conventions
from tomcat_cd.core.errors import ConfigError, Problem, Problems, raise_if_any
from tomcat_cd.core.events import NOTIFY_DEFAULT
from tomcat_cd.core.fields import yaml_problem
from tomcat_cd.core.schema import keys_of, validated
from tomcat_cd.core.stack_file import (FREEZE_KEY, IMAGES_KEPT, PARALLEL_DEFAULT, PinRecord, StackFile, read_entries,
                                       read_images, read_pins)
from tomcat_cd.core.yamltext import load_yaml

# Keys whose values are Pulumi secrets; they are never read into StackSettings.
SECRET_KEYS = frozenset({"harborPassword", "elasticsearchPassword", "notifyUrl", "notifySecret"})
KNOWN_KEYS = frozenset(keys_of(StackFile))
# The record of what runs, which cdctl keeps in step with the backend (tomcat_cd.driver.record).
MAP_KEYS = ("versions", "builds", "images", "pins")


@dataclass(frozen=True)
class Build:
    """The record of one deploy of one domain."""

    build_id: str
    git_id: str
    by: str = ""
    war_sha256: str = ""

    def to_config(self) -> dict[str, str]:
        values = {"buildId": self.build_id, "gitId": self.git_id, "by": self.by, "warSha256": self.war_sha256}
        return {k: v for k, v in values.items() if v}


@dataclass(frozen=True)
class Pin:
    """A domain held at its version, or (key `*`) a frozen environment: who, when, why."""

    by: str
    at: str
    reason: str
    version: str | None = None
    failed_version: str | None = None
    """Set by a gate's automatic rollback: the version whose gate failed, and its update."""
    failed_update: int | None = None

    def to_config(self) -> dict[str, Any]:
        values = {"by": self.by, "at": self.at, "reason": self.reason, "version": self.version,
                  "failedVersion": self.failed_version, "failedUpdate": self.failed_update}
        return {k: v for k, v in values.items() if v is not None}

    def describe(self) -> str:
        held = f" at {self.version}" if self.version else ""
        return f"pinned{held} by {self.by} at {self.at}: {self.reason}"

    @classmethod
    def of(cls, record: PinRecord) -> "Pin":
        return cls(record.by, record.at, record.reason, record.version, record.failed_version, record.failed_update)


@dataclass(frozen=True)
class SiteMaps:
    """What each domain runs in one stack: the `versions`, `builds` and `images` maps of its config."""

    versions: dict[str, str] = field(default_factory=dict)
    builds: dict[str, Build] = field(default_factory=dict)
    images: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Each domain's pushed images (`<tag>@<digest>`), newest first: a version whose tag is
    here is deployed by that digest, never rebuilt."""
    pins: dict[str, Pin] = field(default_factory=dict)
    """Domains held at their version; `*` freezes the whole environment."""

    def with_pin(self, key: str, pin: Pin | None) -> "SiteMaps":
        """The maps with one pin set (or, with None, lifted); `key` is a domain or `*`."""
        pins = {k: p for k, p in self.pins.items() if k != key}
        if pin is not None:
            pins[key] = pin
        return replace(self, pins=dict(sorted(pins.items())))

    def holds(self, domain: str) -> tuple[str, Pin] | None:
        """(key, pin) that refuses a change of the domain: its own pin, else a freeze."""
        for key in (domain, FREEZE_KEY):
            if key in self.pins:
                return key, self.pins[key]
        return None

    def with_site(self, domain: str, version: str | None, build: Build | None) -> "SiteMaps":
        """The maps with one domain's entries replaced (removed, with version None); its
        pushed images stay, so that a rollback after a delete still finds them."""
        versions = {d: v for d, v in self.versions.items() if d != domain}
        builds = {d: b for d, b in self.builds.items() if d != domain}
        if version is not None:
            versions[domain] = version
            if build is not None:
                builds[domain] = build
        return replace(self, versions=dict(sorted(versions.items())), builds=dict(sorted(builds.items())))

    def with_pushed(self, pushed: Mapping[str, str]) -> "SiteMaps":
        """The maps with each domain's newly pushed image first in its list (no duplicates)."""
        images = dict(self.images)
        for domain, ref in pushed.items():
            kept = tuple(r for r in images.get(domain, ()) if r != ref)
            images[domain] = ((ref,) + kept)[:IMAGES_KEPT]
        return replace(self, images=dict(sorted(images.items())))

    def site(self, domain: str) -> tuple[str | None, Build | None]:
        return self.versions.get(domain), self.builds.get(domain)

    def config_values(self) -> dict[str, Any]:
        """`tomcat-cd:` key -> value as the stack config holds them (an empty map: absent)."""
        values: dict[str, Any] = {}
        if self.versions:
            values[f"{conventions.PROJECT}:versions"] = dict(self.versions)
        if self.builds:
            values[f"{conventions.PROJECT}:builds"] = {d: b.to_config() for d, b in self.builds.items()}
        if self.images:
            values[f"{conventions.PROJECT}:images"] = {d: list(refs) for d, refs in self.images.items()}
        if self.pins:
            values[f"{conventions.PROJECT}:pins"] = {key: pin.to_config() for key, pin in self.pins.items()}
        return values


def read_site_maps(values: Mapping[str, Any], problems: Problems) -> SiteMaps:
    """The versions and builds maps of a stack's `tomcat-cd:` values (keys without the prefix;
    structured values as Pulumi hands them over, JSON text or decoded), each entry validated
    on its own (tomcat_cd.core.stack_file): the one reading of these maps for the program, the
    driver and history."""
    maps = {key: _decoded(values.get(key)) for key in MAP_KEYS}
    versions, builds = read_entries(maps["versions"], maps["builds"], problems, f"{conventions.PROJECT}:")
    images = read_images(maps["images"], problems, f"{conventions.PROJECT}:")
    pins = read_pins(maps["pins"], problems, f"{conventions.PROJECT}:")
    return SiteMaps(dict(sorted(versions.items())),
                    {domain: Build(b.build_id, b.git_id, b.by, b.war_sha256) for domain, b in sorted(builds.items())},
                    dict(sorted(images.items())), {key: Pin.of(record) for key, record in sorted(pins.items())})


def _decoded(value: Any) -> Mapping[Any, Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, Mapping) else {}


@dataclass(frozen=True)
class StackSettings:
    """What one stack deploys. Every field documents its default."""

    stack: str
    """Pulumi stack name (`master`, `develop`, or a test copy)."""
    environment: str
    """`master` or `develop`; defaults to the stack name."""
    harbor_host: str
    """Harbor registry host (required), e.g. `harbor.gyyx.cn`."""
    harbor_username: str | None = None
    """Robot account that pulls and pushes; no pull secret is created without it."""
    harbor_password_set: bool = False
    """Whether the `harborPassword` secret is configured (its value stays in Pulumi)."""
    base_image: str = "tomcat:9.0-jdk8"
    """Tomcat base image, in Harbor's `template` project unless it names a registry."""
    war_root: str = conventions.WAR_ROOT_DEFAULT
    """Where Jenkins keeps `<domain>/<version>/ROOT.war`."""
    domains_dir: str = "domains"
    """Folder of domain files, relative to the project."""
    target: str = "render"
    """`cluster` applies to a cluster; `render` (the default unless `kubeconfig` is set) has
    the Kubernetes provider write each object as YAML under `render_dir`."""
    kubeconfig: str | None = None
    """Kubeconfig path of the cluster; unset, cluster mode uses the ambient one (KUBECONFIG)."""
    render_dir: str | None = None
    """Folder of rendered manifests; defaults to `.state/manifests/<stack>` in the project."""
    build_images: bool = True
    """Build and push images with the Docker Build provider; defaults to true for a cluster,
    false for render."""
    builder: str | None = None
    """The buildx builder that builds images (any driver: docker, docker-container, remote,
    kubernetes); unset, buildx's current builder (on an operator's machine, Docker's own), or
    `tomcat-cd` when `builder_endpoint` is set."""
    builder_endpoint: str | None = None
    """A BuildKit daemon's endpoint: the program makes `builder` a remote buildx builder of it."""
    protect_namespace: bool = False
    """Protect the namespace from deletion; defaults to true for production."""
    parallel: int = PARALLEL_DEFAULT
    """How many resource operations a whole-stack `cdctl pulumi up|preview|refresh|destroy`
    runs at once (Pulumi's `--parallel`): a first import awaits every Deployment's rollout."""
    checkpoints: str = "auto"
    """When a whole-stack `cdctl pulumi up|refresh|destroy` saves the state (saves_state_at_end)."""
    versions: dict[str, str] = field(default_factory=dict)
    """Deployed version per domain; a domain absent here is not deployed."""
    builds: dict[str, "Build"] = field(default_factory=dict)
    """What built each domain's deployed version (written by `cdctl deploy`); its git id
    names the image tag, so a later commit of this repository never retags a running site."""
    images: dict[str, tuple[str, ...]] = field(default_factory=dict)
    """Each domain's pushed images by digest, newest first (kept by cdctl from the state)."""
    pins: dict[str, Pin] = field(default_factory=dict)
    """Domains held at their version (`cdctl pin`, a gate's rollback); `*`: a freeze."""
    health_gate: bool = True
    """Run each domain's health gate after a deploy in cluster mode (its domain file tunes it)."""
    elasticsearch_url: str | None = None
    """Elasticsearch holding the sites' logs: the health gate's errors check reads it."""
    elasticsearch_username: str | None = None
    """A user that may read the sites' indices; its password is the `elasticsearchPassword` secret."""
    elasticsearch_password_set: bool = False
    node_address: str | None = None
    """Where the gate's health check reaches the NodePorts; unset, the first node's address."""
    markers: bool = True
    """Write a deploy marker to Elasticsearch (when `elasticsearch_url` is set) for every change."""
    notify_format: str = "generic"
    """The webhook's format (generic, dingtalk, wecom, slack); it notifies once `notifyUrl` is set."""
    notify_url_set: bool = False
    notify_secret_set: bool = False
    notify_on: tuple[str, ...] = NOTIFY_DEFAULT
    """Which events notify (tomcat_cd.core.events.Event.kind)."""

    @property
    def namespace(self) -> str:
        return conventions.namespace(self.environment)

    @property
    def pull_secret_name(self) -> str | None:
        return conventions.IMAGE_PULL_SECRET if self.harbor_username and self.harbor_password_set else None


def parse_settings(stack: str, values: Mapping[str, Any], source: str) -> StackSettings:
    """Validate the `tomcat-cd:` values of one stack (keys without the prefix)."""
    problems: list[Problem] = []
    sink = Problems(source, problems)
    prefix = f"{conventions.PROJECT}:"
    check_secrets(sink, values, SECRET_KEYS, stack)
    fields = validated(StackFile, values, sink, prefix)
    maps = read_site_maps(values, sink)
    if fields is None:
        raise ConfigError(problems)
    environment = fields.environment or stack
    if environment not in conventions.ENVIRONMENTS:
        sink.add("tomcat-cd:environment", f"unknown environment {environment!r} for stack {stack!r}: "
                                          "name the stack master or develop, or set tomcat-cd:environment")
    target = fields.target or ("cluster" if fields.kubeconfig else "render")
    raise_if_any(problems)
    return StackSettings(
        stack=stack,
        environment=environment,
        harbor_host=fields.harbor_host,
        harbor_username=fields.harbor_username,
        harbor_password_set=values.get("harborPassword") is not None,
        base_image=fields.base_image,
        war_root=fields.war_root,
        domains_dir=fields.domains_dir,
        target=target,
        kubeconfig=fields.kubeconfig,
        render_dir=fields.render_dir,
        build_images=target == "cluster" if fields.build_images is None else fields.build_images,
        builder=fields.builder or (conventions.BUILDX_BUILDER if fields.builder_endpoint else None),
        builder_endpoint=fields.builder_endpoint,
        protect_namespace=(environment == conventions.PRODUCTION if fields.protect_namespace is None
                           else fields.protect_namespace),
        parallel=fields.parallel,
        checkpoints=fields.checkpoints,
        versions=maps.versions,
        builds=maps.builds,
        images=maps.images,
        pins=maps.pins,
        health_gate=fields.health_gate,
        elasticsearch_url=fields.elasticsearch_url,
        elasticsearch_username=fields.elasticsearch_username,
        elasticsearch_password_set=values.get("elasticsearchPassword") is not None,
        node_address=fields.node_address,
        markers=fields.markers,
        notify_format=fields.notify_format,
        notify_url_set=values.get("notifyUrl") is not None,
        notify_secret_set=values.get("notifySecret") is not None,
        notify_on=tuple(fields.notify_on),
    )


def secret_marker() -> dict[str, str]:
    """Stands for a configured secret: the shape a stack file gives it, never its value."""
    return {"secure": "(set)"}


def check_secrets(problems: Problems, values: Mapping[str, Any], keys: frozenset[str], stack: str) -> None:
    """A problem for each of `keys` set in plain text instead of as a Pulumi secret."""
    for key in sorted(keys):
        if values.get(key) is not None and not is_secret_marker(values[key]):
            problems.add(f"tomcat-cd:{key}", f"must be a secret: pulumi config set --secret {key} -s {stack}")


def is_secret_marker(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {"secure"}


def user_id(raw: str) -> str:
    """A user name as it may enter an update message: disallowed characters become `_`."""
    cleaned = re.sub(r"[^A-Za-z0-9._@+-]", "_", raw)[:64]
    return cleaned or "unknown"


def stack_file(project_dir: Path, stack: str) -> Path:
    return project_dir / f"Pulumi.{stack}.yaml"


def read_stack_values(project_dir: Path, stack: str) -> tuple[str, dict[str, Any]]:
    """(file name, the `tomcat-cd:` values without the prefix) of `Pulumi.<stack>.yaml`."""
    path = stack_file(project_dir, stack)
    source = path.name
    if not path.is_file():
        known = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))
        raise_if_any([Problem(source, "", f"no such stack file in {project_dir} (stacks: {', '.join(known) or 'none'})")])
    try:
        document = load_yaml(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise_if_any([Problem(source, "", yaml_problem(err))])
    config = document.get("config", {}) if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise_if_any([Problem(source, "config", "must be a mapping of project:key values")])
    prefix = f"{conventions.PROJECT}:"
    return source, {k[len(prefix):]: v for k, v in (config or {}).items()
                    if isinstance(k, str) and k.startswith(prefix)}


def saves_state_at_end(checkpoints: str, resources_in_state: int) -> bool:
    """Whether a whole-stack update saves the state once, when it ends, rather than after each
    step. Each save writes the whole state, so a first import of 200 sites writes it over a
    thousand times, each time bigger: 73% of the engine's time in that import. Saved at the end
    only, a crash (not an interrupt: Pulumi saves on Ctrl-C) forgets what the update made;
    in an empty stack that is nothing a re-run does not make again (the provider applies
    server-side: an object that exists is taken over), so `auto` saves at the end there alone."""
    if checkpoints == "auto":
        return resources_in_state == 0
    return checkpoints == "at-end"


def load_stack_file(project_dir: Path, stack: str, versions: Mapping[str, str] | None = None,
                    domains_dir: str | None = None) -> StackSettings:
    """Settings of a site stack from its `Pulumi.<stack>.yaml`, as `cdctl` reads them.

    `versions` overrides entries of the versions map (Jenkins' VERSION parameter)
    (and forgets the build that deployed the old one) and `domains_dir` the domainsDir
    key; both are validated like the file itself."""
    source, values = read_stack_values(project_dir, stack)
    if versions:
        current = values.get("versions")
        values["versions"] = {**(current if isinstance(current, Mapping) else {}), **versions}
        # A new version is a new build: its image is tagged with this checkout's git id.
        builds = values.get("builds")
        if isinstance(builds, Mapping):
            values["builds"] = {d: b for d, b in builds.items() if d not in versions}
    if domains_dir is not None:
        values["domainsDir"] = domains_dir
    return parse_settings(stack, values, source)
