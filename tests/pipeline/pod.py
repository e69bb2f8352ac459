"""Run a pushed image as a Deployment's pod spec says, with `docker run`.

kwok simulates kubelets, so no container runs on the test cluster; this is the kubelet's
part for one pod, taken from the Deployment as the API server returns it, never from a
second description kept by hand. Every field of the pod spec is either translated or
refused (UnsupportedField), so a new field in the rendered Deployment can't be silently
left out of what the test runs.

Translated: the container's image, command/args, env (values with `$(VAR)` references and
the `metadata.name` field reference), hostAliases, hostPath volumes (type DirectoryOrCreate,
`subPathExpr` resolved for the pod), memory limit; ports and probes are read by the test
(`http_port`, `probe_paths`). Host networking is used (the test's dockerd has no bridge), so
the container port is the host port on 127.0.0.1.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

# What a kubelet does with these that a test on one host needs not: scheduling, grace
# periods, pull policy (the image is pulled by digest anyway) and lifecycle hooks.
IGNORED_POD_FIELDS = {"terminationGracePeriodSeconds", "imagePullSecrets", "restartPolicy", "dnsPolicy",
                      "schedulerName", "securityContext"}
IGNORED_CONTAINER_FIELDS = {"imagePullPolicy", "lifecycle", "terminationMessagePath", "terminationMessagePolicy",
                            "startupProbe", "readinessProbe", "livenessProbe", "ports", "name"}


class UnsupportedField(Exception):
    pass


def pod_spec(deployment: dict[str, Any]) -> dict[str, Any]:
    return deployment["spec"]["template"]["spec"]


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = pod_spec(deployment)["containers"]
    if len(containers) != 1:
        raise UnsupportedField(f"{len(containers)} containers")
    return containers[0]


def _expand(text: str, env: dict[str, str]) -> str:
    return re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)), text)


def environment(deployment: dict[str, Any], pod_name: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for var in container(deployment).get("env", []):
        if "value" in var:
            env[var["name"]] = _expand(var["value"], env)
        elif var.get("valueFrom") == {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}} or \
                var.get("valueFrom") == {"fieldRef": {"fieldPath": "metadata.name"}}:
            env[var["name"]] = pod_name
        else:
            raise UnsupportedField(f"env {var['name']}: {var.get('valueFrom')}")
    return env


def host_folders(deployment: dict[str, Any], pod_name: str, node_root: Path) -> dict[str, Path]:
    """mountPath -> the node folder it reaches, `/` of the node being `node_root`."""
    spec, env = pod_spec(deployment), environment(deployment, pod_name)
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    folders = {}
    for mount in container(deployment).get("volumeMounts", []):
        volume = volumes[mount["name"]]
        if set(volume) != {"name", "hostPath"} or volume["hostPath"].get("type") != "DirectoryOrCreate":
            raise UnsupportedField(f"volume {volume}")
        if mount.get("readOnly") or "subPath" in mount or set(mount) - {"name", "mountPath", "subPathExpr"}:
            raise UnsupportedField(f"volumeMount {mount}")
        folder = node_root / volume["hostPath"]["path"].lstrip("/")
        if "subPathExpr" in mount:
            folder = folder / _expand(mount["subPathExpr"], env)
        folders[mount["mountPath"]] = folder
    return folders


def http_port(deployment: dict[str, Any]) -> int:
    (port,) = [p["containerPort"] for p in container(deployment)["ports"] if p.get("name") == "http"]
    return int(port)


def probe_paths(deployment: dict[str, Any]) -> dict[str, str]:
    """The HTTP probes' paths, by probe."""
    return {kind: probe["httpGet"]["path"] for kind in ("startupProbe", "readinessProbe", "livenessProbe")
            if "httpGet" in (probe := container(deployment).get(kind) or {})}


def docker_run_args(deployment: dict[str, Any], pod_name: str, node_root: Path, name: str) -> list[str]:
    """`docker run` arguments that start the pod's container as the kubelet would."""
    spec, box = pod_spec(deployment), container(deployment)
    unknown = (set(spec) - IGNORED_POD_FIELDS - {"containers", "volumes", "hostAliases"}) | (
        set(box) - IGNORED_CONTAINER_FIELDS - {"image", "env", "resources", "volumeMounts", "command", "args"})
    if unknown:
        raise UnsupportedField(", ".join(sorted(unknown)))
    args = ["run", "--detach", "--name", name, "--network", "host", "--hostname", pod_name]
    for key, value in environment(deployment, pod_name).items():
        args += ["--env", f"{key}={value}"]
    for alias in spec.get("hostAliases", []):
        args += [arg for host in alias["hostnames"] for arg in ("--add-host", f"{host}:{alias['ip']}")]
    for mount_path, folder in host_folders(deployment, pod_name, node_root).items():
        folder.mkdir(parents=True, exist_ok=True)
        args += ["--volume", f"{folder}:{mount_path}"]
    memory = (box.get("resources") or {}).get("limits", {}).get("memory")
    if memory:
        args += ["--memory", memory.replace("Gi", "g").replace("Mi", "m")]
    if box.get("command"):
        args += ["--entrypoint", box["command"][0]]
    args.append(box["image"])
    args += box.get("command", [])[1:] + box.get("args", [])
    return args
