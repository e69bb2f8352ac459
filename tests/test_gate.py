"""The health gate's rule, table by table, and its watcher with the API server and
Elasticsearch faked (the real ones: test_pipeline.py and test_cluster.py); pins and freezes
in the record and in history."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from fake_clock import Clock
from tomcat_cd.core import gate
from tomcat_cd.core.errors import ConfigError, Problems
from tomcat_cd.core.gate import Availability, GateRule, LogCounts
from tomcat_cd.core.history import GATE_FAILED, domain_history, rollback_target
from tomcat_cd.core.model import load_sites
from tomcat_cd.core.settings import Build, Pin, SiteMaps, read_site_maps
from tomcat_cd.driver.elastic import ElasticClient
from tomcat_cd.driver.gate import GateTarget, GateWatch

RULE = GateRule()
FULL = Availability(desired=2, updated=2, available=2, restarts=0)


def counts(errors: int = 0, responses: int = 0, server_errors: int = 0, pods: int = 1, seconds: float = 60) -> LogCounts:
    return LogCounts(errors, responses, server_errors, pods, seconds)


@pytest.mark.parametrize("samples, max_restarts, passed, says", [
    ([FULL, FULL], 0, True, "2/2 available"),
    ([FULL, Availability(2, 2, 1, 0), FULL], 0, False, "1 of 3 samples short"),
    ([Availability(2, 1, 2, 0)], 0, False, "1 updated"),
    ([FULL, Availability(2, 2, 2, 1)], 0, False, "1 restart(s) of the new pods (limit 0)"),
    ([FULL, Availability(2, 2, 2, 1)], 1, True, "1 restart(s)"),
    ([], 0, False, "no sample"),
])
def test_availability(samples, max_restarts, passed, says):
    result = gate.judge_availability(samples, GateRule(max_restarts=max_restarts))
    assert result.passed is passed and says in result.figures


@pytest.mark.parametrize("new, old, passed", [
    (counts(errors=0), counts(errors=0), True),
    (counts(errors=5), counts(errors=0), True),              # at the limit (5/pod/min) is not over it
    (counts(errors=6), counts(errors=0), False),             # over the limit, worse than before
    (counts(errors=30), counts(errors=30), True),            # as noisy as the version it replaces
    (counts(errors=30), counts(errors=20), True),            # 1.5x before is the line: 30 = 1.5 x 20
    (counts(errors=31), counts(errors=20), False),
    (counts(errors=10, pods=2), counts(errors=0, pods=2), True),   # per pod: 10 over 2 pods is 5 each
    (counts(errors=10, seconds=120), counts(), True),              # per minute: 10 over 2 minutes
    (counts(errors=3, seconds=10), counts(), False),               # 3 in 10 s is 18/min
])
def test_errors_per_pod_and_minute(new, old, passed):
    assert gate.judge_errors(new, old, RULE)[0].passed is passed


@pytest.mark.parametrize("new, old, passed", [
    (counts(responses=100, server_errors=5), counts(responses=100), True),       # 5% is not over 5%
    (counts(responses=100, server_errors=6), counts(responses=100), False),
    (counts(responses=100, server_errors=40), counts(responses=50, server_errors=20), True),  # equal share
    (counts(responses=100, server_errors=61), counts(responses=100, server_errors=40), False),
    (counts(responses=0), counts(responses=0), True),                            # no traffic: no evidence
    (counts(responses=3, server_errors=3), counts(responses=0), False),
])
def test_share_of_5xx(new, old, passed):
    assert gate.judge_errors(new, old, RULE)[1].passed is passed


def test_a_stricter_factor_fails_what_the_default_passes():
    new, old = counts(errors=30), counts(errors=25)
    assert gate.judge_errors(new, old, RULE)[0].passed
    assert not gate.judge_errors(new, old, GateRule(worse_factor=1.0))[0].passed


@pytest.mark.parametrize("answers, passed", [
    ([True, True, True], True),
    ([True, False, True], True),       # one miss is a blip
    ([True, False, False, True], False),
    ([True, True, False], False),      # the last answer counts
    ([], False),
])
def test_health(answers, passed):
    assert gate.judge_health(answers, RULE).passed is passed


def test_elasticsearch_down_fails_closed_unless_told_to_warn():
    assert not gate.elasticsearch_down("connection refused", RULE).passed
    warned = gate.elasticsearch_down("connection refused", GateRule(on_elasticsearch_down="warn"))
    assert warned.passed and "onElasticsearchDown: warn" in warned.figures


def test_the_verdict_line_names_the_failed_checks_and_their_figures():
    verdict = gate.verdict([gate.judge_availability([FULL], RULE),
                            *gate.judge_errors(counts(errors=60), counts(), RULE)])
    assert not verdict.passed
    assert verdict.line("a.gyyx.cn", "v2").startswith("gate FAILED: a.gyyx.cn v2: errors FAILED (60 error record(s)")
    assert "availability" not in verdict.reason() and "60.0/pod/min" in verdict.reason()


def test_the_counts_request_reads_what_filebeat_writes():
    """The fields the gate counts are the ones filebeat.yml sets and the template maps."""
    from tomcat_cd.core.builders import filebeat
    body = gate.counts_request(gate.new_pods_query("a.gyyx.cn", "develop", ["p2", "p1"]))
    mapped = filebeat.index_template(["a.gyyx.cn"], 1)["template"]["mappings"]["properties"]["gy"]["properties"]
    assert mapped["error"] == {"type": "boolean"} and mapped["access"]["properties"]["status"] == {"type": "long"}
    assert body["aggs"]["errors"] == {"filter": {"term": {"gy.error": True}}}
    assert {"terms": {"gy.pod": ["p1", "p2"]}} in body["query"]["bool"]["filter"]
    marks = [p["add_fields"] for p in filebeat.filebeat_config("http://es:9200")["processors"] if "add_fields" in p]
    assert [m["when"]["and"][0]["equals"]["gy.ltype"] for m in marks] == ["tomcatlogs", "devlogs"]


def write_domain(tmp_path: Path, gate_text: str) -> Path:
    folder = tmp_path / "domains"
    folder.mkdir(exist_ok=True)
    (folder / "a.gyyx.cn.yaml").write_text(f"nodePort: 32001\ngate:\n{gate_text}")
    return folder


def test_the_domain_file_tunes_the_gate(tmp_path):
    folder = write_domain(tmp_path, "  windowSeconds: 30\n  checks: [availability, health]\n  max5xxPercent: 1.5\n")
    rule = load_sites(folder)[0].gate
    assert (rule.window_seconds, rule.checks, rule.max_5xx_percent) == (30, ("availability", "health"), 1.5)
    assert rule.runs("health") and not rule.runs("errors")


def test_a_wrong_gate_field_is_one_line_naming_it(tmp_path):
    folder = write_domain(tmp_path, "  windowSeconds: 2\n  checks: [latency]\n  onElasticsearchDown: ignore\n")
    with pytest.raises(ConfigError) as raised:
        load_sites(folder, relative_to=tmp_path)
    lines = [str(p) for p in raised.value.problems]
    assert "domains/a.gyyx.cn.yaml: gate.windowSeconds: must be between 10 and 3600, got 2" in lines
    assert any("gate.checks" in line and "'latency' is not a check" in line for line in lines)
    assert "domains/a.gyyx.cn.yaml: gate.onElasticsearchDown: must be fail or warn, got 'ignore'" in lines


class FakeKube:
    def __init__(self, samples: list[Availability]):
        self.samples = samples

    def availability(self, namespace, domain):
        return (self.samples.pop(0) if len(self.samples) > 1 else self.samples[0]), ["a-new-1"]


class FakeElastic:
    def __init__(self, new: dict, before: dict):
        self.new, self.before, self.bodies = new, before, []

    def search(self, index, body):
        self.bodies.append((index, body))
        return self.before if body["query"]["bool"].get("must_not") else self.new


def aggregations(errors=0, responses=0, server_errors=0, pods=1) -> dict:
    return {"aggregations": {"errors": {"doc_count": errors}, "responses": {"doc_count": responses},
                             "server_errors": {"doc_count": server_errors}, "pods": {"value": pods}}}


def watch(kube, elastic, lines, probe=lambda url: True) -> GateWatch:
    clock = Clock()
    return GateWatch(kube, elastic, lines.append, clock=clock, sleep=clock.sleep, probe=probe)


TARGET = GateTarget("a.gyyx.cn", "v2", "develop", "develop", GateRule(window_seconds=20, lag_seconds=5))


def test_the_watcher_samples_through_the_window_and_counts_the_new_pods_against_before():
    lines: list[str] = []
    elastic = FakeElastic(aggregations(errors=40), aggregations(errors=0, pods=1))
    watcher = watch(FakeKube([FULL]), elastic, lines)
    verdict = watcher.run(TARGET, deploy_started=watcher.clock() - 10)
    assert [line.split("|")[0].strip() for line in lines[1:6]] == [f"gate {s:5.0f}/20 s" for s in (0, 5, 10, 15, 20)]
    assert not verdict.passed and [r.check for r in verdict.failed] == ["errors"]
    index, before = elastic.bodies[-1]
    assert index == "a.gyyx.cn-*"
    span = before["query"]["bool"]["filter"][2]["range"]["@timestamp"]
    # The new pods had 30 s (10 before the window, 20 in it); before is the 30 s before the deploy.
    assert (span["gte"], span["lt"]) == ("1970-01-12T13:46:00.000Z", "1970-01-12T13:46:30.000Z")


def test_a_deployment_short_of_replicas_in_the_window_fails_availability():
    lines: list[str] = []
    watcher = watch(FakeKube([FULL, Availability(2, 2, 1, 0), FULL]), None, lines)
    verdict = watcher.run(TARGET, deploy_started=watcher.clock())
    assert [r.check for r in verdict.failed] == ["availability"]
    assert "1 of 5 samples short" in verdict.failed[0].figures
    assert str(verdict.results[1]) == "errors ok (skipped: the stack sets no elasticsearchUrl)"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("on_down, passed", [("fail", False), ("warn", True)])
def test_an_elasticsearch_that_does_not_answer_fails_the_gate_closed(on_down, passed):
    """A real connection to a port nobody listens on."""
    lines: list[str] = []
    target = GateTarget("a.gyyx.cn", "v2", "develop", "develop",
                        GateRule(window_seconds=10, lag_seconds=0, on_elasticsearch_down=on_down))
    watcher = watch(FakeKube([FULL]), ElasticClient(f"http://127.0.0.1:{closed_port()}", "reader", "pw"), lines)
    verdict = watcher.run(target, deploy_started=watcher.clock())
    errors = next(r for r in verdict.results if r.check == "errors")
    assert errors.passed is passed and "Elasticsearch did not answer" in errors.figures
    assert "refused" in errors.figures.lower() and "pw" not in errors.figures


def test_the_health_check_probes_the_url_at_every_sample():
    lines: list[str] = []
    answers = iter([True, False, False, True, True])
    target = GateTarget("a.gyyx.cn", "v2", "develop", "develop",
                        GateRule(window_seconds=20, checks=("health",)), health_url="http://node:31001/health")
    verdict = watch(None, None, lines, probe=lambda url: next(answers)).run(target, deploy_started=0)
    assert [r.check for r in verdict.failed] == ["health"] and "3 of 5 answered" in verdict.results[0].figures


# Pins and freezes in the record, and in history.

PIN = Pin("alice", "2026-12-02T10:00:00Z", "order page broken", "v1")


def test_a_pin_holds_its_domain_and_a_freeze_holds_every_domain():
    maps = SiteMaps({"a.gyyx.cn": "v1"}).with_pin("a.gyyx.cn", PIN)
    assert maps.holds("a.gyyx.cn") == ("a.gyyx.cn", PIN) and maps.holds("b.gyyx.cn") is None
    frozen = maps.with_pin("*", Pin("bob", "2026-12-02T11:00:00Z", "sale"))
    assert frozen.holds("b.gyyx.cn")[0] == "*" and frozen.holds("a.gyyx.cn")[0] == "a.gyyx.cn"
    assert frozen.with_pin("*", None).pins == {"a.gyyx.cn": PIN}


def test_pins_read_back_from_the_config_as_written_and_a_bad_one_is_named():
    written = SiteMaps({"a.gyyx.cn": "v1"}).with_pin("a.gyyx.cn", PIN).config_values()
    values = {key.split(":", 1)[1]: json.dumps(value) for key, value in written.items()}
    assert read_site_maps(values, Problems("x", [])).pins == {"a.gyyx.cn": PIN}
    problems: list = []
    read_site_maps({"pins": {"a.gyyx.cn": {"by": "x", "at": "yesterday", "reason": "r"}, "NOT A": {}}},
                   Problems("Pulumi.develop.yaml", problems))
    assert sorted(str(p) for p in problems) == [
        'Pulumi.develop.yaml: tomcat-cd:pins["NOT A"]: is not a domain such as test.gyyx.cn, nor * (the whole environment)',
        "Pulumi.develop.yaml: tomcat-cd:pins[\"a.gyyx.cn\"].at: must be a UTC time such as 2026-12-02T10:00:00Z, "
        "got 'yesterday'"]


def update(versions: dict, pins: dict | None = None, message: str = "", result: str = "succeeded") -> dict:
    config = {"tomcat-cd:versions": {"value": json.dumps(versions), "secret": False},
              "tomcat-cd:builds": {"value": json.dumps({d: {"gitId": "abc1234"} for d in versions}), "secret": False}}
    if pins:
        config["tomcat-cd:pins"] = {"value": json.dumps(pins), "secret": False}
    return {"kind": "update", "result": result, "message": message, "config": config}


def test_history_marks_the_version_whose_gate_failed_the_rollback_and_the_pin():
    pinned = {"a.gyyx.cn": {"by": "jenkins", "at": "2026-12-02T10:05:00Z", "reason": "gate failed for v2",
                            "version": "v1", "failedVersion": "v2", "failedUpdate": 2}}
    updates = [update({"a.gyyx.cn": "v1"}, message="deploy a.gyyx.cn v1"),
               update({"a.gyyx.cn": "v2"}, message="deploy a.gyyx.cn v2"),
               update({"a.gyyx.cn": "v1"}, pinned, message="rollback a.gyyx.cn to v1 (gate failed ...)"),
               update({"a.gyyx.cn": "v1"}, message="unpin a.gyyx.cn by alice")]
    records = domain_history(list(reversed(updates)), "a.gyyx.cn")
    assert [(r.update, r.version, r.result) for r in records] == [
        (4, "v1", "succeeded"), (3, "v1", "succeeded"), (2, "v2", GATE_FAILED), (1, "v1", "succeeded")]
    assert records[1].pin.startswith("pinned at v1 by jenkins at 2026-12-02T10:05:00Z: gate failed for v2")
    assert records[0].pin == ""
    # The gate-failed version is no rollback target, and a pin is no step back.
    with pytest.raises(ConfigError, match="no earlier version"):
        rollback_target(records, "a.gyyx.cn")


def test_a_build_is_kept_with_a_pin(tmp_path):
    maps = SiteMaps({"a.gyyx.cn": "v1"}, {"a.gyyx.cn": Build("7", "abc1234", "bob")}).with_pin("a.gyyx.cn", PIN)
    assert maps.with_site("a.gyyx.cn", "v1", Build("7", "abc1234", "bob")).pins == maps.pins


def test_a_kubeconfig_that_does_not_read_is_one_line_naming_it(tmp_path):
    from tomcat_cd.driver.kube import KubeError, KubeReader
    with pytest.raises(KubeError, match=f"cannot read kubeconfig {tmp_path}/none"):
        KubeReader.from_kubeconfig(str(tmp_path / "none"))
    broken = tmp_path / "kubeconfig"
    broken.write_text("apiVersion: v1\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:6443', "
                      "certificate-authority-data: bm90IGEgY2VydA==}}]\ncontexts: [{name: x, context: {cluster: c, "
                      "user: u}}]\ncurrent-context: x\nusers: [{name: u, user: {}}]\n")
    with pytest.raises(KubeError, match="cannot use its certificates"):
        KubeReader.from_kubeconfig(str(broken))


def test_the_health_probe_asks_over_http_and_takes_2xx_and_3xx_only():
    """A real HTTP server on loopback, standing for the NodePort."""
    import http.server
    import threading
    from tomcat_cd.driver.gate import answers

    class Site(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            self.send_response({"/health": 200, "/moved": 302}.get(self.path, 503))
            self.send_header("Location", "/health")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        assert answers(f"{base}/health") and answers(f"{base}/moved")
        assert not answers(f"{base}/broken") and not answers(f"http://127.0.0.1:{closed_port()}/health")
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_or_an_abort_in_the_gate_window_leaves_an_interrupted_marker(monkeypatch, capsys, signum, code):
    from cdctl import release_commands

    def watching(*args, **kwargs):
        os.kill(os.getpid(), signum)  # what Ctrl-C or Jenkins' abort sends while the gate waits
        time.sleep(5)
        raise AssertionError("the signal did not stop the gate")

    announced = []
    monkeypatch.setattr(release_commands, "stack_gates", lambda settings: True)
    monkeypatch.setattr(release_commands, "site_of", lambda *a: SimpleNamespace(gate=SimpleNamespace(enabled=True)))
    monkeypatch.setattr(release_commands, "PulumiCli", lambda *a: "cli")
    monkeypatch.setattr(release_commands, "run_gate", watching)
    monkeypatch.setattr(release_commands, "announce_gate", lambda *a: announced.append(a[4:6]))
    change = SimpleNamespace(domain="test.gyyx.cn", version="v1.3.0")
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    assert release_commands.gate_after_deploy(Path("."), SimpleNamespace(stack="master"), change,
                                              SimpleNamespace(number=7), 0.0, refresh=False) == code
    name = signal.Signals(signum).name
    assert announced == [("interrupted", f"interrupted by {name} in its window")]
    assert f"gate interrupted by {name}: test.gyyx.cn runs v1.3.0 without a verdict (update 7)" in capsys.readouterr().err
    assert {s: signal.getsignal(s) for s in handlers} == handlers, "the handlers cdctl had are back"
