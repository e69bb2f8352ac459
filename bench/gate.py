"""Benchmark: the health gate's own cost beyond its window, against real Elasticsearch
holding 200 domains' logs.

  .venv/bin/python -m bench.gate [--domains 200] [--docs 600] [--repeat 20]

Elasticsearch 8.19 (scripts/pipeline, on 127.0.0.1, state in a temporary folder) gets the
program's index template and, per domain, `--docs` records of the last ten minutes in its
daily index: access-log lines with a status, Tomcat records, some of them errors, from two
old pods (and, for the judged domain, one new pod). Then the gate runs with a zero window and
no lag, so what is timed is its work alone: one live sample and the two counts of the verdict
(new pods, and the previous version's equal window), and the decision. The API server's
part is a stub here (three GETs; bench.cluster has the cluster's figures).

Target: under 1 s per verdict with 200 domains' logs in the cluster.
"""

from __future__ import annotations

import argparse
import datetime
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.fixtures import REPO

sys.path[:0] = [str(REPO / "tests")]

from pipeline.harness import start_pipeline, stop_pipeline  # noqa: E402
from pipeline.logs import Elastic, bulk_index, records, without_lifecycle  # noqa: E402
from tomcat_cd.core.builders import filebeat  # noqa: E402
from tomcat_cd.core.gate import Availability, GateRule  # noqa: E402
from tomcat_cd.driver.elastic import ElasticClient  # noqa: E402
from tomcat_cd.driver.gate import GateTarget, GateWatch  # noqa: E402

TARGET_SECONDS = 1.0
ENV = "develop"
NEW_POD = "judged-new-1"


class StubKube:
    def availability(self, namespace: str, domain: str) -> tuple[Availability, list[str]]:
        return Availability(1, 1, 1, 0), [NEW_POD]


def load(admin: Elastic, domains: list[str], per_domain: int) -> int:
    """Each domain's records of the last ten minutes from two old pods (the judged one: a new
    pod too), one error in 20 and one 5xx in 25 responses."""
    today = f"{datetime.datetime.now(datetime.timezone.utc):%Y.%m.%d}"
    total = 0
    for position, domain in enumerate(domains):
        pods = [f"{domain}-old-0", f"{domain}-old-1"] + ([NEW_POD] if position == 0 else [])
        share = per_domain // len(pods)
        docs = [doc for pod in pods for doc in records(domain, ENV, pod, share, errors=share // 20,
                                                       server_errors=share // 50, seconds=600)]
        bulk_index(admin, f"{domain}-{today}", docs)
        total += len(docs)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--domains", type=int, default=200)
    parser.add_argument("--docs", type=int, default=600, help="records per domain")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-gate-") as work:
        print("starting Elasticsearch (scripts/pipeline) ...", file=sys.stderr)
        pipe = start_pipeline(Path(work) / "pipeline", parts="elasticsearch")
        try:
            url, password = pipe.endpoints["elasticsearch"]["url"], pipe.secret("elasticsearch")
            admin = Elastic(url, "elastic", password)
            domains = [f"site{n:03d}.gyyx.cn" for n in range(args.domains)]
            admin.request("PUT", f"/_index_template/{filebeat.INDEX_TEMPLATE}",
                          without_lifecycle(filebeat.index_template(domains, 1)))
            started = time.perf_counter()
            total = load(admin, domains, args.docs)
            print(f"indexed {total} records of {len(domains)} domains in {time.perf_counter() - started:.1f} s",
                  file=sys.stderr)
            reader = ElasticClient(url, "elastic", password)
            target = GateTarget(domains[0], "v2", ENV, ENV, GateRule(window_seconds=0, lag_seconds=0))
            samples, verdict = [], None
            for _ in range(args.repeat):
                watch = GateWatch(StubKube(), reader, out=lambda line: None)
                began = time.perf_counter()
                verdict = watch.run(target, deploy_started=time.time() - 300)
                samples.append(time.perf_counter() - began)
        finally:
            stop_pipeline(pipe)
    assert verdict is not None
    samples.sort()
    median, worst = statistics.median(samples), samples[-1]
    print(f"\nhealth gate beyond its window, {args.domains} domains x {args.docs} records in Elasticsearch 8.19:")
    print(f"  one verdict (a live sample + 2 counts + the decision): median {median * 1000:.0f} ms, "
          f"worst {worst * 1000:.0f} ms over {args.repeat} runs")
    print(f"  the verdict it reached: {verdict.line(domains[0], 'v2')}")
    print(f"target (< {TARGET_SECONDS:g} s): {'met' if worst < TARGET_SECONDS else 'MISSED'}")


if __name__ == "__main__":
    main()
