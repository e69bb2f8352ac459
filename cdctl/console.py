"""Where cdctl's progress and warning lines go."""

from __future__ import annotations

import sys


def warn(line: str) -> None:
    """A progress or warning line: on stderr, so --json output stays clean."""
    print(line, file=sys.stderr)
