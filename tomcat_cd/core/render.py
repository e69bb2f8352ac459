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
    existing = _files_under(root, owned)
    for stale in sorted(existing - set(files) - keep):
        (root / stale).unlink()
    changed = [path for path, data in files.items() if path not in existing or _differs(root / path, data)]
    for folder in sorted({(root / path).parent for path in changed}):
        folder.mkdir(parents=True, exist_ok=True)
    # A new inode is what a file costs most (up to 1 ms here, a hard link 20 us): files of the
    # same bytes (each site's copy of Tomcat's server.xml) are one file, linked. A file is
    # replaced, never written into, so that changing one never changes its twins.
    first_of: dict[bytes, str] = {}
    twins = [(first_of.setdefault(files[path], path), path) for path in changed]
    with ThreadPoolExecutor(max_workers=8) as pool:  # overlaps the file system's latency
        list(pool.map(lambda path: _write(root / path, files[path], replace=path in existing), first_of.values()))
    for first, path in twins:
        if first != path:
            (root / path).unlink(missing_ok=True)
            os.link(root / first, root / path)
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


def _write(path: Path, data: bytes, replace: bool) -> None:
    """`replace`: the file exists (the walk saw it), so a new one takes its place by rename."""
    if replace:
        temporary = path.with_name(f".{path.name}.render")
        temporary.write_bytes(data)
        os.replace(temporary, path)
    else:
        path.write_bytes(data)


def _differs(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size != len(data) or path.read_bytes() != data
    except OSError:
        return True


def _files_under(root: Path, owned: tuple[str, ...]) -> set[str]:
    """Paths relative to `root` of the files and symlinks (a link to a folder too) in `owned`."""
    found: set[str] = set()
    for sub in owned:
        for folder, folders, names in os.walk(root / sub):
            prefix = Path(folder).relative_to(root).as_posix()
            links = [name for name in folders if os.path.islink(os.path.join(folder, name))]
            found.update(name if prefix == "." else f"{prefix}/{name}" for name in names + links)
    return found


def _remove_empty_folders(root: Path) -> None:
    """Below `root`, deepest first (a folder emptied here counts as gone for its parent)."""
    for folder, folders, names in os.walk(root, topdown=False):
        if folder != str(root) and not names and not any(os.path.lexists(os.path.join(folder, name)) for name in folders):
            os.rmdir(folder)
