"""A domain's deploy history, read from a stack's update history, and rollback choices.

Each Pulumi update records the stack config it ran with, so the `tomcat-cd:versions`
and `tomcat-cd:builds` maps of every update say what each domain was running. These
functions take updates as `pulumi stack history --json` prints them (newest first) and
never talk to Pulumi themselves.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any, Iterable, Mapping

from tomcat_cd.core import conventions
from tomcat_cd.core.errors import Problem, Problems, raise_if_any
from tomcat_cd.core.settings import SiteMaps, read_site_maps
from tomcat_cd.core.stack_file import GIT_ID

SUCCEEDED = "succeeded"
# A succeeded update whose version a health gate then failed (and rolled back).
GATE_FAILED = "gate-failed"


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
    pin: str = ""
    """The pin or freeze holding the domain after this update, as `describe()` tells it."""
    war_sha256: str = ""
    image: str = ""
    """`<tag>@<digest>` of the version's image, when the record holds its push."""

    @property
    def ran(self) -> tuple[str | None, str, str, str]:
        """What the domain ran: version, build, git id and image. An update that changed only a
        pin, or another domain, ran the same thing."""
        return self.version, self.build_id, self.git_id, self.image

    @property
    def digest(self) -> str:
        return self.image.split("@", 1)[1] if "@" in self.image else ""

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["time"] = self.time.isoformat() if self.time else None
        data["digest"] = self.digest
        return data


def site_maps_of(update: Mapping[str, Any]) -> SiteMaps:
    """The versions and builds an update ran with; an entry that does not read is left out
    (history shows what it can and never stops at one odd update)."""
    prefix = f"{conventions.PROJECT}:"
    values = {key[len(prefix):]: entry.get("value") for key, entry in (update.get("config") or {}).items()
              if key.startswith(prefix) and isinstance(entry, Mapping) and not entry.get("secret")}
    if update.get("kind") == "destroy":
        return SiteMaps()
    return read_site_maps(values, Problems("history", []))


def _start_time(update: Mapping[str, Any]) -> datetime | None:
    text = update.get("startTime")
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")) if isinstance(text, str) else None
    except ValueError:
        return None


def _head_git_id(update: Mapping[str, Any]) -> str:
    """The checkout's commit Pulumi records with every update run from a git checkout: the
    image tag's git id of every site without a build record that a whole-stack `pulumi up`
    deployed. A targeted update re-tags nothing it did not target: "" (unknown)."""
    environment = update.get("environment") or {}
    head = str(environment.get("git.head", ""))
    return head[:7] if GIT_ID.fullmatch(head) and "pulumi.flag.target" not in environment else ""


def record_of(update: Mapping[str, Any], domain: str, number: int, maps: SiteMaps | None = None) -> DomainRecord:
    """The domain as one update left it; `number` counts updates from 1; `maps` are the
    update's own (site_maps_of), when already read."""
    maps = site_maps_of(update) if maps is None else maps
    version, build = maps.site(domain)
    held = maps.holds(domain)
    return DomainRecord(
        update=number,
        time=_start_time(update),
        version=version,
        build_id=build.build_id if build and version else "",
        git_id=(build.git_id if build else _head_git_id(update)) if version else "",
        result=str(update.get("result", "")),
        by=build.by if build and version else "",
        war_sha256=build.war_sha256 if build and version else "",
        message=str(update.get("message") or ""),
        pin=("" if held is None else held[1].describe() if held[0] == domain else
             f"environment frozen by {held[1].by} at {held[1].at}: {held[1].reason}"),
    )


def chronological(updates: Iterable[Mapping[str, Any]]) -> list[tuple[int, Mapping[str, Any]]]:
    """(update number, update), oldest first. Pulumi lists history newest first; the file
    backend numbers every update 0, so the number is then the position."""
    oldest_first = list(reversed(list(updates)))
    return [(update.get("version") or position, update) for position, update in enumerate(oldest_first, start=1)]


Entry = tuple[int, Mapping[str, Any], SiteMaps]


def read_history(updates: Iterable[Mapping[str, Any]]) -> list[Entry]:
    """(number, update, its maps), oldest first, of the updates that changed resources: each
    update's record read once, however many domains are then looked up in it."""
    return [(number, update, site_maps_of(update)) for number, update in chronological(updates)
            if update.get("kind") in ("update", "destroy")]


def domains_of(entries: Iterable[Entry]) -> set[str]:
    """Every domain any update deployed."""
    return {domain for _, _, maps in entries for domain in maps.versions}


def domain_history(updates: Iterable[Mapping[str, Any]], domain: str) -> list[DomainRecord]:
    """Newest first, the updates that changed the domain (or tried to and failed)."""
    return records_of(read_history(updates), domain)


def records_of(entries: list[Entry], domain: str) -> list[DomainRecord]:
    """domain_history of updates read_history has read."""
    records = []
    gate_failed: set[int] = set()
    live: tuple[str | None, str, str, str] = (None, "", "", "")
    for number, update, maps in entries:
        record = record_of(update, domain, number, maps)
        pin = maps.pins.get(domain)
        if pin is not None and pin.failed_update is not None:
            gate_failed.add(pin.failed_update)
        if record.version == live[0] and not record.git_id:
            # No build record and a targeted update of another site: the site kept its tag.
            record = replace(record, build_id=live[1], git_id=live[2])
        state = (record.version, record.build_id, record.git_id, record.pin)
        if state != live:
            records.append(record)
        if record.result == SUCCEEDED:
            live = state
    marked = [replace(r, result=GATE_FAILED) if r.update in gate_failed and r.result == SUCCEEDED else r
              for r in records]
    pushed = [ref for _, _, maps in reversed(entries) for ref in maps.images.get(domain, ())]
    return [replace(r, image=image_of(pushed, r.version, r.git_id)) for r in reversed(marked)]


def image_of(pushed: Iterable[str], version: str | None, git_id: str) -> str:
    """The pushed `<tag>@<digest>` of a version built from `git_id`, in any environment (a
    promoted image keeps its digest under master's tag), or "". The record of an update
    holds the pushes made before it, so every update's is searched."""
    if version is None or not git_id:
        return ""
    for ref in pushed:
        parts = conventions.image_tag_of(ref)
        if "@" in ref and parts is not None and (parts[0], parts[2]) == (version, git_id):
            return ref
    return ""


def rollback_target(records: list[DomainRecord], domain: str, to: str | None = None, steps: int = 1) -> DomainRecord:
    """The record to re-apply: the version `steps` back from the live one, or version `to`.

    Only versions that an update deployed successfully are candidates. Raises ConfigError
    (exit 2) with a message saying what the history holds when there is no such version."""
    deployed = [r for r in records if r.result == SUCCEEDED]
    # A pin or an unpin changes no version: it is no step back.
    deployed = [r for i, r in enumerate(deployed) if i + 1 == len(deployed) or r.ran != deployed[i + 1].ran]
    live = deployed[0].version if deployed else None
    seen, earlier = {live}, []
    for record in deployed[1:] if deployed else []:
        if record.version is not None and record.version not in seen:
            seen.add(record.version)
            earlier.append(record)
    known = ", ".join(r.version for r in earlier if r.version) or "none"
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
