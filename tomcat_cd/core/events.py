"""What a release did, as one event: the deploy marker written to Elasticsearch beside the
sites' logs, and the chat message a webhook gets (generic JSON, DingTalk, WeCom, Slack).

Pure: the driver (tomcat_cd.driver.events) sends them and never lets a failure stop a deploy.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import urllib.parse
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

from tomcat_cd.core.gate import VERDICT_FAILED

# Actions a marker records; which of them notify is the stack's `notifyOn`.
ACTIONS = ("deploy", "rollback", "promote", "delete", "gate")
# The default `notifyOn`: what a team wants in its chat, not every pin.
NOTIFY_DEFAULT = ("deploy", "rollback", "promote", "gate-failed")
FORMATS = ("generic", "dingtalk", "wecom", "slack")
EVENTS_INDEX_PREFIX = "tomcat-cd-events-"


def events_index(at: datetime) -> str:
    """`tomcat-cd-events-yyyy.MM`: one index a month, beside the sites' `<domain>-*` ones."""
    return f"{EVENTS_INDEX_PREFIX}{at.astimezone(timezone.utc):%Y.%m}"


@dataclass(frozen=True)
class Event:
    """One deploy, rollback, promote, delete or gate verdict of one domain in one environment."""

    domain: str
    environment: str
    action: str
    result: str
    """succeeded or failed; for a gate: passed or failed."""
    at: datetime
    version: str | None = None
    image: str = ""
    """`<tag>@<digest>` when the image was pushed, else the tag or ""."""
    build_id: str = ""
    git_id: str = ""
    update: int | None = None
    by: str = ""
    message: str = ""
    gate: str = ""
    """The gate's figures, one line (gate verdicts and their rollbacks)."""

    @property
    def kind(self) -> str:
        """What `notifyOn` names it by: the action, or `gate-failed` for a failed verdict."""
        return "gate-failed" if self.action == "gate" and self.result == VERDICT_FAILED else self.action

    @property
    def digest(self) -> str:
        return self.image.split("@", 1)[1] if "@" in self.image else ""

    def summary(self) -> str:
        """One line for a person: `deploy test.gyyx.cn v1.2.0 to develop: succeeded (update 12, by jenkins)`."""
        what = f"{self.action} {self.domain} {self.version or ''}".rstrip()
        where = "in" if self.action == "gate" else "to" if self.action in ("deploy", "promote", "rollback") else "from"
        extra = ", ".join(x for x in (f"update {self.update}" if self.update else "",
                                      f"build {self.build_id}" if self.build_id else "",
                                      f"by {self.by}" if self.by else "") if x)
        line = f"{what} {where} {self.environment}: {self.result}" + (f" ({extra})" if extra else "")
        return f"{line}; {self.gate}" if self.gate else line


def marker(event: Event) -> dict[str, Any]:
    """The Elasticsearch document: fields named as the sites' logs name theirs (`gy.domain`,
    `gy.wtype`), so one Discover query shows a release beside its logs."""
    data = asdict(event)
    data.pop("at")
    data.pop("environment")
    data.pop("domain")
    return {"@timestamp": event.at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
            "gy": {"domain": event.domain, "wtype": event.environment},
            "event": {"kind": event.kind},
            **{k: v for k, v in data.items() if v not in (None, "")},
            "digest": event.digest or None,
            "summary": event.summary()}


def notification(event: Event, fmt: str) -> dict[str, Any]:
    """The webhook's JSON body in the receiver's own format."""
    title = f"tomcat-cd: {event.kind} {event.domain} ({event.environment})"
    lines = [event.summary()] + [f"{label}: {value}" for label, value in (
        ("image", event.image), ("git", event.git_id), ("message", event.message)) if value]
    if fmt == "dingtalk":
        return {"msgtype": "markdown", "markdown": {"title": title, "text": f"### {title}\n\n" + "\n\n".join(lines)}}
    if fmt == "wecom":
        return {"msgtype": "markdown", "markdown": {"content": f"**{title}**\n" + "\n".join(lines)}}
    if fmt == "slack":
        return {"text": f"*{title}*\n" + "\n".join(lines)}
    if fmt == "generic":
        return {"title": title, **marker(event)}
    raise ValueError(f"unknown notification format {fmt!r}")


def dingtalk_signed_url(url: str, secret: str, timestamp_ms: int) -> str:
    """DingTalk's signed request: `timestamp` and `sign` = base64(HMAC-SHA256(secret,
    "<timestamp>\\n<secret>")), URL-encoded, added to the robot's webhook URL."""
    text = f"{timestamp_ms}\n{secret}".encode()
    sign = base64.b64encode(hmac.new(secret.encode(), text, hashlib.sha256).digest()).decode()
    separator = "&" if "?" in url else "?"
    return f"{url}{separator}timestamp={timestamp_ms}&sign={urllib.parse.quote_plus(sign)}"
