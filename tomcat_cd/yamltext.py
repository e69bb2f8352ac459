"""YAML as this project writes it: block style, keys in the order built, no anchors."""

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
