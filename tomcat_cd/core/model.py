"""The domain model: one `domains/<domain>.yaml` per site, loaded into frozen dataclasses.

Loading validates every file and reports every problem at once (see errors.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from xml.etree import ElementTree

import yaml

from tomcat_cd.core import conventions
from tomcat_cd.core.domain_file import DomainFile
from tomcat_cd.core.errors import Problem, Problems, raise_if_any
from tomcat_cd.core.fields import yaml_problem
from tomcat_cd.core.gate import GateRule
from tomcat_cd.core.schema import validated
from tomcat_cd.core.yamltext import load_yaml

# Files a site may override in Tomcat's conf/ folder (Catalina/localhost/*.xml too).
TOMCAT_CONF_FILES = frozenset({
    "catalina.policy", "catalina.properties", "context.xml", "jaspic-providers.xml",
    "logging.properties", "server.xml", "tomcat-users.xml", "web.xml",
})

# A domain file is a few lines; anything this large is a mistake (it would land in the state).
MAX_DOMAIN_FILE_BYTES = 64 * 1024


@dataclass(frozen=True)
class HostAlias:
    """One `/etc/hosts` line: an IP and the names it answers to."""

    ip: str
    hostnames: tuple[str, ...]


@dataclass(frozen=True)
class Resources:
    """Container resources. Requests default to 500m CPU and 1Gi memory; the memory
    limit defaults to the request (a JVM over its limit is killed, not throttled);
    the CPU limit defaults to 2 cores so start-up is not starved."""

    cpu: str = "500m"
    memory: str = "1Gi"
    cpu_limit: str = "2"
    memory_limit: str | None = None


@dataclass(frozen=True)
class Probe:
    """Health checks. `path` (default `/`) is polled for readiness; liveness only needs
    the port; start-up may take `startupSeconds` (default 300) before liveness counts."""

    path: str = "/"
    period_seconds: int = 10
    timeout_seconds: int = 5
    startup_seconds: int = 300


@dataclass(frozen=True)
class Site:
    """One web site, named by its domain."""

    domain: str
    source: str
    master_node_port: int
    replicas: dict[str, int] = field(default_factory=lambda: {"master": 2, "develop": 1})
    hosts: tuple[HostAlias, ...] = ()
    resources: Resources = Resources()
    java_opts: str = "-XX:MaxRAMPercentage=75.0"
    jvm_flags: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    probe: Probe = Probe()
    base_image: str | None = None
    app_log_multiline: str | None = None
    """A regex matching the first line of each application log record; lines that do not
    match join the record before (default: none, one line per event)."""
    gate: GateRule = GateRule()
    config_dir: str | None = None
    tomcat_dir: str | None = None

    @property
    def name(self) -> str:
        return conventions.k8s_name(self.domain)

    def node_port(self, environment: str) -> int:
        return conventions.node_port(self.master_node_port, environment)

    def replicas_in(self, environment: str) -> int:
        return self.replicas[environment]

    def config_files(self) -> list[Path]:
        return _files_below(self.config_dir)

    def tomcat_files(self) -> list[Path]:
        return _files_below(self.tomcat_dir)


def _files_below(folder: str | None) -> list[Path]:
    if not folder:
        return []
    return sorted(p for p in Path(folder).rglob("*") if p.is_file())


def load_sites(domains_dir: str | Path, relative_to: Path | None = None) -> list[Site]:
    """Every site under `domains_dir`, sorted by domain; raises ConfigError listing all problems.

    Files are named relative to `relative_to` (the project) in problems, as a user typed them."""
    folder = Path(domains_dir)

    def shown(path: Path) -> str:
        if relative_to is not None and path.is_relative_to(relative_to):
            return str(path.relative_to(relative_to))
        return str(path)

    problems: list[Problem] = []
    if not folder.is_dir():
        raise_if_any([Problem(shown(folder), "", "domains folder not found")])
    sites = []
    # Every file's nodePort, wrong files' too: a clash is told even while the other is broken.
    claims: list[tuple[str, int]] = []
    for path in sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml")):
        site = load_site(path, Problems(shown(path), problems), claims)
        if site is not None:
            sites.append(site)
    _check_orphan_folders(folder, problems, shown)
    _check_port_clashes(claims, problems)
    _check_name_clashes(sites, problems)
    raise_if_any(problems)
    return sorted(sites, key=lambda s: s.domain)


def load_site(path: Path, problems: Problems, claims: list[tuple[str, int]] | None = None) -> Site | None:
    """One domain file; problems are reported under `problems.source`, and the nodePort it
    names, if it reads as one, is added to `claims`."""
    domain = path.name.rsplit(".", 1)[0]
    if path.suffix == ".yml":
        problems.add("", "domain files end in .yaml")
    if not conventions.is_valid_domain(domain):
        problems.add("", f"file name must be <domain>.yaml with a lower-case domain such as test.gyyx.cn, got {domain!r}")
    elif (name_problem := conventions.k8s_name_problem(domain)) is not None:
        problems.add("", name_problem)
    # A FIFO would block the read and a folder has no text: only regular files are read.
    if path.is_dir():
        problems.add("", "is a folder; a domain file is a regular file")
        return None
    if not path.is_file():
        problems.add("", "is not a regular file")
        return None
    if path.stat().st_size > MAX_DOMAIN_FILE_BYTES:
        problems.add("", f"is {path.stat().st_size} bytes; a domain file may have at most {MAX_DOMAIN_FILE_BYTES}")
        return None
    try:
        data = load_yaml(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        problems.add("", yaml_problem(err))
        return None
    if not isinstance(data, dict):
        problems.add("", "must be a mapping of fields (nodePort, replicas, ...)")
        return None
    port = data.get("nodePort")
    if claims is not None and type(port) is int and \
            conventions.MASTER_FIRST_NODE_PORT <= port <= conventions.MASTER_LAST_NODE_PORT:
        claims.append((problems.source, port))
    return parse_site(domain, path, data, problems)


def parse_site(domain: str, path: Path, data: dict[str, Any], problems: Problems) -> Site | None:
    """The site of one domain file's fields; None (with the problems added) when they are wrong."""
    site_dir = path.with_name(domain)
    config_dir = site_dir / "config"
    tomcat_dir = site_dir / "tomcat"
    _check_tomcat_overrides(tomcat_dir, problems)
    fields = validated(DomainFile, data, problems)
    if fields is None:
        return None
    return Site(
        domain=domain,
        source=problems.source,
        master_node_port=fields.node_port,
        replicas={"master": fields.replicas.master, "develop": fields.replicas.develop},
        hosts=tuple(HostAlias(line.split()[0], tuple(line.split()[1:])) for line in fields.hosts),
        resources=Resources(fields.resources.cpu, fields.resources.memory, fields.resources.cpu_limit,
                            fields.resources.memory_limit),
        java_opts=fields.java_opts,
        jvm_flags=tuple(fields.jvm_flags),
        env=dict(sorted(fields.env.items())),
        probe=Probe(fields.probe.path, fields.probe.period_seconds, fields.probe.timeout_seconds,
                    fields.probe.startup_seconds),
        base_image=fields.base_image,
        app_log_multiline=fields.app_log_multiline,
        gate=fields.gate.rule(),
        config_dir=str(config_dir) if config_dir.is_dir() else None,
        tomcat_dir=str(tomcat_dir) if tomcat_dir.is_dir() else None,
    )


def _check_tomcat_overrides(tomcat_dir: Path, problems: Problems) -> None:
    shown_dir = str(Path(problems.source).with_name(tomcat_dir.parent.name) / "tomcat")
    for path in _files_below(str(tomcat_dir)):
        relative = path.relative_to(tomcat_dir).as_posix()
        shown = f"{shown_dir}/{relative}"
        per_app = relative.startswith("Catalina/localhost/") and relative.endswith(".xml")
        if relative not in TOMCAT_CONF_FILES and not per_app:
            problems.for_source(shown).add(
                "", f"not a Tomcat conf file (allowed: {', '.join(sorted(TOMCAT_CONF_FILES))}, Catalina/localhost/*.xml)")
            continue
        if relative.endswith(".xml"):
            try:
                ElementTree.parse(path)
            except ElementTree.ParseError as err:
                problems.for_source(shown).add("", f"not well-formed XML: {err}")


def _check_orphan_folders(folder: Path, problems: list[Problem], shown: Callable[[Path], str]) -> None:
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and p.suffix not in (".yaml", ".yml")):
        if not (folder / f"{sub.name}.yaml").exists():
            problems.append(Problem(shown(sub), "", f"folder has no domain file {sub.name}.yaml beside it"))


def _check_name_clashes(sites: list[Site], problems: list[Problem]) -> None:
    """Two domains such as m.shop.gyyx.cn and m-shop.gyyx.cn name one Deployment and Service."""
    by_name: dict[str, Site] = {}
    for site in sorted(sites, key=lambda s: s.source):
        other = by_name.setdefault(site.name, site)
        if other is not site:
            problems.append(Problem(site.source, "", f"its Kubernetes name {site.name} is also the one of "
                                    f"{other.source}; rename one of the two domains' files"))


def _check_port_clashes(claims: list[tuple[str, int]], problems: list[Problem]) -> None:
    by_port: dict[int, str] = {}
    for source, port in sorted(claims):
        other = by_port.setdefault(port, source)
        if other != source:
            problems.append(Problem(source, "nodePort", f"{port} is already used by {other}"))
