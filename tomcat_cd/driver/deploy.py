"""Deploy, delete and roll back one domain: the steps, in the order that keeps them safe.

One change is: check everything (nothing changes if a check fails), take the environment's
lock, read what runs from the backend, write it with the domain's new entry into the
checkout's stack file, then update that site's resources alone. Any failure, refusal or
interruption puts the stack file back to what runs and names the step.
"""

from __future__ import annotations

import getpass
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tomcat_cd.core.checkout import cd_git_id
from tomcat_cd.core.errors import Problem, raise_if_any
from tomcat_cd.core import conventions
from tomcat_cd.core.plan import build_plan, pushed_image
from tomcat_cd.core.settings import Build, Pin, SiteMaps, StackSettings, load_stack_file, user_id
from tomcat_cd.core.urns import StackNames
from tomcat_cd.driver import update
from tomcat_cd.driver.locking import environment_lock
from tomcat_cd.driver.pulumi_cli import EngineError, PulumiCli, urns_of
from tomcat_cd.driver.record import Running, pushed_in_state, sync_checkout, write_checkout


class Cancelled(Exception):
    """The person at the terminal said no after the preview."""


@dataclass(frozen=True)
class SiteChange:
    """One domain's new entry in the stack (version None: removed)."""

    domain: str
    version: str | None
    build: Build | None
    message: str
    pin_change: tuple[str, Pin | None] | None = None
    """(key, pin) to set with the change; (key, None) lifts that pin. The key is the domain,
    or `*` for the whole environment (a freeze)."""
    forced: str | None = None
    """A reason to go past the domain's pin or the environment's freeze (`--force --reason`)."""
    record_only: bool = False
    """The change touches the record alone (a pin): no resource of the site is updated."""
    action: str = "deploy"
    """What the change is, as its marker and notification name it: deploy, rollback, promote,
    delete, or pin for a change of the record alone."""
    pushed: str | None = None
    """`<tag>@<digest>` that the record takes before the update: a promote deploys that image."""


@dataclass(frozen=True)
class Applied:
    """A change made: the number of the update that made it, and the record it replaced."""

    number: int
    before: SiteMaps


@dataclass
class Deployer:
    """Changes one site of one stack; `out` receives every progress line."""

    project_dir: Path
    stack_name: str
    out: Callable[[str], None] = print

    def cli(self) -> PulumiCli:
        return PulumiCli(self.project_dir, self.stack_name)

    def change_site(self, change: SiteChange, settings: StackSettings,
                    confirm: Callable[[], bool] | None = None, refresh: bool = False) -> int:
        """Apply the change; returns the number of the update that made it."""
        return self.apply(change, settings, confirm, refresh).number

    def apply(self, change: SiteChange, settings: StackSettings,
              confirm: Callable[[], bool] | None = None, refresh: bool = False) -> Applied:
        """Apply the change, refused (ConfigError) when a pin or a freeze holds the domain."""
        cli = self.cli()
        with environment_lock(self.project_dir, self.stack_name, cli.env["PULUMI_BACKEND_URL"], self.out):
            cli.select(create=True)
            # The state, read once when needed: which URNs a refresh may name, whether the last
            # build's Image is there, and the digests builds pushed.
            state = cli.export() if refresh or settings.build_images else {}
            running = sync_checkout(cli, self.out, pushed_in_state(state) if settings.build_images else None)
            maps = self._new_record(change, running.maps)
            plan = _Plan(self.stack_name, change, settings, refresh, frozenset(urns_of(state)))
            updates = self._updates(cli, plan, running)
            write_checkout(cli, maps)
            try:
                if confirm is not None:
                    for planned in updates:
                        update.run(cli, planned, self.out, preview=True)
                    if not confirm():
                        raise Cancelled()
                for planned in updates:
                    self._run(cli, plan, planned)
            except BaseException:
                write_checkout(cli, running.maps)
                self.out(f"restored the checkout's stack config of {self.stack_name} to what runs")
                raise
            return Applied(cli.update_count(), running.maps)

    def _new_record(self, change: SiteChange, maps: SiteMaps) -> SiteMaps:
        """What runs with the change made; refused when a pin or a freeze holds the domain. A
        forced deploy lifts the domain's own pin (a freeze stays)."""
        held = maps.holds(change.domain)
        if not change.record_only:
            if held and change.forced is None:
                key, pin = held
                what = f"{change.domain} is {pin.describe()}" if key == change.domain else \
                    f"{self.stack_name} is frozen by {pin.by} at {pin.at}: {pin.reason}"
                raise_if_any([Problem(f"stack {self.stack_name}", f'tomcat-cd:pins["{key}"]',
                                      f"{what}; to go past it: --force --reason TEXT"
                                      + (f", or cdctl unpin {change.domain} --env {self.stack_name}"
                                         if key == change.domain else f", or cdctl unfreeze --env {self.stack_name}"))])
            maps = maps.with_site(change.domain, change.version, change.build)
            if change.pushed is not None:
                maps = maps.with_pushed({change.domain: change.pushed})
            if held and held[0] == change.domain:
                maps = maps.with_pin(change.domain, None)
        if change.pin_change is not None:
            maps = maps.with_pin(*change.pin_change)
        return maps

    @staticmethod
    def _with_image(cli: PulumiCli, plan: "_Plan", running: Running) -> bool:
        """Whether the update targets the site's Image: it builds (a version the record has no
        digest of), or the state still holds the last build's Image, which a version deployed
        by its recorded digest drops (retained: the pushed image stays in Harbor)."""
        if not plan.settings.build_images:
            return False
        change, settings = plan.change, plan.settings
        git_id = change.build.git_id if change.build else cd_git_id(cli.project_dir)
        tag = conventions.image_ref(settings.harbor_host, change.domain, str(change.version),
                                    settings.environment, git_id)
        recorded = running.maps.images.get(change.domain, ()) + ((change.pushed,) if change.pushed else ())
        if pushed_image(recorded, tag) is None:
            return True
        return plan.names.site_child(change.domain, "image") in plan.existing

    def _run(self, cli: PulumiCli, plan: "_Plan", planned: update.TargetedUpdate) -> None:
        """The update; if Pulumi names a dependency of the site that the state lacks although
        the record said it was there (made or removed by hand), that is made first, once."""
        try:
            update.run(cli, planned, self.out)
        except EngineError as err:
            missing = [urn for urn in plan.environment if urn not in cli.resource_urns()]
            if "not specified in --target list" not in err.detail or not planned.only_site or not missing:
                raise
            self.out(f"the state lacks {', '.join(u.rsplit('::', 1)[-1] for u in missing)}: making it first")
            update.run(cli, plan.of_environment(missing), self.out)
            update.run(cli, planned, self.out)

    def _updates(self, cli: PulumiCli, plan: "_Plan", running: Running) -> list[update.TargetedUpdate]:
        """The targeted updates that make the change, in order; each has targets.

        - What the site depends on and the last successful update did not have (the namespace
          on a stack's first deploy, the pull secret once Harbor's credentials are set) comes
          first, in an update of the environment alone.
        - Then the site's own URNs: those it will have (a deploy) or has (a delete).
        - A domain in the record with nothing left in the state is removed from the record
          by an update of the environment that changes nothing."""
        change = plan.change
        if change.record_only:
            return [plan.of_environment(plan.environment)]
        missing = plan.environment if running.update is None else (
            plan.environment[-1:] if plan.pull_secret and not running.had_config("harborUsername", "harborPassword")
            else [])
        updates = [plan.of_environment(missing)] if missing else []
        if change.version is not None:
            return updates + [plan.of_site(plan.names.site(change.domain, self._with_image(cli, plan, running)))]
        # A delete targets what exists of the site: the state says what that is.
        existing = cli.resource_urns()
        site = [urn for urn in plan.names.site(change.domain) if urn in existing]
        if site:
            return updates + [plan.of_site(site)]
        if change.domain not in running.maps.versions:
            raise_if_any([Problem(f"Pulumi.{self.stack_name}.yaml", f'tomcat-cd:versions["{change.domain}"]',
                                  f"{change.domain} is not deployed in {self.stack_name} (nothing of it in "
                                  "the state, nor in the last successful update): nothing to delete")])
        self.out(f"{change.domain} has no resources left in {self.stack_name}: removing it from the record only")
        return updates or [plan.of_environment(plan.environment)]


@dataclass(frozen=True)
class _Plan:
    """One change's names: the stack's URNs and how its updates are made."""

    stack: str
    change: SiteChange
    settings: StackSettings
    refresh: bool
    existing: frozenset[str] = frozenset()
    """The state's URNs (read when refreshing or building images). Pulumi refuses to refresh
    a target the state lacks (a site's first deploy, or its first image build): such an
    update refreshes nothing, the others refresh."""

    @property
    def names(self) -> StackNames:
        return StackNames(self.stack)

    @property
    def pull_secret(self) -> bool:
        return self.settings.pull_secret_name is not None

    @property
    def environment(self) -> list[str]:
        return self.names.environment(self.settings.environment, self.pull_secret)

    def _refresh(self, targets: list[str]) -> bool:
        return self.refresh and set(targets) <= self.existing

    def of_site(self, targets: list[str]) -> update.TargetedUpdate:
        return update.TargetedUpdate(self.change.domain, tuple(targets), self.change.message, self._refresh(targets))

    def of_environment(self, targets: list[str]) -> update.TargetedUpdate:
        return update.TargetedUpdate(self.change.domain, tuple(targets),
                                     f"{self.change.message} (environment {self.settings.environment})",
                                     self._refresh(targets), only_site=False)


def checked_settings(project_dir: Path, stack: str, domain: str, version: str | None) -> StackSettings:
    """Everything a deploy needs, checked before anything changes (ConfigError: exit 2)."""
    return checked_deploy(project_dir, stack, domain, version)[0]


def checked_deploy(project_dir: Path, stack: str, domain: str, version: str | None,
                   need_war: bool = True) -> tuple[StackSettings, str]:
    """The checked settings and the sha256 of the version's war ("" without a version, or
    when `need_war` is off and the war is not there: a promote deploys a pushed image)."""
    overrides = {domain: version} if version is not None else None
    settings = load_stack_file(project_dir, stack, overrides)
    plan = build_plan(settings, project_dir, cd_git_id(project_dir))
    if version is None:
        return settings, ""
    war = Path(next(s for s in plan.sites if s.domain == domain).build.war_source)
    if not war.is_file():
        if not need_war:
            return settings, ""
        raise_if_any([Problem(f"Pulumi.{stack}.yaml", f'tomcat-cd:versions["{domain}"]', f"war not found: {war}")])
    return settings, file_sha256(war)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def who() -> str:
    """Who deploys: Jenkins' BUILD_USER_ID, else the login; cleaned to a plain id."""
    return user_id(os.environ.get("BUILD_USER_ID") or os.environ.get("USER") or getpass.getuser())

