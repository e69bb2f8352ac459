"""Generated projects of N domains, for the benchmarks."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent


def make_project(domains: int, root: Path | None = None) -> Path:
    """A project with `domains` sites, all deployed in both stacks."""
    root = root or Path(tempfile.mkdtemp(prefix=f"bench-{domains}-"))
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "Pulumi.yaml", root)
    (root / "domains").mkdir(parents=True, exist_ok=True)
    versions = {}
    for i in range(domains):
        domain = f"site{i:03d}.bench.example.com"
        (root / "domains" / f"{domain}.yaml").write_text(yaml.safe_dump({
            "nodePort": 32001 + i,
            "replicas": {"master": 2, "develop": 1},
            "hosts": [f"10.0.{i // 250}.{i % 250 + 1} db{i}.internal"],
            "env": {"SITE_INDEX": str(i)},
        }))
        versions[domain] = f"v1.{i}.0"
    for stack in ("master", "develop"):
        (root / f"Pulumi.{stack}.yaml").write_text(yaml.safe_dump({"config": {
            "tomcat-cd:harborHost": "harbor.bench.example.com",
            "tomcat-cd:buildImages": False,
            "tomcat-cd:versions": versions,
        }}))
    return root
