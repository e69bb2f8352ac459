"""Reading a Deployment and its pods from the Kubernetes API server, with the stack's kubeconfig.

The health gate and the rollout wait only read (a few GETs): the Python standard library does that,
with no kubectl on the Jenkins agent and no client package. A kubeconfig's current context
gives the server, its CA, and a client certificate or a bearer token (exec plugins are not
read: use a token or a certificate for the agent).
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tomcat_cd.core import conventions
from tomcat_cd.core.gate import Availability

TIMEOUT_SECONDS = 10
REVISION = "deployment.kubernetes.io/revision"


class KubeError(Exception):
    """The API server could not be read (told in one line)."""


def _named(config: dict[str, Any], kind: str, name: str | None) -> dict[str, Any]:
    """The `kind` (context, cluster, user) named `name` in a kubeconfig's `<kind>s` list."""
    for item in config.get(f"{kind}s") or []:
        if item.get("name") == name:
            found: dict[str, Any] = item.get(kind) or {}
            return found
    raise KubeError(f"the kubeconfig has no {kind} named {name!r}")


def _data_or_file(entry: dict[str, Any], key: str, folder: Path) -> str | None:
    """A file path for `<key>` or `<key>-data` (written into `folder`)."""
    if entry.get(f"{key}-data"):
        path = folder / key
        path.write_bytes(base64.b64decode(entry[f"{key}-data"]))
        return str(path)
    return entry.get(key)


def _tls_context(server: str, cluster: dict[str, Any], user: dict[str, Any]) -> ssl.SSLContext | None:
    if not server.startswith("https://"):
        return None
    with tempfile.TemporaryDirectory(prefix="tomcat-cd-kube-") as folder:
        ca = _data_or_file(cluster, "certificate-authority", Path(folder))
        context = ssl.create_default_context(cafile=ca)
        if cluster.get("insecure-skip-tls-verify"):
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        cert = _data_or_file(user, "client-certificate", Path(folder))
        key = _data_or_file(user, "client-key", Path(folder))
        if cert and key:
            context.load_cert_chain(cert, key)
    return context


@dataclass
class KubeReader:
    server: str
    context: ssl.SSLContext | None
    token: str | None

    @classmethod
    def from_kubeconfig(cls, path: str | None) -> "KubeReader":
        chosen = path or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] or str(Path.home() / ".kube/config")
        try:
            config = yaml.safe_load(Path(chosen).read_text())
            current = _named(config, "context", config.get("current-context"))
            cluster = _named(config, "cluster", current.get("cluster"))
            user = _named(config, "user", current.get("user"))
        except (OSError, yaml.YAMLError, AttributeError) as err:
            raise KubeError(f"cannot read kubeconfig {chosen}: {err}") from None
        server = str(cluster.get("server", "")).rstrip("/")
        try:
            context = _tls_context(server, cluster, user)
        except (OSError, ValueError) as err:
            raise KubeError(f"kubeconfig {chosen}: cannot use its certificates: {err}") from None
        return cls(server, context, user.get("token"))

    def get(self, path: str, **query: str) -> dict[str, Any]:
        url = self.server + path + (f"?{urllib.parse.urlencode(query)}" if query else "")
        request = urllib.request.Request(url, headers={"Accept": "application/json"})
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS, context=self.context) as answer:
                result: dict[str, Any] = json.load(answer)
                return result
        except (OSError, ValueError) as err:
            raise KubeError(f"GET {path}: {err}") from None

    def deployment(self, namespace: str, domain: str) -> dict[str, Any]:
        return self.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/{conventions.k8s_name(domain)}")

    def availability(self, namespace: str, domain: str) -> tuple[Availability, list[str]]:
        """The Deployment's sample and the names of its newest revision's pods."""
        deployment = self.deployment(namespace, domain)
        selector = ",".join(f"{k}={v}" for k, v in conventions.selector_labels(domain).items())
        revision = (deployment.get("metadata") or {}).get("annotations", {}).get(REVISION)
        sets = self.get(f"/apis/apps/v1/namespaces/{namespace}/replicasets", labelSelector=selector)["items"]
        newest = [rs for rs in sets if (rs["metadata"].get("annotations") or {}).get(REVISION) == revision]
        hashes = {rs["metadata"].get("labels", {}).get("pod-template-hash") for rs in newest}
        pods = [p for p in self.get(f"/api/v1/namespaces/{namespace}/pods", labelSelector=selector)["items"]
                if p["metadata"].get("labels", {}).get("pod-template-hash") in hashes]
        restarts = sum(c.get("restartCount", 0) for p in pods
                       for c in (p.get("status") or {}).get("containerStatuses") or [])
        status = deployment.get("status") or {}
        sample = Availability(desired=int((deployment.get("spec") or {}).get("replicas", 1)),
                              updated=int(status.get("updatedReplicas", 0)),
                              available=int(status.get("availableReplicas", 0)), restarts=restarts)
        return sample, sorted(p["metadata"]["name"] for p in pods)

    def first_node_address(self) -> str | None:
        for node in self.get("/api/v1/nodes").get("items", []):
            for address in (node.get("status") or {}).get("addresses") or []:
                if address.get("type") == "InternalIP":
                    return str(address["address"])
        return None
