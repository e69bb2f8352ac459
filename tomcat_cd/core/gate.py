"""The health gate's rule: what a deploy's new version is judged by, and the verdict.

Pure functions from what was observed (Deployment samples, log counts from Elasticsearch,
health answers) to a verdict; tomcat_cd.driver.gate observes, these decide. The rule, as
README's "Health gate" tells it:

- availability: at every sample the Deployment had all its replicas updated and available,
  and the new pods restarted at most `max_restarts` times in all;
- errors: the new pods' error records (Tomcat SEVERE, ERROR in application logs) per pod and
  minute, and their share of 5xx responses: each fails only when it is over its limit AND
  over `worse_factor` times the previous version's figure over an equal window before the
  deploy (so a version as noisy as the one it replaces passes);
- health: the health path answered (2xx/3xx) through the NodePort; fails when it failed at
  two samples in a row or at the last one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from tomcat_cd.core.builders import filebeat

CHECKS = ("availability", "errors", "health")
DEFAULT_CHECKS = ("availability", "errors")
ON_ELASTICSEARCH_DOWN = ("fail", "warn")


# A gate's result, as its marker in Elasticsearch records it and `cdctl promote` reads it back.
VERDICT_PASSED = "passed"
VERDICT_FAILED = "failed"
# Stopped in its window (Ctrl-C): no verdict, so not a pass.
VERDICT_INTERRUPTED = "interrupted"
VERDICTS = (VERDICT_PASSED, VERDICT_FAILED, VERDICT_INTERRUPTED)


@dataclass(frozen=True)
class GateRule:
    """A domain's gate settings (domain file `gate:`), with their defaults."""

    enabled: bool = True
    window_seconds: int = 120
    checks: tuple[str, ...] = DEFAULT_CHECKS
    max_errors_per_minute: float = 5.0
    """Error records per new pod and minute."""
    max_5xx_percent: float = 5.0
    worse_factor: float = 1.5
    max_restarts: int = 0
    lag_seconds: int = 15
    """How long the last count waits for Filebeat to ship the window's lines."""
    on_elasticsearch_down: str = "fail"

    def runs(self, check: str) -> bool:
        return self.enabled and check in self.checks


@dataclass(frozen=True)
class Availability:
    """One sample of the Deployment and its new pods, as the API server tells it."""

    desired: int
    updated: int
    available: int
    restarts: int
    """Container restarts of the new version's pods, in all."""

    @property
    def complete(self) -> bool:
        return self.updated >= self.desired and self.available >= self.desired

    def __str__(self) -> str:
        return f"{self.available}/{self.desired} available, {self.updated} updated, {self.restarts} restart(s)"


@dataclass(frozen=True)
class LogCounts:
    """What one version's pods logged over `seconds`."""

    errors: int
    responses: int
    server_errors: int
    pods: int
    seconds: float

    @property
    def errors_per_pod_minute(self) -> float:
        return self.errors / max(self.pods, 1) / max(self.seconds / 60, 1 / 60)

    @property
    def server_error_percent(self) -> float:
        return 100 * self.server_errors / self.responses if self.responses else 0.0


@dataclass(frozen=True)
class CheckResult:
    check: str
    passed: bool
    figures: str

    def __str__(self) -> str:
        return f"{self.check} {'ok' if self.passed else 'FAILED'} ({self.figures})"


@dataclass(frozen=True)
class Verdict:
    results: tuple[CheckResult, ...]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    @property
    def result(self) -> str:
        return VERDICT_PASSED if self.passed else VERDICT_FAILED

    def line(self, domain: str, version: str) -> str:
        shown = self.failed or self.results
        word = "passed" if self.passed else "FAILED"
        return f"gate {word}: {domain} {version}: " + ("; ".join(map(str, shown)) or "no check ran")

    def reason(self) -> str:
        """The failed checks' figures, short enough for an update message."""
        return "; ".join(f"{r.check}: {r.figures}" for r in self.failed)


def judge_availability(samples: Sequence[Availability], rule: GateRule) -> CheckResult:
    if not samples:
        return CheckResult("availability", False, "the API server gave no sample")
    short = [s for s in samples if not s.complete]
    restarts = max(s.restarts for s in samples)
    if short:
        return CheckResult("availability", False, f"{len(short)} of {len(samples)} samples short, "
                                                   f"the first: {short[0]}")
    if restarts > rule.max_restarts:
        return CheckResult("availability", False, f"{restarts} restart(s) of the new pods (limit {rule.max_restarts})")
    return CheckResult("availability", True, str(samples[-1]))


def worse(new: float, old: float, limit: float, factor: float) -> bool:
    """The errors rule: over the limit and over `factor` times what the previous version had."""
    return new > limit and new > factor * old


def judge_errors(new: LogCounts, old: LogCounts, rule: GateRule) -> list[CheckResult]:
    rate, before = new.errors_per_pod_minute, old.errors_per_pod_minute
    share, share_before = new.server_error_percent, old.server_error_percent
    return [
        CheckResult("errors", not worse(rate, before, rule.max_errors_per_minute, rule.worse_factor),
                    f"{new.errors} error record(s), {rate:.1f}/pod/min; limit {rule.max_errors_per_minute:g}, "
                    f"before {before:.1f}"),
        CheckResult("5xx", not worse(share, share_before, rule.max_5xx_percent, rule.worse_factor),
                    f"{new.server_errors} of {new.responses} response(s), {share:.1f}%; "
                    f"limit {rule.max_5xx_percent:g}%, before {share_before:.1f}%"),
    ]


def judge_health(answers: Sequence[bool], rule: GateRule) -> CheckResult:
    if not answers:
        return CheckResult("health", False, "no answer sampled")
    in_a_row = any(a is False and b is False for a, b in zip(answers, answers[1:]))
    failed = answers.count(False)
    passed = not in_a_row and answers[-1]
    return CheckResult("health", passed, f"{len(answers) - failed} of {len(answers)} answered")


def elasticsearch_down(reason: str, rule: GateRule) -> CheckResult:
    """Fail closed unless the domain says `onElasticsearchDown: warn`."""
    warn = rule.on_elasticsearch_down == "warn"
    return CheckResult("errors", warn, f"Elasticsearch did not answer: {reason}"
                                       + (" (onElasticsearchDown: warn)" if warn else ""))


def verdict(results: Iterable[CheckResult]) -> Verdict:
    return Verdict(tuple(results))


# Elasticsearch requests: one search counts everything a check needs.

def site_filter(domain: str, environment: str) -> list[dict[str, Any]]:
    prefix = filebeat.FIELD_PREFIX
    return [{"term": {f"{prefix}.domain": domain}}, {"term": {f"{prefix}.wtype": environment}}]


def new_pods_query(domain: str, environment: str, pods: Sequence[str]) -> dict[str, Any]:
    """Every record of the new version's pods: a pod's name is its version's."""
    return {"bool": {"filter": [*site_filter(domain, environment),
                                {"terms": {f"{filebeat.FIELD_PREFIX}.pod": sorted(pods)}}]}}


def before_query(domain: str, environment: str, new_pods: Sequence[str], since: str, until: str) -> dict[str, Any]:
    """The site's records in [since, until) (ISO times) of pods other than the new ones."""
    return {"bool": {"filter": [*site_filter(domain, environment),
                                {"range": {"@timestamp": {"gte": since, "lt": until}}}],
                     "must_not": [{"terms": {f"{filebeat.FIELD_PREFIX}.pod": sorted(new_pods)}}]}}


def counts_request(query: dict[str, Any]) -> dict[str, Any]:
    prefix = filebeat.FIELD_PREFIX
    return {
        "size": 0, "track_total_hits": True, "query": query,
        "aggs": {
            "errors": {"filter": {"term": {filebeat.ERROR_FIELD: True}}},
            "responses": {"filter": {"term": {f"{prefix}.ltype": "accesslogs"}}},
            "server_errors": {"filter": {"range": {f"{filebeat.ACCESS_PREFIX}.status": {"gte": 500, "lte": 599}}}},
            "pods": {"cardinality": {"field": f"{prefix}.pod"}},
        },
    }


def counts_of(response: dict[str, Any], seconds: float, pods: int | None = None) -> LogCounts:
    """A search response of counts_request; `pods` overrides the pods seen (the new ones
    count even while silent)."""
    aggs = response.get("aggregations") or {}

    def count(name: str) -> int:
        return int((aggs.get(name) or {}).get("doc_count", 0))

    seen = int((aggs.get("pods") or {}).get("value", 0))
    return LogCounts(count("errors"), count("responses"), count("server_errors"),
                     pods if pods is not None else seen, seconds)
