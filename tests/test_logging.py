"""Logging: filebeat.yml against Filebeat 8's documented options, the dissect tokenizer on the
paths the TomcatSite volumes produce, the multiline pattern on real Tomcat output, the
Elasticsearch and Kibana documents, and the setup script against a stand-in Elasticsearch
and Kibana on loopback."""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import yaml

from conftest import cdctl
from tomcat_cd.core import conventions
from tomcat_cd.core.builders import filebeat

# Filebeat 8 reference: the options each part of filebeat.yml may carry.
DOCUMENTED = {
    "top": {"filebeat.inputs", "processors", "output.elasticsearch", "setup.template.enabled",
            "setup.ilm.enabled", "path.data", "path.logs", "logging.level", "name", "tags", "fields"},
    "filestream": {"type", "id", "enabled", "paths", "parsers", "prospector.scanner.check_interval",
                   "prospector.scanner.recursive_glob", "prospector.scanner.exclude_files",
                   "close.on_state_change.inactive", "ignore_older",
                   "encoding", "exclude_lines", "include_lines", "fields", "fields_under_root", "tags", "processors"},
    "multiline": {"type", "pattern", "negate", "match", "max_lines", "timeout", "flush_pattern", "count_lines",
                  "skip_newline"},
    "dissect": {"tokenizer", "field", "target_prefix", "ignore_failure", "overwrite_keys", "trim_values",
                "trim_chars", "when"},
    "add_tags": {"tags", "target", "when"},
    "add_fields": {"target", "fields", "when"},
    "output.elasticsearch": {"hosts", "username", "password", "api_key", "index", "indices", "pipeline",
                             "protocol", "path", "ssl", "worker", "bulk_max_size", "compression_level"},
    "indices": {"index", "default", "mappings", "when.has_fields", "when.equals", "when.contains", "when.regexp"},
}


@pytest.fixture(scope="module")
def platform_render(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("platform")
    result = cdctl("render", "--stack", "platform", "--out", str(out))
    assert result.code == 0, result.err
    return out


@pytest.fixture(scope="module")
def filebeat_yml(platform_render) -> dict:
    return yaml.safe_load((platform_render / "config/filebeat.yml").read_text())


def unknown(keys, allowed):
    return sorted(set(keys) - allowed)


def test_filebeat_yml_uses_only_documented_filebeat_8_options(filebeat_yml):
    assert unknown(filebeat_yml, DOCUMENTED["top"]) == []
    for entry in filebeat_yml["filebeat.inputs"]:
        assert entry["type"] == "filestream"  # the log input is deprecated since 7.16
        assert unknown(entry, DOCUMENTED["filestream"]) == [], entry["id"]
        for parser in entry.get("parsers", []):
            (kind, options), = parser.items()
            assert kind == "multiline" and unknown(options, DOCUMENTED["multiline"]) == []
            assert options["type"] in ("pattern", "count", "while_pattern") and options["match"] in ("after", "before")
            assert isinstance(options["negate"], bool)
            re.compile(options["pattern"])
    for processor in filebeat_yml["processors"]:
        (name, options), = processor.items()
        assert unknown(options, DOCUMENTED[name]) == [], name
    output = filebeat_yml["output.elasticsearch"]
    assert unknown(output, DOCUMENTED["output.elasticsearch"]) == []
    for rule in output["indices"]:
        assert unknown(rule, DOCUMENTED["indices"]) == []
    assert output["password"] == "${ELASTICSEARCH_PASSWORD}", "the password comes from the pod's Secret"


def test_filebeat_reads_the_three_log_trees_and_keeps_its_registry(filebeat_yml, platform_render):
    paths = {entry["id"]: entry["paths"] for entry in filebeat_yml["filebeat.inputs"]}
    assert paths == {**{f"tomcat-cd-{kind}": [f"/data/nodelogs/*/{kind}/*/*/**"]
                        for kind in ("accesslogs", "devlogs", "tomcatlogs")},
                     "tomcat-cd-devlogs-shop.gyyx.cn": ["/data/nodelogs/*/devlogs/shop.gyyx.cn/*/**"]}
    multiline = [e["id"] for e in filebeat_yml["filebeat.inputs"] if "parsers" in e]
    assert multiline == ["tomcat-cd-tomcatlogs", "tomcat-cd-devlogs-shop.gyyx.cn"]
    daemonset = yaml.safe_load((platform_render / "k8s/logging/daemonset-filebeat.yaml").read_text())
    volumes = {v["name"]: v.get("hostPath", {}).get("path") for v in daemonset["spec"]["template"]["spec"]["volumes"]}
    assert volumes["nodelogs"] == "/data/nodelogs" and volumes["data"] == "/data/filebeat"
    mounts = {m["name"]: m["mountPath"] for m in daemonset["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]}
    assert mounts["data"] == filebeat_yml["path.data"]
    assert mounts["nodelogs"] == "/data/nodelogs", "log.file.path must be the node path the tokenizer expects"
    assert daemonset["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


# --- dissect, with Filebeat's semantics ------------------------------------------------

def dissect(tokenizer: str, value: str) -> dict[str, str] | None:
    """Filebeat's dissect: literal delimiters between %{key}s, each key taking text up to
    the next delimiter (the last key the rest), %{?key} matched but not kept; None on failure."""
    parts = re.split(r"(%\{[^}]*\})", tokenizer)
    if not value.startswith(parts[0]):
        return None
    position, result = len(parts[0]), {}
    for index in range(1, len(parts), 2):
        key, delimiter = parts[index][2:-1], parts[index + 1]
        if delimiter:
            end = value.find(delimiter, position)
            if end < 0:
                return None
        else:
            end = len(value) if index == len(parts) - 2 else position
        if not key.startswith("?"):
            result[key] = value[position:end]
        position = end + len(delimiter)
    return result if position == len(value) or parts[-1] == "" else None


@pytest.mark.parametrize("environment", conventions.ENVIRONMENTS)
@pytest.mark.parametrize("kind,file", [("accesslogs", "localhost_access_log.2018-12-24.txt"),
                                       ("tomcatlogs", "catalina.2018-12-24.log"),
                                       ("devlogs", "interface.datareport.wyx.cn/error.log")])
def test_the_tokenizer_splits_every_path_the_sites_write(environment, kind, file):
    pod = "test-gyyx-cn-76d9d8d5b5-hdnql"
    path = f"{conventions.node_log_dir(environment, kind, 'test.gyyx.cn')}/{pod}/{file}"
    fields = dissect(filebeat.dissect_tokenizer(), path)
    assert fields == {"wtype": environment, "ltype": kind, "domain": "test.gyyx.cn", "pod": pod}


def test_the_original_tokenizer_reads_these_paths_the_same_way():
    original = "%{?key1}/%{?key2}/%{?key3}/%{wtype}/%{ltype}/%{domain}/%{?key7}/%{?key8}"
    path = "/data/nodelogs/master/accesslogs/test.gyyx.cn/test-gyyx-cn-895cc5994-sx7gk/localhost_access_log.2018-12-24.txt"
    ours = dissect(filebeat.dissect_tokenizer(), path)
    theirs = dissect(original, path)
    assert {k: ours[k] for k in theirs} == theirs == {"wtype": "master", "ltype": "accesslogs", "domain": "test.gyyx.cn"}


def test_a_path_outside_the_layout_is_kept_and_tagged(filebeat_yml):
    assert dissect(filebeat.dissect_tokenizer(), "/var/log/syslog") is None
    dissect_options = filebeat_yml["processors"][0]["dissect"]
    assert dissect_options["ignore_failure"] is True  # the event goes on unchanged
    tagging = filebeat_yml["processors"][1]["add_tags"]
    assert tagging == {"tags": [filebeat.UNPARSED_TAG], "when": {"not": {"has_fields": ["gy.domain"]}}}
    output = filebeat_yml["output.elasticsearch"]
    assert output["index"].startswith("tomcat-cd-unparsed-")  # never dropped: the fallback index
    assert output["indices"] == [{"index": "%{[gy.domain]}-%{+yyyy.MM.dd}", "when.has_fields": ["gy.domain"]}]


def test_a_site_with_multiline_app_logs_gets_its_own_input(filebeat_yml):
    """shop.gyyx.cn says its app log records start with a timestamp: only its files are joined."""
    inputs = {entry["id"]: entry for entry in filebeat_yml["filebeat.inputs"]}
    (exclude,) = inputs["tomcat-cd-devlogs"]["prospector.scanner.exclude_files"]
    shop_file = "/data/nodelogs/master/devlogs/shop.gyyx.cn/shop-gyyx-cn-5d8-x2/app/error.log"
    assert re.search(exclude, shop_file)
    assert not re.search(exclude, "/data/nodelogs/master/devlogs/test.gyyx.cn/test-gyyx-cn-1-a/error.log")
    pattern = inputs["tomcat-cd-devlogs-shop.gyyx.cn"]["parsers"][0]["multiline"]["pattern"]
    logback = ["2026-11-25 16:38:09.123 ERROR [http-nio-8080-exec-1] c.g.shop.Cart - checkout failed",
               "java.lang.IllegalStateException: cart is empty",
               "\tat com.gyyx.shop.Cart.checkout(Cart.java:42)",
               "Caused by: java.sql.SQLException: timeout",
               "2026-11-25 16:38:10.001 INFO  [main] c.g.shop.App - still serving"]
    assert [len(e) for e in join_multiline(logback, pattern)] == [4, 1]


# --- multiline on real Tomcat output ---------------------------------------------------

def join_multiline(lines: list[str], pattern: str) -> list[list[str]]:
    """Filebeat's multiline with negate: true, match: after."""
    events: list[list[str]] = []
    start = re.compile(pattern)
    for line in lines:
        if start.search(line) or not events:
            events.append([line])
        else:
            events[-1].append(line)
    return events


def test_tomcat_records_with_stack_traces_become_one_event_each(catalina_log_with_trace):
    lines = catalina_log_with_trace.splitlines()
    events = join_multiline(lines, filebeat.TOMCAT_RECORD_START)
    starts = [line for line in lines if re.search(filebeat.TOMCAT_RECORD_START, line)]
    assert len(events) == len(starts) > 3
    traced = [e for e in events if any(line.lstrip().startswith("at ") for line in e)]
    assert traced, "the broken web.xml must have logged a stack trace"
    for event in traced:
        assert re.search(filebeat.TOMCAT_RECORD_START, event[0]) and "SEVERE" in event[0]
        assert all(not re.search(filebeat.TOMCAT_RECORD_START, line) for line in event[1:])
    # Tomcat's one-line format indents the exception and its frames with tabs.
    assert traced[0][1].startswith("\torg.xml.sax.SAXParseException")
    assert sum(line.startswith("\t\tat ") for line in traced[0]) > 10


@pytest.fixture(scope="module")
def catalina_log_with_trace(tmp_path_factory, platform_render) -> str:
    """Real catalina output: Tomcat with the generated conf deploying an app whose web.xml is broken."""
    from conftest import free_port
    from test_checkers import catalina, catalina_base, require
    from conftest import REPO
    out = subprocess.run([str(REPO / "scripts/install-checkers"), "--print-path"], capture_output=True, text=True)
    home = require(Path(out.stdout.strip()), "scripts/install-checkers")
    site = tmp_path_factory.mktemp("site")
    result = cdctl("render", "--stack", "develop", "--out", str(site))
    assert result.code == 0, result.err
    base = catalina_base(home, site / "build/test.gyyx.cn", tmp_path_factory.mktemp("base") / "b", free_port())
    (base / "webapps/ROOT/WEB-INF").mkdir(parents=True)
    (base / "webapps/ROOT/WEB-INF/web.xml").write_text("<web-app><servlet><broken></web-app>")
    server = catalina(home, base, "run", background=True)
    try:
        logs = list((base / "logs").glob("catalina.*.log"))
        for _ in range(120):
            logs = list((base / "logs").glob("catalina.*.log"))
            if logs and "Server startup in" in logs[0].read_text():
                break
            threading.Event().wait(0.5)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return logs[0].read_text()


# --- Elasticsearch and Kibana documents ------------------------------------------------

def test_lifecycle_policy_deletes_after_ten_days(platform_render):
    policy = json.loads((platform_render / "config/logging-setup/ilm-policy.json").read_text())
    assert set(policy) == {"policy"} and set(policy["policy"]) <= {"phases", "_meta"}
    phases = policy["policy"]["phases"]
    assert set(phases) <= {"hot", "warm", "cold", "frozen", "delete"}
    assert phases["delete"] == {"min_age": "10d", "actions": {"delete": {}}}
    assert "rollover" not in phases["hot"]["actions"]  # daily indices age from their creation


def test_index_template_maps_gy_fields_as_keywords_for_every_domain(platform_render):
    template = json.loads((platform_render / "config/logging-setup/index-template.json").read_text())
    assert set(template) <= {"index_patterns", "template", "priority", "composed_of", "version", "_meta", "data_stream"}
    assert template["index_patterns"] == ["api.gyyx.cn-*", "shop.gyyx.cn-*", "test.gyyx.cn-*", "tomcat-cd-unparsed-*"]
    assert set(template["template"]) <= {"settings", "mappings", "aliases", "lifecycle"}
    assert template["template"]["settings"]["index.lifecycle.name"] == filebeat.ILM_POLICY
    gy = dict(template["template"]["mappings"]["properties"]["gy"]["properties"])
    access = gy.pop("access")["properties"]
    assert gy.pop("error") == {"type": "boolean"}  # what the health gate counts
    assert gy == {name: {"type": "keyword"} for name in ("wtype", "ltype", "domain", "pod")}
    assert access == {"client": {"type": "keyword"}, "user": {"type": "keyword"}, "request": {"type": "keyword"},
                      "bytes": {"type": "keyword"}, "status": {"type": "long"}, "duration_ms": {"type": "long"}}


def test_the_access_log_is_read_with_the_valves_own_pattern():
    assert filebeat.access_log_tokenizer() == ('%{client} %{?ident} %{user} [%{?time}] "%{request}" %{status} '
                                               '%{bytes} "%{?referer}" "%{?user_agent}" %{duration_ms} "%{?thread}"')
    line = ('127.0.0.1 - - [02/Dec/2026:06:19:19 +0000] "GET /fail.jsp HTTP/1.1" 500 1024 "-" '
            '"Python-urllib/3.11" 37 "http-nio-8080-exec-2"')
    assert dissect(filebeat.access_log_tokenizer(), line) == {
        "client": "127.0.0.1", "user": "-", "request": "GET /fail.jsp HTTP/1.1", "status": "500", "bytes": "1024",
        "duration_ms": "37"}
    with pytest.raises(ValueError, match="%q"):
        filebeat.access_log_tokenizer('%a %q "%r"')


def test_one_data_view_per_domain_file(platform_render):
    setup = platform_render / "config/logging-setup"
    assert (setup / "domains.txt").read_text().split() == ["api.gyyx.cn", "shop.gyyx.cn", "test.gyyx.cn"]
    view = json.loads((setup / "data-view-test.gyyx.cn.json").read_text())
    assert set(view) == {"data_view", "override"} and view["override"] is True
    assert view["data_view"] == {"id": "tomcat-cd-test.gyyx.cn", "title": "test.gyyx.cn-*", "name": "test.gyyx.cn",
                                 "timeFieldName": "@timestamp", "allowNoIndex": True}


def test_adding_or_removing_a_domain_file_reruns_the_setup_job(project, tmp_path):
    def render(name):
        out = tmp_path / name
        assert cdctl("--project-dir", str(project.root), "render", "--stack", "platform", "--out", str(out)).code == 0
        jobs = sorted(p.name for p in (out / "k8s/logging").glob("job-logging-setup-*.yaml"))
        return jobs, (out / "config/logging-setup/domains.txt").read_text().split()

    before_jobs, before = render("before")
    project.domain("new.gyyx.cn", "nodePort: 32050\n")
    added_jobs, added = render("added")
    assert added == sorted(before + ["new.gyyx.cn"]) and added_jobs != before_jobs and len(added_jobs) == 1
    (project.domains / "new.gyyx.cn.yaml").unlink()
    removed_jobs, removed = render("removed")
    assert removed == before and removed_jobs == before_jobs


# --- the setup script against stand-ins of Elasticsearch and Kibana --------------------

class StandIn(BaseHTTPRequestHandler):
    """Answers the endpoints setup.sh calls, as Elasticsearch 8 and Kibana 8 would, and
    records every request; Kibana already holds a data view of a removed domain."""

    requests: list = []

    def _handle(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        type(self).requests.append((self.command, self.path, self.headers.get("Authorization"),
                                    self.headers.get("kbn-xsrf"), body))
        if self.path == "/api/data_views":
            payload = {"data_view": [{"id": "tomcat-cd-old.gyyx.cn", "title": "old.gyyx.cn-*"},
                                     {"id": "tomcat-cd-test.gyyx.cn", "title": "test.gyyx.cn-*"},
                                     {"id": "someone-elses", "title": "x-*"}]}
        else:
            payload = {"acknowledged": True}
        data = json.dumps(payload).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = _handle

    def log_message(self, *args):
        pass


# Every printable ASCII character, command substitutions, a newline, a tab, a non-ASCII letter.
HOSTILE = "".join(chr(c) for c in range(32, 127)) + "$(touch MARKER)`touch MARKER`\n\tend\u00e9"


@pytest.mark.parametrize("hostile", [False, True], ids=["plain secrets", "hostile secrets"])
def test_setup_script_installs_everything_and_removes_stale_data_views(platform_render, tmp_path, hostile):
    StandIn.requests = []
    server = HTTPServer(("127.0.0.1", 0), StandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    setup = platform_render / "config/logging-setup"
    marker = tmp_path / "ran"
    elastic_pw, kibana_pw = ("es-pw-for-test", "kb-pw-for-test") if not hostile else (
        "e" + HOSTILE.replace("MARKER", str(marker)), "k" + HOSTILE.replace("MARKER", str(marker)))
    filebeat_pw = "fb-pw-for-test" if not hostile else "f" + HOSTILE.replace("MARKER", str(marker))
    env = dict(os.environ, ELASTIC_URL=url, KIBANA_URL=url, ELASTIC_PASSWORD=elastic_pw,
               KIBANA_PASSWORD=kibana_pw, FILEBEAT_PASSWORD=filebeat_pw, SETUP_DIR=str(setup))
    try:
        proc = subprocess.run(["bash", str(setup / "setup.sh")], env=env, capture_output=True, text=True, timeout=60)
    finally:
        server.shutdown()
    assert proc.returncode == 0, proc.stderr
    calls = [(method, path.split("?")[0]) for method, path, *_ in StandIn.requests]
    assert calls == [
        ("GET", "/_cluster/health"),
        ("PUT", "/_ilm/policy/tomcat-cd-logs"),
        ("PUT", "/_index_template/tomcat-cd-logs"),
        ("POST", "/_security/user/kibana_system/_password"),
        ("PUT", "/_security/role/tomcat-cd-filebeat-writer"),
        ("PUT", "/_security/user/tomcat-cd-filebeat"),
        ("GET", "/api/status"),
        ("POST", "/api/data_views/data_view"), ("POST", "/api/data_views/data_view"),
        ("POST", "/api/data_views/data_view"),
        ("GET", "/api/data_views"),
        ("DELETE", "/api/data_views/data_view/tomcat-cd-old.gyyx.cn"),
    ]
    bodies = {(m, p.split("?")[0]): b for m, p, _, _, b in StandIn.requests}
    assert json.loads(bodies[("PUT", "/_ilm/policy/tomcat-cd-logs")]) == json.loads((setup / "ilm-policy.json").read_text())
    assert json.loads(bodies[("POST", "/_security/user/kibana_system/_password")]) == {"password": kibana_pw}
    assert json.loads(bodies[("PUT", "/_security/user/tomcat-cd-filebeat")]) == {
        "password": filebeat_pw, "roles": ["tomcat-cd-filebeat-writer"]}
    # Filebeat may add documents to the sites' and the unparsed indices, and nothing else.
    assert json.loads(bodies[("PUT", "/_security/role/tomcat-cd-filebeat-writer")]) == {
        "cluster": ["monitor"],
        "indices": [{"names": ["api.gyyx.cn-*", "shop.gyyx.cn-*", "test.gyyx.cn-*", "tomcat-cd-unparsed-*"],
                     "privileges": ["create_doc", "create_index"]}]}
    posted = [json.loads(b)["data_view"]["title"] for m, p, _, _, b in StandIn.requests
              if (m, p) == ("POST", "/api/data_views/data_view")]
    assert posted == ["api.gyyx.cn-*", "shop.gyyx.cn-*", "test.gyyx.cn-*"]
    kibana_calls = [r for r in StandIn.requests if r[1].startswith("/api/data_views")]
    assert all(r[3] == "tomcat-cd" for r in kibana_calls), "Kibana's API wants kbn-xsrf"
    expected_auth = "Basic " + base64.b64encode(f"elastic:{elastic_pw}".encode()).decode()
    assert all(r[2] == expected_auth for r in StandIn.requests)
    assert not marker.exists(), "a secret's $(...) or backquotes ran"
    assert "data view of removed domain old.gyyx.cn deleted" in proc.stdout


def test_setup_script_gives_up_after_its_deadline(platform_render):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    setup = platform_render / "config/logging-setup"
    env = dict(os.environ, ELASTIC_URL=f"http://127.0.0.1:{port}", KIBANA_URL="http://127.0.0.1:1",
               ELASTIC_PASSWORD="x", KIBANA_PASSWORD="y", SETUP_DIR=str(setup), WAIT_SECONDS="2", WAIT_INTERVAL="1")
    proc = subprocess.run(["bash", str(setup / "setup.sh")], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert proc.stderr.splitlines()[-1] == (f"gave up: Elasticsearch at http://127.0.0.1:{port}/_cluster/health"
                                            "?wait_for_status=yellow&timeout=10s did not answer in 2 s")
