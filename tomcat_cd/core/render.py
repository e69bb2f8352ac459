"""Writing a StackPlan to files: one Kubernetes object per file, one build context per site.

Writes are a sync: unchanged files are left alone (their times too) and files of
sites no longer deployed are removed, so a re-render costs what changed.
"""

from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from tomcat_cd.core.plan import BuildContext, StackPlan
from tomcat_cd.core.platform_plan import PlatformPlan
from tomcat_cd.core.yamltext import to_yaml

K8S_DIR = "k8s"
BUILD_DIR = "build"
CONFIG_DIR = "config"
HOSTS_DIR = "hosts"
CLUSTER_SCOPED = "_cluster"
WAR = "ROOT.war"


def object_path(obj: dict[str, Any]) -> str:
    """`k8s/<namespace>/<kind>-<name>.yaml`; stable, so a re-render never moves a file."""
    metadata = obj["metadata"]
    folder = metadata.get("namespace") or CLUSTER_SCOPED
    return f"{K8S_DIR}/{folder}/{obj['kind'].lower()}-{metadata['name']}.yaml"


def build_context_files(context: BuildContext) -> dict[str, bytes]:
    """Every file of a build context but the war, by path inside the context."""
    files = {path: text.encode() for path, text in context.files.items()}
    files.update({path: Path(source).read_bytes() for path, source in context.copies.items()})
    files["build.json"] = (json.dumps({"image": context.image, "baseImage": context.base_image,
                                       "war": context.war_source}, indent=2, sort_keys=True) + "\n").encode()
    return files


def plan_files(plan: StackPlan) -> dict[str, bytes]:
    files = {object_path(obj): to_yaml(obj).encode() for obj in plan.objects()}
    for site in plan.sites:
        files.update({f"{BUILD_DIR}/{site.domain}/{path}": data
                      for path, data in build_context_files(site.build).items()})
    return files


def sync_tree(root: Path, files: dict[str, bytes], owned: tuple[str, ...] = ("",), keep: frozenset[str] = frozenset()) -> int:
    """Make the `owned` folders under `root` hold exactly `files` (plus `keep`); returns files written."""
    existing = {p.relative_to(root).as_posix() for sub in owned if (root / sub).is_dir()
                for p in (root / sub).rglob("*") if p.is_file() or p.is_symlink()}
    for stale in sorted(existing - set(files) - keep):
        (root / stale).unlink()
    changed = [path for path, data in files.items() if path not in existing or _differs(root / path, data)]
    for folder in sorted({(root / path).parent for path in changed}):
        folder.mkdir(parents=True, exist_ok=True)
    # Creating files is latency-bound on most file systems: overlap it.
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda path: (root / path).write_bytes(files[path]), changed))
    for sub in owned:
        _remove_empty_folders(root / sub)
    return len(changed)


def write_plan(plan: StackPlan, out: Path) -> list[str]:
    """Write every object and build context under `out`; returns the object files."""
    files = plan_files(plan)
    sync_tree(out, files, owned=(K8S_DIR, BUILD_DIR))
    return sorted(path for path in files if path.startswith(f"{K8S_DIR}/"))


def write_platform(plan: PlatformPlan, out: Path) -> list[str]:
    """Write every platform object, and the files inside its ConfigMaps for review."""
    files = {object_path(obj): to_yaml(obj).encode() for obj in plan.objects()}
    files.update({path: text.encode() for path, text in plan.files.items()})
    sync_tree(out, files, owned=(K8S_DIR, CONFIG_DIR, HOSTS_DIR))
    return sorted(path for path in files if path.startswith(f"{K8S_DIR}/"))


def write_build_context(context: BuildContext, dest: Path, with_war: bool) -> None:
    """Lay a build context out in `dest`; the war is hard-linked (or copied) only when asked."""
    sync_tree(dest, build_context_files(context), keep=frozenset({WAR}) if with_war else frozenset())
    if with_war:
        target = dest / WAR
        target.unlink(missing_ok=True)
        try:
            os.link(context.war_source, target)
        except OSError:
            shutil.copyfile(context.war_source, target)


def _differs(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size != len(data) or path.read_bytes() != data
    except OSError:
        return True


def _remove_empty_folders(root: Path) -> None:
    if not root.is_dir():
        return
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        if not any(folder.iterdir()):
            folder.rmdir()
