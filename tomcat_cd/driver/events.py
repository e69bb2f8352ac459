"""Telling the world what a release did: a deploy marker in Elasticsearch and a webhook
notification. Either one that fails prints a warning and never fails the deploy; the webhook's
URL and signing secret are never printed."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Callable

from tomcat_cd.core.events import Event, dingtalk_signed_url, events_index, marker, notification
from tomcat_cd.core.settings import StackSettings
from tomcat_cd.driver.deploy import SiteChange, who
from tomcat_cd.driver.elastic import ElasticClient, ElasticError
from tomcat_cd.driver.pulumi_cli import EngineError, PulumiCli
from tomcat_cd.driver.record import running_images

NOTIFY_TIMEOUT_SECONDS = 5
NOTIFY_ATTEMPTS = 2
RETRY_PAUSE_SECONDS = 1.0
# Jenkins hands credentials over as environment variables (withCredentials).
NOTIFY_URL_ENV = "TOMCAT_CD_NOTIFY_URL"
NOTIFY_SECRET_ENV = "TOMCAT_CD_NOTIFY_SECRET"


@dataclass(frozen=True)
class Webhook:
    url: str = field(repr=False)
    fmt: str
    secret: str | None = field(default=None, repr=False)
    """DingTalk's signing secret: each request is signed when it is set."""

    def send(self, event: Event, clock: Callable[[], float] = time.time) -> None:
        """POST the event once, and once more after a pause if that failed; raises OSError
        with a reason that names neither the URL nor the secret."""
        body = json.dumps(notification(event, self.fmt), ensure_ascii=False).encode()
        failure = ""
        for attempt in range(NOTIFY_ATTEMPTS):
            if attempt:
                time.sleep(RETRY_PAUSE_SECONDS)
            url = dingtalk_signed_url(self.url, self.secret, int(clock() * 1000)) if self.secret else self.url
            request = urllib.request.Request(url, data=body, method="POST",
                                             headers={"Content-Type": "application/json; charset=utf-8"})
            try:
                with urllib.request.urlopen(request, timeout=NOTIFY_TIMEOUT_SECONDS) as answer:
                    failure = _refusal(self.fmt, answer.read(2000))
                    if not failure:
                        return
            except urllib.error.HTTPError as err:
                failure = f"answered {err.code}"
            except (OSError, ValueError) as err:
                failure = type(err).__name__ if isinstance(err, ValueError) else \
                    str(getattr(err, "reason", None) or type(err).__name__)
        raise OSError(f"{failure} ({NOTIFY_ATTEMPTS} attempts)")


def _refusal(fmt: str, body: bytes) -> str:
    """DingTalk and WeCom answer 200 with `errcode` non-zero when they refuse a message."""
    if fmt not in ("dingtalk", "wecom"):
        return ""
    try:
        answer = json.loads(body or b"{}")
    except ValueError:
        return "answered with no JSON"
    code = answer.get("errcode", 0) if isinstance(answer, dict) else 0
    return f"refused it: errcode {code} {str(answer.get('errmsg', ''))[:200]}" if code else ""


@dataclass
class Reporter:
    """Writes each event's marker and sends the notifications the stack asks for."""

    elastic: ElasticClient | None
    webhook: Webhook | None
    notify_on: tuple[str, ...]
    warn: Callable[[str], None]

    def report(self, event: Event) -> None:
        if self.elastic is not None:
            index = events_index(event.at)
            try:
                self.elastic.index(index, marker(event))
            except ElasticError as err:
                self.warn(f"warning: the deploy marker was not written to {index}: {err}")
        if self.webhook is not None and event.kind in self.notify_on:
            try:
                self.webhook.send(event)
            except OSError as err:
                self.warn(f"warning: the {self.webhook.fmt} notification was not sent: {err}")


def reporter(settings: StackSettings, secret: Callable[[str], str], warn: Callable[[str], None]) -> Reporter:
    """The stack's reporter; `secret` reads a `tomcat-cd:` secret (only those that are set)."""
    elastic = None
    if settings.markers and settings.elasticsearch_url:
        password = _read(secret, "elasticsearchPassword", warn) if settings.elasticsearch_password_set else None
        elastic = ElasticClient(settings.elasticsearch_url, settings.elasticsearch_username, password, timeout=5)
    url = os.environ.get(NOTIFY_URL_ENV) or (_read(secret, "notifyUrl", warn) if settings.notify_url_set else None)
    signing = os.environ.get(NOTIFY_SECRET_ENV) or (
        _read(secret, "notifySecret", warn) if settings.notify_secret_set else None)
    webhook = Webhook(url, settings.notify_format, signing or None) if url else None
    return Reporter(elastic, webhook, settings.notify_on, warn)


def _read(secret: Callable[[str], str], key: str, warn: Callable[[str], None]) -> str | None:
    try:
        return secret(key)
    except Exception as err:  # noqa: BLE001 - reporting never fails a deploy
        warn(f"warning: tomcat-cd:{key} could not be read ({type(err).__name__}): nothing is reported with it")
        return None


def active(settings: StackSettings) -> bool:
    """Whether the stack reports anything: markers or a webhook are configured."""
    return bool((settings.markers and settings.elasticsearch_url) or settings.notify_url_set
                or os.environ.get(NOTIFY_URL_ENV))


def announce(cli: PulumiCli, settings: StackSettings, change: SiteChange, result: str, update: int | None,
             warn: Callable[[str], None], gate: str = "") -> None:
    """The change's marker and notification, when the stack reports: the image is what the
    state says the site runs after it."""
    if not active(settings) or change.record_only:
        return
    try:
        image = running_images(cli.export()).get(change.domain, "") if change.version else ""
    except EngineError:
        image = ""
    build = change.build
    event = Event(change.domain, settings.environment, change.action, result, datetime.now(timezone.utc),
                  change.version, image, build.build_id if build else "", build.git_id if build else "",
                  update, build.by if build else who(), change.message, gate)
    reporter(settings, cli.secret, warn).report(event)


def announce_gate(cli: PulumiCli, settings: StackSettings, change: SiteChange, update: int, result: str,
                  figures: str, warn: Callable[[str], None]) -> None:
    """The gate's verdict on the version `update` deployed, as its own event: `result` is
    passed, failed, or interrupted (Ctrl-C in its window: the version runs unjudged)."""
    verdict = replace(change, action="gate", message=f"gate {result} for update {update}")
    announce(cli, settings, verdict, result, update, warn, figures)
