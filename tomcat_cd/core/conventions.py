"""Every name, port and path the original design fixed, defined once.

Real teams have nodes, log shippers and dashboards built on these values
(see SEED_CONVENTIONS.md), so everything else in the project calls these
functions instead of spelling a convention again.
"""

from __future__ import annotations

import posixpath
import re
from typing import Final

PROJECT: Final = "tomcat-cd"

# Environments: the stack name is the environment, and the environment is the namespace.
ENVIRONMENTS: Final = ("master", "develop")
PRODUCTION: Final = "master"

# A site keeps its pair of ports for life: 32001+i in master, 31001+i in develop.
MASTER_FIRST_NODE_PORT: Final = 32001
MASTER_LAST_NODE_PORT: Final = 32767
DEVELOP_PORT_OFFSET: Final = 1000

TOMCAT_HTTP_PORT: Final = 8080
# The name of a site's one container in its Deployment.
SITE_CONTAINER: Final = "tomcat"

# Node folders (hostPath) and the folders inside the container they reach.
NODE_DATA_ROOT: Final = "/data"
NODE_LOG_ROOT: Final = "/data/nodelogs"
FILEBEAT_DATA_DIR: Final = "/data/filebeat"
CONTAINER_RUNTIME_DIR: Final = "/data/dockerlibs"
WAR_ROOT_DEFAULT: Final = "/data/jks-cd-config"

CATALINA_HOME: Final = "/usr/local/tomcat"
APP_CONFIG_DIR: Final = "/data/conf"

# The three log kinds: node folder name -> folder inside the container.
# Tomcat's own logs stay in $CATALINA_BASE/logs (JULI's default), the access
# log valve writes to a folder of its own, and applications log under /data/logs.
LOG_KINDS: Final = {
    "tomcatlogs": f"{CATALINA_HOME}/logs",
    "accesslogs": f"{CATALINA_HOME}/accesslogs",
    "devlogs": "/data/logs",
}
# Environment variables the Deployment sets itself: the log folders follow POD_NAME, and
# Tomcat's start script reads JAVA_OPTS/CATALINA_OPTS (built from javaOpts) and its homes.
POD_NAME_ENV: Final = "POD_NAME"
JAVA_OPTS_ENV: Final = "JAVA_OPTS"
RESERVED_ENV: Final = frozenset({POD_NAME_ENV, JAVA_OPTS_ENV, "CATALINA_OPTS", "CATALINA_HOME", "CATALINA_BASE"})
ACCESS_LOG_PREFIX: Final = "localhost_access_log"
ACCESS_LOG_SUFFIX: Final = ".txt"

# Harbor: base images live in `template`, each site has a project named after its domain.
HARBOR_TEMPLATE_PROJECT: Final = "template"
IMAGE_PULL_SECRET: Final = "harbor-pull"
# The buildx builder a stack's `builderEndpoint` makes, unless `builder` names it otherwise.
BUILDX_BUILDER: Final = "tomcat-cd"

DOMAIN_PATTERN: Final = re.compile(
    r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$"
)


def is_valid_domain(domain: str) -> bool:
    """A lower-case DNS name with at least two labels, e.g. ``test.gyyx.cn``."""
    return bool(DOMAIN_PATTERN.fullmatch(domain))


def k8s_name(domain: str) -> str:
    """Kubernetes object name of a site: the domain with dots as dashes."""
    return domain.replace(".", "-")


# A Service name is an RFC 1035 label: 63 characters at most, starting with a letter.
K8S_SERVICE_NAME: Final = re.compile(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?")


def k8s_name_problem(domain: str) -> str | None:
    """Why the domain's Kubernetes name cannot be a Service name, or None."""
    name = k8s_name(domain)
    if len(name) > 63:
        return f"its Kubernetes name {name} has {len(name)} characters; Kubernetes allows 63"
    if not K8S_SERVICE_NAME.fullmatch(name):
        return f"its Kubernetes name {name} must start with a letter (a Service name is an RFC 1035 label)"
    return None


def namespace(environment: str) -> str:
    """Each environment is its own namespace, of the same name."""
    return environment


def node_port(master_port: int, environment: str) -> int:
    """The site's NodePort in an environment; develop mirrors master 1000 lower."""
    if environment == PRODUCTION:
        return master_port
    return master_port - DEVELOP_PORT_OFFSET


def node_log_dir(environment: str, kind: str, domain: str) -> str:
    """Node folder of one log kind of one site; each pod writes in a `<pod>` folder below it."""
    if kind not in LOG_KINDS:
        raise ValueError(f"unknown log kind {kind!r}")
    return posixpath.join(NODE_LOG_ROOT, environment, kind, domain)


def log_volume_name(kind: str) -> str:
    return kind


def image_repository(harbor_host: str, domain: str) -> str:
    """Each domain is a Harbor project holding one repository of the same name."""
    return f"{harbor_host}/{domain}/{domain}"


def image_tag(version: str, environment: str, cd_git_id: str) -> str:
    return f"{version}-{environment}-{cd_git_id}"


def image_tag_of(ref: str) -> tuple[str, str, str] | None:
    """(version, environment, cd git id) of an image reference's tag, or None when its tag is
    not one image_tag makes; a `@<digest>` suffix is ignored."""
    tag = ref.split("@", 1)[0].rsplit("/", 1)[-1].rpartition(":")[2]
    version, _, rest = tag.rpartition("-")
    version, _, environment = version.rpartition("-")
    if not version or environment not in ENVIRONMENTS:
        return None
    return version, environment, rest


def image_ref(harbor_host: str, domain: str, version: str, environment: str, cd_git_id: str) -> str:
    """`<harbor>/<domain>/<domain>:<version>-<env>-<cd-git-id>`."""
    return f"{image_repository(harbor_host, domain)}:{image_tag(version, environment, cd_git_id)}"


def base_image_ref(harbor_host: str, base_image: str) -> str:
    """A base image in Harbor's template project (`tomcat:9.0-jdk8`), a path in Harbor
    (`template/tomcat:9.0-jdk8`), or a reference that already names its registry."""
    first, _, rest = base_image.partition("/")
    if rest and ("." in first or ":" in first):
        return base_image
    if not rest:
        return f"{harbor_host}/{HARBOR_TEMPLATE_PROJECT}/{base_image}"
    return f"{harbor_host}/{base_image}"


# The project's own state (local backend, manifests, locks, build contexts), git-ignored.
STATE_DIR: Final = ".state"


def render_dir(stack: str) -> str:
    """Where render mode writes a stack's manifests by default, relative to the project."""
    return posixpath.join(STATE_DIR, "manifests", stack)


def war_path(war_root: str, domain: str, version: str) -> str:
    """Where Jenkins keeps a version's war: `<warRoot>/<domain>/<version>/ROOT.war`."""
    return posixpath.join(war_root, domain, version, "ROOT.war")


def site_labels(domain: str) -> dict[str, str]:
    """The one label set that selectors, Services and pod templates derive from."""
    return {
        "app.kubernetes.io/name": k8s_name(domain),
        "app.kubernetes.io/part-of": PROJECT,
        "app.kubernetes.io/managed-by": "pulumi",
    }


def selector_labels(domain: str) -> dict[str, str]:
    """The immutable subset used in selectors (never change these for a live site)."""
    return {"app": k8s_name(domain)}
