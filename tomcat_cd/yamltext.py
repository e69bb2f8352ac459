"""YAML as this project reads and writes it: block style, keys in the order built, no anchors."""

from __future__ import annotations

from typing import Any

import yaml


class _PlainDumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):
    """Writes repeated values out in full: manifests are read by people, not only parsers."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def to_yaml(obj: Any) -> str:
    return yaml.dump(obj, Dumper=_PlainDumper, sort_keys=False, default_flow_style=False,
                     allow_unicode=True, width=1000)


def load_yaml(text: str) -> Any:
    """`yaml.safe_load`, through libyaml when PyYAML has it (about 10x faster: a deploy reads
    every domain file twice). A document libyaml refuses is read again by the pure-Python
    loader, whose messages are the ones users see; every refusal is a `yaml.YAMLError`."""
    fast = getattr(yaml, "CSafeLoader", None)
    refused: yaml.YAMLError | None = None
    if fast is not None:
        try:
            return yaml.load(text, Loader=fast)
        except yaml.YAMLError as err:
            refused = err
    try:
        return yaml.safe_load(text)
    except (ValueError, OverflowError) as err:  # PyYAML's own slip on an escape such as "\UFFFFFFFF"
        raise refused or yaml.YAMLError(str(err)) from None
