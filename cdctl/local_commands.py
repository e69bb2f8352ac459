"""`cdctl check`, `render` and `schema`: the commands that need neither the engine nor a cluster.

Their own module, imported when one of them runs: the domain-file schema, the plans and the
renderers they load (0.1-0.2 s) are no part of `cdctl --help`, `history` or `status`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tomcat_cd.core import conventions, domain_file
from tomcat_cd.core.checkout import cd_git_id
from tomcat_cd.core.errors import Problem, raise_if_any
from tomcat_cd.core.model import load_sites
from tomcat_cd.core.plan import build_plan
from tomcat_cd.core.platform_plan import build_platform_plan
from tomcat_cd.core.platform_settings import SECRET_KEYS, is_platform, parse_platform_settings
from tomcat_cd.core.render import write_platform, write_plan
from tomcat_cd.core.settings import load_stack_file, read_stack_values
from tomcat_cd.core.stack_file import VERSION


def parse_version_overrides(items: list[str]) -> dict[str, str]:
    problems, versions = [], {}
    for item in items:
        domain, sep, version = item.partition("=")
        if not sep or not conventions.is_valid_domain(domain) or not VERSION.fullmatch(version):
            problems.append(Problem("command line", "--version",
                                    f"must be DOMAIN=VERSION such as test.gyyx.cn=v1.2.0, got {item!r}"))
        else:
            versions[domain] = version
    raise_if_any(problems)
    return versions


def cmd_check(args: argparse.Namespace, project_dir: Path) -> int:
    domains = Path(args.domains) if args.domains else project_dir / "domains"
    sites = load_sites(domains, relative_to=project_dir)
    for stack in args.stack:
        source, values = read_stack_values(project_dir, stack)
        if is_platform(stack, values):
            parse_platform_settings(stack, values, source)
        else:
            load_stack_file(project_dir, stack, domains_dir=args.domains)
    print(f"ok: {len(sites)} domain file(s) in {domains}" + (f", stack(s) {', '.join(args.stack)}" if args.stack else ""))
    return 0


def cmd_render(args: argparse.Namespace, project_dir: Path) -> int:
    source, values = read_stack_values(project_dir, args.stack)
    if is_platform(args.stack, values):
        return render_platform(args, project_dir, source, values)
    overrides = parse_version_overrides(args.version)
    settings = load_stack_file(project_dir, args.stack, overrides, args.domains)
    plan = build_plan(settings, project_dir, cd_git_id(project_dir))
    for problem in plan.missing_war_problems():
        print(f"warning: {problem} (render goes on; a deploy refuses it)", file=sys.stderr)
    out = Path(args.out)
    written = write_plan(plan, out)
    print(f"rendered stack {settings.stack} (environment {settings.environment}): "
          f"{len(written)} Kubernetes object(s), {len(plan.sites)} build context(s) in {out}")
    for site in plan.sites:
        print(f"  {site.domain:<32} {site.version:<12} nodePort {site.site.node_port(settings.environment)}  {site.image}")
    return 0


def render_platform(args: argparse.Namespace, project_dir: Path, source: str, values: dict[str, Any]) -> int:
    if args.version:
        raise_if_any([Problem("command line", "--version", "the platform stack deploys no site versions")])
    if args.domains:
        values = {**values, "domainsDir": args.domains}
    settings = parse_platform_settings(args.stack, values, source)
    plan = build_platform_plan(settings, project_dir)
    for key in sorted(SECRET_KEYS - settings.passwords_set):
        print(f"warning: {source}: tomcat-cd:{key}: not set; rendered as a placeholder "
              "(a cluster deploy refuses it)", file=sys.stderr)
    out = Path(args.out)
    written = write_platform(plan, out)
    print(f"rendered stack {settings.stack} (platform): {len(written)} Kubernetes object(s), "
          f"{len(plan.files)} config file(s) in {out}")
    if plan.steps:
        hosts = sorted({step.host.name for step in plan.steps})
        print(f"  host scripts: {len(plan.steps)} step(s) on {len(hosts)} host(s), in order in {out}/hosts/ORDER.txt"
              + ("" if settings.bootstrap else " (tomcat-cd:bootstrap is off: pulumi up runs none of them)"))
    print(f"  Kibana data views: {', '.join(f'{d}-*' for d in plan.domains) or 'none'}")
    print(f"  Kibana nodePort {settings.kibana_node_port}" +
          (f", Weave Scope nodePort {settings.weave_scope_node_port}" if settings.weave_scope else ", Weave Scope off"))
    return 0


def cmd_schema(args: argparse.Namespace, project_dir: Path) -> int:
    print(json.dumps(domain_file.json_schema(), indent=2, sort_keys=True))
    return 0
