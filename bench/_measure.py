"""Run one measured job in a fresh interpreter and print `seconds peak_kib` on the last line.

  python -m bench._measure render PROJECT STACK OUT
  python -m bench._measure mocks PROJECT STACK
"""

from __future__ import annotations

import contextlib
import io
import resource
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def main() -> None:
    job, project, stack = sys.argv[1], Path(sys.argv[2]), sys.argv[3]
    sys.path[:0] = [str(REPO), str(REPO / "tests")]
    start = time.perf_counter()
    if job == "render":
        from cdctl.cli import main as cdctl
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            code = cdctl(["--project-dir", str(project), "render", "--stack", stack, "--out", sys.argv[4]])
        assert code == 0, code
    else:
        from pulumi_harness import run_program
        import yaml
        config = yaml.safe_load((project / f"Pulumi.{stack}.yaml").read_text())["config"]
        run_program(project, stack, {k.split(":", 1)[1]: v for k, v in config.items()})
    elapsed = time.perf_counter() - start
    print(f"{elapsed:.4f} {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}")


if __name__ == "__main__":
    main()
