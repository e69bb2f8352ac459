"""Writing the status page: index.html and a diff page per pair of successive deploys."""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path

from tomcat_cd.core.diff import settled_update, site_diff, site_objects
from tomcat_cd.core.history import SUCCEEDED, DomainRecord, records_of
from tomcat_cd.core.status_page import diff_html, diff_page_name, index_html
from tomcat_cd.driver.pulumi_cli import PulumiCli
from tomcat_cd.driver.status import StackView

# The diffs a domain's timeline links to: its newest deploys' (the page stays small).
DIFFS_PER_DOMAIN = 10


def write_status_page(out: Path, project_dir: Path, views: list[StackView]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for old_page in out.glob("diff-*.html"):
        old_page.unlink()
    timelines: dict[tuple[str, str], list[DomainRecord]] = {}
    diffs: dict[tuple[str, str], set[tuple[int, int]]] = {}
    for view in views:
        cli = PulumiCli(project_dir, view.environment)
        state_at = lru_cache(maxsize=None)(cli.export_at)
        for row in view.rows:
            records = records_of(view.entries, row.domain)
            key = (view.environment, row.domain)
            timelines[key] = records
            diffs[key] = set()
            deploys = [r for r in records if r.result == SUCCEEDED and r.version is not None]
            for new, old in list(zip(deploys, deploys[1:]))[:DIFFS_PER_DOMAIN]:
                diff = site_diff(row.domain, old, new,
                                 site_objects(state_at(settled_update(view.entries, records, old)), row.domain),
                                 site_objects(state_at(settled_update(view.entries, records, new)), row.domain))
                (out / diff_page_name(view.environment, row.domain, old.update, new.update)).write_text(
                    diff_html(view.environment, diff), encoding="utf-8")
                diffs[key].add((old.update, new.update))
    page = out / "index.html"
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    page.write_text(index_html([r for v in views for r in v.rows], timelines, diffs, generated), encoding="utf-8")
    return page

