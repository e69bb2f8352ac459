"""Register a Kubernetes object dict, exactly as a builder made it, as a Pulumi resource."""

from __future__ import annotations

import re
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

# Kinds the builders produce, mapped to their typed Pulumi resources so that
# previews show real diffs and Pulumi's await logic applies.
RESOURCE_TYPES = {
    ("v1", "Namespace"): k8s.core.v1.Namespace,
    ("v1", "Secret"): k8s.core.v1.Secret,
    ("v1", "Service"): k8s.core.v1.Service,
    ("v1", "ConfigMap"): k8s.core.v1.ConfigMap,
    ("v1", "ServiceAccount"): k8s.core.v1.ServiceAccount,
    ("apps/v1", "Deployment"): k8s.apps.v1.Deployment,
    ("apps/v1", "DaemonSet"): k8s.apps.v1.DaemonSet,
    ("apps/v1", "StatefulSet"): k8s.apps.v1.StatefulSet,
    ("batch/v1", "Job"): k8s.batch.v1.Job,
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): k8s.rbac.v1.ClusterRole,
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): k8s.rbac.v1.ClusterRoleBinding,
}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def register(logical_name: str, obj: dict[str, Any], opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
    """Create the typed resource for `obj`; nested keys stay camelCase, as Kubernetes spells them."""
    key = (obj["apiVersion"], obj["kind"])
    if key not in RESOURCE_TYPES:
        raise ValueError(f"no Pulumi resource type registered for {key[0]} {key[1]}")
    fields = {_snake(k): v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    resource: pulumi.CustomResource = RESOURCE_TYPES[key](logical_name, opts=opts, **fields)
    return resource
