"""The status page: a static HTML table of every domain × environment, each domain's history
timeline, and a page per diff. No server, no CDN: the style and the one script are inline."""

from __future__ import annotations

from html import escape
from typing import Iterable

from tomcat_cd.core.diff import SiteDiff
from tomcat_cd.core.history import DomainRecord
from tomcat_cd.core.status import SiteStatus

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f3f3f3}code{font-size:12px}.bad{color:#b00020;font-weight:600}.held{color:#8a5a00}
pre{background:#f7f7f7;padding:1em;overflow:auto}.add{color:#0a6b0a}.del{color:#b00020}
"""
# Filters the table as one types; the page's only script.
FILTER_SCRIPT = """
document.getElementById('filter').addEventListener('input', function (event) {
  var text = event.target.value.toLowerCase();
  document.querySelectorAll('#sites tbody tr').forEach(function (row) {
    row.hidden = text && row.textContent.toLowerCase().indexOf(text) < 0;
  });
});
"""


def diff_page_name(environment: str, domain: str, old: int, new: int) -> str:
    return f"diff-{environment}-{domain}-{old}-{new}.html"


def _page(title: str, body: str, script: str = "") -> str:
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title>"
            f"<style>{STYLE}</style></head>\n<body>\n<h1>{escape(title)}</h1>\n{body}\n"
            + (f"<script>{script}</script>\n" if script else "") + "</body></html>\n")


def _cell(text: str, css: str = "") -> str:
    return f"<td{f' class={chr(34)}{css}{chr(34)}' if css else ''}>{escape(text) if text else '-'}</td>"


def _row(status: SiteStatus) -> str:
    when = status.deployed_at.strftime("%Y-%m-%d %H:%M UTC") if status.deployed_at else ""
    gate_css = "bad" if status.gate.startswith("failed") else ""
    return ("<tr>" + f"<td><a href=\"#{escape(status.environment)}-{escape(status.domain)}\">"
            f"{escape(status.domain)}</a></td>" + "".join((
                _cell(status.environment), _cell(status.version or ""), f"<td><code>{escape(status.digest) or '-'}"
                                                                        "</code></td>",
                _cell(status.build_id), _cell(status.git_id), _cell(when), _cell(status.by),
                _cell(status.gate, gate_css), _cell(status.pin, "held"), _cell(status.replicas),
                _cell(status.drift), _cell(status.last_failure, "bad"))) + "</tr>")


def _timeline(status: SiteStatus, records: list[DomainRecord], diffs: set[tuple[int, int]]) -> str:
    items = []
    deploys = [r for r in records if r.version is not None]
    for index, record in enumerate(records):
        when = record.time.strftime("%Y-%m-%d %H:%M") if record.time else "-"
        older = next((r for r in deploys[deploys.index(record) + 1:] if r.result == "succeeded"), None) \
            if record in deploys else None
        link = ""
        if older is not None and (older.update, record.update) in diffs:
            name = diff_page_name(status.environment, status.domain, older.update, record.update)
            link = f" <a class=\"diff\" href=\"{escape(name)}\">diff with update {older.update}</a>"
        items.append(f"<li>update {record.update} · {escape(when)} · {escape(record.version or '(deleted)')} · "
                     f"{escape(record.result)} · {escape(record.by or '-')} · <small>{escape(record.message)}</small>"
                     f"{link}</li>")
    return (f"<h3 id=\"{escape(status.environment)}-{escape(status.domain)}\">{escape(status.domain)} in "
            f"{escape(status.environment)}</h3>\n<ol reversed>{''.join(items) or '<li>never deployed</li>'}</ol>")


def index_html(rows: Iterable[SiteStatus], timelines: dict[tuple[str, str], list[DomainRecord]],
               diffs: dict[tuple[str, str], set[tuple[int, int]]], generated: str) -> str:
    rows = list(rows)
    head = "".join(f"<th>{h}</th>" for h in ("domain", "env", "version", "digest", "build", "git", "deployed",
                                            "by", "gate", "pin", "replicas", "drift", "last failure"))
    table = (f"<p>Generated {escape(generated)} by <code>cdctl status --html</code>. "
             "<label>Filter: <input id=\"filter\" type=\"search\"></label></p>\n"
             f"<table id=\"sites\"><thead><tr>{head}</tr></thead><tbody>\n"
             + "\n".join(_row(r) for r in rows) + "\n</tbody></table>\n<h2>History</h2>\n")
    history = "\n".join(_timeline(r, timelines.get((r.environment, r.domain), []),
                                  diffs.get((r.environment, r.domain), set())) for r in rows)
    return _page("tomcat-cd status", table + history, FILTER_SCRIPT)


def diff_html(environment: str, diff: SiteDiff) -> str:
    fields = "".join(f"<tr><td>{escape(name)}</td><td><code>{escape(old) or '-'}</code></td>"
                     f"<td><code>{escape(new) or '-'}</code></td></tr>" for name, old, new in diff.changed)
    lines = "".join(f"<span class=\"{'add' if line.startswith('+') else 'del' if line.startswith('-') else ''}\">"
                    f"{escape(line)}</span>" for line in diff.objects)
    body = (f"<p><a href=\"index.html#{escape(environment)}-{escape(diff.domain)}\">back to the status</a></p>\n"
            f"<table id=\"record\"><thead><tr><th>field</th><th>update {diff.old.update}</th>"
            f"<th>update {diff.new.update}</th></tr></thead><tbody>{fields}</tbody></table>\n"
            f"<pre id=\"objects\">{lines or 'the Kubernetes objects are the same'}</pre>")
    return _page(f"{diff.domain} in {environment}: update {diff.old.update} → {diff.new.update}", body)
