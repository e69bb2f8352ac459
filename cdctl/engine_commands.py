"""cdctl commands that run the Pulumi engine: deploy, delete, rollback, drift, unlock, pulumi,
env (`history`, which reads the engine's record alone, is in history_command)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Callable

from cdctl.history_command import check_domain_version, domain_records, refuse_never_deployed
from cdctl.console import warn
from cdctl.release_commands import (EXIT_SIGNALLED, forced_reason, gate_after_deploy, rollout_problem,
                                    rollout_status_command)
from tomcat_cd.core import conventions
from tomcat_cd.core.checkout import cd_git_id
from tomcat_cd.core.errors import Problem, raise_if_any
from tomcat_cd.core.history import rollback_target
from tomcat_cd.core.platform_settings import is_platform
from tomcat_cd.core.settings import Build, StackSettings, load_stack_file, read_stack_values, saves_state_at_end
from tomcat_cd.core.stack_file import BUILD_ID
from tomcat_cd.core.urns import SITE_CHILD_TYPES
from tomcat_cd.driver.deploy import Cancelled, Deployer, SiteChange, checked_deploy, checked_settings, who
from tomcat_cd.driver.drift import site_drift
from tomcat_cd.driver.engine import engine_env, pulumi_command
from tomcat_cd.driver.events import announce
from tomcat_cd.driver.foreground import run_in_foreground
from tomcat_cd.driver.locking import environment_lock, pulumi_locks, release_stale_locks, stop_orphaned_plugins
from tomcat_cd.driver.pulumi_cli import EngineError, PulumiCli
from tomcat_cd.driver.record import sync_checkout
from tomcat_cd.driver.update import Interrupted

ENGINE_FAILED = 1
SKIP_CHECKPOINTS_ENV = "PULUMI_SKIP_CHECKPOINTS"


def confirm_or_yes(args: argparse.Namespace) -> Callable[[], bool] | None:
    """None when no question is needed; else a function asking at the terminal."""
    if args.yes:
        return None
    if not sys.stdin.isatty():
        raise_if_any([Problem("command line", "--yes", "is needed when not at a terminal (Jenkins passes it)")])
    return lambda: input("Apply this change? [y/N] ").strip().lower() in ("y", "yes")


def run_change(args: argparse.Namespace, project_dir: Path, settings: StackSettings, change: SiteChange,
               gate: bool = False) -> int:
    """Make the change; with `gate`, the health gate judges the deployed version after it."""
    refresh = settings.target == "cluster"
    started = time.time()
    try:
        applied = Deployer(project_dir, args.env).apply(change, settings, confirm_or_yes(args), refresh=refresh)
    except Cancelled:
        print("cancelled: nothing was changed")
        return 0
    except Interrupted as err:
        print(f"error: {err}: Pulumi stopped after the steps in flight; {change.domain} in {args.env} runs what "
              f"the last finished step left (cdctl history {change.domain} --env {args.env})", file=sys.stderr)
        return EXIT_SIGNALLED + err.signum
    except EngineError as err:
        print(f"error: {err}{_image_step_hint(err, settings)}", file=sys.stderr)
        print(f"the previous state of {args.env} is unchanged: the site keeps serving the version it had",
              file=sys.stderr)
        announce(PulumiCli(project_dir, args.env), settings, change, "failed", None, warn)
        return ENGINE_FAILED
    try:
        incomplete = rollout_problem(settings, change)
    except Interrupted as err:
        print(f"error: {err} while waiting for {change.domain}'s rollout: update {applied.number} made the change "
              f"and the rollout goes on ({rollout_status_command(settings, change.domain)})", file=sys.stderr)
        return EXIT_SIGNALLED + err.signum
    if incomplete:
        print(f"error: update {applied.number} of stack {args.env} made the change ({change.message}), but "
              f"{change.domain}'s rollout did not complete: {incomplete}", file=sys.stderr)
    else:
        print(f"done: {change.message} (update {applied.number} of stack {args.env})")
    announce(PulumiCli(project_dir, args.env), settings, change, "failed" if incomplete else "succeeded",
             applied.number, warn, f"rollout: {incomplete}" if incomplete else "")
    judged = gate_after_deploy(project_dir, settings, change, applied, started, refresh) if gate else 0
    return judged or (ENGINE_FAILED if incomplete else 0)


def _image_step_hint(err: EngineError, settings: StackSettings) -> str:
    """What the image step depended on, when it is the step that failed."""
    if f"({SITE_CHILD_TYPES['image']})" not in err.detail:
        return ""
    base = conventions.base_image_ref(settings.harbor_host, settings.base_image)
    builder = settings.builder or "(buildx default)"
    if settings.builder_endpoint:
        builder += f" at {settings.builder_endpoint}"
    return (f" [image build: builder {builder}, base image {base}, "
            f"push to {settings.harbor_host} as {settings.harbor_username or '(no user)'}]")


def _build_id(args: argparse.Namespace) -> str:
    given = args.build_id if args.build_id is not None else os.environ.get("BUILD_NUMBER", "")
    if not BUILD_ID.fullmatch(given):
        where = "--build-id" if args.build_id is not None else "BUILD_NUMBER"
        raise_if_any([Problem("command line", where,
                              f"must be a build number or id (letters, digits, ._#-; 64 at most), got {given[:80]!r}")])
    return given


def cmd_deploy(args: argparse.Namespace, project_dir: Path) -> int:
    check_domain_version(args.domain, args.version)
    build_id = _build_id(args)
    settings, war_sha256 = checked_deploy(project_dir, args.env, args.domain, args.version)
    forced = forced_reason(args)
    build = Build(build_id, cd_git_id(project_dir), who(), war_sha256)
    message = f"deploy {args.domain} {args.version} build {build.build_id or '-'} git {build.git_id} by {build.by}"
    return run_change(args, project_dir, settings, SiteChange(args.domain, args.version, build, message + forced_note(forced),
                                                              forced=forced), gate=True)


def forced_note(reason: str | None) -> str:
    return f" (forced: {reason})" if reason else ""


def cmd_delete(args: argparse.Namespace, project_dir: Path) -> int:
    check_domain_version(args.domain, None)
    settings = checked_settings(project_dir, args.env, args.domain, None)
    forced = forced_reason(args)
    return run_change(args, project_dir, settings, SiteChange(args.domain, None, None,
                                                              f"delete {args.domain} by {who()}{forced_note(forced)}",
                                                              forced=forced, action="delete"))


def _existing_cli(args: argparse.Namespace, project_dir: Path) -> PulumiCli:
    cli = PulumiCli(project_dir, args.env)
    if not cli.exists():
        refuse_never_deployed(args.env)
    return cli


def cmd_rollback(args: argparse.Namespace, project_dir: Path) -> int:
    records = domain_records(args, project_dir)
    target = rollback_target(records, args.domain, args.to, args.steps)
    assert target.version is not None
    settings, war_sha256 = checked_deploy(project_dir, args.env, args.domain, target.version)
    build = Build(target.build_id, target.git_id or cd_git_id(project_dir), who(), target.war_sha256 or war_sha256)
    forced = forced_reason(args)
    message = (f"rollback {args.domain} to {target.version} build {build.build_id or '-'} git {build.git_id} "
               f"(as deployed by update {target.update}) by {build.by}{forced_note(forced)}")
    return run_change(args, project_dir, settings, SiteChange(args.domain, target.version, build, message,
                                                              forced=forced, action="rollback"))


DRIFT_FOUND = 3


def cmd_drift(args: argparse.Namespace, project_dir: Path) -> int:
    check_domain_version(args.domain, None)
    settings = checked_settings(project_dir, args.env, args.domain, None)
    if settings.target != "cluster":
        raise_if_any([Problem(f"Pulumi.{args.env}.yaml", "tomcat-cd:target",
                              "drift needs a cluster to compare with (render mode has none)")])
    try:
        changes = site_drift(_existing_cli(args, project_dir), args.domain)
    except EngineError as err:
        print(f"error: {err}", file=sys.stderr)
        return ENGINE_FAILED
    if not changes:
        print(f"{args.domain} in {args.env}: no drift")
        return 0
    print(f"{args.domain} in {args.env}: drifted from the last update (the next deploy puts it back):")
    for name, op, properties in changes:
        print(f"  {name}: {op} {', '.join(properties)}".rstrip())
    return DRIFT_FOUND


def _stack_argument(argv: list[str]) -> str | None:
    for index, arg in enumerate(argv):
        if arg in ("-s", "--stack") and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith("--stack="):
            return arg.split("=", 1)[1]
    return None


# Commands that run the program: the checkout's stack file must first hold what runs.
RUNS_PROGRAM = frozenset({"up", "update", "preview", "pre", "refresh", "destroy"})
CHANGES_STATE = RUNS_PROGRAM - {"preview", "pre"}


def cmd_pulumi(args: argparse.Namespace, project_dir: Path) -> int:
    env = engine_env(project_dir)
    pulumi = pulumi_command(project_dir)
    stack = _stack_argument(args.pulumi_args)
    if stack and (project_dir / f"Pulumi.{stack}.yaml").exists() and args.pulumi_args[:1] != ["stack"]:
        cli = PulumiCli(project_dir, stack)
        # A stack with a file in the project is created in the backend on first use.
        cli.select(create=True)
        if args.pulumi_args[:1] and args.pulumi_args[0] in RUNS_PROGRAM and not is_platform(
                stack, read_stack_values(project_dir, stack)[1]):
            with environment_lock(project_dir, stack, cli.env["PULUMI_BACKEND_URL"], warn):
                sync_checkout(cli, warn)
                settings = load_stack_file(project_dir, stack)
                if args.pulumi_args[0] in CHANGES_STATE:
                    env = _with_checkpoints(env, cli, settings.checkpoints)
                return _pulumi_in_foreground([pulumi, *_with_parallel(args.pulumi_args, settings.parallel)],
                                             project_dir, env)
    return _pulumi_in_foreground([pulumi, *args.pulumi_args], project_dir, env)


def _pulumi_in_foreground(command: list[str], project_dir: Path, env: dict[str, str]) -> int:
    try:
        return run_in_foreground(command, project_dir, env)
    except Interrupted as err:
        print(f"error: {err} (Pulumi's lines above say how far it got)", file=sys.stderr)
        return EXIT_SIGNALLED + err.signum


def _with_parallel(pulumi_args: list[str], parallel: int) -> list[str]:
    """The stack's `parallel` as `--parallel`, unless the caller gave one."""
    if any(a in ("-p", "--parallel") or a.startswith(("--parallel=", "-p=")) for a in pulumi_args):
        return pulumi_args
    return [*pulumi_args, f"--parallel={parallel}"]


def _with_checkpoints(env: dict[str, str], cli: PulumiCli, checkpoints: str) -> dict[str, str]:
    """The engine's environment, told to save the state only at the end when the stack's
    `checkpoints` says so (saves_state_at_end)."""
    if checkpoints == "each-step" or not saves_state_at_end(checkpoints, len(cli.resource_urns())):
        return env
    warn(f"stack {cli.stack}: the state is saved when the update ends, not after each step (checkpoints: "
         f"{checkpoints}{', an empty stack' if checkpoints == 'auto' else ''})")
    return {**env, SKIP_CHECKPOINTS_ENV: "true"}


def cmd_unlock(args: argparse.Namespace, project_dir: Path) -> int:
    cli = _existing_cli(args, project_dir)
    backend = cli.env["PULUMI_BACKEND_URL"]
    locks = pulumi_locks(backend, conventions.PROJECT, args.env)
    if not locks:
        if not backend.startswith("file://"):
            print(f"cdctl reads locks of file:// backends only: for {backend}, check that no update runs, "
                  f"then run: cdctl pulumi cancel -s {args.env}", file=sys.stderr)
            return ENGINE_FAILED
        print(f"stack {args.env} is not locked")
        return 0
    released = release_stale_locks(backend, conventions.PROJECT, args.env)
    for lock in released:
        print(f"released the lock of {lock.describe()}, which is no longer running")
    alive = [lock for lock in locks if lock not in released]
    for lock in alive:
        print(f"error: stack {args.env} is locked by {lock.describe()}, which is still running (or runs on "
              "another machine): let it finish, or stop it there", file=sys.stderr)
    with environment_lock(project_dir, args.env, backend, warn):
        if not alive:
            for pid in stop_orphaned_plugins(project_dir):
                print(f"stopped pid {pid}, a Pulumi plugin the killed update left running")
        sync_checkout(cli, print)
    return ENGINE_FAILED if alive else 0


def cmd_env(args: argparse.Namespace, project_dir: Path) -> int:
    env = engine_env(project_dir, base={"PATH": os.environ.get("PATH", "")})
    for key in sorted(env):
        print(f"export {key}={shlex.quote(env[key])}")
    return 0
