"""YAML as this project reads and writes it: block style, keys in the order built, no anchors.

Reading is strict: a duplicate key, or nesting deeper than any domain or stack file
needs, is refused as a `yaml.YAMLError` instead of being read last-wins or crashing the
recursive loader (30,000 levels overflow libyaml's C stack: a segfault, no message).
"""

from __future__ import annotations

from typing import Any

import yaml

# Deeper than any real file (a domain file nests 3 levels, the inventory 5).
MAX_DEPTH = 32

_FAST = hasattr(yaml, "CSafeLoader")
_PARSER = yaml.CSafeLoader if _FAST else yaml.SafeLoader


class _PlainDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    """Writes repeated values out in full: manifests are read by people, not only parsers."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _no_duplicate_keys(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise yaml.constructor.ConstructorError(
                None, None, "a mapping key must be a plain value", key_node.start_mark) from None
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first on line {seen[key].start_mark.line + 1})",
                key_node.start_mark)
        seen[key] = key_node
    return loader.construct_mapping(node, deep=deep)


class _StrictFastLoader(_PARSER):  # type: ignore[misc,valid-type]
    pass


class _StrictPureLoader(yaml.SafeLoader):
    pass


for _loader in (_StrictFastLoader, _StrictPureLoader):
    _loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicate_keys)


def to_yaml(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_PlainDumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=1000)


def _check_depth(text: str) -> None:
    """Refuse deep nesting from the event stream, which is read without recursion."""
    depth = 0
    for event in yaml.parse(text, Loader=_PARSER):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                line = f" (line {event.start_mark.line + 1})" if event.start_mark else ""
                raise yaml.YAMLError(f"nested deeper than {MAX_DEPTH} levels{line}")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def load_yaml(text: str) -> Any:
    """`yaml.safe_load`, strict (see above), through libyaml when PyYAML has it (about 10x
    faster: a deploy reads every domain file twice). A document libyaml refuses is read
    again by the pure-Python loader, whose messages are the ones users see; every refusal
    is a `yaml.YAMLError`."""
    refused: yaml.YAMLError | None = None
    try:
        _check_depth(text)
        if _FAST:
            return yaml.load(text, Loader=_StrictFastLoader)
    except yaml.constructor.ConstructorError:
        raise
    except yaml.YAMLError as err:
        if not _FAST or "nested deeper" in str(err):
            raise
        refused = err
    try:
        return yaml.load(text, Loader=_StrictPureLoader)
    except (ValueError, OverflowError) as err:  # PyYAML's own slip on an escape such as "\UFFFFFFFF"
        raise refused or yaml.YAMLError(str(err)) from None
