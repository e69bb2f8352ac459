"""The git id of the CD configuration's checkout, read from `.git` itself (no `git` process:
a render or a deploy asks for it once, and the core runs no programs)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from tomcat_cd.core.errors import ConfigError, Problem, raise_if_any
from tomcat_cd.core.stack_file import GIT_ID
_FULL_ID = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


def _git_dir(project_dir: Path) -> Path | None:
    for folder in (project_dir, *project_dir.parents):
        dot_git = folder / ".git"
        if dot_git.is_dir():
            return dot_git
        if dot_git.is_file():  # a worktree or submodule: "gitdir: <path>"
            text = dot_git.read_text(encoding="utf-8").strip()
            if text.startswith("gitdir:"):
                target = Path(text[len("gitdir:"):].strip())
                return target if target.is_absolute() else (folder / target).resolve()
    return None


def _common_dir(git_dir: Path) -> Path:
    """Where refs live: a worktree's git dir names the repository's own in `commondir`."""
    common = git_dir / "commondir"
    if common.is_file():
        target = Path(common.read_text(encoding="utf-8").strip())
        return target if target.is_absolute() else (git_dir / target).resolve()
    return git_dir


def head_commit(project_dir: Path) -> str | None:
    """HEAD's full commit id, or None outside a checkout or before its first commit."""
    git_dir = _git_dir(project_dir)
    if git_dir is None or not (git_dir / "HEAD").is_file():
        return None
    head = (git_dir / "HEAD").read_text(encoding="utf-8").strip()
    if _FULL_ID.fullmatch(head):
        return head  # detached
    if not head.startswith("ref: "):
        return None
    ref = head[len("ref: "):]
    for folder in dict.fromkeys((git_dir, _common_dir(git_dir))):
        loose = folder / ref
        if loose.is_file():
            commit = loose.read_text(encoding="utf-8").strip()
            return commit if _FULL_ID.fullmatch(commit) else None
        packed = folder / "packed-refs"
        if packed.is_file():
            for line in packed.read_text(encoding="utf-8").splitlines():
                commit, _, name = line.partition(" ")
                if name == ref and _FULL_ID.fullmatch(commit):
                    return commit
    return None


def cd_git_id(project_dir: Path) -> str:
    """The short git id of the CD configuration; `CD_GIT_ID` overrides it."""
    given = os.environ.get("CD_GIT_ID")
    if given is not None:
        if not GIT_ID.fullmatch(given):
            raise_if_any([Problem("environment", "CD_GIT_ID", f"must be a hex git id of 7-40 digits, got {given!r}")])
        return given[:7]
    commit = head_commit(project_dir)
    if commit is None:
        raise ConfigError([Problem(str(project_dir), "", "not a git checkout with a commit: set CD_GIT_ID")])
    return commit[:7]
