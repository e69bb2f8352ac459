"""One web site: its image build, Deployment and NodePort Service."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components.k8s_object import register
from tomcat_cd.core.plan import SitePlan
from tomcat_cd.core.urns import SITE_TYPE, child_name


@dataclass(frozen=True)
class RegistryLogin:
    server: str
    username: str
    password: pulumi.Output[str]


@dataclass(frozen=True)
class ImageBuild:
    """How a site's image is built and pushed."""

    context_dir: str
    """The laid-out build context (Dockerfile, tomcat/, config/, ROOT.war)."""
    registry: RegistryLogin
    """Harbor's login for the push (the password stays a Pulumi secret)."""
    builder: str | None = None
    """The buildx builder; None: buildx's current one."""


@dataclass(frozen=True)
class TomcatSiteArgs:
    plan: SitePlan
    """The site's plan (tomcat_cd.core.plan.site_plan): objects, image and build context; required."""
    build: ImageBuild | None = None
    """None (the default) builds no image and deploys the tag that Jenkins' image step pushed.
    A version whose digest the record holds (plan.pushed_image) is never built again."""


class TomcatSite(pulumi.ComponentResource):
    """A Tomcat web site named by its domain, deployed to one environment."""

    image: pulumi.Output[str]
    """The image the Deployment runs: `<tag>@<digest>` once pushed, else the tag."""
    node_port: pulumi.Output[int]
    """The site's NodePort in this environment (Nginx balances over it on every node)."""

    def __init__(self, name: str, args: TomcatSiteArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(SITE_TYPE, name, None, opts)
        plan = args.plan
        child = pulumi.ResourceOptions(parent=self)
        deployment_obj: dict[str, Any] = plan.deployment
        if args.build is not None and plan.needs_build:
            self.image = _build_image(name, plan, args.build, child)
            deployment_obj = _with_image(plan.deployment, self.image)
        else:
            self.image = pulumi.Output.from_input(plan.pushed_image or plan.image)
        # The Deployment rolls pods over one at a time and never drops below the desired count.
        register(child_name(name, "deployment"), deployment_obj, child)
        # Nginx in front balances over every node's NodePort for this site.
        service = register(child_name(name, "service"), plan.service, child)
        port = plan.service["spec"]["ports"][0]["nodePort"]
        self.node_port = service.id.apply(lambda _: port)
        # The state keeps what a deploy leaves as it is: a changed output would cost a deploy one
        # more save of the whole state (0.16 s among 200 sites). The image is in the Deployment's.
        self.register_outputs({"domain": plan.domain, "node_port": self.node_port})


def _build_image(name: str, plan: SitePlan, build: ImageBuild, child: pulumi.ResourceOptions) -> pulumi.Output[str]:
    """Build and push the tag; the result is `<tag>@<digest>`, so the Deployment runs these
    exact bytes whatever later happens to the tag."""
    import pulumi_docker_build as docker_build

    registry = build.registry
    image = docker_build.Image(
        child_name(name, "image"),
        tags=[plan.image],
        context=docker_build.BuildContextArgs(location=build.context_dir),
        platforms=[docker_build.Platform.LINUX_AMD64],
        push=True,
        registries=[docker_build.RegistryArgs(address=registry.server, username=registry.username,
                                              password=registry.password)],
        builder=docker_build.BuilderConfigArgs(name=build.builder) if build.builder else None,
        # Pushed images outlive the resource: Harbor's retention policy removes them, never a
        # `pulumi up` that stops building a version whose digest the record now holds.
        opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(retain_on_delete=True)),
    )
    return image.ref


def _with_image(deployment: dict[str, Any], image: pulumi.Output[str]) -> dict[str, Any]:
    """The same Deployment, its container image taken from the build (so it waits for the push)."""
    template = deployment["spec"]["template"]
    containers = [dict(c, image=image) for c in template["spec"]["containers"]]
    spec = dict(deployment["spec"], template=dict(template, spec=dict(template["spec"], containers=containers)))
    return dict(deployment, spec=spec)
