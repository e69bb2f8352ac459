"""The shared platform: logging (Filebeat, Elasticsearch, Kibana) and monitoring (Weave Scope)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi

from components.k8s_object import register


@dataclass(frozen=True)
class ObjectsArgs:
    objects: list[dict[str, Any]]
    """Kubernetes objects in the order they must exist (namespace first); required."""


class _ObjectGroup(pulumi.ComponentResource):
    """Registers a builder's objects in order; every object depends on the first one,
    the namespace it lives in, and the first on what the group was given to wait for."""

    names: pulumi.Output[list[str]]

    def __init__(self, type_token: str, name: str, args: ObjectsArgs, opts: pulumi.ResourceOptions | None):
        super().__init__(type_token, name, None, opts)
        # Children do not inherit a component's dependsOn: the first object (the namespace)
        # takes it, every other object waits for the first.
        after = list(opts.depends_on or []) if opts and isinstance(opts.depends_on, list) else []
        created: list[pulumi.Resource] = []
        for obj in args.objects:
            logical = f"{name}-{obj['kind'].lower()}-{obj['metadata']['name']}"
            created.append(register(logical, obj, pulumi.ResourceOptions(parent=self, depends_on=created[:1] or after)))
        self.names = pulumi.Output.from_input([f"{o['kind']}/{o['metadata']['name']}" for o in args.objects])
        self.register_outputs({"names": self.names})


class Logging(_ObjectGroup):
    """Filebeat on every node, Elasticsearch keeping 10 days, Kibana with a data view per domain."""

    def __init__(self, name: str, args: ObjectsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("tomcat-cd:index:Logging", name, args, opts)


class Monitoring(_ObjectGroup):
    """Weave Scope; replaceable: nothing else refers to it."""

    def __init__(self, name: str, args: ObjectsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("tomcat-cd:index:Monitoring", name, args, opts)
