"""filebeat.yml and the Elasticsearch documents it relies on, from the log conventions.

The paths Filebeat reads and the tokenizer that splits them both come from
conventions.NODE_LOG_ROOT / LOG_KINDS, the ones the TomcatSite volumes use, so the
two cannot disagree.

Indices: one per domain and day, `<domain>-<yyyy.MM.dd>`, as the original design's
`<domain>-*` index patterns expect. Daily indices (rather than a data stream per
domain) keep those patterns and dashboards working unchanged, and an ILM policy
deletes each index 10 days after it was created - no rollover alias to manage.
"""

from __future__ import annotations

import re
from typing import Any

from tomcat_cd.core import conventions
from tomcat_cd.core.builders.tomcat import ACCESS_LOG_PATTERN

FIELD_PREFIX = "gy"
PATH_FIELDS = ("wtype", "ltype", "domain", "pod")
UNPARSED_TAG = "tomcat-cd-unparsed-path"
UNPARSED_INDEX = "tomcat-cd-unparsed"
# Filebeat writes as a user of its own whose role may only add documents (and the daily
# indices they need) to the sites' and the unparsed indices: not the `elastic` superuser.
WRITER_USER = "tomcat-cd-filebeat"
WRITER_ROLE = "tomcat-cd-filebeat-writer"
ILM_POLICY = "tomcat-cd-logs"
INDEX_TEMPLATE = "tomcat-cd-logs"
CONTAINER_DATA_DIR = "/usr/share/filebeat/data"

# A Tomcat (JULI) record starts with its timestamp, e.g. `25-Nov-2026 16:38:09.123 INFO [main] ...`;
# stack trace lines, `Caused by:` and continuations do not.
TOMCAT_RECORD_START = r"^\d{2}-[A-Z][a-z]{2}-\d{4} \d{2}:\d{2}:\d{2}"
# What the health gate counts as an error record (tomcat_cd.core.gate): a Tomcat record at
# level SEVERE, an application log line with the word ERROR. Filebeat marks them `gy.error`.
ERROR_NAME = "error"
ERROR_FIELD = f"{FIELD_PREFIX}.{ERROR_NAME}"
ERROR_RECORDS = {"tomcatlogs": TOMCAT_RECORD_START + r"\S* SEVERE ", "devlogs": r"\bERROR\b"}


ACCESS_PREFIX = f"{FIELD_PREFIX}.access"
# Each code of Tomcat's access log pattern, as a dissect key (`?`: matched, not kept). A code
# missing here makes access_log_tokenizer fail, so the pattern and its reading cannot part.
ACCESS_LOG_KEYS = {
    "%a": "%{client}", "%l": "%{?ident}", "%u": "%{user}", "%t": "[%{?time}]", "%r": "%{request}",
    "%s": "%{status}", "%b": "%{bytes}", "%{Referer}i": "%{?referer}", "%{User-Agent}i": "%{?user_agent}",
    "%D": "%{duration_ms}", "%I": "%{?thread}",
}
# Mapped in the index template: the status and duration are numbers (a query can count 5xx).
ACCESS_NUMBERS = ("status", "duration_ms")


def access_log_tokenizer(pattern: str = ACCESS_LOG_PATTERN) -> str:
    """The dissect tokenizer of an access-log line, from the valve's own pattern."""
    codes = re.findall(r"%\{[^}]+\}[a-z]|%[a-zA-Z]", pattern)
    unknown = [code for code in codes if code not in ACCESS_LOG_KEYS]
    if unknown:
        raise ValueError(f"access log pattern codes without a dissect key: {', '.join(unknown)}")
    return re.sub(r"%\{[^}]+\}[a-z]|%[a-zA-Z]", lambda m: ACCESS_LOG_KEYS[m.group(0)], pattern)


def dissect_tokenizer() -> str:
    """`/data/nodelogs/%{wtype}/%{ltype}/%{domain}/%{pod}/%{?file}`: the original design's
    fields, plus the pod; the last key takes the rest of the path (nested app logs too)."""
    keys = "/".join(f"%{{{name}}}" for name in PATH_FIELDS)
    return f"{conventions.NODE_LOG_ROOT}/{keys}/%{{?file}}"


def input_paths(kind: str, domain: str = "*") -> list[str]:
    """Every environment and pod folder of one log kind (of one domain, or all), at any depth."""
    return [f"{conventions.NODE_LOG_ROOT}/*/{kind}/{domain}/*/**"]


def _multiline(record_start: str) -> list[dict[str, Any]]:
    return [{"multiline": {"type": "pattern", "pattern": record_start, "negate": True, "match": "after"}}]


def filebeat_config(elastic_url: str, app_multiline: dict[str, str] | None = None) -> dict[str, Any]:
    """`app_multiline` maps a domain to the regex starting its application log records: those
    domains' devlogs get an input of their own, which the shared devlogs input leaves out."""
    app_multiline = dict(sorted((app_multiline or {}).items()))
    inputs = []
    for kind in sorted(conventions.LOG_KINDS):
        entry: dict[str, Any] = {"type": "filestream", "id": f"tomcat-cd-{kind}", "paths": input_paths(kind)}
        if kind == "tomcatlogs":
            entry["parsers"] = _multiline(TOMCAT_RECORD_START)
        if kind == "devlogs" and app_multiline:
            root = re.escape(conventions.NODE_LOG_ROOT)
            entry["prospector.scanner.exclude_files"] = [f"^{root}/[^/]+/{kind}/{re.escape(d)}/" for d in app_multiline]
        inputs.append(entry)
    for domain, record_start in app_multiline.items():
        inputs.append({"type": "filestream", "id": f"tomcat-cd-devlogs-{domain}",
                       "paths": input_paths("devlogs", domain), "parsers": _multiline(record_start)})
    domain_field = f"{FIELD_PREFIX}.domain"
    return {
        "filebeat.inputs": inputs,
        "processors": [
            {"dissect": {"tokenizer": dissect_tokenizer(), "field": "log.file.path",
                         "target_prefix": FIELD_PREFIX, "ignore_failure": True}},
            # A path outside the layout is kept and tagged, never dropped.
            {"add_tags": {"tags": [UNPARSED_TAG], "when": {"not": {"has_fields": [domain_field]}}}},
            # An access-log line's status, duration, request and client become fields.
            {"dissect": {"tokenizer": access_log_tokenizer(), "field": "message", "target_prefix": ACCESS_PREFIX,
                         "ignore_failure": True, "when": {"equals": {f"{FIELD_PREFIX}.ltype": "accesslogs"}}}},
            *[{"add_fields": {"target": FIELD_PREFIX, "fields": {ERROR_NAME: True},
                              "when": {"and": [{"equals": {f"{FIELD_PREFIX}.ltype": kind}},
                                               {"regexp": {"message": record}}]}}}
              for kind, record in ERROR_RECORDS.items()],
        ],
        "output.elasticsearch": {
            "hosts": [elastic_url],
            "username": WRITER_USER,
            "password": "${ELASTICSEARCH_PASSWORD}",
            "index": f"{UNPARSED_INDEX}-%{{+yyyy.MM.dd}}",
            "indices": [{"index": f"%{{[{domain_field}]}}-%{{+yyyy.MM.dd}}", "when.has_fields": [domain_field]}],
        },
        # The template and the lifecycle policy are installed by the logging setup job.
        "setup.template.enabled": False,
        "setup.ilm.enabled": False,
        "path.data": CONTAINER_DATA_DIR,
    }


def writer_role(domains: list[str]) -> dict[str, Any]:
    """What Filebeat may do: `monitor` to read the cluster's version, `create_doc` and
    `create_index` (daily indices, no ILM rollover) on the indices it writes, nothing else."""
    return {"cluster": ["monitor"],
            "indices": [{"names": [f"{domain}-*" for domain in domains] + [f"{UNPARSED_INDEX}-*"],
                         "privileges": ["create_doc", "create_index"]}]}


def ilm_policy(retention_days: int) -> dict[str, Any]:
    """Delete every index `retention_days` after it was created (no rollover: daily indices)."""
    return {"policy": {
        "_meta": {"managed_by": conventions.PROJECT},
        "phases": {
            "hot": {"min_age": "0ms", "actions": {}},
            "delete": {"min_age": f"{retention_days}d", "actions": {"delete": {}}},
        },
    }}


def index_template(domains: list[str], replicas: int) -> dict[str, Any]:
    """`<domain>-*` indices: gy.* as keywords (filterable in Discover) and the lifecycle policy."""
    keyword = {"type": "keyword"}
    return {
        "index_patterns": [f"{domain}-*" for domain in domains] + [f"{UNPARSED_INDEX}-*"],
        "priority": 200,
        "template": {
            "settings": {
                "index.lifecycle.name": ILM_POLICY,
                "index.number_of_shards": 1,
                "index.number_of_replicas": min(1, replicas - 1),
            },
            "mappings": {"properties": {FIELD_PREFIX: {"properties": {
                **{name: keyword for name in PATH_FIELDS},
                ERROR_NAME: {"type": "boolean"},
                "access": {"properties": {
                    **{name: keyword for name in ("client", "user", "request", "bytes")},
                    **{name: {"type": "long"} for name in ACCESS_NUMBERS}}},
            }}}},
        },
        "_meta": {"managed_by": conventions.PROJECT},
    }


def data_view_id(domain: str) -> str:
    return f"{conventions.PROJECT}-{domain}"


def data_view(domain: str) -> dict[str, Any]:
    """Kibana's create-data-view request for one domain (override: re-running is harmless)."""
    return {
        "data_view": {
            "id": data_view_id(domain),
            "title": f"{domain}-*",
            "name": domain,
            "timeFieldName": "@timestamp",
            "allowNoIndex": True,
        },
        "override": True,
    }
