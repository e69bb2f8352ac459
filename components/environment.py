"""The namespace of one environment and the Harbor pull secret its sites use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import pulumi
import pulumi_kubernetes as k8s

from components.k8s_object import register
from tomcat_cd.core.urns import ENVIRONMENT_TYPE, child_name


@dataclass(frozen=True)
class EnvironmentArgs:
    namespace: dict[str, Any]
    """The Namespace object (builders.kubernetes.namespace); required."""
    pull_secret: dict[str, Any] | None = None
    """The Harbor pull Secret, its data a Pulumi secret; None (the default) creates none."""
    protect: bool = False
    """Refuse to delete the namespace (and so every site in it); default false, true for master."""


class Environment(pulumi.ComponentResource):
    """One environment: `master` (production) or `develop` (test)."""

    namespace_name: pulumi.Output[str]

    def __init__(self, name: str, args: EnvironmentArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(ENVIRONMENT_TYPE, name, None, opts)
        # Deleting a namespace deletes every site in it: production's is protected.
        namespace = register(child_name(name, "namespace"), args.namespace,
                             pulumi.ResourceOptions(parent=self, protect=args.protect))
        self.namespace_name = cast(k8s.core.v1.Namespace, namespace).metadata.apply(lambda m: m["name"])
        self.children: list[pulumi.Resource] = [namespace]
        if args.pull_secret is not None:
            # Kubelet pulls site images from Harbor with the robot account.
            self.children.append(register(child_name(name, "pull-secret"), args.pull_secret,
                                          pulumi.ResourceOptions(parent=self, depends_on=[namespace])))
        self.register_outputs({"namespace_name": self.namespace_name})
