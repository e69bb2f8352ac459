"""Deploy, delete and roll back one domain through Pulumi's Automation API.

One deploy is: check everything (nothing changes if a check fails), take the
environment's lock, record the version and build in the stack config, preview,
then update only that site's resources. A failed step restores the config it
changed and names itself.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from pulumi import automation as auto
from pulumi.automation._cmd import CommandResult

from components.tomcat_site import site_urns
from tomcat_cd.core import conventions
from tomcat_cd.driver.engine import TARGETED_SITE_ENV, engine_env, engine_paths, pulumi_command
from tomcat_cd.core.errors import Problem, raise_if_any
from tomcat_cd.core.history import chronological
from tomcat_cd.core.plan import build_plan
from tomcat_cd.core.settings import Build, StackSettings, load_stack_file, user_id
from tomcat_cd.core.checkout import cd_git_id

LOCK_RETRIES = 30


def _differences(old, new, path: str, depth: int = 3) -> list[str]:
    """Paths (to `depth` levels) where two JSON values differ."""
    if old == new:
        return []
    if depth == 0 or not (isinstance(old, dict) and isinstance(new, dict)):
        if isinstance(old, list) and isinstance(new, list) and len(old) == len(new) and depth:
            return [p for i, (a, b) in enumerate(zip(old, new, strict=True)) for p in _differences(a, b, f"{path}[{i}]", depth - 1)]
        return [path]
    return [p for key in sorted(set(old) | set(new))
            for p in _differences(old.get(key), new.get(key), f"{path}.{key}", depth - 1)]


class Cancelled(Exception):
    """The person at the terminal said no after the preview."""


class StepFailed(Exception):
    """A deploy step failed after the checks passed; the message names the step."""

    def __init__(self, step: str, detail: str):
        self.step = step
        super().__init__(f"step '{step}' failed: {detail}")


def _last_error_line(err: Exception) -> str:
    """The engine's last `error: ...` line (the Automation API wraps it in code/stdout/stderr)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    errors = [line[line.index("error:"):] for line in lines if "error:" in line]
    # The engine closes with generic lines; the resource's own error says what happened.
    specific = [e for e in errors if not re.search(r"error: (update failed|Resource monitor has terminated)", e)]
    detail = (specific or errors or lines or ["unknown error"])[-1]
    conflict = [line for line in lines if "had an apply conflict" in line]
    return f"{detail} {conflict[-1]}" if conflict else detail


@dataclass
class Deployer:
    """Drives one stack of one checkout; `out` receives every progress line."""

    project_dir: Path
    stack_name: str
    out: Callable[[str], None] = print
    color: str = field(default_factory=lambda: "always" if sys.stdout.isatty() else "never")

    def _workspace_options(self) -> auto.LocalWorkspaceOptions:
        env = engine_env(self.project_dir)
        bin_dir, _ = engine_paths(self.project_dir)
        return auto.LocalWorkspaceOptions(
            work_dir=str(self.project_dir), pulumi_home=env["PULUMI_HOME"], env_vars=env,
            pulumi_command=auto.PulumiCommand(root=str(bin_dir.parent), skip_version_check=True))

    def stack(self) -> auto.Stack:
        return auto.create_or_select_stack(self.stack_name, work_dir=str(self.project_dir),
                                           opts=self._workspace_options())

    def existing_stack(self) -> auto.Stack:
        try:
            return auto.select_stack(self.stack_name, work_dir=str(self.project_dir), opts=self._workspace_options())
        except auto.StackNotFoundError:
            raise_if_any([Problem(f"stack {self.stack_name}", "", "has no update history yet (never deployed)")])

    @contextmanager
    def lock(self) -> Iterator[None]:
        """One change per environment at a time, across processes of this checkout.

        Pulumi's own stack lock guards the state, but not the stack config file that
        a deploy edits before its update: without this, two deploys could lose one."""
        folder = self.project_dir / ".state" / "locks"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"{self.stack_name}.lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self.out(f"waiting: another cdctl is changing stack {self.stack_name} ...")
                fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    @staticmethod
    def _config_map(config: auto.ConfigMap, key: str) -> dict:
        value = config.get(f"{conventions.PROJECT}:{key}")
        return json.loads(value.value) if value and value.value else {}

    def change_site(self, domain: str, version: str | None, build: Build | None, message: str,
                    confirm: Callable[[], bool] | None = None, build_images: bool = False,
                    refresh: bool = False) -> int:
        """Set (or remove, with version None) the domain's version and build, then update
        that site only; returns the update's number. With `refresh` (a real cluster) the
        site's live objects are read first, so a hand-made change is put back. Restores
        the stack config if any step fails or is cancelled."""
        with self.lock():
            stack = self._step("select stack", self.stack)
            # One read of the config (a CLI call, slower the more sites) serves both the
            # record of what to restore and the change itself.
            config = self._step("read config", stack.get_all_config)
            before = (self._config_map(config, "versions").get(domain), self._config_map(config, "builds").get(domain))
            after = (version, build.to_config() if build and version else None)
            self._step("set config", lambda: self._set_site(stack, domain, *after, config=config))
            try:
                targets = self._targets(stack, domain, version is not None, build_images)
                with self._targeted(stack, domain if targets is not None else None):
                    # At a terminal: preview, then ask. With --yes the update itself prints every
                    # change in full (diff=True), so the program runs once, not twice.
                    if confirm is not None:
                        self._step("preview", lambda: stack.preview(target=targets, diff=True, color=self.color,
                                                                    on_output=self.out, message=message,
                                                                    refresh=refresh or None))
                        if not confirm():
                            raise Cancelled()
                    self._step("update", lambda: self._up(stack, targets, message, refresh))
                return chronological(stack.history(show_secrets=False))[-1][0]
            except BaseException:
                self._set_site(stack, domain, *before)
                self.out(f"restored the stack config of {self.stack_name}")
                raise

    def drift(self, domain: str) -> list[tuple[str, str, list[str]]]:
        """(resource, change, spec paths) for each of the site's resources whose live object
        differs from the last update: a dry-run refresh targeted at the site, comparing the
        `spec` Pulumi recorded with the one on the cluster (status always moves; spec is
        what a person changes)."""
        stack = self.existing_stack()
        project = stack.workspace.project_settings().name
        targets = site_urns(self.stack_name, project, conventions.k8s_name(domain))
        existing = {r.get("urn") for r in (stack.export_stack().deployment or {}).get("resources", [])}
        found: dict[str, tuple[str, str, list[str]]] = {}

        def collect(event: auto.EngineEvent) -> None:
            # A refresh reports each resource as read; those whose live object moved come
            # back as an update (or a delete when the object is gone).
            step = event.res_outputs_event
            if step is None or step.metadata.op not in (auto.OpType.UPDATE, auto.OpType.DELETE):
                return
            name = step.metadata.urn.rsplit("::", 1)[-1]
            old = (step.metadata.old.outputs if step.metadata.old else None) or {}
            new = (step.metadata.new.outputs if step.metadata.new else None) or {}
            if step.metadata.op == auto.OpType.DELETE or not new:
                found[name] = (name, "deleted", [])
            elif old.get("spec") != new.get("spec"):
                found[name] = (name, "changed", _differences(old.get("spec"), new.get("spec"), "spec"))

        self._step("refresh preview", lambda: stack.preview_refresh(
            target=[u for u in targets if u in existing], on_event=collect, color=self.color))
        return sorted(found.values())

    def _set_site(self, stack: auto.Stack, domain: str, version: str | None, build: dict | None,
                  config: auto.ConfigMap | None = None) -> None:
        """Write one domain's entries of the versions and builds maps (None removes them),
        in one CLI call that keeps every value a string (the Automation API's set_config
        would store a version like 1.10 as a number). An emptied map is removed. `config`:
        the stack's config as just read (read here when not given, as when restoring)."""
        config = config if config is not None else stack.get_all_config()
        payload, emptied = {}, []
        for key, value in (("versions", version), ("builds", build)):
            full_key = f"{conventions.PROJECT}:{key}"
            entries = self._config_map(config, key)
            entries.pop(domain, None)
            if value:
                entries[domain] = value
            if entries:
                entries = dict(sorted(entries.items()))
                payload[full_key] = {"value": json.dumps(entries), "objectValue": entries, "secret": False}
            elif full_key in config:
                emptied.append(full_key)
        if payload:
            self._pulumi("config", "set-all", "--json", json.dumps(payload))
        for full_key in emptied:
            self._pulumi("config", "rm", full_key)

    def _pulumi(self, *args: str) -> None:
        done = subprocess.run([pulumi_command(self.project_dir), *args, "--stack", self.stack_name],
                              cwd=self.project_dir, env=engine_env(self.project_dir), capture_output=True, text=True)
        if done.returncode != 0:
            raise StepFailed("set config", _last_error_line(RuntimeError(done.stderr or done.stdout)))

    def _targets(self, stack: auto.Stack, domain: str, deployed: bool, build_images: bool) -> list[str] | None:
        """The site's URNs that exist now or will after the update, or None (a full
        update) on the stack's first update."""
        project = stack.workspace.project_settings().name
        name = conventions.k8s_name(domain)
        if deployed:
            # Every URN the update registers for the site, known without reading the state
            # (a whole-state export costs ~1 s with 200 sites). An image resource left from
            # a time with buildImages on stays as it is while buildImages is off.
            if not stack.history(page_size=1, show_secrets=False):
                self.out(f"first update of stack {self.stack_name}: updating everything")
                return None
            return site_urns(self.stack_name, project, name, build_images)
        # A delete can target only what exists.
        resources = (stack.export_stack().deployment or {}).get("resources", [])
        if not resources:
            self.out(f"first update of stack {self.stack_name}: updating everything")
            return None
        existing = {r.get("urn") for r in resources}
        return [urn for urn in site_urns(self.stack_name, project, name) if urn in existing]

    @staticmethod
    @contextmanager
    def _targeted(stack: auto.Stack, domain: str | None) -> Iterator[None]:
        """Tell the program which one site a targeted update is for (TARGETED_SITE_ENV)."""
        env = stack.workspace.env_vars
        if domain is not None:
            env[TARGETED_SITE_ENV] = domain
        try:
            yield
        finally:
            env.pop(TARGETED_SITE_ENV, None)

    def _up(self, stack: auto.Stack, targets: list[str] | None, message: str, refresh: bool) -> None:
        for attempt in range(LOCK_RETRIES):
            try:
                return self._run_up(stack, targets, message, refresh)
            except auto.ConcurrentUpdateError:
                self.out(f"stack {self.stack_name} is locked by another update; retrying ({attempt + 1}/{LOCK_RETRIES})")
                time.sleep(2)
        raise StepFailed("update", f"stack {self.stack_name} stayed locked")

    def _run_up(self, stack: auto.Stack, targets: list[str] | None, message: str, refresh: bool) -> None:
        """`pulumi up`, its output streamed to `out`. Not the Automation API's `up`: that
        also reads the stack's outputs and summary back, two more loads of the whole state."""
        command = [pulumi_command(self.project_dir), "up", "--yes", "--skip-preview", "--diff",
                   "--stack", self.stack_name, "--message", message, f"--color={self.color}"]
        command += [f"--target={urn}" for urn in targets or []] + (["--refresh"] if refresh else [])
        process = subprocess.Popen(command, cwd=self.project_dir, env=dict(stack.workspace.env_vars),
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines = []
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            self.out(lines[-1])
        code = process.wait()
        if code != 0:
            result = CommandResult(stdout="\n".join(lines), stderr="\n".join(lines[-20:]), code=code)
            locked = any(text in result.stdout for text in ("the stack is currently locked by", "[409] Conflict"))
            raise auto.ConcurrentUpdateError(result) if locked else auto.errors.CommandError(result)

    def _step(self, name: str, action):
        try:
            return action()
        except (StepFailed, auto.errors.CommandError) as err:
            if isinstance(err, StepFailed):
                raise
            raise StepFailed(name, _last_error_line(err)) from err


def checked_settings(project_dir: Path, stack: str, domain: str, version: str | None) -> StackSettings:
    """Everything a deploy needs, checked before anything changes (ConfigError: exit 2)."""
    overrides = {domain: version} if version is not None else None
    settings = load_stack_file(project_dir, stack, overrides)
    plan = build_plan(settings, project_dir, cd_git_id(project_dir))
    if version is not None:
        site = next(s for s in plan.sites if s.domain == domain)
        if not site.build.war_present():
            raise_if_any([Problem(f"Pulumi.{stack}.yaml", f'tomcat-cd:versions["{domain}"]',
                                  f"war not found: {site.build.war_source}")])
    return settings


def who() -> str:
    """Who deploys: Jenkins' BUILD_USER_ID, else the login; cleaned to a plain id."""
    return user_id(os.environ.get("BUILD_USER_ID") or os.environ.get("USER") or getpass.getuser())
