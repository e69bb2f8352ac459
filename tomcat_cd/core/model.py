"""The domain model: one `domains/<domain>.yaml` per site, loaded into frozen dataclasses.

Loading validates every file and reports every problem at once (see errors.py).
"""

from __future__ import annotations

from typing import Any, Callable

import ipaddress
import re
from dataclasses import dataclass, field
from pathlib import Path
from xml.etree import ElementTree

import yaml

from tomcat_cd.core import conventions
from tomcat_cd.core.errors import Problem, Problems, raise_if_any
from tomcat_cd.core.fields import ENV_NAME, QUANTITY, Reader, yaml_problem
from tomcat_cd.core.yamltext import load_yaml

HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
PROBE_PATH = re.compile(r"^/[^\s]*$")

# Files a site may override in Tomcat's conf/ folder (Catalina/localhost/*.xml too).
TOMCAT_CONF_FILES = frozenset({
    "catalina.policy", "catalina.properties", "context.xml", "jaspic-providers.xml",
    "logging.properties", "server.xml", "tomcat-users.xml", "web.xml",
})

# A domain file is a few lines; anything this large is a mistake (it would land in the state).
MAX_DOMAIN_FILE_BYTES = 64 * 1024
# catalina.sh passes JAVA_OPTS through `eval`: a quote crash-loops the pod and `$(...)` runs
# at start. Options are words of these characters, separated by spaces.
SHELL_SAFE_OPTIONS = re.compile(r"[A-Za-z0-9_=:.,/+%@ -]{0,4096}")
MAX_ENV_VALUE = 4096

KNOWN_KEYS = {"nodePort", "replicas", "hosts", "resources", "javaOpts", "jvmFlags", "env",
              "probe", "baseImage", "appLogMultiline"}


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
    for path in sorted(folder.glob("*.yaml")) + sorted(folder.glob("*.yml")):
        site = load_site(path, Problems(shown(path), problems))
        if site is not None:
            sites.append(site)
    _check_orphan_folders(folder, problems, shown)
    _check_port_clashes(sites, problems)
    _check_name_clashes(sites, problems)
    raise_if_any(problems)
    return sorted(sites, key=lambda s: s.domain)


def load_site(path: Path, problems: Problems) -> Site | None:
    """One domain file; problems are reported under `problems.source`."""
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
    return parse_site(domain, path, data, problems)


def parse_site(domain: str, path: Path, data: dict[str, Any], problems: Problems) -> Site:
    reader = Reader(data, problems)
    reader.reject_unknown(KNOWN_KEYS)
    port = reader.integer("nodePort", low=conventions.MASTER_FIRST_NODE_PORT,
                          high=conventions.MASTER_LAST_NODE_PORT)
    site_dir = path.with_name(domain)
    config_dir = site_dir / "config"
    tomcat_dir = site_dir / "tomcat"
    _check_tomcat_overrides(tomcat_dir, problems)
    return Site(
        domain=domain,
        source=problems.source,
        master_node_port=port or 0,
        replicas=_replicas(reader.nested("replicas")),
        hosts=_hosts(reader),
        resources=_resources(reader.nested("resources")),
        java_opts=reader.string("javaOpts", Site.java_opts, SHELL_SAFE_OPTIONS, JAVA_OPTIONS_WHAT),
        jvm_flags=_jvm_flags(reader),
        env=_env(reader),
        probe=_probe(reader.nested("probe")),
        base_image=reader.string("baseImage", None),
        app_log_multiline=_regex(reader, "appLogMultiline"),
        config_dir=str(config_dir) if config_dir.is_dir() else None,
        tomcat_dir=str(tomcat_dir) if tomcat_dir.is_dir() else None,
    )


SHELL_SAFE_WHAT = ("letters, digits and _=:.,/+%@- only (catalina.sh runs JVM options through the "
                   "shell's eval: quotes, $ and backquotes would be read as shell)")
JAVA_OPTIONS_WHAT = f"JVM options separated by spaces, of {SHELL_SAFE_WHAT}"


def _jvm_flags(reader: Reader) -> tuple[str, ...]:
    flags = reader.string_list("jvmFlags")
    for index, flag in enumerate(flags):
        if not SHELL_SAFE_OPTIONS.fullmatch(flag) or " " in flag:
            reader.problems.add(f"jvmFlags[{index}]", f"must be one JVM flag of {SHELL_SAFE_WHAT}, got {flag!r}")
    return flags


def _env(reader: Reader) -> dict[str, str]:
    env = reader.string_map("env", ENV_NAME, "an environment variable name ([A-Za-z_][A-Za-z0-9_]*)")
    for name in sorted(env):
        if name in conventions.RESERVED_ENV:
            reader.problems.add(f"env.{name}", f"is set by tomcat-cd itself "
                                f"(reserved: {', '.join(sorted(conventions.RESERVED_ENV))}); use javaOpts for JVM options")
            del env[name]
        elif len(env[name]) > MAX_ENV_VALUE or "\0" in env[name]:
            reader.problems.add(f"env.{name}", f"must be at most {MAX_ENV_VALUE} characters, without NUL")
            del env[name]
    return env


def _replicas(reader: Reader) -> dict[str, int]:
    reader.reject_unknown(set(conventions.ENVIRONMENTS))
    defaults = Site(domain="", source="", master_node_port=0).replicas
    return {env: reader.integer(env, defaults[env], low=0, high=100) for env in conventions.ENVIRONMENTS}


def _resources(reader: Reader) -> Resources:
    reader.reject_unknown({"cpu", "memory", "cpuLimit", "memoryLimit"})
    cpu_what = "a CPU quantity such as 500m or 2"
    mem_what = "a memory quantity such as 768Mi or 1Gi"
    return Resources(
        cpu=reader.string("cpu", Resources.cpu, QUANTITY, cpu_what),
        memory=reader.string("memory", Resources.memory, QUANTITY, mem_what),
        cpu_limit=reader.string("cpuLimit", Resources.cpu_limit, QUANTITY, cpu_what),
        memory_limit=reader.string("memoryLimit", None, QUANTITY, mem_what),
    )


def _probe(reader: Reader) -> Probe:
    reader.reject_unknown({"path", "periodSeconds", "timeoutSeconds", "startupSeconds"})
    return Probe(
        path=reader.string("path", Probe.path, PROBE_PATH, "an absolute URL path such as /health"),
        period_seconds=reader.integer("periodSeconds", Probe.period_seconds, low=1, high=300),
        timeout_seconds=reader.integer("timeoutSeconds", Probe.timeout_seconds, low=1, high=120),
        startup_seconds=reader.integer("startupSeconds", Probe.startup_seconds, low=10, high=3600),
    )


# Filebeat uses Go's RE2, which has no lookaround and no back-references.
NOT_RE2 = re.compile(r"\(\?<?[=!]|\\[1-9]")


def _regex(reader: Reader, key: str) -> str | None:
    pattern: str | None = reader.string(key, None)
    if pattern is None:
        return None
    try:
        re.compile(pattern)
    except re.error as err:
        reader.problems.add(key, f"is not a regular expression: {err}")
        return None
    if NOT_RE2.search(pattern):
        reader.problems.add(key, "uses lookaround or a back-reference, which Filebeat's regular expressions (RE2) lack")
        return None
    return pattern


def _hosts(reader: Reader) -> tuple[HostAlias, ...]:
    aliases = []
    for index, line in enumerate(reader.string_list("hosts")):
        field_name = f"hosts[{index}]"
        parts = line.split()
        if len(parts) < 2:
            reader.problems.add(field_name, f"must be 'IP name [name...]', got {line!r}")
            continue
        ip, names = parts[0], parts[1:]
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            reader.problems.add(field_name, f"{ip!r} is not an IP address (expected 'IP name [name...]')")
            continue
        if getattr(address, "scope_id", None):
            reader.problems.add(field_name, f"{ip!r} has a zone (%...), which /etc/hosts in a pod cannot use")
            continue
        bad = [n for n in names if not HOSTNAME.fullmatch(n)]
        if bad:
            reader.problems.add(field_name, f"{bad[0]!r} is not a host name")
            continue
        aliases.append(HostAlias(ip, tuple(names)))
    return tuple(aliases)


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


def _check_port_clashes(sites: list[Site], problems: list[Problem]) -> None:
    by_port: dict[int, Site] = {}
    for site in sorted(sites, key=lambda s: s.source):
        if not site.master_node_port:
            continue
        other = by_port.setdefault(site.master_node_port, site)
        if other is not site:
            problems.append(Problem(site.source, "nodePort",
                                    f"{site.master_node_port} is already used by {other.source}"))
