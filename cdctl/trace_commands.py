"""cdctl's traceability: status (what runs where), diff (what changed between two updates) and
promote (develop's tested image to master, by digest)."""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cdctl.console import warn
from tomcat_cd.core import conventions
from tomcat_cd.core.diff import SiteDiff, default_pair, pick, settled_update, site_diff, site_objects
from tomcat_cd.core.errors import Problem, printable, raise_if_any
from tomcat_cd.core.history import records_of, read_history
from tomcat_cd.core.model import load_sites
from tomcat_cd.core.settings import load_stack_file
from tomcat_cd.core.status import SiteStatus
from tomcat_cd.driver.pulumi_cli import EngineError, PulumiCli
from tomcat_cd.driver.status import StackView, stack_view

ENGINE_FAILED = 1


def views(project_dir: Path, environments: list[str], drift: bool = False) -> list[StackView]:
    domains = [s.domain for s in load_sites(project_dir / load_stack_file(project_dir, environments[0]).domains_dir,
                                            project_dir)]
    # Side by side: each environment waits on its own engine calls (0.2 s or more each).
    with ThreadPoolExecutor(max_workers=len(environments)) as pool:
        return list(pool.map(lambda env: stack_view(project_dir, env, domains, warn, drift), environments))


def status_line(row: SiteStatus) -> str:
    when = row.deployed_at.strftime("%Y-%m-%d %H:%M") if row.deployed_at else "-"
    digest = row.digest[len("sha256:"):][:12] if row.digest else "-"
    notes = "; ".join(n for n in (row.gate and f"gate {row.gate}", row.pin, row.last_failure,
                                  row.drift and row.drift != "none" and f"drift: {row.drift}") if n)
    return printable(f"{row.domain:<28} {row.environment:<8} {row.version or '-':<12} {digest:<12} "
                     f"{row.build_id or '-':<7} {row.git_id or '-':<8} {when:<16} {row.by or '-':<10} "
                     f"{row.replicas or '-':<8} {notes}".rstrip())


def cmd_status(args: argparse.Namespace, project_dir: Path) -> int:
    environments = [args.env] if args.env else list(conventions.ENVIRONMENTS)
    try:
        found = views(project_dir, environments, args.drift)
    except EngineError as err:
        print(f"error: {err}", file=sys.stderr)
        return ENGINE_FAILED
    rows = [row for view in found for row in view.rows]
    if args.html:
        from tomcat_cd.driver.status_page import write_status_page
        page = write_status_page(Path(args.html), project_dir, found)
        print(f"wrote {page} ({len(rows)} row(s), {sum(1 for _ in Path(args.html).glob('diff-*.html'))} diff page(s))")
    if args.json:
        print(json.dumps([r.as_json() for r in rows], indent=2))
    elif not args.html:
        print(f"{'domain':<28} {'env':<8} {'version':<12} {'digest':<12} {'build':<7} {'git':<8} "
              f"{'deployed (UTC)':<16} {'by':<10} {'replicas':<8} notes")
        for row in rows:
            print(status_line(row))
    return 0


def domain_diff(project_dir: Path, env: str, domain: str, start: str | None, end: str | None) -> SiteDiff:
    cli = PulumiCli(project_dir, env)
    entries = read_history(cli.history_or_none() or [])
    records = records_of(entries, domain)
    if not records:
        raise_if_any([Problem(f"stack {env}", domain, "has never been deployed there")])
    previous, current = default_pair(records)
    new = pick(records, domain, end, current, "TO")
    old = pick(records, domain, start, previous if end is None else
               next((r for r in records if r.update < new.update and r.result == "succeeded"), None), "FROM")
    return site_diff(domain, old, new, site_objects(cli.export_at(settled_update(entries, records, old)), domain),
                     site_objects(cli.export_at(settled_update(entries, records, new)), domain))


def cmd_diff(args: argparse.Namespace, project_dir: Path) -> int:
    if not conventions.is_valid_domain(args.domain):
        raise_if_any([Problem("command line", "DOMAIN", f"must be a domain such as test.gyyx.cn, got {args.domain!r}")])
    try:
        diff = domain_diff(project_dir, args.env, args.domain, args.start, args.end)
    except EngineError as err:
        print(f"error: {err}", file=sys.stderr)
        return ENGINE_FAILED
    if args.json:
        print(json.dumps(diff.as_json(), indent=2))
        return 0
    print(f"{args.domain} in {args.env}: update {diff.old.update} ({diff.old.version or 'deleted'}) -> "
          f"update {diff.new.update} ({diff.new.version or 'deleted'})")
    for name, old, new in diff.changed:
        print(printable(f"  {name:<11} {old or '-'} -> {new or '-'}"))
    if not diff.changed:
        print("  the record is the same")
    if diff.objects:
        sys.stdout.write("".join(diff.objects))
    else:
        print("  the Kubernetes objects are the same")
    return 0
