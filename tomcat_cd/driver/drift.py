"""What was changed by hand on the cluster since the last update: a dry-run refresh of one
site, its engine events read from Pulumi's event log."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from tomcat_cd.core.diff import differences
from tomcat_cd.core.urns import StackNames
from tomcat_cd.driver.pulumi_cli import PulumiCli


def site_drift(cli: PulumiCli, domain: str) -> list[tuple[str, str, list[str]]]:
    """(resource, change, spec paths) for each of the site's resources whose live object
    differs from the last update, comparing the `spec` Pulumi recorded with the one on the
    cluster (status always moves; spec is what a person changes)."""
    existing = cli.resource_urns()
    targets = [urn for urn in StackNames(cli.stack).site(domain) if urn in existing]
    if not targets:
        return []
    with tempfile.TemporaryDirectory(prefix="tomcat-cd-drift-") as folder:
        log = Path(folder) / "events.json"
        # The CLI offers --event-log (what the Automation API reads too) only with debug commands on.
        cli.run("refresh preview", "refresh", "--preview-only", "--color=never",
                f"--event-log={log}", *[f"--target={urn}" for urn in targets],
                extra_env={"PULUMI_DEBUG_COMMANDS": "true"})
        events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    found: dict[str, tuple[str, str, list[str]]] = {}
    for event in events:
        # A refresh reports each resource as read; those whose live object moved come back
        # as an update (or a delete when the object is gone).
        metadata = (event.get("resOutputsEvent") or {}).get("metadata") or {}
        if metadata.get("op") not in ("update", "delete"):
            continue
        name = metadata["urn"].rsplit("::", 1)[-1]
        old = (metadata.get("old") or {}).get("outputs") or {}
        new = (metadata.get("new") or {}).get("outputs") or {}
        if metadata["op"] == "delete" or not new:
            found[name] = (name, "deleted", [])
        elif old.get("spec") != new.get("spec"):
            found[name] = (name, "changed", differences(old.get("spec"), new.get("spec"), "spec"))
    return sorted(found.values())
