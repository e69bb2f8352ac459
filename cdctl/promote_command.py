"""cdctl promote: deploy to master exactly what runs in develop (its image digest, version,
build, war sha256 and cd git id), never a rebuild; then the health gate judges it."""

from __future__ import annotations

import argparse
from pathlib import Path

from cdctl.engine_commands import confirm_or_yes, forced_note, run_change
from cdctl.console import warn
from cdctl.release_commands import forced_reason
from tomcat_cd.core import conventions
from tomcat_cd.core.diff import environment_differences, site_objects
from tomcat_cd.core.errors import Problem, printable, raise_if_any
from tomcat_cd.core.plan import build_plan
from tomcat_cd.core.settings import Build, StackSettings
from tomcat_cd.core.status import SiteStatus, promotion_problem
from tomcat_cd.driver.deploy import SiteChange, checked_deploy, who
from tomcat_cd.driver.pulumi_cli import PulumiCli
from tomcat_cd.driver.registry import Registry, RegistryError
from tomcat_cd.driver.status import stack_view


def _tested(project_dir: Path, args: argparse.Namespace) -> tuple[SiteStatus, PulumiCli]:
    """develop's running version of the domain, refused (exit 2) unless it may go on."""
    source = args.source
    cli = PulumiCli(project_dir, source)
    view = stack_view(project_dir, source, [args.domain], warn)
    row = next(r for r in view.rows if r.domain == args.domain)
    # The pins as the last successful update left them: what every Jenkins agent sees.
    pins = next((maps.pins for _, update, maps in reversed(view.entries) if update.get("result") == "succeeded"), {})
    problem = promotion_problem(row, pins.get(args.domain), args.version)
    if problem is not None:
        raise_if_any([Problem(f"stack {source}", args.domain, problem)])
    return row, cli


def _differences(project_dir: Path, source_cli: PulumiCli, row: SiteStatus, settings: StackSettings) -> list[str]:
    deployed = site_objects(source_cli.export(), row.domain).get(f"Deployment/{conventions.k8s_name(row.domain)}", {})
    plan = build_plan(settings, project_dir, row.git_id)
    target = next(s for s in plan.sites if s.domain == row.domain).deployment
    return [printable(f"  {path}: {old!r} in {row.environment} -> {new!r} in {settings.environment}")
            for path, old, new in environment_differences(deployed, target, row.environment,
                                                                    settings.environment)]


def _master_image(row: SiteStatus, settings: StackSettings, cli: PulumiCli) -> str | None:
    """master's tag of develop's digest, made in the registry (cluster mode with image builds),
    or None when the stack builds no images (render mode, or Jenkins' own image step)."""
    tag = conventions.image_tag(str(row.version), settings.environment, row.git_id)
    if not settings.build_images:
        return None
    if not row.digest:
        raise_if_any([Problem(f"stack {row.environment}", row.domain,
                              "its image was not pushed by digest (no image build there): nothing to promote by digest")])
    host = row.image.split("/", 1)[0]
    if host != settings.harbor_host:
        raise_if_any([Problem(f"Pulumi.{settings.stack}.yaml", "tomcat-cd:harborHost",
                              f"is {settings.harbor_host}, but {row.environment}'s image is in {host}: a promote "
                              "re-tags within one registry")])
    password = cli.secret("harborPassword") if settings.harbor_password_set else None
    try:
        return Registry(host, settings.harbor_username, password).tag(row.image, tag)
    except RegistryError as err:
        raise OSError(f"tagging {row.image} as {tag}: {err}") from None


def cmd_promote(args: argparse.Namespace, project_dir: Path) -> int:
    if args.source == args.to:
        raise_if_any([Problem("command line", "--to", f"must differ from --from ({args.source})")])
    if not conventions.is_valid_domain(args.domain):
        raise_if_any([Problem("command line", "DOMAIN", f"must be a domain such as test.gyyx.cn, got {args.domain!r}")])
    forced = forced_reason(args)
    row, source_cli = _tested(project_dir, args)
    settings, war_sha256 = checked_deploy(project_dir, args.to, args.domain, row.version, need_war=False)
    if settings.build_images is False and row.war_sha256 and war_sha256 and war_sha256 != row.war_sha256:
        raise_if_any([Problem(f"Pulumi.{args.to}.yaml", "tomcat-cd:warRoot",
                              f"the war of {row.version} there has sha256 {war_sha256[:12]}…, not the tested "
                              f"{row.war_sha256[:12]}…: it is not what {args.source} ran")])
    differences = _differences(project_dir, source_cli, row, settings)
    print(f"promote {args.domain} {row.version} from {args.source} to {args.to}: image {row.image or '(no digest)'}, "
          f"build {row.build_id or '-'}, git {row.git_id}, war sha256 {row.war_sha256[:12] or '-'}")
    print(f"{args.domain} differs between {args.source} and {args.to}:" if differences else
          f"{args.domain} is the same in {args.source} and {args.to} (but for namespace, node port and image tag)")
    for line in differences:
        print(line)
    confirm = confirm_or_yes(args)
    if confirm is not None and not confirm():
        print("cancelled: nothing was changed")
        return 0
    args.yes = True  # asked once, above
    args.env = args.to
    target_cli = PulumiCli(project_dir, args.to)
    pushed = _master_image(row, settings, target_cli)
    by = who()
    build = Build(row.build_id, row.git_id, by, row.war_sha256 or war_sha256)
    message = (f"promote {args.domain} {row.version} from {args.source} (update {row.update}) build "
               f"{row.build_id or '-'} git {row.git_id} digest {row.digest or '-'} by {by}{forced_note(forced)}")
    return run_change(args, project_dir, settings, SiteChange(args.domain, row.version, build, message,
                                                              forced=forced, action="promote", pushed=pushed),
                      gate=True)
