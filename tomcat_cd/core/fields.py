"""Typed reads of YAML/config mappings that record a problem instead of raising.

Both the domain files and the stack settings go through these readers, so a
wrong type reads the same way wherever it is found.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from tomcat_cd.core.errors import Problems

_MISSING = object()

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


class Reader:
    """Reads fields of one mapping; each bad field becomes one problem and a default."""

    def __init__(self, data: Mapping[str, Any], problems: Problems, prefix: str = "",
                 decode_json: bool = False):
        self.data = data
        self.problems = problems
        self.prefix = prefix
        # Pulumi hands structured config to programs as JSON text.
        self.decode_json = decode_json

    def path(self, key: str) -> str:
        """The field's name in messages; `prefix` carries its own separator."""
        return f"{self.prefix}{key}"

    def _get(self, key: str, required: bool) -> Any:
        value = self.data.get(key, _MISSING)
        if value is _MISSING or value is None:
            if required:
                self.problems.add(self.path(key), "is required")
            return _MISSING
        return value

    def _wrong(self, key: str, expected: str, value: Any) -> None:
        self.problems.add(self.path(key), f"must be {expected}, got {type_name(value)}")

    def integer(self, key: str, default: Any = _MISSING, low: int | None = None,
                high: int | None = None) -> Any:
        value = self._get(key, default is _MISSING)
        if value is _MISSING:
            return None if default is _MISSING else default
        if self.decode_json and isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self._wrong(key, "an integer", value)
            return None if default is _MISSING else default
        if (low is not None and value < low) or (high is not None and value > high):
            self.problems.add(self.path(key), f"must be between {low} and {high}, got {value}")
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key, False)
        if value is _MISSING:
            return default
        if self.decode_json and isinstance(value, str) and value in ("true", "false"):
            return value == "true"
        if not isinstance(value, bool):
            self._wrong(key, "true or false", value)
            return default
        return value

    def string(self, key: str, default: Any = _MISSING, pattern: re.Pattern[str] | None = None,
               what: str = "") -> Any:
        value = self._get(key, default is _MISSING)
        if value is _MISSING:
            return None if default is _MISSING else default
        if not isinstance(value, str):
            self._wrong(key, "a string", value)
            return None if default is _MISSING else default
        if pattern is not None and not pattern.fullmatch(value):
            self.problems.add(self.path(key), f"must be {what}, got {value!r}")
        return value

    def string_list(self, key: str) -> tuple[str, ...]:
        value = self._structured(self._get(key, False))
        if value is _MISSING:
            return ()
        if not isinstance(value, list):
            self._wrong(key, "a list of strings", value)
            return ()
        items = []
        for index, item in enumerate(value):
            if not isinstance(item, str):
                self.problems.add(f"{self.path(key)}[{index}]", f"must be a string, got {type_name(item)}")
            else:
                items.append(item)
        return tuple(items)

    def items(self, key: str) -> list[Any]:
        """A list of anything (each item checked by the caller); empty when absent."""
        value = self._structured(self._get(key, False))
        if value is _MISSING:
            return []
        if not isinstance(value, list):
            self._wrong(key, "a list", value)
            return []
        return value

    def mapping(self, key: str, required: bool = False) -> Mapping[str, Any] | None:
        value = self._structured(self._get(key, required))
        if value is _MISSING:
            return None
        if not isinstance(value, Mapping):
            self._wrong(key, "a mapping", value)
            return None
        return value

    def nested(self, key: str) -> "Reader":
        """A reader over a sub-mapping (empty when absent or of the wrong type)."""
        return Reader(self.mapping(key) or {}, self.problems, self.path(key) + ".", self.decode_json)

    def string_map(self, key: str, key_pattern: re.Pattern[str], key_what: str) -> dict[str, str]:
        result: dict[str, str] = {}
        for name, value in (self.mapping(key) or {}).items():
            field = f"{self.path(key)}.{name}"
            if not isinstance(name, str) or not key_pattern.fullmatch(name):
                self.problems.add(field, f"name must be {key_what}")
            elif isinstance(value, bool) or not isinstance(value, (str, int, float)):
                self.problems.add(field, f"must be a string, got {type_name(value)}")
            else:
                result[name] = str(value)
        return dict(sorted(result.items()))

    def reject_unknown(self, known: set[str]) -> None:
        for key in self.data:
            if key not in known:
                hint = ", ".join(sorted(known))
                self.problems.add(self.path(str(key)), f"unknown key (known keys: {hint})")

    def _structured(self, value: Any) -> Any:
        if self.decode_json and isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value
