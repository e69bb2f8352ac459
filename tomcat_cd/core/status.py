"""What runs where: one row per domain and environment, from the stack's history (and what the
state and the cluster add). Pure: tomcat_cd.driver reads them, cdctl status prints them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from tomcat_cd.core.gate import VERDICT_FAILED, VERDICT_INTERRUPTED, VERDICTS
from tomcat_cd.core.history import GATE_FAILED, SUCCEEDED, DomainRecord
from tomcat_cd.core.settings import Pin


@dataclass(frozen=True)
class SiteStatus:
    domain: str
    environment: str
    version: str | None
    """None: never deployed here, or deleted (then `update` says when)."""
    image: str = ""
    build_id: str = ""
    git_id: str = ""
    war_sha256: str = ""
    deployed_at: datetime | None = None
    """When the update that put this version in place started."""
    by: str = ""
    update: int | None = None
    """The update that put this version in place."""
    gate: str = ""
    """`failed v5.0.0 (update 12), rolled back`, `passed (update 14)`, or "" (unknown)."""
    gate_verdict: str = ""
    """What the gate marker of this version's own update says (one of gate.VERDICTS), or ""."""
    pin: str = ""
    last_failure: str = ""
    """The newest update of the domain, when it failed: `update 15 failed`."""
    replicas: str = ""
    """`2/2` available (cluster mode), or why it is unknown."""
    drift: str = ""

    @property
    def digest(self) -> str:
        return self.image.split("@", 1)[1] if "@" in self.image else ""

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["deployed_at"] = self.deployed_at.isoformat() if self.deployed_at else None
        data["digest"] = self.digest
        return data


def site_status(domain: str, environment: str, records: list[DomainRecord]) -> SiteStatus:
    """The domain's row from its history (newest first, as domain_history gives it)."""
    done = [r for r in records if r.result in (SUCCEEDED, GATE_FAILED)]
    live = next((r for r in done if r.result == SUCCEEDED), None)
    last_failure = f"update {records[0].update} {records[0].result}" if records and records[0].result not in (
        SUCCEEDED, GATE_FAILED) else ""
    if live is None:
        return SiteStatus(domain, environment, None, last_failure=last_failure)
    start = live
    # Back over the pins and unpins of this same version, to the update that put it in place
    # (a rollback to it is such an update: what ran between ended there).
    for record in done[done.index(live) + 1:]:
        if record.result != SUCCEEDED or record.ran != live.ran:
            break
        start = record
    gate = ""
    older = [r for r in done if r.update < start.update]
    if older and older[0].result == GATE_FAILED:
        gate = f"failed {older[0].version} (update {older[0].update}), rolled back"
    return SiteStatus(domain, environment, live.version, live.image or start.image, start.build_id, start.git_id,
                      start.war_sha256, start.time, start.by, start.update, gate=gate, pin=live.pin,
                      last_failure=last_failure)


def with_gate_marker(status: SiteStatus, marker: dict[str, Any] | None) -> SiteStatus:
    """The row with the verdict a gate marker gave the running version's update, if any."""
    if status.gate or marker is None or marker.get("update") != status.update:
        return status
    result = str(marker.get("result", "?"))
    return replace(status, gate=f"{result} (update {status.update})",
                   gate_verdict=result if result in VERDICTS else "")


def promotion_problem(row: SiteStatus, pin: Pin | None, wanted: str | None) -> str | None:
    """Why the version running in the source environment may not be promoted, or None: its
    gate marker says its health gate failed (a gate that rolled back runs the version before
    again: that one may go on) or was interrupted, it is pinned as bad, or it is not the version
    the caller names."""
    if row.version is None:
        return "is not deployed there: nothing to promote"
    if row.gate_verdict == VERDICT_FAILED:
        return f"{row.version}'s health gate failed ({row.gate}): it is not promoted"
    if row.gate_verdict == VERDICT_INTERRUPTED:
        return f"{row.version}'s health gate was interrupted ({row.gate}): deploy it again to have it judged"
    if pin is not None and pin.failed_version == row.version:
        return f"{row.version} is pinned as bad: {pin.describe()}"
    if wanted is not None and wanted != row.version:
        return f"runs {row.version}, not {wanted} (--version): nothing was changed"
    return None
