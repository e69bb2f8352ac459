"""Stack settings: the `tomcat-cd:` keys of `Pulumi.<stack>.yaml`.

The Pulumi program reads them through `pulumi.Config` (structured values arrive
as JSON text) and `cdctl` reads the stack file itself; both hand the raw values
to `parse_settings`, so the two can never read a key differently.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from tomcat_cd import conventions
from tomcat_cd.errors import Problem, Problems, raise_if_any
from tomcat_cd.fields import Reader, type_name, yaml_problem

# Docker tag characters; the whole tag must stay under 128 characters.
VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
GIT_ID = re.compile(r"^[0-9a-f]{7,40}$")
HOST = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$")

# Keys whose values are Pulumi secrets; they are never read into StackSettings.
SECRET_KEYS = frozenset({"harborPassword"})

KNOWN_KEYS = frozenset({
    "environment", "harborHost", "harborUsername", "baseImage", "warRoot", "domainsDir",
    "buildImages", "protectNamespace", "versions",
}) | SECRET_KEYS


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
    build_images: bool = True
    """Build and push images with pulumi-docker; false reuses tags Jenkins built."""
    protect_namespace: bool = False
    """Protect the namespace from deletion; defaults to true for production."""
    versions: dict[str, str] = field(default_factory=dict)
    """Deployed version per domain; a domain absent here is not deployed."""

    @property
    def namespace(self) -> str:
        return conventions.namespace(self.environment)

    @property
    def pull_secret_name(self) -> str | None:
        return conventions.IMAGE_PULL_SECRET if self.harbor_username and self.harbor_password_set else None


def parse_settings(stack: str, values: Mapping[str, Any], source: str,
                   decode_json: bool = False) -> StackSettings:
    """Validate the `tomcat-cd:` values of one stack (keys without the prefix)."""
    problems: list[Problem] = []
    reader = Reader(values, Problems(source, problems), prefix=f"{conventions.PROJECT}:", decode_json=decode_json)
    reader.reject_unknown(set(KNOWN_KEYS))
    environment = reader.string("environment", stack)
    if environment not in conventions.ENVIRONMENTS:
        reader.problems.add("tomcat-cd:environment",
                            f"unknown environment {environment!r} for stack {stack!r}: "
                            f"name the stack master or develop, or set tomcat-cd:environment")
    for key in SECRET_KEYS:
        value = values.get(key)
        if value is not None and not is_secret_marker(value):
            reader.problems.add(f"tomcat-cd:{key}",
                                f"must be a secret: pulumi config set --secret {key} -s {stack}")
    settings = StackSettings(
        stack=stack,
        environment=environment,
        harbor_host=reader.string("harborHost", pattern=HOST, what="a host name such as harbor.gyyx.cn"),
        harbor_username=reader.string("harborUsername", None),
        harbor_password_set=values.get("harborPassword") is not None,
        base_image=reader.string("baseImage", StackSettings.base_image),
        war_root=reader.string("warRoot", StackSettings.war_root),
        domains_dir=reader.string("domainsDir", StackSettings.domains_dir),
        build_images=reader.boolean("buildImages", True),
        protect_namespace=reader.boolean("protectNamespace", environment == conventions.PRODUCTION),
        versions=_versions(reader),
    )
    raise_if_any(problems)
    return settings


def secret_marker() -> dict[str, str]:
    """Stands for a configured secret: the shape a stack file gives it, never its value."""
    return {"secure": "(set)"}


def is_secret_marker(value: Any) -> bool:
    return isinstance(value, Mapping) and set(value) == {"secure"}


def _versions(reader: Reader) -> dict[str, str]:
    result = {}
    for domain, version in (reader.mapping("versions") or {}).items():
        field_name = f'tomcat-cd:versions["{domain}"]'
        if not isinstance(domain, str) or not conventions.is_valid_domain(domain):
            reader.problems.add(field_name, "is not a domain such as test.gyyx.cn")
        elif not isinstance(version, str) or not VERSION.match(version):
            shown = repr(version) if isinstance(version, str) else type_name(version)
            reader.problems.add(field_name, f"must be a version such as v1.2.0 (letters, digits, . _ -), got {shown}")
        else:
            result[domain] = version
    return dict(sorted(result.items()))


def stack_file(project_dir: Path, stack: str) -> Path:
    return project_dir / f"Pulumi.{stack}.yaml"


def load_stack_file(project_dir: Path, stack: str, versions: Mapping[str, str] | None = None,
                    domains_dir: str | None = None) -> StackSettings:
    """Settings of a stack from its `Pulumi.<stack>.yaml`, as `cdctl` reads them.

    `versions` overrides entries of the versions map (Jenkins' VERSION parameter)
    and `domains_dir` the domainsDir key; both are validated like the file itself."""
    path = stack_file(project_dir, stack)
    source = path.name
    if not path.is_file():
        known = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in project_dir.glob("Pulumi.*.yaml"))
        raise_if_any([Problem(source, "", f"no such stack file in {project_dir} (stacks: {', '.join(known) or 'none'})")])
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise_if_any([Problem(source, "", yaml_problem(err))])
    config = document.get("config", {}) if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise_if_any([Problem(source, "config", "must be a mapping of project:key values")])
    prefix = f"{conventions.PROJECT}:"
    values = {k[len(prefix):]: v for k, v in (config or {}).items()
              if isinstance(k, str) and k.startswith(prefix)}
    if versions:
        current = values.get("versions")
        values["versions"] = {**(current if isinstance(current, Mapping) else {}), **versions}
    if domains_dir is not None:
        values["domainsDir"] = domains_dir
    return parse_settings(stack, values, source)


def cd_git_id(project_dir: Path) -> str:
    """The short git id of the CD configuration; `CD_GIT_ID` overrides it."""
    given = os.environ.get("CD_GIT_ID")
    if given is not None:
        if not GIT_ID.match(given):
            raise_if_any([Problem("environment", "CD_GIT_ID", f"must be a hex git id of 7-40 digits, got {given!r}")])
        return given[:7]
    try:
        out = subprocess.run(["git", "rev-parse", "--short=7", "HEAD"], cwd=project_dir,
                             capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        raise_if_any([Problem(str(project_dir), "", "not a git checkout with a commit: set CD_GIT_ID")])
    return out.stdout.strip()
