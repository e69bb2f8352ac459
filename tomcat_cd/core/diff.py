"""What changed for one domain between two updates: its record (version, build, git id, image
digest, war sha256) and every field of its Kubernetes objects, as a unified diff of the two."""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, Mapping

import yaml

from tomcat_cd.core import conventions
from tomcat_cd.core.errors import Problem, raise_if_any
from tomcat_cd.core.history import GATE_FAILED, SUCCEEDED, DomainRecord, Entry
from tomcat_cd.core.urns import SITE_TYPE

RECORD_FIELDS = ("version", "build_id", "git_id", "digest", "war_sha256")


@dataclass(frozen=True)
class SiteDiff:
    domain: str
    old: DomainRecord
    new: DomainRecord
    changed: list[tuple[str, str, str]]
    """(field, old, new) of the record fields that differ."""
    objects: list[str]
    """The unified diff of the two updates' objects of the site (no lines: the same)."""

    def as_json(self) -> dict[str, Any]:
        return {"domain": self.domain, "from": self.old.as_json(), "to": self.new.as_json(),
                "changed": [{"field": f, "from": a, "to": b} for f, a, b in self.changed],
                "objects": "".join(self.objects)}


def differences(old: Any, new: Any, path: str, depth: int = 3) -> list[str]:
    """Paths (to `depth` levels) where two JSON values differ."""
    if old == new:
        return []
    if depth == 0 or not (isinstance(old, dict) and isinstance(new, dict)):
        if isinstance(old, list) and isinstance(new, list) and len(old) == len(new) and depth:
            return [p for i, (a, b) in enumerate(zip(old, new, strict=True))
                    for p in differences(a, b, f"{path}[{i}]", depth - 1)]
        return [path]
    return [p for key in sorted(set(old) | set(new))
            for p in differences(old.get(key), new.get(key), f"{path}.{key}", depth - 1)]


# What differs between environments by design, not by choice: left out of a promote's comparison.
PER_ENVIRONMENT = ("namespace", "tomcat-cd/environment", "tomcat-cd/version", "image")


def _comparable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _comparable(v) for k, v in value.items() if k not in PER_ENVIRONMENT}
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def environment_differences(source: Mapping[str, Any], target: Mapping[str, Any], source_env: str,
                            target_env: str) -> list[tuple[str, Any, Any]]:
    """(path, in source, in target) of a site's Deployment in two environments, apart from what
    differs by design (namespace, environment label, image tag, the node log folders named
    after the environment): replicas, resources, env, host aliases, probes."""
    old, new = _comparable(source), _comparable(target)
    paths = [path for path in differences(old.get("spec"), new.get("spec"), "spec", depth=8)
             if str(_at(old.get("spec"), path)).replace(f"/{source_env}/", f"/{target_env}/") !=
             str(_at(new.get("spec"), path))]
    return [(path, _at(old.get("spec"), path), _at(new.get("spec"), path)) for path in paths]


def _at(value: Any, path: str) -> Any:
    """The value at a path `differences` names (`spec.a[0].b`, below the named root)."""
    for part in path.replace("]", "").replace("[", ".").split(".")[1:]:
        if isinstance(value, list):
            value = value[int(part)] if int(part) < len(value) else None
        else:
            value = (value or {}).get(part)
    return value



def pick(records: list[DomainRecord], domain: str, spec: str | None, default: DomainRecord | None,
         where: str) -> DomainRecord:
    """The record an update number or a version names (the newest with that version)."""
    if spec is None:
        if default is None:
            raise_if_any([Problem(domain, where, "the history has no earlier deploy to compare with")])
        assert default is not None
        return default
    found = next((r for r in records if str(r.update) == spec or r.version == spec), None)
    if found is None:
        known = ", ".join(f"{r.update} ({r.version or 'deleted'})" for r in records[:12]) or "none"
        raise_if_any([Problem(domain, where, f"{spec!r} is no update number nor version of its history "
                                             f"(newest: {known})")])
    assert found is not None
    return found


def default_pair(records: list[DomainRecord]) -> tuple[DomainRecord | None, DomainRecord | None]:
    """(previous, current): the deploy that put the running version in place, and the newest
    before it that ran something else (a version whose gate then failed ran too: after a
    gate's rollback this is what the rollback undid), each named by its first update; a pin
    in between changes nothing."""
    done = [r for r in records if r.result in (SUCCEEDED, GATE_FAILED)]
    live = next((i for i, r in enumerate(done) if r.result == SUCCEEDED), None)
    if live is None:
        return None, None
    current = live
    while current + 1 < len(done) and done[current + 1].ran == done[live].ran and \
            done[current + 1].result == SUCCEEDED:
        current += 1
    previous = next((i for i in range(current + 1, len(done)) if done[i].ran != done[live].ran), None)
    if previous is None:
        return None, done[current]
    while previous + 1 < len(done) and done[previous + 1].ran == done[previous].ran:
        previous += 1
    return done[previous], done[current]


def site_objects(state: Mapping[str, Any], domain: str) -> dict[str, Any]:
    """The site's Kubernetes objects as an update applied them (their inputs), by name."""
    parent_suffix = f"::{SITE_TYPE}::{conventions.k8s_name(domain)}"
    objects = {}
    for resource in (state.get("deployment") or {}).get("resources") or []:
        if str(resource.get("parent", "")).endswith(parent_suffix) and resource.get("type", "").startswith("kubernetes:"):
            inputs = {k: v for k, v in (resource.get("inputs") or {}).items() if not k.startswith("__")}
            objects[f"{inputs.get('kind', resource['type'])}/{conventions.k8s_name(domain)}"] = inputs
    return dict(sorted(objects.items()))


def site_diff(domain: str, old: DomainRecord, new: DomainRecord, old_objects: dict[str, Any],
              new_objects: dict[str, Any]) -> SiteDiff:
    changed = [(name, str(getattr(old, name) or ""), str(getattr(new, name) or "")) for name in RECORD_FIELDS
               if (getattr(old, name) or "") != (getattr(new, name) or "")]
    before = yaml.safe_dump(old_objects, sort_keys=True, default_flow_style=False).splitlines(keepends=True) \
        if old_objects else []
    after = yaml.safe_dump(new_objects, sort_keys=True, default_flow_style=False).splitlines(keepends=True) \
        if new_objects else []
    lines = list(difflib.unified_diff(before, after, f"update {old.update} ({old.version or 'deleted'})",
                                      f"update {new.update} ({new.version or 'deleted'})"))
    return SiteDiff(domain, old, new, changed, [line if line.endswith("\n") else line + "\n" for line in lines])


def settled_update(entries: list[Entry], records: list[DomainRecord], record: DomainRecord) -> int:
    """The update whose state shows the site as `record` left it: the newest successful update
    before the domain's next record. A deploy's record names its first update, which may have
    made only what the site depends on (a stack's first deploy makes the namespace first)."""
    newer = [r.update for r in records if r.update > record.update]
    until = min(newer) if newer else None
    done = [number for number, update, _ in entries if number >= record.update and
            (until is None or number < until) and update.get("result") == SUCCEEDED]
    return max(done, default=record.update)
