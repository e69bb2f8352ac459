"""Runs the Pulumi program under Pulumi's mocks and records what it registers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi


@dataclass
class Registered:
    typ: str
    name: str
    inputs: dict[str, Any]
    urn: str = ""


# What a remote command prints, by its name, for steps whose output later steps read.
COMMAND_OUTPUTS = {
    "join-credentials": '{"token": "abcdef.0123456789abcdef", "caCertHash": "sha256:00ff", "certificateKey": "c0ffee"}\n',
    "admin-kubeconfig": "apiVersion: v1\nkind: Config\n",
}


@dataclass
class Recorder(pulumi.runtime.Mocks):
    resources: list[Registered] = field(default_factory=list)
    dependencies: dict[str, set[str]] = field(default_factory=dict)
    """Logical name -> the logical names of what it was registered to depend on."""
    secret_outputs: dict[str, list[str]] = field(default_factory=dict)
    """Logical name -> its `additional_secret_outputs`."""

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        self.resources.append(Registered(args.typ, args.name, dict(args.inputs)))
        state = dict(args.inputs)
        if args.typ == "command:remote:Command":
            state["stdout"] = COMMAND_OUTPUTS.get(args.name, "")
        if args.typ == IMAGE_TYPE:
            # What the Docker Build provider answers after a push: the tag with its digest.
            state["digest"] = MOCK_DIGEST
            state["ref"] = f"{state['tags'][0]}@{MOCK_DIGEST}"
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.resources if r.typ == typ]

    def depends_on(self, name: str) -> set[str]:
        """Every resource `name` waits for, directly or through another."""
        seen: set[str] = set()
        todo = list(self.dependencies.get(name, ()))
        while todo:
            current = todo.pop()
            if current not in seen:
                seen.add(current)
                todo += self.dependencies.get(current, ())
        return seen


IMAGE_TYPE = "docker-build:index:Image"
MOCK_DIGEST = "sha256:" + "d" * 64


class _DependencyMonitor(pulumi.runtime.mocks.MockMonitor):
    """Pulumi's mock monitor, also noting each registration's `dependsOn` and secret outputs
    (the mocks do not see them)."""

    def __init__(self, recorder: Recorder):
        super().__init__(recorder)
        self.recorder = recorder

    def RegisterResource(self, request):
        self.recorder.dependencies[request.name] = {urn.rsplit("::", 1)[1] for urn in request.dependencies}
        self.recorder.secret_outputs[request.name] = list(request.additionalSecretOutputs)
        return super().RegisterResource(request)


def run_program(project_dir: Path, stack: str, config: dict[str, Any],
                secret_keys: tuple[str, ...] = (), recorder: Recorder | None = None) -> Recorder:
    """Evaluate the program for `stack`; raises what the program raised, after
    `recorder` (when given) has seen whatever was registered before that."""
    from tomcat_cd import program

    recorder = recorder if recorder is not None else Recorder()
    pulumi.runtime.set_mocks(recorder, project="tomcat-cd", stack=stack, preview=False,
                             monitor=_DependencyMonitor(recorder))
    flat = {f"tomcat-cd:{k}": v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    pulumi.runtime.set_all_config(flat, [f"tomcat-cd:{k}" for k in secret_keys])

    @pulumi.runtime.test
    def evaluate():
        program.run(project_dir)
        return pulumi.Output.from_input(True)

    evaluate()
    return recorder


# How a secret value reaches the mocks: wrapped in Pulumi's secret signature.
SECRET_SIG = ("4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270")


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SECRET_SIG[0]) == SECRET_SIG[1]


def unwrap_secrets(value: Any) -> Any:
    """Plain values, as they would be sent: secrets unwrapped, and whole numbers whole again
    (the protobuf Struct that carries inputs to the mocks knows only floats)."""
    if is_secret(value):
        return unwrap_secrets(value["value"])
    if isinstance(value, dict):
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def k8s_objects(recorder: Recorder) -> list[dict[str, Any]]:
    """Registered Kubernetes resources as objects: apiVersion/kind from the type token."""
    objects = []
    for res in recorder.resources:
        if not res.typ.startswith("kubernetes:"):
            continue
        _, group_version, kind = res.typ.split(":")
        group, _, version = group_version.rpartition("/")
        api_version = version if group in ("core", "") else f"{group}/{version}"
        obj = {"apiVersion": api_version, "kind": kind}
        obj.update({k: unwrap_secrets(v) for k, v in res.inputs.items() if k not in ("apiVersion", "kind")})
        objects.append(obj)
    return objects
