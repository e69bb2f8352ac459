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
class TomcatSiteArgs:
    plan: SitePlan
    """The site's plan (tomcat_cd.core.plan.site_plan): objects, image and build context; required."""
    build_context_dir: str | None = None
    """A folder holding the laid-out build context; None (the default) builds no image and
    deploys the tag that Jenkins' image step pushed."""
    registry: RegistryLogin | None = None
    """Harbor login for the push; required when `build_context_dir` is set."""


class TomcatSite(pulumi.ComponentResource):
    """A Tomcat web site named by its domain, deployed to one environment."""

    image: pulumi.Output[str]
    """The image the Deployment runs."""
    node_port: pulumi.Output[int]
    """The site's NodePort in this environment (Nginx balances over it on every node)."""

    def __init__(self, name: str, args: TomcatSiteArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(SITE_TYPE, name, None, opts)
        plan = args.plan
        child = pulumi.ResourceOptions(parent=self)
        deployment_obj: dict[str, Any] = plan.deployment
        if args.build_context_dir is not None:
            image_name = self._build_image(name, args, child)
            deployment_obj = _with_image(plan.deployment, image_name)
            self.image = image_name
        else:
            self.image = pulumi.Output.from_input(plan.image)
        # The Deployment rolls pods over one at a time and never drops below the desired count.
        register(child_name(name, "deployment"), deployment_obj, child)
        # Nginx in front balances over every node's NodePort for this site.
        service = register(child_name(name, "service"), plan.service, child)
        port = plan.service["spec"]["ports"][0]["nodePort"]
        self.node_port = service.id.apply(lambda _: port)
        self.register_outputs({"image": self.image, "node_port": self.node_port})

    def _build_image(self, name: str, args: TomcatSiteArgs, child: pulumi.ResourceOptions) -> pulumi.Output[str]:
        import pulumi_docker as docker

        if args.registry is None:
            raise ValueError("building an image needs a registry login")
        image = docker.Image(
            child_name(name, "image"),
            image_name=args.plan.image,
            build=docker.DockerBuildArgs(context=args.build_context_dir, platform="linux/amd64"),
            registry=docker.RegistryArgs(server=args.registry.server, username=args.registry.username,
                                         password=args.registry.password),
            opts=child,
        )
        return image.image_name


def _with_image(deployment: dict[str, Any], image: pulumi.Output[str]) -> dict[str, Any]:
    """The same Deployment, its container image taken from the build (so it waits for the push)."""
    template = deployment["spec"]["template"]
    containers = [dict(c, image=image) for c in template["spec"]["containers"]]
    spec = dict(deployment["spec"], template=dict(template, spec=dict(template["spec"], containers=containers)))
    return dict(deployment, spec=spec)
