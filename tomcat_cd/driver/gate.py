"""Watching a deployed version for its gate window: samples the API server, Elasticsearch and
the health path, prints one live line per sample, then judges (tomcat_cd.core.gate)."""

from __future__ import annotations

import time
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from tomcat_cd.core import gate
from tomcat_cd.core.gate import Availability, CheckResult, GateRule, LogCounts, Verdict
from tomcat_cd.driver.elastic import ElasticError, ElasticClient
from tomcat_cd.driver.kube import KubeError, KubeReader

SAMPLE_SECONDS = 5.0
HEALTH_TIMEOUT_SECONDS = 5


@dataclass(frozen=True)
class GateTarget:
    """The version a deploy just put in place, and how its gate runs."""

    domain: str
    version: str
    environment: str
    namespace: str
    rule: GateRule
    health_url: str | None = None
    """http://<node>:<nodePort><probe path>, when the health check runs."""


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=HEALTH_TIMEOUT_SECONDS) as response:
            return bool(200 <= response.status < 400)
    except OSError:
        return False


@dataclass
class GateWatch:
    kube: KubeReader | None
    elastic: ElasticClient | None
    out: Callable[[str], None] = print
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    probe: Callable[[str], bool] = answers
    samples: list[Availability] = field(default_factory=list)

    def run(self, target: GateTarget, deploy_started: float) -> Verdict:
        """Watch for the window from now; `deploy_started` opens the time the new pods had
        (their records count from it) and, before it, the previous version's equal window."""
        rule = target.rule
        started = self.clock()
        ends = started + rule.window_seconds
        self.out(f"gate: watching {target.domain} {target.version} for {rule.window_seconds} s "
                 f"({', '.join(c for c in gate.CHECKS if rule.runs(c))})")
        pods: list[str] = []
        kube_problem: str | None = None
        health: list[bool] = []
        while True:
            now = self.clock()
            line = [f"gate {min(now, ends) - started:5.0f}/{rule.window_seconds} s"]
            if self.kube is not None:
                try:
                    sample, pods = self.kube.availability(target.namespace, target.domain)
                    self.samples.append(sample)
                    line.append(f"availability {sample}")
                except KubeError as err:
                    kube_problem = str(err)
                    line.append(f"availability unknown: {err}")
            if rule.runs("errors") and self.elastic is not None and pods:
                try:
                    counts = self._counts(gate.new_pods_query(target.domain, target.environment, pods),
                                          target.domain, now - deploy_started, len(pods))
                    line.append(f"errors {counts.errors}, 5xx {counts.server_errors} of {counts.responses}")
                except ElasticError as err:
                    line.append(f"errors unknown: {err}")
            if rule.runs("health") and target.health_url:
                health.append(self.probe(target.health_url))
                line.append(f"health {'ok' if health[-1] else 'no answer'}")
            self.out("  " + " | ".join(line))
            if now >= ends:
                break
            self.sleep(min(SAMPLE_SECONDS, ends - now))
        return gate.verdict(self._judge(target, deploy_started, pods, health, kube_problem))

    def _counts(self, query: dict[str, Any], domain: str, seconds: float, pods: int | None = None) -> LogCounts:
        assert self.elastic is not None
        response = self.elastic.search(f"{domain}-*", gate.counts_request(query))
        return gate.counts_of(response, seconds, pods)

    def _judge(self, target: GateTarget, deploy_started: float, pods: list[str], health: list[bool],
               kube_problem: str | None) -> list[CheckResult]:
        rule = target.rule
        results = []
        if rule.runs("availability"):
            results.append(gate.judge_availability(self.samples, rule) if self.kube is not None else
                           CheckResult("availability", False, "no API server to ask (render mode?)"))
            if kube_problem and not self.samples:
                results[-1] = CheckResult("availability", False, f"the API server did not answer: {kube_problem}")
        if rule.runs("errors"):
            results += self._judge_errors(target, deploy_started, pods)
        if rule.runs("health"):
            results.append(gate.judge_health(health, rule) if target.health_url else
                           CheckResult("health", False, "no node address to reach the NodePort at"))
        return results

    def _judge_errors(self, target: GateTarget, deploy_started: float, pods: list[str]) -> list[CheckResult]:
        rule = target.rule
        if self.elastic is None:
            return [CheckResult("errors", True, "skipped: the stack sets no elasticsearchUrl")]
        if not pods:
            return [CheckResult("errors", False, "the new version has no pods to read the logs of")]
        if rule.lag_seconds:
            self.out(f"gate: waiting {rule.lag_seconds} s for the last lines to be shipped")
            self.sleep(rule.lag_seconds)
        had = self.clock() - rule.lag_seconds - deploy_started
        try:
            new = self._counts(gate.new_pods_query(target.domain, target.environment, pods), target.domain,
                               had, len(pods))
            old = self._counts(gate.before_query(target.domain, target.environment, pods,
                                                 iso(deploy_started - had), iso(deploy_started)), target.domain, had)
        except ElasticError as err:
            return [gate.elasticsearch_down(str(err), rule)]
        return gate.judge_errors(new, old, rule)
