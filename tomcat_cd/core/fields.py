"""What every file format shares: how a value's type and a YAML error are told in a problem
line, and the patterns of Kubernetes quantities and environment variable names."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

QUANTITY = re.compile(r"[0-9]+(\.[0-9]+)?(m|k|Ki|Mi|Gi|Ti|M|G|T)?")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def yaml_problem(err: Exception) -> str:
    """A YAML error as one short line: where, then what."""
    mark = getattr(err, "problem_mark", None)
    what = getattr(err, "problem", None) or " ".join(str(err).split())
    if mark is not None:
        return f"not valid YAML: line {mark.line + 1}, column {mark.column + 1}: {what}"
    return f"not valid YAML: {what}"


def type_name(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__
