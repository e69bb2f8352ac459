"""Weave Scope: the app (UI), a probe on every node and one cluster probe.

Weave Scope (like Weave Net) is archived upstream: these are its last images, pinned.
It sits behind `tomcat-cd:weaveScope.enabled`, in a namespace of its own, and nothing
else refers to it, so another monitoring tool can replace it by switching it off.
"""

from __future__ import annotations

from typing import Any

from tomcat_cd.core import conventions

NAMESPACE = "weave"
IMAGE = "docker.io/weaveworks/scope:1.13.2"
APP_PORT = 4040
APP_URL = f"weave-scope-app.{NAMESPACE}.svc:80"


def _meta(name: str, namespace: str | None = NAMESPACE) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {"app.kubernetes.io/name": name,
                                                     "app.kubernetes.io/part-of": conventions.PROJECT}}
    if namespace:
        meta["namespace"] = namespace
    return meta


def _workload(kind: str, name: str, pod: dict[str, Any]) -> dict[str, Any]:
    selector = {"app.kubernetes.io/name": name}
    spec: dict[str, Any] = {"selector": {"matchLabels": selector},
                            "template": {"metadata": {"labels": selector}, "spec": pod}}
    if kind == "Deployment":
        spec["replicas"] = 1
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": _meta(name), "spec": spec}


def probe_args(role: str) -> list[str]:
    """A probe reporting to the app; `host` probes watch one node, `cluster` the API."""
    return ["--mode=probe", "--probe-only", "--probe.no-controls=true", f"--probe.kubernetes.role={role}", APP_URL]


def weave_scope(node_port: int) -> list[dict[str, Any]]:
    # Read-only: Scope shows what runs; its controls (exec, scale, delete) stay off.
    read = ["get", "list", "watch"]
    rules = [
        {"apiGroups": [""], "resources": ["pods", "pods/log", "services", "nodes", "namespaces",
                                          "persistentvolumes", "persistentvolumeclaims", "replicationcontrollers"],
         "verbs": read},
        {"apiGroups": ["apps"], "resources": ["deployments", "daemonsets", "statefulsets", "replicasets"], "verbs": read},
        {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": read},
        {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses"], "verbs": read},
    ]
    agent = {
        "hostPID": True, "hostNetwork": True, "dnsPolicy": "ClusterFirstWithHostNet",
        "tolerations": [{"operator": "Exists"}],
        "serviceAccountName": "weave-scope",
        "containers": [{"name": "agent", "image": IMAGE,
                        "args": probe_args("host"),
                        "securityContext": {"privileged": True},
                        "resources": {"requests": {"cpu": "100m", "memory": "100Mi"}, "limits": {"memory": "400Mi"}},
                        "volumeMounts": [{"name": "runtime-socket", "mountPath": "/var/run/docker.sock"},
                                         {"name": "sys-kernel-debug", "mountPath": "/sys/kernel/debug"}]}],
        "volumes": [{"name": "runtime-socket", "hostPath": {"path": "/var/run/docker.sock", "type": "Socket"}},
                    {"name": "sys-kernel-debug", "hostPath": {"path": "/sys/kernel/debug"}}],
    }
    cluster_agent = {
        "serviceAccountName": "weave-scope",
        "containers": [{"name": "cluster-agent", "image": IMAGE,
                        "args": probe_args("cluster"),
                        "resources": {"requests": {"cpu": "50m", "memory": "100Mi"}, "limits": {"memory": "400Mi"}}}],
    }
    app = {
        "containers": [{"name": "app", "image": IMAGE, "args": ["--mode=app", "--probe.no-controls=true"],
                        "ports": [{"name": "http", "containerPort": APP_PORT}],
                        "readinessProbe": {"httpGet": {"path": "/", "port": "http"}},
                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}}],
    }
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(NAMESPACE, None)},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta("weave-scope")},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": _meta("weave-scope", None),
         "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": _meta("weave-scope", None),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "weave-scope"},
         "subjects": [{"kind": "ServiceAccount", "name": "weave-scope", "namespace": NAMESPACE}]},
        _workload("Deployment", "weave-scope-app", app),
        {"apiVersion": "v1", "kind": "Service", "metadata": _meta("weave-scope-app"),
         "spec": {"type": "NodePort", "selector": {"app.kubernetes.io/name": "weave-scope-app"},
                  "ports": [{"name": "http", "port": 80, "targetPort": "http", "nodePort": node_port}]}},
        _workload("DaemonSet", "weave-scope-agent", agent),
        _workload("Deployment", "weave-scope-cluster-agent", cluster_agent),
    ]
