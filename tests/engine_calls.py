"""Run cdctl as `python -m cdctl` would, writing every Pulumi CLI call it starts to a JSON
file: `python engine_calls.py OUT.json ARGS...` (engine_harness.EngineProject.engine_calls)."""

from __future__ import annotations

import json
import runpy
import subprocess
import sys

calls: list[list[str]] = []
_popen_init = subprocess.Popen.__init__


def _recording_init(self, args, *rest, **kwargs):  # type: ignore[no-untyped-def]
    command = [str(part) for part in (args if isinstance(args, (list, tuple)) else [args])]
    if command and command[0].endswith("/pulumi"):
        calls.append(command[1:])
    _popen_init(self, args, *rest, **kwargs)


if __name__ == "__main__":
    out, sys.argv = sys.argv[1], ["cdctl", *sys.argv[2:]]
    subprocess.Popen.__init__ = _recording_init  # type: ignore[method-assign]
    try:
        runpy.run_module("cdctl", run_name="__main__")
    finally:
        with open(out, "w") as file:
            json.dump(calls, file)
