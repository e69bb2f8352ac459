"""What one stack deploys, computed once from its settings and the domain files.

`cdctl render` writes a StackPlan to disk; the Pulumi program registers the
same StackPlan's objects. Nothing here talks to Pulumi or touches a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from tomcat_cd.core import conventions
from tomcat_cd.core.builders import dockerfile, kubernetes, tomcat
from tomcat_cd.core.errors import Problem, raise_if_any
from tomcat_cd.core.model import Site, load_sites
from tomcat_cd.core.platform_settings import PLATFORM_STACK, parse_platform_settings, port_clashes
from tomcat_cd.core.settings import StackSettings, read_stack_values

# What the pull secret carries when the real password is not at hand (render).
REDACTED = "<redacted: tomcat-cd:harborPassword>"


@dataclass(frozen=True)
class BuildContext:
    """The files of a site's image build; the war is copied in when the build runs."""

    image: str
    base_image: str
    war_source: str
    files: dict[str, str]
    """Generated files: path inside the context -> text (Dockerfile, tomcat/*.xml, ...)."""
    copies: dict[str, str]
    """The site's own files, copied byte for byte: path inside the context -> source path."""

    def war_present(self) -> bool:
        return Path(self.war_source).is_file()


@dataclass(frozen=True)
class SitePlan:
    site: Site
    version: str
    image: str
    """The tag: `<harbor>/<domain>/<domain>:<version>-<env>-<git>`."""
    build: BuildContext
    deployment: dict[str, Any]
    """Runs `pushed_image` when the record has it, else the tag (a build replaces it with the
    digest it pushed)."""
    service: dict[str, Any]
    pushed_image: str | None = None
    """`<tag>@<digest>` of this very tag as the record has it: deployed as it is, never rebuilt."""

    @property
    def domain(self) -> str:
        return self.site.domain

    @property
    def needs_build(self) -> bool:
        """With image builds on: whether this version is built (it has no pushed digest yet)."""
        return self.pushed_image is None

    def objects(self) -> list[dict[str, Any]]:
        return [self.deployment, self.service]


@dataclass(frozen=True)
class StackPlan:
    settings: StackSettings
    namespace: dict[str, Any]
    pull_secret: dict[str, Any] | None
    sites: tuple[SitePlan, ...]

    def objects(self) -> list[dict[str, Any]]:
        """Every Kubernetes object, in the order they must exist."""
        head = [self.namespace] + ([self.pull_secret] if self.pull_secret else [])
        return head + [obj for site in self.sites for obj in site.objects()]

    def missing_war_problems(self) -> list[Problem]:
        """One problem per deployed site whose war Jenkins has not dropped yet."""
        return [
            Problem(f"Pulumi.{self.settings.stack}.yaml", f'tomcat-cd:versions["{s.domain}"]',
                    f"war not found: {s.build.war_source}")
            for s in self.sites if s.needs_build and not s.build.war_present()
        ]


def build_plan(settings: StackSettings, project_dir: Path, cd_git_id: str,
               docker_config: Callable[[str, str], Any] | None = None) -> StackPlan:
    """The plan of one stack. `docker_config(registry, username)` returns the pull
    secret's `.dockerconfigjson` (a Pulumi secret in the program, redacted in render)."""
    sites = load_sites(project_dir / settings.domains_dir, relative_to=project_dir)
    by_domain = {s.domain: s for s in sites}
    unknown = [d for d in settings.versions if d not in by_domain]
    raise_if_any([
        Problem(f"Pulumi.{settings.stack}.yaml", f'tomcat-cd:versions["{d}"]',
                f"no domain file {settings.domains_dir}/{d}.yaml") for d in unknown
    ])
    raise_if_any([p for s in sites for p in _override_problems(s)])
    raise_if_any(_platform_port_problems(sites, project_dir))
    environment = settings.environment
    pull_secret = None
    if settings.pull_secret_name and settings.harbor_username:
        make_config = docker_config or (lambda registry, user: kubernetes.docker_config_json(registry, user, REDACTED))
        pull_secret = kubernetes.pull_secret(environment, make_config(settings.harbor_host, settings.harbor_username))
    plans = tuple(
        site_plan(by_domain[domain], version, settings, cd_git_id)
        for domain, version in sorted(settings.versions.items())
    )
    return StackPlan(settings, kubernetes.namespace(environment), pull_secret, plans)


def site_plan(site: Site, version: str, settings: StackSettings, cd_git_id: str) -> SitePlan:
    """`cd_git_id` names the image unless the stack records the build that deployed the site."""
    environment = settings.environment
    build = settings.builds.get(site.domain)
    git_id = build.git_id if build else cd_git_id
    image = conventions.image_ref(settings.harbor_host, site.domain, version, environment, git_id)
    pushed = pushed_image(settings.images.get(site.domain, ()), image)
    return SitePlan(
        site=site,
        version=version,
        image=image,
        build=build_context(site, version, settings, image),
        deployment=kubernetes.deployment(site, environment, version, pushed or image, settings.pull_secret_name),
        service=kubernetes.service(site, environment, version),
        pushed_image=pushed,
    )


def pushed_image(pushed: tuple[str, ...], tag: str) -> str | None:
    """The record's `<tag>@<digest>` of exactly this tag, if any."""
    return next((ref for ref in pushed if ref.split("@", 1)[0] == tag), None)


def build_context(site: Site, version: str, settings: StackSettings, image: str) -> BuildContext:
    base = conventions.base_image_ref(settings.harbor_host, site.base_image or settings.base_image)
    copies = {f"tomcat/{p.relative_to(site.tomcat_dir).as_posix()}": str(p)
              for p in site.tomcat_files()} if site.tomcat_dir else {}
    if site.config_dir:
        copies.update({f"config/{p.relative_to(site.config_dir).as_posix()}": str(p) for p in site.config_files()})
    # A site's own Tomcat file replaces the generated one of the same name.
    files = {f"tomcat/{name}": text for name, text in tomcat.generated_conf_files().items()
             if f"tomcat/{name}" not in copies}
    files["Dockerfile"] = dockerfile.dockerfile(base, site.domain, bool(site.config_files()))
    files[".dockerignore"] = dockerfile.dockerignore()
    return BuildContext(
        image=image,
        base_image=base,
        war_source=conventions.war_path(settings.war_root, site.domain, version),
        files=dict(sorted(files.items())),
        copies=dict(sorted(copies.items())),
    )


def _platform_port_problems(sites: list[Site], project_dir: Path) -> list[Problem]:
    """A site may not take a NodePort of the platform stack (Kibana, Weave Scope)."""
    if not (project_dir / f"Pulumi.{PLATFORM_STACK}.yaml").is_file():
        return []
    source, values = read_stack_values(project_dir, PLATFORM_STACK)
    settings = parse_platform_settings(PLATFORM_STACK, values, source)
    return [Problem(site.source, "nodePort", f"{port} ({env}) is also {key} of the platform stack ({source})")
            for site, env, port, key in port_clashes(settings, sites)]


def _override_problems(site: Site) -> list[Problem]:
    override = Path(site.tomcat_dir or "") / "server.xml"
    if not site.tomcat_dir or not override.is_file():
        return []
    reason = tomcat.access_log_problem(override.read_text(encoding="utf-8"))
    return [Problem(site.source, "tomcat/server.xml", reason)] if reason else []
