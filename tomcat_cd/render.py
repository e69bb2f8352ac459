"""Writing a StackPlan to files: one Kubernetes object per file, one build context per site."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from tomcat_cd.plan import BuildContext, StackPlan

K8S_DIR = "k8s"
BUILD_DIR = "build"
CLUSTER_SCOPED = "_cluster"


class _PlainDumper(yaml.SafeDumper):
    """Writes repeated values out in full: manifests are read by people, not only parsers."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_PlainDumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=1000)


def object_path(obj: dict[str, Any]) -> str:
    """`k8s/<namespace>/<kind>-<name>.yaml`; stable, so a re-render never moves a file."""
    metadata = obj["metadata"]
    folder = metadata.get("namespace") or CLUSTER_SCOPED
    return f"{K8S_DIR}/{folder}/{obj['kind'].lower()}-{metadata['name']}.yaml"


def write_build_context(context: BuildContext, dest: Path, with_war: bool) -> None:
    """Lay a build context out in `dest`; the war is hard-linked (or copied) only when asked."""
    if dest.exists():
        shutil.rmtree(dest)
    for relative, text in context.files.items():
        _write(dest / relative, text)
    for relative, source in context.copies.items():
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    _write(dest / "build.json", json.dumps(
        {"image": context.image, "baseImage": context.base_image, "war": context.war_source},
        indent=2, sort_keys=True) + "\n")
    if with_war:
        target = dest / "ROOT.war"
        try:
            os.link(context.war_source, target)
        except OSError:
            shutil.copyfile(context.war_source, target)


def write_plan(plan: StackPlan, out: Path) -> list[Path]:
    """Write every object and build context under `out`, replacing an earlier render."""
    written = []
    for sub in (K8S_DIR, BUILD_DIR):
        if (out / sub).exists():
            shutil.rmtree(out / sub)
    for obj in plan.objects():
        path = out / object_path(obj)
        _write(path, to_yaml(obj))
        written.append(path)
    for site in plan.sites:
        write_build_context(site.build, out / BUILD_DIR / site.domain, with_war=False)
    return written


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
