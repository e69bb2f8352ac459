"""A domain's deploy history, read from a stack's update history, and rollback choices.

Each Pulumi update records the stack config it ran with, so the `tomcat-cd:versions`
and `tomcat-cd:builds` maps of every update say what each domain was running. These
functions take the Automation API's `UpdateSummary` objects (or anything shaped like
them) and never talk to Pulumi themselves.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Iterable

from tomcat_cd.core.errors import Problem, raise_if_any

SUCCEEDED = "succeeded"


@dataclass(frozen=True)
class DomainRecord:
    """What one update did to one domain."""

    update: int
    time: datetime | None
    version: str | None
    """None: the domain was not deployed by this update (deleted, or not yet added)."""
    build_id: str
    git_id: str
    result: str
    """succeeded, failed or in-progress, as Pulumi reports it."""
    by: str
    message: str

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["time"] = self.time.isoformat() if self.time else None
        return data


def _config_json(summary: Any, key: str) -> dict:
    value = (summary.config or {}).get(key)
    text = getattr(value, "value", value)
    if not text or getattr(value, "secret", False):
        return {}
    try:
        parsed = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def record_of(summary: Any, domain: str, number: int) -> DomainRecord:
    """The domain as one update (an UpdateSummary) left it; `number` counts updates from 1."""
    version = _config_json(summary, "tomcat-cd:versions").get(domain)
    build = _config_json(summary, "tomcat-cd:builds").get(domain) or {}
    if summary.kind == "destroy":
        version = None
    return DomainRecord(
        update=number,
        time=summary.start_time,
        version=version if isinstance(version, str) else None,
        build_id=str(build.get("buildId", "")) if version else "",
        git_id=str(build.get("gitId", "")) if version else "",
        result=summary.result,
        by=str(build.get("by", "")) if version else "",
        message=summary.message or "",
    )


def chronological(summaries: Iterable[Any]) -> list[tuple[int, Any]]:
    """(update number, summary), oldest first. Pulumi lists history newest first; the
    file backend numbers every update 0, so the number is then the position."""
    oldest_first = list(reversed(list(summaries)))
    return [(s.version or position, s) for position, s in enumerate(oldest_first, start=1)]


def domain_history(summaries: Iterable[Any], domain: str) -> list[DomainRecord]:
    """Newest first, the updates that changed the domain (or tried to and failed)."""
    records = []
    live: tuple | None = (None, "", "")
    for number, summary in chronological(summaries):
        if summary.kind not in ("update", "destroy"):
            continue
        record = record_of(summary, domain, number)
        state = (record.version, record.build_id, record.git_id)
        if state != live:
            records.append(record)
        if record.result == SUCCEEDED:
            live = state
    return list(reversed(records))


def rollback_target(records: list[DomainRecord], domain: str, to: str | None = None, steps: int = 1) -> DomainRecord:
    """The record to re-apply: the version `steps` back from the live one, or version `to`.

    Only versions that an update deployed successfully are candidates. Raises ConfigError
    (exit 2) with a message saying what the history holds when there is no such version."""
    deployed = [r for r in records if r.result == SUCCEEDED]
    live = deployed[0].version if deployed else None
    seen, earlier = {live}, []
    for record in deployed[1:] if deployed else []:
        if record.version is not None and record.version not in seen:
            seen.add(record.version)
            earlier.append(record)
    known = ", ".join(r.version for r in earlier) or "none"
    if to is not None:
        if to == live:
            raise_if_any([Problem(domain, "--to", f"{to} is the version running now")])
        for record in earlier:
            if record.version == to:
                return record
        raise_if_any([Problem(domain, "--to", f"{to} was never deployed successfully here (earlier versions: {known})")])
    if steps < 1:
        raise_if_any([Problem(domain, "--steps", f"must be 1 or more, got {steps}")])
    if len(earlier) < steps:
        what = "no earlier version" if not earlier else f"only {len(earlier)} earlier version(s): {known}"
        raise_if_any([Problem(domain, "rollback", f"the history has {what}; nothing to roll back to")])
    return earlier[steps - 1]
