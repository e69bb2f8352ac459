"""The schema of a domain file (`domains/<domain>.yaml`), as a pydantic model.

`cdctl schema` prints its JSON Schema (a copy is kept in `schemas/domain.schema.json`), so an
editor with the YAML language server checks a domain file while it is typed. Checks across
files (port clashes, two domains with one Kubernetes name) and of the site's folder are the
loader's (tomcat_cd.core.model).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, WithJsonSchema

from tomcat_cd.core import conventions, gate
from tomcat_cd.core.fields import ENV_NAME, QUANTITY, type_name
from tomcat_cd.core.schema import AS_STRING_LIST, Between, Matches, OneOf, Strict, own_error

HOSTNAME = re.compile(r"(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")
PROBE_PATH = re.compile(r"/[^\s]*")
# catalina.sh passes JAVA_OPTS through `eval`: a quote crash-loops the pod and `$(...)` runs
# at start. Options are words of these characters, separated by spaces.
SHELL_SAFE_OPTIONS = re.compile(r"[A-Za-z0-9_=:.,/+%@ -]{0,4096}")
SHELL_SAFE_FLAG = re.compile(r"[A-Za-z0-9_=:.,/+%@-]{1,1024}")
SHELL_SAFE_WHAT = ("letters, digits and _=:.,/+%@- only (catalina.sh runs JVM options through the "
                   "shell's eval: quotes, $ and backquotes would be read as shell)")
JAVA_OPTIONS_WHAT = f"JVM options separated by spaces, of {SHELL_SAFE_WHAT}"
MAX_ENV_VALUE = 4096
# Filebeat uses Go's RE2, which has no lookaround and no back-references.
NOT_RE2 = re.compile(r"\(\?<?[=!]|\\[1-9]")

Cpu = Annotated[str, Matches(QUANTITY, "a CPU quantity such as 500m or 2")]
Memory = Annotated[str, Matches(QUANTITY, "a memory quantity such as 768Mi or 1Gi")]


def _host_line(line: str) -> str:
    parts = line.split()
    if len(parts) < 2:
        raise own_error(f"must be 'IP name [name...]', got {line!r}")
    ip, names = parts[0], parts[1:]
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        raise own_error(f"{ip!r} is not an IP address (expected 'IP name [name...]')") from None
    if getattr(address, "scope_id", None):
        raise own_error(f"{ip!r} has a zone (%...), which /etc/hosts in a pod cannot use")
    bad = [name for name in names if not HOSTNAME.fullmatch(name)]
    if bad:
        raise own_error(f"{bad[0]!r} is not a host name")
    return line


def _env_value(value: Any) -> str:
    # A number is fine in YAML (PORT: 8080); a boolean or a structure is a mistake.
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise own_error(f"must be a string, got {type_name(value)}")
    text_value = str(value)
    if len(text_value) > MAX_ENV_VALUE or "\0" in text_value:
        raise own_error(f"must be at most {MAX_ENV_VALUE} characters, without NUL")
    return text_value


def _not_reserved(name: str) -> str:
    if name in conventions.RESERVED_ENV:
        raise own_error(f"is set by tomcat-cd itself (reserved: {', '.join(sorted(conventions.RESERVED_ENV))}); "
                   "use javaOpts for JVM options")
    return name


def _jvm_flag(flag: str) -> str:
    if not SHELL_SAFE_FLAG.fullmatch(flag):
        raise own_error(f"must be one JVM flag of {SHELL_SAFE_WHAT}, got {flag!r}")
    return flag


def _record_start(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as err:
        raise own_error(f"is not a regular expression: {err}") from None
    if NOT_RE2.search(pattern):
        raise own_error("uses lookaround or a back-reference, which Filebeat's regular expressions (RE2) lack")
    return pattern


HostLine = Annotated[str, AfterValidator(_host_line),
                     WithJsonSchema({"type": "string", "description": "an /etc/hosts line: IP name [name...]"})]
EnvName = Annotated[str, Matches(ENV_NAME, "an environment variable name ([A-Za-z_][A-Za-z0-9_]*)", name=True),
                    AfterValidator(_not_reserved)]
EnvValue = Annotated[str, BeforeValidator(_env_value),
                     WithJsonSchema({"type": ["string", "number"], "maxLength": MAX_ENV_VALUE})]
JvmFlag = Annotated[str, AfterValidator(_jvm_flag),
                    WithJsonSchema({"type": "string", "pattern": f"^(?:{SHELL_SAFE_FLAG.pattern})$"})]
RecordStart = Annotated[str, AfterValidator(_record_start),
                        WithJsonSchema({"type": "string", "description": "an RE2 regular expression"})]
ReplicaCount = Annotated[int, Between(0, 100)]


class Replicas(Strict):
    """Pods per environment."""

    master: ReplicaCount = Field(2, description="pods in production (default 2)")
    develop: ReplicaCount = Field(1, description="pods in test (default 1)")


class Resources(Strict):
    """Container resources."""

    cpu: Cpu = Field("500m", description="CPU request (default 500m)")
    memory: Memory = Field("1Gi", description="memory request (default 1Gi)")
    cpu_limit: Cpu = Field("2", description="CPU limit (default 2: start-up is not starved)")
    memory_limit: Memory | None = Field(None, description="memory limit (default: the request; a JVM over "
                                                          "its limit is killed, not throttled)")


class Probe(Strict):
    """Health checks: `path` answers readiness; liveness only needs the port."""

    path: Annotated[str, Matches(PROBE_PATH, "an absolute URL path such as /health")] = Field(
        "/", description="readiness path (default /)")
    period_seconds: Annotated[int, Between(1, 300)] = Field(10, description="seconds between checks (default 10)")
    timeout_seconds: Annotated[int, Between(1, 120)] = Field(5, description="seconds a check may take (default 5)")
    startup_seconds: Annotated[int, Between(10, 3600)] = Field(
        300, description="seconds start-up may take before liveness counts (default 300)")


def _gate_checks(checks: list[str]) -> list[str]:
    unknown = [c for c in checks if c not in gate.CHECKS]
    if unknown:
        raise own_error(f"{unknown[0]!r} is not a check (checks: {', '.join(gate.CHECKS)})")
    return checks


DEFAULT_GATE = gate.GateRule()


class Gate(Strict):
    """The health gate after each deploy (cluster mode): what it watches, how long, and the limits."""

    enabled: bool = Field(DEFAULT_GATE.enabled, description="run the gate after a deploy (default true)")
    window_seconds: Annotated[int, Between(10, 3600)] = Field(
        DEFAULT_GATE.window_seconds, description="how long the new version is watched (default 120)")
    checks: Annotated[list[str], AS_STRING_LIST, AfterValidator(_gate_checks),
                      WithJsonSchema({"type": "array", "items": {"enum": list(gate.CHECKS)}})] = Field(
        list(DEFAULT_GATE.checks), description="which checks run: availability, errors, health "
                                               "(default availability, errors)")
    max_errors_per_minute: Annotated[float, Between(0, 100000)] = Field(
        DEFAULT_GATE.max_errors_per_minute, description="error records (Tomcat SEVERE, ERROR in devlogs) per new pod "
                                                        "and minute above which the errors check may fail (default 5)")
    max5xx_percent: Annotated[float, Between(0, 100)] = Field(
        DEFAULT_GATE.max_5xx_percent, alias="max5xxPercent",
        description="share of 5xx responses above which the errors check may fail (default 5)")
    worse_factor: Annotated[float, Between(1, 1000)] = Field(
        DEFAULT_GATE.worse_factor, description="the errors check fails only when the figure is also over this many "
                                               "times the previous version's (default 1.5)")
    max_restarts: Annotated[int, Between(0, 1000)] = Field(
        DEFAULT_GATE.max_restarts, description="container restarts of the new pods allowed in the window (default 0)")
    lag_seconds: Annotated[int, Between(0, 600)] = Field(
        DEFAULT_GATE.lag_seconds, description="how long the last count waits for Filebeat to ship (default 15)")
    on_elasticsearch_down: Annotated[str, OneOf(gate.ON_ELASTICSEARCH_DOWN)] = Field(
        DEFAULT_GATE.on_elasticsearch_down, description="fail (default) or warn when Elasticsearch does not answer")

    def rule(self) -> gate.GateRule:
        return gate.GateRule(self.enabled, self.window_seconds, tuple(self.checks), float(self.max_errors_per_minute),
                             float(self.max5xx_percent), float(self.worse_factor), self.max_restarts,
                             self.lag_seconds, self.on_elasticsearch_down)


class DomainFile(Strict):
    """One web site (a domain) of tomcat-cd: its ports, pods, resources and Tomcat settings."""

    node_port: Annotated[int, Between(conventions.MASTER_FIRST_NODE_PORT, conventions.MASTER_LAST_NODE_PORT)] = Field(
        description="the site's NodePort in master (required); develop uses it minus 1000, for life")
    replicas: Replicas = Field(Replicas(), description="pods per environment")
    hosts: Annotated[list[HostLine], AS_STRING_LIST] = Field(
        default_factory=list, description="extra /etc/hosts lines (hostAliases)")
    resources: Resources = Field(Resources(), description="container resources")
    java_opts: Annotated[str, Matches(SHELL_SAFE_OPTIONS, JAVA_OPTIONS_WHAT)] = Field(
        "-XX:MaxRAMPercentage=75.0", description="JVM options (default -XX:MaxRAMPercentage=75.0)")
    jvm_flags: Annotated[list[JvmFlag], AS_STRING_LIST] = Field(
        default_factory=list, description="more JVM flags, one per item")
    env: Annotated[dict[EnvName, EnvValue], WithJsonSchema({
        "type": "object", "propertyNames": {"pattern": f"^(?:{ENV_NAME.pattern})$",
                                            "not": {"enum": sorted(conventions.RESERVED_ENV)}},
        "additionalProperties": {"type": ["string", "number"], "maxLength": MAX_ENV_VALUE}})] = Field(
        default_factory=dict, description="environment variables of the container (not: "
                                          f"{', '.join(sorted(conventions.RESERVED_ENV))}, which tomcat-cd sets)")
    probe: Probe = Field(Probe(), description="health checks")
    base_image: str | None = Field(None, description="Tomcat base image (default: the stack's baseImage)")
    app_log_multiline: RecordStart | None = Field(
        None, description="regex matching the first line of each application log record (default: one line per event)")
    gate: Gate = Field(Gate(), description="the health gate after each deploy")


def json_schema() -> dict[str, Any]:
    schema = DomainFile.model_json_schema(by_alias=True)
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "tomcat-cd/domain.schema.json",
            **schema}
