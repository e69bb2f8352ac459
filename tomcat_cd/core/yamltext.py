"""YAML as this project reads and writes it: block style, keys in the order built, no anchors.

Reading is strict: a duplicate key, or nesting deeper than any domain or stack file
needs, is refused as a `yaml.YAMLError` instead of being read last-wins or crashing the
recursive loader (30,000 levels overflow libyaml's C stack: a segfault, no message).
"""

from __future__ import annotations

import functools
import re
from typing import Any, Iterator

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
    """Block-style YAML, exactly as PyYAML writes it. Most manifests are plain words and
    numbers: those are written here directly, 3x faster than PyYAML's Python representer
    (render writes 400 objects for 200 sites); anything else goes through PyYAML."""
    try:
        return "".join(_block(obj, "", in_sequence=False)) if isinstance(obj, dict) and obj else _pyyaml(obj)
    except _NotPlain:
        return _pyyaml(obj)


def _pyyaml(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_PlainDumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=1000)


class _NotPlain(Exception):
    """A value PyYAML would quote, fold or write in flow style: let PyYAML write the document."""


# Characters PyYAML writes unquoted in a block scalar, or at worst in single quotes; the
# first one is narrower (an indicator such as ":", "@" or "#" may not start a plain scalar).
_PLAIN = re.compile(r"""[A-Za-z0-9_./=+~$()<^;\\-][A-Za-z0-9_./=+~$()<>^;\\:@,!&*%?|"\[\]{} -]*""")
_STR_TAG = "tag:yaml.org,2002:str"


@functools.lru_cache(maxsize=4096)
def _plain(text: str) -> str:
    """The text as PyYAML writes it: bare, or in single quotes where it would read as
    something else ("true", "8080", "a: b")."""
    if not _PLAIN.fullmatch(text):
        raise _NotPlain(text)
    if (text.endswith((" ", ":")) or ": " in text or text == "-" or text.startswith(("- ", "---", "..."))
            or _PlainDumper.resolve(_PlainDumper, yaml.ScalarNode, text, (True, False)) != _STR_TAG):
        return f"'{text}'"
    return text


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return _plain(value)
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if value is None:
        return "null"
    raise _NotPlain(repr(value))


def _block(node: Any, indent: str, in_sequence: bool) -> Iterator[str]:
    """Lines of a non-empty mapping or sequence at `indent`; `in_sequence` when it opens a
    sequence item (its first line follows the item's "- ")."""
    first = in_sequence
    if isinstance(node, dict):
        for key, value in node.items():
            if not isinstance(key, str):
                raise _NotPlain(repr(key))
            lead = "" if first else indent
            first = False
            yield from _entry(f"{lead}{_plain(key)}:", value, nested=indent + "  ", sequence_indent=indent, item=False)
    else:
        for item in node:
            if isinstance(item, list) and item:
                raise _NotPlain("a sequence in a sequence")
            lead = "" if first else indent
            first = False
            yield from _entry(f"{lead}-", item, nested=indent + "  ", sequence_indent=indent + "  ", item=True)


def _entry(head: str, value: Any, nested: str, sequence_indent: str, item: bool) -> Iterator[str]:
    """A key's or a sequence item's lines; PyYAML does not indent a sequence under its key."""
    if isinstance(value, dict) and value:
        yield head + (" " if item else "\n")
        yield from _block(value, nested, in_sequence=item)
    elif isinstance(value, list) and value:
        yield head + "\n"
        yield from _block(value, sequence_indent, in_sequence=False)
    elif isinstance(value, (dict, list)):
        yield f"{head} {'{}' if isinstance(value, dict) else '[]'}\n"
    else:
        yield f"{head} {_scalar(value)}\n"


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
