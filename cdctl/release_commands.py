"""cdctl's release safety: the health gate after a deploy, the automatic rollback of a domain
whose gate failed, and pins and freezes (pin, unpin, freeze, unfreeze)."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from cdctl.console import warn
from tomcat_cd.core import conventions
from tomcat_cd.core.errors import Problem, raise_if_any
from tomcat_cd.core.gate import VERDICT_INTERRUPTED, Verdict
from tomcat_cd.core.model import Site, load_sites
from tomcat_cd.core.settings import Build, Pin, SiteMaps, StackSettings
from tomcat_cd.core.stack_file import FREEZE_KEY, PIN_REASON
from tomcat_cd.core.history import site_maps_of
from tomcat_cd.driver.deploy import Applied, Deployer, SiteChange, checked_settings, who
from tomcat_cd.driver.elastic import ElasticClient
from tomcat_cd.driver.events import announce, announce_gate
from tomcat_cd.driver.gate import GateTarget, GateWatch
from tomcat_cd.driver.kube import KubeError, KubeReader
from tomcat_cd.driver.pulumi_cli import EngineError, PulumiCli
from tomcat_cd.driver.rollout import confirm_rollout
from tomcat_cd.driver.update import Interrupted, signals_interrupt

# The gate failed and the domain was rolled back (or had nothing to go back to): Jenkins
# maps it to a failed build (jenkins/Jenkinsfile).
GATE_FAILED = 4
EXIT_SIGNALLED = 128  # + the signal's number, as a shell reports a process it stopped


def now_utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def reason_text(reason: str | None, where: str = "--reason") -> str:
    text = (reason or "").strip()
    if not PIN_REASON.fullmatch(text):
        raise_if_any([Problem("command line", where, "must say why, in one line of at most 500 characters")])
    return text


def site_of(project_dir: Path, settings: StackSettings, domain: str) -> Site:
    return next(s for s in load_sites(project_dir / settings.domains_dir, project_dir) if s.domain == domain)


def stack_gates(settings: StackSettings) -> bool:
    return settings.target == "cluster" and settings.health_gate


def watcher(cli: PulumiCli, settings: StackSettings, out: Callable[[str], None]) -> GateWatch:
    """The gate's readers; one that cannot be made is None, and its checks fail saying why."""
    try:
        kube: KubeReader | None = KubeReader.from_kubeconfig(settings.kubeconfig)
    except KubeError as err:
        out(f"gate: cannot reach the API server: {err}")
        kube = None
    elastic = None
    if settings.elasticsearch_url:
        password = cli.secret("elasticsearchPassword") if settings.elasticsearch_password_set else None
        elastic = ElasticClient(settings.elasticsearch_url, settings.elasticsearch_username, password)
    return GateWatch(kube, elastic, out)


def health_url(settings: StackSettings, site: Site, kube: KubeReader | None) -> str | None:
    if not site.gate.runs("health"):
        return None
    host = settings.node_address
    if host is None and kube is not None:
        try:
            host = kube.first_node_address()
        except KubeError:
            host = None
    return f"http://{host}:{site.node_port(settings.environment)}{site.probe.path}" if host else None


def run_gate(cli: PulumiCli, settings: StackSettings, site: Site, version: str, deploy_started: float,
             out: Callable[[str], None] = print) -> Verdict:
    watch = watcher(cli, settings, out)
    target = GateTarget(site.domain, version, settings.environment, settings.namespace, site.gate,
                        health_url(settings, site, watch.kube))
    return watch.run(target, deploy_started)


def rollout_problem(settings: StackSettings, change: SiteChange) -> str | None:
    """Why the site's rollout did not complete, once it is over; None when it did (waiting
    for it as long as it goes on), or when the change put no version on a cluster."""
    if settings.target != "cluster" or change.version is None or change.record_only:
        return None
    with signals_interrupt():
        return confirm_rollout(settings.kubeconfig, settings.namespace, change.domain)


def rollout_status_command(settings: StackSettings, domain: str) -> str:
    return f"kubectl rollout status deployment/{conventions.k8s_name(domain)} -n {settings.namespace}"


def gate_after_deploy(project_dir: Path, settings: StackSettings, change: SiteChange, applied: Applied,
                      deploy_started: float, refresh: bool) -> int:
    """The gate's verdict on the version just deployed; a failure rolls the domain back to what
    ran before (its version, build and pushed image), pinned there, and exits GATE_FAILED."""
    assert change.version is not None
    if not stack_gates(settings):
        return 0
    site = site_of(project_dir, settings, change.domain)
    if not site.gate.enabled:
        return 0
    cli = PulumiCli(project_dir, settings.stack)
    try:
        with signals_interrupt():
            verdict = run_gate(cli, settings, site, change.version, deploy_started)
    except Interrupted as err:
        # The version stays, unjudged: its marker says so, and promote refuses it.
        print(f"\ngate {err}: {change.domain} runs {change.version} without a verdict (update "
              f"{applied.number}); cdctl promote refuses it until a deploy's gate passes", file=sys.stderr)
        announce_gate(cli, settings, change, applied.number, VERDICT_INTERRUPTED, f"{err} in its window", warn)
        return EXIT_SIGNALLED + err.signum
    print(verdict.line(change.domain, change.version))
    announce_gate(cli, settings, change, applied.number, verdict.result,
                  "; ".join(map(str, verdict.results)), warn)
    if verdict.passed:
        return 0
    previous, build = applied.before.site(change.domain)
    if previous is None or previous == change.version:
        print(f"error: {change.domain} had no earlier version in {settings.stack} to roll back to: "
              f"{change.version} stays; fix it and deploy again, or cdctl delete", file=sys.stderr)
        return GATE_FAILED
    rollback = gate_rollback(change, applied, build, previous, verdict)
    print(f"rolling {change.domain} back to {previous} (update {applied.number} failed its gate)")
    try:
        number = Deployer(project_dir, settings.stack).change_site(
            rollback, checked_settings(project_dir, settings.stack, change.domain, previous), refresh=refresh)
    except EngineError as err:
        print(f"error: the rollback failed: {err}; {change.domain} runs {change.version}, whose gate failed: "
              f"cdctl rollback {change.domain} --env {settings.stack} --yes", file=sys.stderr)
        return GATE_FAILED
    try:
        incomplete = rollout_problem(settings, rollback)
    except Interrupted as err:
        incomplete = f"{err} while waiting for it ({rollout_status_command(settings, change.domain)})"
    announce(cli, settings, rollback, "failed" if incomplete else "succeeded", number, warn, verdict.reason())
    pinned = f"{change.domain} is pinned at {previous}: cdctl unpin {change.domain} --env {settings.stack} when the fix is ready"
    if incomplete:
        print(f"error: the rollback to {previous} (update {number}) did not complete its rollout: {incomplete}; "
              f"{pinned}", file=sys.stderr)
    else:
        print(f"done: {rollback.message} (update {number} of stack {settings.stack}); {pinned}", file=sys.stderr)
    return GATE_FAILED


def gate_rollback(change: SiteChange, applied: Applied, build: Build | None, previous: str, verdict: Verdict) -> SiteChange:
    by = who()
    why = f"gate failed for {change.version} in update {applied.number}: {verdict.reason()}"[:500]
    kept = Build(build.build_id, build.git_id, by, build.war_sha256) if build else None
    message = (f"rollback {change.domain} to {previous} build {kept.build_id if kept and kept.build_id else '-'} "
               f"git {kept.git_id if kept else '-'} ({why}) by {by}")
    pin = Pin(by, now_utc(), why, previous, change.version, applied.number)
    return SiteChange(change.domain, previous, kept, message, pin_change=(change.domain, pin), forced="gate rollback",
                      action="rollback")


def _record_change(args: argparse.Namespace, project_dir: Path, key: str, pin: Pin | None, message: str) -> int:
    settings = checked_settings(project_dir, args.env, key, None)
    change = SiteChange(key, None, None, message, pin_change=(key, pin), record_only=True)
    try:
        number = Deployer(project_dir, args.env).change_site(change, settings)
    except EngineError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"done: {message} (update {number} of stack {args.env})")
    return 0


def _running(args: argparse.Namespace, project_dir: Path) -> SiteMaps:
    cli = PulumiCli(project_dir, args.env)
    newest = cli.newest_succeeded() if cli.exists() else None
    return site_maps_of(newest) if newest else SiteMaps()


def cmd_pin(args: argparse.Namespace, project_dir: Path) -> int:
    reason = reason_text(args.reason)
    running = _running(args, project_dir)
    version = running.versions.get(args.domain)
    if version is None:
        raise_if_any([Problem(f"stack {args.env}", args.domain, "is not deployed there: nothing to pin")])
    by = who()
    return _record_change(args, project_dir, args.domain, Pin(by, now_utc(), reason, version),
                          f"pin {args.domain} at {version} by {by}: {reason}")


def cmd_unpin(args: argparse.Namespace, project_dir: Path) -> int:
    if args.domain not in _running(args, project_dir).pins:
        raise_if_any([Problem(f"stack {args.env}", args.domain, "is not pinned there")])
    return _record_change(args, project_dir, args.domain, None, f"unpin {args.domain} by {who()}")


def cmd_freeze(args: argparse.Namespace, project_dir: Path) -> int:
    reason = reason_text(args.reason)
    by = who()
    return _record_change(args, project_dir, FREEZE_KEY, Pin(by, now_utc(), reason),
                          f"freeze {args.env} by {by}: {reason}")


def cmd_unfreeze(args: argparse.Namespace, project_dir: Path) -> int:
    if FREEZE_KEY not in _running(args, project_dir).pins:
        raise_if_any([Problem(f"stack {args.env}", "", "is not frozen")])
    return _record_change(args, project_dir, FREEZE_KEY, None, f"unfreeze {args.env} by {who()}")


def forced_reason(args: argparse.Namespace) -> str | None:
    """--force's reason, None without --force; --reason alone is refused."""
    if not args.force:
        if args.reason is not None:
            raise_if_any([Problem("command line", "--reason", "goes with --force")])
        return None
    return reason_text(args.reason)
