"""`cdctl history`: a domain's versions in one environment, read from the stack's update history.

Its own module, so that the command loads only the history and one CLI call, not what a
deploy needs (the release and gate drivers, Kubernetes, Elasticsearch). The engine commands
take their DOMAIN/--version check, the record and the never-deployed refusal from here.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tomcat_cd.core import conventions
from tomcat_cd.core.errors import Problem, printable, raise_if_any
from tomcat_cd.core.history import DomainRecord, domain_history
from tomcat_cd.core.stack_file import VERSION
from tomcat_cd.driver.pulumi_cli import PulumiCli

NEVER_DEPLOYED = "has no update history yet (never deployed)"


def refuse_never_deployed(env: str) -> None:
    """Exit 2 naming the stack: the backend has nothing of it."""
    raise_if_any([Problem(f"stack {env}", "", NEVER_DEPLOYED)])


def check_domain_version(domain: str, version: str | None) -> None:
    problems = []
    if not conventions.is_valid_domain(domain):
        problems.append(Problem("command line", "DOMAIN", f"must be a domain such as test.gyyx.cn, got {domain!r}"))
    if version is not None and not VERSION.fullmatch(version):
        problems.append(Problem("command line", "--version", f"must be a version such as v1.2.0, got {version!r}"))
    raise_if_any(problems)


def domain_records(args: argparse.Namespace, project_dir: Path) -> list[DomainRecord]:
    check_domain_version(args.domain, None)
    # Only the versions and builds maps are read: the secrets stay encrypted (and unread).
    updates = PulumiCli(project_dir, args.env).history_or_none()
    if updates is None:
        refuse_never_deployed(args.env)
    return domain_history(updates or [], args.domain)


def cmd_history(args: argparse.Namespace, project_dir: Path) -> int:
    records = domain_records(args, project_dir)
    if args.json:
        print(json.dumps([r.as_json() for r in records], indent=2))
        return 0
    if not records:
        print(f"{args.domain} has never been deployed in {args.env}")
        return 0
    print(f"{'update':>6}  {'time (UTC)':<19}  {'version':<12} {'build':<8} {'git':<8} {'result':<11} {'by':<10} note")
    for r in records:
        when = r.time.strftime("%Y-%m-%d %H:%M:%S") if r.time else "-"
        note = "; ".join(n for n in (_action_note(r.message), r.pin) if n)
        print(printable(f"{r.update:>6}  {when:<19}  {r.version or '(deleted)':<12} {r.build_id or '-':<8} "
                        f"{r.git_id or '-':<8} {r.result:<11} {r.by or '-':<10} {note}".rstrip()))
    return 0


def _action_note(message: str) -> str:
    """What a message says an update was when it was more than a deploy."""
    first = message.split(" ", 1)[0]
    if first == "rollback" and "(gate failed" in message:
        return "rollback (gate)"
    return first if first in ("rollback", "pin", "unpin", "freeze", "unfreeze") else ""
