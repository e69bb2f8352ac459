"""Traceability without the engine: status rows and diffs from history shaped as Pulumi prints
it, deploy markers and notifications, and the webhook sender against receivers on 127.0.0.1
(one checks DingTalk's signature as DingTalk documents it)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.parse
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from test_history import built, newest_first, summary
from tomcat_cd.core import conventions
from tomcat_cd.core.diff import default_pair, environment_differences, pick, site_diff
from tomcat_cd.core.errors import ConfigError
from tomcat_cd.core.events import Event, dingtalk_signed_url, events_index, marker, notification
from tomcat_cd.core.history import domain_history
from tomcat_cd.core.settings import Pin, StackSettings
from tomcat_cd.core.status import promotion_problem, site_status, with_gate_marker
from tomcat_cd.driver import events as event_driver
from tomcat_cd.driver.events import Reporter, Webhook, reporter
from tomcat_cd.driver.registry import Registry, plain_http

DOMAIN = "test.gyyx.cn"
DIGEST = "sha256:" + "ab" * 32
PUSHED = f"harbor.gyyx.cn/{DOMAIN}/{DOMAIN}:v1.3.0-develop-bbbbbbb@{DIGEST}"
AT = datetime(2026, 12, 2, 10, 30, tzinfo=timezone.utc)
SECRET = "SEC-test-signing-secret"
URL_TOKEN = "access_token=robot-token-0123"


def with_maps(update: dict, **maps: object) -> dict:
    for key, value in maps.items():
        update["config"][f"tomcat-cd:{key}"] = {"value": json.dumps(value), "secret": False}
    return update


def gate_failed_history() -> list[dict]:
    """v1.2.0, then v1.3.0 (its push recorded by the next update), v1.4.0 whose gate failed,
    and the gate's rollback to v1.3.0, pinned."""
    v12, v13, v14 = built("v1.2.0", "92", "aaaaaaa"), built("v1.3.0", "93", "bbbbbbb"), built("v1.4.0", "94", "ccccccc")
    pin = {"by": "jenkins", "at": "2026-12-02T10:00:00Z", "reason": "gate failed for v1.4.0 in update 3: errors",
           "version": "v1.3.0", "failedVersion": "v1.4.0", "failedUpdate": 3}
    return newest_first(
        summary(1, *v12),
        summary(2, *v13),
        with_maps(summary(3, *v14), images={DOMAIN: [PUSHED]}),
        with_maps(summary(4, *v13, message="rollback test.gyyx.cn to v1.3.0 (gate failed ...)"),
                  images={DOMAIN: [PUSHED]}, pins={DOMAIN: pin}))


def test_status_of_a_gate_rollback_names_the_failed_version_the_pin_and_the_digest():
    row = site_status(DOMAIN, "develop", domain_history(gate_failed_history(), DOMAIN))
    assert (row.version, row.build_id, row.git_id, row.update) == ("v1.3.0", "93", "bbbbbbb", 4)
    assert row.gate == "failed v1.4.0 (update 3), rolled back"
    assert row.pin.startswith("pinned at v1.3.0 by jenkins") and row.digest == DIGEST
    assert with_gate_marker(row, {"update": 4, "result": "passed"}).gate == row.gate  # the history's word stands


def test_status_keeps_the_time_of_the_deploy_across_a_pin_and_reports_a_newer_failure():
    v13 = built("v1.3.0", "93", "bbbbbbb")
    pin = {"by": "ops", "at": "2026-12-02T10:00:00Z", "reason": "sale", "version": "v1.3.0"}
    updates = newest_first(summary(1, *v13), with_maps(summary(2, *v13), pins={DOMAIN: pin}),
                           summary(3, *built("v1.4.0", "94", "ccccccc"), result="failed"))
    row = site_status(DOMAIN, "master", domain_history(updates, DOMAIN))
    assert (row.version, row.update, row.pin.split(":")[0]) == ("v1.3.0", 1, "pinned at v1.3.0 by ops at 2026-12-02T10")
    assert row.last_failure == "update 3 failed" and row.gate == ""
    passed = with_gate_marker(row, {"update": 1, "result": "passed"})
    assert (passed.gate, passed.gate_verdict) == ("passed (update 1)", "passed")
    assert with_gate_marker(row, {"update": 2, "result": "failed"}).gate == "", "a marker of another update"
    odd = with_gate_marker(row, {"update": 1})
    assert (odd.gate, odd.gate_verdict) == ("? (update 1)", ""), "no word, no verdict"


def test_status_of_a_domain_never_deployed_or_deleted():
    assert site_status(DOMAIN, "develop", []).version is None
    updates = newest_first(summary(1, *built("v1.2.0", "92", "aaaaaaa")), summary(2, {}, {}))
    row = site_status(DOMAIN, "develop", domain_history(updates, DOMAIN))
    assert row.version is None and row.update == 2


def test_diff_defaults_to_the_previous_deploy_and_names_updates_or_versions():
    records = domain_history(gate_failed_history(), DOMAIN)
    previous, current = default_pair(records)
    assert (previous.update, current.update) == (3, 4), "after a gate's rollback: what it undid"
    assert [r.update for r in default_pair(records[2:])] == [1, 2]
    assert pick(records, DOMAIN, "v1.2.0", None, "FROM").update == 1
    assert pick(records, DOMAIN, "3", None, "FROM").version == "v1.4.0"
    with pytest.raises(ConfigError, match="'v9' is no update number nor version"):
        pick(records, DOMAIN, "v9", None, "FROM")
    deployment = {"kind": "Deployment", "spec": {"replicas": 1, "template": {"spec": {"containers": [
        {"image": "a", "env": [{"name": "A", "value": "1"}]}]}}}}
    changed = json.loads(json.dumps(deployment))
    changed["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"] = "2"
    diff = site_diff(DOMAIN, previous, current, {"Deployment/x": deployment}, {"Deployment/x": changed})
    assert ("version", "v1.4.0", "v1.3.0") in diff.changed and ("digest", "", DIGEST) in diff.changed
    assert "-            value: '1'\n" in diff.objects and "+            value: '2'\n" in diff.objects
    assert json.loads(json.dumps(diff.as_json()))["to"]["digest"] == DIGEST
    assert site_diff(DOMAIN, current, current, {"D": deployment}, {"D": deployment}).objects == []


def test_environment_differences_leave_out_what_differs_by_design():
    def deployment(env: str, replicas: int, memory: str) -> dict:
        return {"metadata": {"namespace": env}, "spec": {"replicas": replicas, "template": {"spec": {
            "containers": [{"image": f"h/d:v1-{env}-abc", "resources": {"limits": {"memory": memory}}}],
            "volumes": [{"hostPath": {"path": conventions.node_log_dir(env, "devlogs", DOMAIN)}}]}}}}
    found = environment_differences(deployment("develop", 1, "1Gi"), deployment("master", 2, "1Gi"), "develop", "master")
    assert found == [("spec.replicas", 1, 2)]
    found = environment_differences(deployment("develop", 1, "1Gi"), deployment("master", 1, "2Gi"), "develop", "master")
    assert found == [("spec.template.spec.containers[0].resources.limits.memory", "1Gi", "2Gi")]


def test_an_image_tag_reads_back_into_version_environment_and_git_id():
    assert conventions.image_tag_of(PUSHED) == ("v1.3.0", "develop", "bbbbbbb")
    assert conventions.image_tag_of("h:5000/a.b/a.b:v1-rc-1-master-abc1234") == ("v1-rc-1", "master", "abc1234")
    assert conventions.image_tag_of("h/a/a:latest") is None


def event(**fields: object) -> Event:
    values = dict(domain=DOMAIN, environment="develop", action="deploy", result="succeeded", at=AT,
                  version="v1.3.0", image=PUSHED, build_id="93", git_id="bbbbbbb", update=4, by="jenkins")
    values.update(fields)
    return Event(**values)  # type: ignore[arg-type]


def test_a_marker_names_its_fields_as_the_sites_logs_do_in_a_monthly_index():
    doc = marker(event())
    assert events_index(AT) == "tomcat-cd-events-2026.12"
    assert doc["gy"] == {"domain": DOMAIN, "wtype": "develop"} and doc["@timestamp"] == "2026-12-02T10:30:00.000Z"
    assert (doc["action"], doc["result"], doc["digest"], doc["update"], doc["build_id"]) == (
        "deploy", "succeeded", DIGEST, 4, "93")
    gate = marker(event(action="gate", result="failed", gate="errors FAILED (40 error record(s))"))
    assert gate["event"]["kind"] == "gate-failed" and "errors FAILED" in gate["summary"]


@pytest.mark.parametrize("fmt, text_at", [
    ("dingtalk", ("markdown", "text")), ("wecom", ("markdown", "content")), ("slack", ("text",)),
    ("generic", ("summary",))])
def test_each_notification_format_carries_the_summary(fmt, text_at):
    body = notification(event(), fmt)
    text = body
    for key in text_at:
        text = text[key]
    assert "deploy test.gyyx.cn v1.3.0 to develop: succeeded (update 4, build 93, by jenkins)" in text
    if fmt in ("dingtalk", "wecom"):
        assert body["msgtype"] == "markdown"


class Receiver:
    """A webhook receiver on 127.0.0.1: answers each request with the next of `answers`
    (status, body); with `secret`, it checks DingTalk's signature first (403 if wrong)."""

    def __init__(self, answers: list[tuple[int, dict]], secret: str | None = None, delay: float = 0):
        self.answers, self.secret, self.delay, self.bodies = list(answers), secret, delay, []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                time.sleep(receiver.delay)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                status, answer = receiver.answers.pop(0) if receiver.answers else (200, {"errcode": 0})
                if receiver.secret is not None and not receiver.signed(query):
                    status, answer = 403, {"errcode": 310000, "errmsg": "sign not match"}
                receiver.bodies.append((query, body))
                data = json.dumps(answer).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except BrokenPipeError:
                    pass  # the sender gave up waiting: what the timeout test wants

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def signed(self, query: dict[str, list[str]]) -> bool:
        """DingTalk: sign = Base64(HmacSHA256(key=secret, "timestamp\\nsecret")), the timestamp
        in milliseconds and at most an hour from the server's clock."""
        timestamp, sign = query.get("timestamp", [""])[0], query.get("sign", [""])[0]
        if not timestamp.isdigit() or abs(time.time() * 1000 - int(timestamp)) > 3600_000:
            return False
        expected = base64.b64encode(hmac.new(self.secret.encode(), f"{timestamp}\n{self.secret}".encode(),
                                             hashlib.sha256).digest()).decode()
        return hmac.compare_digest(sign, expected)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/robot/send?{URL_TOKEN}"

    def __enter__(self) -> "Receiver":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_dingtalk_accepts_the_signed_request_and_refuses_an_unsigned_or_wrongly_signed_one():
    with Receiver([], secret=SECRET) as robot:
        Webhook(robot.url, "dingtalk", SECRET).send(event())
        query, body = robot.bodies[-1]
        assert query["access_token"] == ["robot-token-0123"] and body["msgtype"] == "markdown"
        with pytest.raises(OSError, match="answered 403") as refused:
            Webhook(robot.url, "dingtalk", "another-secret").send(event())
        with pytest.raises(OSError, match="answered 403"):
            Webhook(robot.url, "dingtalk").send(event())
    assert len(robot.bodies) == 5, "each refused request was tried once more"
    assert SECRET not in str(refused.value) and URL_TOKEN not in str(refused.value)


def test_the_signature_is_dingtalks_own_example_construction():
    url = dingtalk_signed_url("https://oapi.dingtalk.com/robot/send?access_token=x", "s", 1700000000000)
    sign = base64.b64encode(hmac.new(b"s", b"1700000000000\ns", hashlib.sha256).digest()).decode()
    assert url == f"https://oapi.dingtalk.com/robot/send?access_token=x&timestamp=1700000000000&sign=" \
                  f"{urllib.parse.quote_plus(sign)}"


def test_a_failed_send_is_retried_once_and_an_errcode_counts_as_a_failure(monkeypatch):
    monkeypatch.setattr(event_driver, "RETRY_PAUSE_SECONDS", 0)
    with Receiver([(500, {}), (200, {"errcode": 0})]) as robot:
        Webhook(robot.url, "wecom").send(event())
    assert len(robot.bodies) == 2
    with Receiver([(200, {"errcode": 93000, "errmsg": "invalid webhook url"})] * 2) as robot:
        with pytest.raises(OSError, match="errcode 93000"):
            Webhook(robot.url, "wecom").send(event())


def test_a_receiver_that_hangs_costs_the_timeout_twice_and_never_fails_the_report(monkeypatch):
    monkeypatch.setattr(event_driver, "NOTIFY_TIMEOUT_SECONDS", 0.5)
    monkeypatch.setattr(event_driver, "RETRY_PAUSE_SECONDS", 0)
    warnings: list[str] = []
    with Receiver([], delay=2) as robot:
        started = time.monotonic()
        Reporter(None, Webhook(robot.url, "slack"), ("deploy",), warnings.append).report(event())
        took = time.monotonic() - started
    assert 0.9 < took < 2.5 and len(warnings) == 1
    assert warnings[0].startswith("warning: the slack notification was not sent: ") and URL_TOKEN not in warnings[0]


def test_only_the_kinds_notify_on_names_are_sent():
    with Receiver([]) as robot:
        report = Reporter(None, Webhook(robot.url, "generic"), ("gate-failed",), print)
        report.report(event(action="gate", result="passed"))
        report.report(event(action="gate", result="failed"))
    assert [body["event"]["kind"] for _, body in robot.bodies] == ["gate-failed"]


def test_the_reporter_reads_the_url_from_jenkins_credentials_or_the_stack_secret(monkeypatch):
    settings = StackSettings("develop", "develop", "h", notify_url_set=True, notify_format="dingtalk")
    monkeypatch.delenv(event_driver.NOTIFY_URL_ENV, raising=False)
    read: list[str] = []
    made = reporter(settings, lambda key: read.append(key) or "https://robot.example/send", print)
    assert read == ["notifyUrl"] and made.webhook is not None and made.webhook.secret is None
    monkeypatch.setenv(event_driver.NOTIFY_URL_ENV, "https://from-jenkins.example/send")
    monkeypatch.setenv(event_driver.NOTIFY_SECRET_ENV, SECRET)
    made = reporter(settings, lambda key: pytest.fail(f"read {key}"), print)
    assert made.webhook.url == "https://from-jenkins.example/send" and made.webhook.secret == SECRET
    assert SECRET not in repr(made.webhook) and "from-jenkins" not in repr(made.webhook)


def test_a_registry_on_the_loopback_is_reached_without_tls_as_docker_does():
    assert plain_http("127.0.0.1:5000") and plain_http("localhost:5000")
    assert not plain_http("harbor.gyyx.cn") and not plain_http("10.0.0.5:443")
    with pytest.raises(Exception, match="is no image of harbor.gyyx.cn pushed by digest"):
        Registry("harbor.gyyx.cn").tag("harbor.gyyx.cn/a/a:v1", "v1-master-abc")


def test_a_promotion_is_refused_for_a_gate_failure_a_bad_pin_or_another_version():
    records = domain_history(gate_failed_history(), DOMAIN)
    row = site_status(DOMAIN, "develop", records)
    assert promotion_problem(row, None, None) is None, "v1.3.0 runs again and passed before"
    assert promotion_problem(row, None, "v1.4.0") == "runs v1.3.0, not v1.4.0 (--version): nothing was changed"
    bad = Pin("ops", "2026-12-02T10:00:00Z", "corrupts orders", "v1.3.0", failed_version="v1.3.0")
    assert promotion_problem(row, bad, None).startswith("v1.3.0 is pinned as bad: pinned at v1.3.0 by ops")
    failed_marker = with_gate_marker(row, {"update": 4, "result": "failed"})
    assert failed_marker.gate == row.gate, "the history's gate word stands"
    # A first version whose gate failed has nothing to go back to: it stays, and only its gate
    # marker tells.
    alone = domain_history([summary(1, *built("v1.4.0", "94", "ccccccc"))], DOMAIN)
    assert promotion_problem(site_status(DOMAIN, "develop", alone), None, None) is None
    marked = with_gate_marker(site_status(DOMAIN, "develop", alone), {"update": 1, "result": "failed"})
    assert marked.as_json()["gate_verdict"] == "failed"
    assert promotion_problem(marked, None, None) == \
        "v1.4.0's health gate failed (failed (update 1)): it is not promoted"
    unjudged = with_gate_marker(site_status(DOMAIN, "develop", alone), {"update": 1, "result": "interrupted"})
    assert promotion_problem(unjudged, None, None) == \
        "v1.4.0's health gate was interrupted (interrupted (update 1)): deploy it again to have it judged"
