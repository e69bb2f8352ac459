"""The machines: every remote step of the platform stack as a `pulumi_command.remote.Command`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

import pulumi
from pulumi_command import remote

from tomcat_cd.core.hosts.inventory import Host
from tomcat_cd.core.hosts.plan import ADMIN_KUBECONFIG, FromConfig, FromStep, RemoteStep
from tomcat_cd.core.hosts.script import exports


@dataclass(frozen=True)
class HostBootstrapArgs:
    steps: list[RemoteStep]
    """In dependency order (tomcat_cd.core.hosts.plan.remote_steps); required."""
    secret: Callable[[str], pulumi.Output[str]]
    """A secret of the stack's config by key (`pulumi.Config.require_secret`); required."""


def last_json_line(stdout: str) -> dict[str, Any]:
    """What a step hands on: the JSON it printed last (progress goes to standard error)."""
    lines = [line for line in (stdout or "").splitlines() if line.strip()]
    return json.loads(lines[-1]) if lines else {}


class HostBootstrap(pulumi.ComponentResource):
    """Runs each step's script as root over SSH; secrets reach a script ahead of it on standard
    input, never in its command line or a file, and a step's secret output stays a Pulumi secret."""

    commands: dict[str, remote.Command]
    admin_kubeconfig: pulumi.Output[str] | None

    def __init__(self, name: str, args: HostBootstrapArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("tomcat-cd:index:HostBootstrap", name, None, opts)
        self.commands = {}
        for step in args.steps:
            self.commands[step.name] = self._command(step, args.secret)
        kubeconfig = self.commands.get(ADMIN_KUBECONFIG)
        self.admin_kubeconfig = pulumi.Output.secret(kubeconfig.stdout) if kubeconfig else None
        self.register_outputs({"steps": list(self.commands)})

    def _command(self, step: RemoteStep, secret: Callable[[str], pulumi.Output[str]]) -> remote.Command:
        values = {name: self._secret_value(source, secret) for name, source in step.secrets.items()}
        stdin = (pulumi.Output.all(**values).apply(lambda plain: exports(plain) + step.script)
                 if values else step.script)
        delete = None
        if step.delete_script:
            # A delete runs without the stack's inputs: its script travels inside the command.
            delete = f"{step.host.runner} <<'TOMCAT_CD_DELETE'\n{step.delete_script}TOMCAT_CD_DELETE\n"
        return remote.Command(
            step.name,
            connection=self._connection(step.host, secret),
            create=step.host.runner,
            update=step.host.runner,
            delete=delete,
            stdin=stdin,
            triggers=list(step.triggers) or None,
            logging=remote.Logging.STDERR if step.secret_output else remote.Logging.STDOUT_AND_STDERR,
            add_previous_output_in_env=False,
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[self.commands[name] for name in step.after],
                additional_secret_outputs=["stdout"] if step.secret_output else None,
            ),
        )

    def _secret_value(self, source: FromConfig | FromStep, secret: Callable[[str], pulumi.Output[str]]) -> pulumi.Output[str]:
        if isinstance(source, FromConfig):
            return secret(source.key)
        stdout = self.commands[source.step].stdout
        return pulumi.Output.secret(stdout.apply(lambda text: str(last_json_line(text)[source.field])))

    @staticmethod
    def _connection(host: Host, secret: Callable[[str], pulumi.Output[str]]) -> remote.ConnectionArgs:
        return remote.ConnectionArgs(host=host.address, port=host.port, user=host.user,
                                     private_key=secret(host.key_secret), host_key=host.host_key,
                                     dial_error_limit=20)
