"""Filebeat and Elasticsearch for the pipeline tests: the program's own filebeat.yml and
setup documents, run against real ones.

Two test-only adaptations, each the smallest that makes the real parts meet:
- `rerooted`: the program's filebeat.yml with its node paths moved under the test's root and
  its output sent to the test's Elasticsearch; nothing else changes.
- `VersionFront`: Filebeat 7.17 asks `GET /` for the cluster's version before it sends, and
  Elasticsearch's test distribution has no handler for `GET /` (405). This front answers that
  one request with the version the cluster reports through `_nodes` and passes every other
  request through unchanged.
And two of the setup job's steps: the test distribution has no ILM, so the index template is
installed without its `index.lifecycle.name` setting (the policy's shape is checked in
test_logging); and it lacks the analysis module the `.security` index needs, so Filebeat's
role and user go into the file realm (`roles.yml`, `elasticsearch-users`) instead of the
native one: the same role document, enforced by Elasticsearch the same way.
"""

from __future__ import annotations

import copy
import datetime
import os
import shutil
import subprocess
import http.client
import http.server
import json
import re
import threading
import urllib.error
import urllib.request
from base64 import b64encode
from pathlib import Path
from typing import Any

import yaml

from tomcat_cd.core import conventions

LIFECYCLE_SETTING = "index.lifecycle.name"


def rerooted(config: dict[str, Any], node_root: Path, elastic_url: str, data_dir: Path) -> dict[str, Any]:
    """`config` (the program's filebeat.yml) reading `<node_root>/data/nodelogs` instead of
    `/data/nodelogs`, in its input paths, exclusions and dissect tokenizer alike, writing to
    `elastic_url` and keeping its registry in `data_dir`."""
    new_root = str(node_root / conventions.NODE_LOG_ROOT.lstrip("/"))
    old_pattern = re.escape(conventions.NODE_LOG_ROOT)

    def moved(value: Any, key: str = "") -> Any:
        if isinstance(value, str):
            # Exclusions are regular expressions: the new root goes in escaped.
            if key == "prospector.scanner.exclude_files":
                return value.replace(old_pattern, re.escape(new_root))
            return value.replace(conventions.NODE_LOG_ROOT, new_root)
        if isinstance(value, list):
            return [moved(v, key) for v in value]
        if isinstance(value, dict):
            return {k: moved(v, k) for k, v in value.items()}
        return value

    result = moved(copy.deepcopy(config))
    result["output.elasticsearch"]["hosts"] = [elastic_url]
    result["path.data"] = str(data_dir)
    return result


def without_lifecycle(template: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(template)
    settings = result["template"]["settings"]
    assert settings.pop(LIFECYCLE_SETTING), "the program's template no longer names its lifecycle policy"
    return result


def add_file_realm_user(endpoint: dict[str, Any], user: str, password: str, role: str,
                        role_document: dict[str, Any]) -> None:
    """The role (the program's document) in roles.yml and the user in the file realm."""
    config = Path(endpoint["config"])
    roles = config / "roles.yml"
    known = yaml.safe_load(roles.read_text()) if roles.exists() else None
    roles.write_text(yaml.safe_dump({**(known or {}), role: role_document}))
    tool = [*UNPRIVILEGED, str(Path(endpoint["home"]) / "bin" / "elasticsearch-users")]
    env = {**os.environ, "ES_PATH_CONF": str(config), "ES_JAVA_HOME": str(Path(shutil.which("java")).resolve().parents[1])}
    done = subprocess.run([*tool, "useradd", user, "-p", password, "-r", role], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


UNPRIVILEGED = ("setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups")


class Elastic:
    """A tiny client: JSON in, JSON out, basic auth."""

    def __init__(self, url: str, username: str, password: str):
        self.url, self.auth = url.rstrip("/"), b64encode(f"{username}:{password}".encode()).decode()

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}{path}", data=data, method=method)
        request.add_header("Authorization", f"Basic {self.auth}")
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return json.load(answer)
        except urllib.error.HTTPError as err:
            raise AssertionError(f"{method} {path}: {err.code} {err.read().decode(errors='replace')[:500]}") from None

    def search(self, index: str, query: dict[str, Any], size: int = 100) -> list[dict[str, Any]]:
        self.request("POST", f"/{index}/_refresh?ignore_unavailable=true")
        found = self.request("POST", f"/{index}/_search?ignore_unavailable=true",
                             {"query": query, "size": size, "sort": [{"@timestamp": {"order": "asc", "unmapped_type": "date"}}]})
        return [hit["_source"] | {"_index": hit["_index"]} for hit in found["hits"]["hits"]]


class VersionFront(http.server.ThreadingHTTPServer):
    """127.0.0.1:<port> in front of Elasticsearch for Filebeat (see the module's docstring)."""

    def __init__(self, elastic_url: str, version: str):
        self.elastic_url, self.version = elastic_url.rstrip("/"), version
        super().__init__(("127.0.0.1", 0), _FrontHandler)
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def __enter__(self) -> "VersionFront":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()


class _FrontHandler(http.server.BaseHTTPRequestHandler):
    server: VersionFront
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self) -> None:
        if self.command in ("GET", "HEAD") and self.path == "/":
            body = json.dumps({"name": "es0", "cluster_name": "tomcat-cd-test", "tagline": "You Know, for Search",
                               "version": {"number": self.server.version, "build_flavor": "default"}}).encode()
            self._send(200, {"Content-Type": "application/json"}, body)
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        target = http.client.HTTPConnection(self.server.elastic_url.split("//", 1)[1], timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
        target.request(self.command, self.path, body=body, headers=headers)
        answer = target.getresponse()
        data = answer.read()
        passed = {k: v for k, v in answer.getheaders() if k.lower() not in ("transfer-encoding", "connection",
                                                                             "content-length")}
        self._send(answer.status, passed, data)
        target.close()

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_HEAD = do_DELETE = _answer


def records(domain: str, environment: str, pod: str, count: int, errors: int = 0, server_errors: int = 0,
            seconds: float = 60, until: float | None = None) -> list[dict[str, Any]]:
    """`count` records of one pod as Filebeat would index them, spread over the `seconds`
    before `until` (default now): every second one an access-log line, `server_errors` of those
    a 500, and `errors` of the others marked `gy.error` (a SEVERE record)."""
    end = datetime.datetime.fromtimestamp(until, datetime.timezone.utc) if until else \
        datetime.datetime.now(datetime.timezone.utc)
    docs = []
    failed, erred = 0, 0
    for n in range(count):
        access = n % 2 == 1
        doc: dict[str, Any] = {"@timestamp": (end - datetime.timedelta(seconds=seconds * (n + 1) / (count + 1))).isoformat(),
                               "message": f"record {n}",
                               "gy": {"wtype": environment, "ltype": "accesslogs" if access else "tomcatlogs",
                                      "domain": domain, "pod": pod}}
        if access:
            doc["gy"]["access"] = {"status": 500 if failed < server_errors else 200, "request": "GET / HTTP/1.1"}
            failed += 1
        elif erred < errors:
            doc["gy"]["error"] = True
            erred += 1
        docs.append(doc)
    return docs


def bulk_index(elastic: Elastic, index: str, docs: list[dict[str, Any]]) -> None:
    """`_bulk` (NDJSON, which `Elastic.request` does not send), then a refresh."""
    lines = [line for doc in docs for line in (json.dumps({"create": {"_index": index}}), json.dumps(doc))]
    request = urllib.request.Request(f"{elastic.url}/_bulk?refresh=true", data=("\n".join(lines) + "\n").encode(),
                                     method="POST")
    request.add_header("Authorization", f"Basic {elastic.auth}")
    request.add_header("Content-Type", "application/x-ndjson")
    with urllib.request.urlopen(request, timeout=300) as answer:
        result = json.load(answer)
    assert not result.get("errors"), str(result)[:500]
