"""Every domain of one environment as it runs: the stack's history and state, the gate markers
in Elasticsearch and the cluster's replicas where they are configured (tomcat_cd.core.status)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from tomcat_cd.core.events import EVENTS_INDEX_PREFIX
from tomcat_cd.core.history import Entry, domains_of, read_history, records_of
from tomcat_cd.core.settings import StackSettings, load_stack_file
from tomcat_cd.core.status import SiteStatus, site_status, with_gate_marker
from tomcat_cd.driver.drift import site_drift
from tomcat_cd.driver.elastic import ElasticClient, ElasticError
from tomcat_cd.driver.kube import KubeError, KubeReader
from tomcat_cd.driver.pulumi_cli import EngineError, PulumiCli
from tomcat_cd.driver.record import running_images

MARKERS_READ = 2000


@dataclass(frozen=True)
class StackView:
    """One environment's rows, and the history they were read from (for timelines and diffs)."""

    environment: str
    rows: list[SiteStatus]
    entries: list[Entry]


def stack_view(project_dir: Path, stack: str, domains: list[str], warn: Callable[[str], None],
               drift: bool = False) -> StackView:
    cli = PulumiCli(project_dir, stack)
    settings = load_stack_file(project_dir, stack)
    entries = read_history(cli.history_or_none() or [])
    images = running_images(cli.export()) if entries else {}
    rows = []
    for domain in sorted(set(domains) | domains_of(entries)):
        row = site_status(domain, settings.environment, records_of(entries, domain))
        rows.append(replace(row, image=images.get(domain, row.image)) if row.version else row)
    rows = _with_markers(rows, cli, settings, warn)
    if settings.target == "cluster" and entries:
        rows = _with_cluster(rows, cli, settings, drift, warn)
    return StackView(settings.environment, rows, entries)


def _with_markers(rows: list[SiteStatus], cli: PulumiCli, settings: StackSettings,
                  warn: Callable[[str], None]) -> list[SiteStatus]:
    """Each running version's gate verdict, from the newest gate marker of its update."""
    if not (settings.markers and settings.elasticsearch_url) or not any(r.version for r in rows):
        return rows
    password = cli.secret("elasticsearchPassword") if settings.elasticsearch_password_set else None
    client = ElasticClient(settings.elasticsearch_url, settings.elasticsearch_username, password, timeout=5)
    query = {"size": MARKERS_READ, "sort": [{"@timestamp": "desc"}],
             "query": {"bool": {"filter": [{"term": {"gy.wtype": settings.environment}},
                                           {"term": {"action": "gate"}}]}}}
    try:
        hits = client.search(f"{EVENTS_INDEX_PREFIX}*", query)["hits"]["hits"]
    except (ElasticError, KeyError, TypeError) as err:
        warn(f"warning: gate verdicts not read from Elasticsearch: {err}")
        return rows
    newest: dict[tuple[str, Any], dict[str, Any]] = {}
    for hit in hits:
        source = hit.get("_source") or {}
        newest.setdefault((str((source.get("gy") or {}).get("domain")), source.get("update")), source)
    return [with_gate_marker(r, newest.get((r.domain, r.update))) for r in rows]


def _with_cluster(rows: list[SiteStatus], cli: PulumiCli, settings: StackSettings, drift: bool,
                  warn: Callable[[str], None]) -> list[SiteStatus]:
    try:
        kube: KubeReader | None = KubeReader.from_kubeconfig(settings.kubeconfig)
    except KubeError as err:
        warn(f"warning: replicas not read: {err}")
        kube = None
    out = []
    for row in rows:
        if row.version is None:
            out.append(row)
            continue
        replicas = ""
        if kube is not None:
            try:
                available = kube.availability(settings.namespace, row.domain)[0]
                replicas = f"{available.available}/{available.desired}"
            except KubeError as err:
                replicas = f"unknown ({err})"
        found = ""
        if drift:
            try:
                changes = site_drift(cli, row.domain)
                found = "; ".join(f"{name}: {op}" for name, op, _ in changes) or "none"
            except EngineError as err:
                found = f"unknown ({err})"
        out.append(replace(row, replicas=replicas, drift=found))
    return out
