"""Tool versions pinned in scripts/versions.env, the one file every script sources.

`tomcat_cd/versions.env` links to it, so an installed wheel carries the same file."""

from __future__ import annotations

import functools
import re
from pathlib import Path

VERSIONS_FILE = Path(__file__).parent / "versions.env"


@functools.cache
def pinned() -> dict[str, str]:
    values = {}
    for line in VERSIONS_FILE.read_text().splitlines():
        match = re.fullmatch(r"([A-Z][A-Z0-9_]*)=([^\s$]+)", line.strip())
        if match:
            values[match.group(1)] = match.group(2)
    return values


def kubernetes_version() -> str:
    return pinned()["KUBERNETES_VERSION"]
