"""cdctl's command line: the engine, release, trace and promote commands and their arguments.

A command's code is imported only when that command runs, so `cdctl --help`, `check` and
`render` do not load what a deploy needs (the drivers: Pulumi CLI, Kubernetes, Elasticsearch).
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path
from typing import Callable

from tomcat_cd.core import conventions


def command(module: str, name: str) -> Callable[[argparse.Namespace, Path], int]:
    """`cdctl.<module>.<name>`, imported when called."""
    def run(args: argparse.Namespace, project_dir: Path) -> int:
        function: Callable[[argparse.Namespace, Path], int] = getattr(importlib.import_module(f"cdctl.{module}"), name)
        return function(args, project_dir)
    return run


def add_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    add_engine_commands(commands)
    add_trace_commands(commands)
    add_promote_command(commands)


def add_force(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--force", action="store_true",
                        help="go past the domain's pin or the environment's freeze (needs --reason)")
    parser.add_argument("--reason", help="why: recorded in the update's message")


def add_engine_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    def site_command(name: str, help: str, description: str | None = None) -> argparse.ArgumentParser:
        """A command about one domain in one environment: DOMAIN and --env, then its own options."""
        parser = commands.add_parser(name, help=help, description=description or help)
        parser.add_argument("domain", metavar="DOMAIN")
        parser.add_argument("--env", required=True, choices=conventions.ENVIRONMENTS,
                            help="the environment, i.e. the stack (Jenkins' BRANCH)")
        return parser

    deploy = site_command(
        "deploy", "deploy one version of one domain to an environment",
        "Check the domain file and the war, record the version and build in the stack config, "
        "show the preview, then update only this site's resources. In cluster mode the health gate then "
        "watches the new version (the domain file's gate:); if it fails, the domain is rolled back to the "
        "version it had, pinned there, and cdctl exits 4. A pinned domain or a frozen environment is "
        "refused (exit 2) unless --force --reason.")
    deploy.add_argument("--version", required=True, help="the developers' version, e.g. v1.2.0 (Jenkins' VERSION)")
    deploy.add_argument("--build-id", help="the Jenkins build number (default: $BUILD_NUMBER)")
    deploy.add_argument("--yes", action="store_true", help="apply without asking (needed when not at a terminal)")
    add_force(deploy)
    deploy.set_defaults(func=command("engine_commands", "cmd_deploy"))

    delete = site_command("delete", "remove a domain from an environment (Jenkins' TYPE=delete)")
    delete.add_argument("--yes", action="store_true", help="apply without asking")
    add_force(delete)
    delete.set_defaults(func=command("engine_commands", "cmd_delete"))

    history = site_command("history", "the versions a domain had in an environment, newest first")
    history.add_argument("--json", action="store_true", help="print JSON instead of a table")
    history.set_defaults(func=command("history_command", "cmd_history"))

    rollback = site_command(
        "rollback", "re-apply the version a domain had before, as a new update",
        "Re-apply, from the stack's update history, the version (and image) the domain had "
        "before the running one, or the one named with --to.")
    target = rollback.add_mutually_exclusive_group()
    target.add_argument("--to", metavar="VERSION", help="the earlier version to bring back")
    target.add_argument("--steps", type=int, default=1, help="how many versions back (default 1)")
    rollback.add_argument("--yes", action="store_true", help="apply without asking")
    add_force(rollback)
    rollback.set_defaults(func=command("engine_commands", "cmd_rollback"))

    drift = site_command(
        "drift", "what was changed by hand on the cluster since the last update (exit 3 if any)",
        "Compare the site's live objects with the last update (a dry-run refresh). "
        "Exit 0: none; 3: drift found (the next deploy puts it back).")
    drift.set_defaults(func=command("engine_commands", "cmd_drift"))

    unlock = commands.add_parser(
        "unlock", help="release the stack lock of an update that was killed (exit 1 if its holder still runs)",
        description="Release a Pulumi stack lock whose holder is gone (a pulumi killed mid-update), stop the "
                    "plugins it left behind, and put the checkout's stack file back in step with what runs. "
                    "A lock whose holder still runs is left alone.")
    unlock.add_argument("--env", required=True, choices=conventions.ENVIRONMENTS, help="the environment (stack)")
    unlock.set_defaults(func=command("engine_commands", "cmd_unlock"))

    pulumi = commands.add_parser(
        "pulumi", help="run this project's Pulumi CLI in local mode (e.g. cdctl pulumi up -s develop)",
        description="Run the Pulumi CLI built by scripts/install-pulumi with this project's environment: "
                    "a file backend in .state/pulumi unless PULUMI_BACKEND_URL is set. A stack with a "
                    "Pulumi.<stack>.yaml here is created in the backend on first use.")
    pulumi.add_argument("pulumi_args", nargs=argparse.REMAINDER, metavar="ARGS")
    pulumi.set_defaults(func=command("engine_commands", "cmd_pulumi"))

    env = commands.add_parser("env", help="print the shell exports that make plain `pulumi` run in local mode",
                              description='Use as: eval "$(cdctl env)"')
    env.set_defaults(func=command("engine_commands", "cmd_env"))
    add_release_commands(commands)


def add_release_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    def env_option(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--env", required=True, choices=conventions.ENVIRONMENTS,
                            help="the environment, i.e. the stack (Jenkins' BRANCH)")

    pin = commands.add_parser(
        "pin", help="hold a domain at the version it runs: its deploys are refused until unpin",
        description="Hold a domain at its running version. The pin lives in the stack's record (every Jenkins "
                    "agent sees it) and shows in cdctl history; a deploy of the domain is refused (exit 2) "
                    "unless --force --reason. A failed health gate pins the domain itself.")
    pin.add_argument("domain", metavar="DOMAIN")
    env_option(pin)
    pin.add_argument("--reason", required=True, help="why, in one line (shown to whoever deploys next)")
    pin.set_defaults(func=command("release_commands", "cmd_pin"))

    unpin = commands.add_parser("unpin", help="lift a domain's pin")
    unpin.add_argument("domain", metavar="DOMAIN")
    env_option(unpin)
    unpin.set_defaults(func=command("release_commands", "cmd_unpin"))

    freeze = commands.add_parser(
        "freeze", help="refuse every deploy of an environment until unfreeze (e.g. master during a sale)",
        description="Freeze an environment: every deploy, rollback and delete is refused (exit 2) unless "
                    "--force --reason. Lives in the stack's record, like a pin.")
    env_option(freeze)
    freeze.add_argument("--reason", required=True, help="why, in one line")
    freeze.set_defaults(func=command("release_commands", "cmd_freeze"))

    unfreeze = commands.add_parser("unfreeze", help="lift an environment's freeze")
    env_option(unfreeze)
    unfreeze.set_defaults(func=command("release_commands", "cmd_unfreeze"))


def add_trace_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    status = commands.add_parser(
        "status", help="every domain in every environment: version, digest, build, when, by, gate, pin, replicas",
        description="What runs where, from each stack's history and state; in cluster mode also the replicas "
                    "available (and, with --drift, what was changed by hand); with Elasticsearch configured, "
                    "the gate verdict of each running version from its marker.")
    status.add_argument("--env", choices=conventions.ENVIRONMENTS, help="one environment (default: both)")
    status.add_argument("--json", action="store_true", help="print JSON instead of a table")
    status.add_argument("--html", metavar="DIR", help="write a static page (DIR/index.html, a timeline and "
                                                      "diff pages per domain; no server, no CDN)")
    status.add_argument("--drift", action="store_true", help="also compare each site with the cluster (slow)")
    status.set_defaults(func=command("trace_commands", "cmd_status"))

    diff = commands.add_parser(
        "diff", help="what changed for a domain between two updates (default: the previous deploy and the current)",
        description="The record (version, build id, git id, image digest, war sha256) and a unified diff of the "
                    "site's Kubernetes objects as the two updates applied them. FROM and TO are update numbers "
                    "or versions (cdctl history shows both).")
    diff.add_argument("domain", metavar="DOMAIN")
    diff.add_argument("--env", required=True, choices=conventions.ENVIRONMENTS, help="the environment (stack)")
    diff.add_argument("start", nargs="?", metavar="FROM", help="update number or version (default: the previous)")
    diff.add_argument("end", nargs="?", metavar="TO", help="update number or version (default: the current)")
    diff.add_argument("--json", action="store_true", help="print JSON")
    diff.set_defaults(func=command("trace_commands", "cmd_diff"), late_positionals=("start", "end"))


def add_promote_command(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    promote = commands.add_parser(
        "promote", help="deploy to master the exact image that runs in develop (by digest, no rebuild)",
        description="Deploy to --to the image digest, version, build id, war sha256 and cd git id that run in "
                    "--from; the registry gets the tag <version>-<to>-<git> for the same digest. Prints what "
                    "differs between the two environments first and asks at a terminal. Refused (exit 2) when "
                    "the running version failed its health gate, is pinned as bad, or is not --version. The "
                    "health gate then judges it in --to as after a deploy.")
    promote.add_argument("domain", metavar="DOMAIN")
    promote.add_argument("--from", dest="source", default="develop", choices=conventions.ENVIRONMENTS,
                         help="where it was tested (default develop)")
    promote.add_argument("--to", default="master", choices=conventions.ENVIRONMENTS, help="default master")
    promote.add_argument("--version", help="the version the caller means: refused if --from runs another")
    promote.add_argument("--yes", action="store_true", help="apply without asking (needed when not at a terminal)")
    add_force(promote)
    promote.set_defaults(func=command("promote_command", "cmd_promote"))
