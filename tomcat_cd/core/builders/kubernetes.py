"""Kubernetes objects of an environment and its sites, as plain dicts.

These are the single source of what gets deployed: `cdctl render` writes them
to files and the Pulumi components register them unchanged.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from tomcat_cd.core import conventions
from tomcat_cd.core.model import Site

# These objects are tomcat-cd's alone: a deploy takes back fields someone changed by hand
# (kubectl scale, set image) instead of failing on a server-side apply conflict.
OWNED = {"pulumi.com/patchForce": "true"}
ENV_LABEL = "tomcat-cd/environment"


def namespace(environment: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": conventions.namespace(environment),
            "labels": {ENV_LABEL: environment, "app.kubernetes.io/part-of": conventions.PROJECT},
        },
    }


def docker_config_json(registry: str, username: str, password: str) -> str:
    """The `.dockerconfigjson` that lets kubelet pull from Harbor."""
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    return json.dumps({"auths": {registry: {"username": username, "password": password, "auth": auth}}},
                      sort_keys=True)


def pull_secret(environment: str, docker_config: Any) -> dict[str, Any]:
    """Harbor credentials for the namespace; `docker_config` may be a Pulumi secret Output."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": conventions.IMAGE_PULL_SECRET, "namespace": conventions.namespace(environment)},
        "type": "kubernetes.io/dockerconfigjson",
        "stringData": {".dockerconfigjson": docker_config},
    }


def _metadata(site: Site, environment: str, version: str) -> dict[str, Any]:
    return {
        "name": site.name,
        "namespace": conventions.namespace(environment),
        "labels": {**conventions.site_labels(site.domain), **conventions.selector_labels(site.domain),
                   ENV_LABEL: environment},
        "annotations": {"tomcat-cd/domain": site.domain, "tomcat-cd/version": version, **OWNED},
    }


def deployment(site: Site, environment: str, version: str, image: str,
               pull_secret_name: str | None) -> dict[str, Any]:
    """The site's Deployment: probes, resources, log volumes and a rolling update
    that brings a new pod up before it takes an old one down."""
    metadata = _metadata(site, environment, version)
    pod_spec: dict[str, Any] = {
        "containers": [_container(site, image)],
        "terminationGracePeriodSeconds": 60,
        "volumes": [
            {
                "name": conventions.log_volume_name(kind),
                "hostPath": {"path": conventions.node_log_dir(environment, kind, site.domain),
                             "type": "DirectoryOrCreate"},
            }
            for kind in conventions.LOG_KINDS
        ],
    }
    if pull_secret_name:
        pod_spec["imagePullSecrets"] = [{"name": pull_secret_name}]
    if site.hosts:
        pod_spec["hostAliases"] = [{"ip": h.ip, "hostnames": list(h.hostnames)} for h in site.hosts]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata,
        "spec": {
            "replicas": site.replicas_in(environment),
            "revisionHistoryLimit": 10,
            "minReadySeconds": 10,
            "progressDeadlineSeconds": 600,
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "selector": {"matchLabels": conventions.selector_labels(site.domain)},
            "template": {
                "metadata": {"labels": dict(metadata["labels"]),
                             "annotations": {k: v for k, v in metadata["annotations"].items() if k not in OWNED}},
                "spec": pod_spec,
            },
        },
    }


def _container(site: Site, image: str) -> dict[str, Any]:
    probe = site.probe
    http = {"port": "http"}
    resources = site.resources
    env = [
        # Each pod writes its logs into a folder named after itself (subPathExpr below).
        {"name": conventions.POD_NAME_ENV, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": conventions.JAVA_OPTS_ENV, "value": " ".join([site.java_opts, *site.jvm_flags]).strip()},
    ] + [{"name": k, "value": v} for k, v in site.env.items()]
    return {
        "name": conventions.SITE_CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": conventions.TOMCAT_HTTP_PORT, "protocol": "TCP"}],
        "env": env,
        "resources": {
            "requests": {"cpu": resources.cpu, "memory": resources.memory},
            "limits": {"cpu": resources.cpu_limit, "memory": resources.memory_limit or resources.memory},
        },
        "startupProbe": {
            "httpGet": {"path": probe.path, **http},
            "periodSeconds": probe.period_seconds,
            "timeoutSeconds": probe.timeout_seconds,
            "failureThreshold": max(1, probe.startup_seconds // probe.period_seconds),
        },
        "readinessProbe": {
            "httpGet": {"path": probe.path, **http},
            "periodSeconds": probe.period_seconds,
            "timeoutSeconds": probe.timeout_seconds,
            "failureThreshold": 3,
        },
        # Liveness only asks whether Tomcat answers at all: a slow page must not restart it.
        "livenessProbe": {
            "tcpSocket": http,
            "periodSeconds": probe.period_seconds,
            "timeoutSeconds": probe.timeout_seconds,
            "failureThreshold": 6,
        },
        # Give Service endpoints and the Nginx in front time to stop sending traffic.
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", "10"]}}},
        "volumeMounts": [
            {"name": conventions.log_volume_name(kind), "mountPath": path, "subPathExpr": f"$({conventions.POD_NAME_ENV})"}
            for kind, path in conventions.LOG_KINDS.items()
        ],
    }


def service(site: Site, environment: str, version: str) -> dict[str, Any]:
    """A NodePort Service on the site's port for this environment."""
    metadata = _metadata(site, environment, version)
    metadata["annotations"] = {"tomcat-cd/domain": site.domain, **OWNED}
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata,
        "spec": {
            "type": "NodePort",
            "selector": conventions.selector_labels(site.domain),
            "ports": [{
                "name": "http",
                "port": conventions.TOMCAT_HTTP_PORT,
                "targetPort": "http",
                "nodePort": site.node_port(environment),
                "protocol": "TCP",
            }],
        },
    }
