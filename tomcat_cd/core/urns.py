"""The Pulumi names of what a site stack registers: type tokens, logical names and URNs.

The components name their resources with these functions and the driver targets one
site's update with the same URNs, so the two can never disagree about a name.
"""

from __future__ import annotations

from dataclasses import dataclass

from tomcat_cd.core import conventions

SITE_TYPE = "tomcat-cd:index:TomcatSite"
ENVIRONMENT_TYPE = "tomcat-cd:index:Environment"
# A site's children, by part: their Pulumi types. Logical names are `<site>-<part>`.
SITE_CHILD_TYPES = {
    "image": "docker-build:index:Image",
    "deployment": "kubernetes:apps/v1:Deployment",
    "service": "kubernetes:core/v1:Service",
}
ENVIRONMENT_CHILD_TYPES = {
    "namespace": "kubernetes:core/v1:Namespace",
    "pull-secret": "kubernetes:core/v1:Secret",
}
# The program's explicit Kubernetes provider, by target (render or cluster).
PROVIDER_TYPE = "pulumi:providers:kubernetes"

# Set by cdctl for a targeted one-site update only: the program then registers that site
# alone (see tomcat_cd.program.main.sites_to_register). Never inherited from a caller.
TARGETED_SITE_ENV = "TOMCAT_CD_TARGETED_SITE"


def child_name(parent_name: str, part: str) -> str:
    return f"{parent_name}-{part}"


@dataclass(frozen=True)
class StackNames:
    """URNs within one stack of the project."""

    stack: str
    project: str = conventions.PROJECT

    def urn(self, type_path: str, name: str) -> str:
        return f"urn:pulumi:{self.stack}::{self.project}::{type_path}::{name}"

    def site(self, domain: str, with_image: bool = True) -> list[str]:
        """The site's component and its children."""
        name = conventions.k8s_name(domain)
        return [self.urn(SITE_TYPE, name)] + [
            self.site_child(domain, part) for part in SITE_CHILD_TYPES if with_image or part != "image"]

    def site_child(self, domain: str, part: str) -> str:
        name = conventions.k8s_name(domain)
        return self.urn(f"{SITE_TYPE}${SITE_CHILD_TYPES[part]}", child_name(name, part))

    def environment(self, environment: str, with_pull_secret: bool) -> list[str]:
        """The environment's component, namespace and (when configured) pull secret: what
        every site depends on, so a site's first update must include them."""
        return [self.urn(ENVIRONMENT_TYPE, environment)] + [
            self.urn(f"{ENVIRONMENT_TYPE}${typ}", child_name(environment, part))
            for part, typ in ENVIRONMENT_CHILD_TYPES.items() if with_pull_secret or part != "pull-secret"]

    def provider(self, target: str) -> str:
        return self.urn(PROVIDER_TYPE, target)
