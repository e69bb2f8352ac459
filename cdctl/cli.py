"""`cdctl` command line: argument parsing and output; the work happens in tomcat_cd."""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from cdctl import parsers
from tomcat_cd.driver.engine import EngineMissing
from tomcat_cd.driver.pulumi_cli import EngineError
from tomcat_cd.core.errors import EXIT_BAD_INPUT, ConfigError

DESCRIPTION = """\
Continuous deployment of Tomcat web sites on Kubernetes, with Pulumi.

Each site is a domain file domains/<domain>.yaml; each environment is a Pulumi
stack (master = production, develop = test) whose tomcat-cd:versions map says
which version of which site it runs.
"""

EPILOG = """\
examples:
  cdctl check                                   validate every domain file
  cdctl schema > schemas/domain.schema.json     the JSON Schema editors check domain files with
  cdctl render --stack develop --out out/       write what the develop stack deploys
  cdctl render --stack master --out out/ --version test.gyyx.cn=v1.3.0
  cdctl render --stack platform --out out/      logging, monitoring, and the host scripts (out/hosts/)
  cdctl deploy test.gyyx.cn --version v1.3.0 --env develop --build-id 92 --yes
  cdctl history test.gyyx.cn --env develop
  cdctl rollback test.gyyx.cn --env develop --yes
  cdctl status                                  what runs where (--json, --html DIR for a page)
  cdctl diff test.gyyx.cn --env develop         what the last deploy changed (or: ... 12 15)
  cdctl promote test.gyyx.cn --version v1.3.0   develop's tested image to master, by digest
  cdctl pin test.gyyx.cn --env master --reason "order page broken in v1.4"
  cdctl freeze --env master --reason "11.11 sale: no deploys until the 12th"
  cdctl delete test.gyyx.cn --env develop --yes
  cdctl pulumi up -s develop                    the real Pulumi CLI, in local mode

exit codes: 0 ok, 1 failure, 2 bad input (domain file, stack file, arguments) or a pin/freeze
  refused it, 3 drift found (cdctl drift), 4 the health gate failed and the domain was rolled back
"""


# As a shell reports a command ended by SIGINT or SIGPIPE.
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


def find_project_dir(start: Path) -> Path | None:
    """The nearest folder at or above `start` holding this project's Pulumi.yaml."""
    for folder in (start, *start.parents):
        if (folder / "Pulumi.yaml").is_file() and (folder / "domains").is_dir():
            return folder
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cdctl", description=DESCRIPTION, epilog=EPILOG,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--project-dir", help="the tomcat-cd checkout (default: found from the current folder)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    check = commands.add_parser("check", help="validate the domain files (and stack files with --stack)",
                                description="Validate every domain file; print one line per problem.")
    check.add_argument("--domains", help="folder of domain files (default: domains/ of the project)")
    check.add_argument("--stack", action="append", default=[], help="also validate Pulumi.<STACK>.yaml (repeatable)")
    check.set_defaults(func=parsers.command("local_commands", "cmd_check"))

    render = commands.add_parser(
        "render", help="write every Kubernetes object and build context a stack deploys",
        description="Write, without a cluster, Pulumi or Docker, every Kubernetes object of a stack "
                    "(one per file under OUT/k8s/) and every site's build context (OUT/build/<domain>/).")
    render.add_argument("--stack", required=True,
                        help="master, develop, platform, or another stack with a Pulumi.<stack>.yaml")
    render.add_argument("--out", required=True, help="output folder (its k8s/ and build/ are replaced)")
    render.add_argument("--domains", help="folder of domain files (default: the stack's domainsDir)")
    render.add_argument("--version", action="append", default=[], metavar="DOMAIN=VERSION",
                        help="deploy this version of a domain, as Jenkins' VERSION would (repeatable)")
    render.set_defaults(func=parsers.command("local_commands", "cmd_render"))

    schema = commands.add_parser(
        "schema", help="print the JSON Schema of a domain file (for editors; a copy is schemas/domain.schema.json)",
        description="Print the JSON Schema of domains/<domain>.yaml. With the YAML language server, the line "
                    "`# yaml-language-server: $schema=../schemas/domain.schema.json` at the top of a domain "
                    "file makes an editor check it while it is typed.")
    schema.set_defaults(func=parsers.command("local_commands", "cmd_schema"))
    parsers.add_commands(commands)
    return parser


def late_positionals(parser: argparse.ArgumentParser, args: argparse.Namespace, rest: list[str]) -> None:
    """Optional positionals given after an option (`cdctl diff D --env E 12 15`), which argparse
    leaves over: they fill the command's `late_positionals` in order; anything else is an error."""
    names = [name for name in getattr(args, "late_positionals", ()) if getattr(args, name) is None]
    if any(item.startswith("-") for item in rest) or len(rest) > len(names):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    for name, value in zip(names, rest):
        setattr(args, name, value)


def restore_interrupts() -> None:
    """Take SIGINT back if cdctl was started with it ignored, as a shell starts a background job
    (`cdctl ... &`, and Jenkins' `sh` steps, which run in the background): ignored, it stays
    ignored in Pulumi's plugins, and Pulumi, which stops each plugin with SIGINT, waited its
    grace period for them at the end of every update (4.8 s a deploy, measured)."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@contextmanager
def private_temp_dir() -> Iterator[None]:
    """What cdctl runs keeps its temporary files in a folder of cdctl's own, removed when cdctl
    ends. Pulumi's Kubernetes provider writes a copy of its kubeconfig into the temporary folder
    each time it starts and never removes it: credentials left in the agent's /tmp by every
    deploy (482 such files after one day of this project's tests)."""
    folder = tempfile.mkdtemp(prefix="cdctl-")
    inherited = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = tempfile.tempdir = folder
    try:
        yield
    finally:
        tempfile.tempdir = None
        if inherited is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = inherited
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    restore_interrupts()
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    late_positionals(parser, args, rest)
    project_dir = Path(args.project_dir).resolve() if args.project_dir else find_project_dir(Path.cwd().resolve())
    if project_dir is None:
        print("error: not inside a tomcat-cd checkout (no Pulumi.yaml with domains/ here or above): "
              "use --project-dir", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        with private_temp_dir():
            code: int = args.func(args, project_dir)
        sys.stdout.flush()  # a closed pipe shows here, not as a traceback at exit
        return code
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (cdctl history | head): stop quietly, as other tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except ConfigError as err:
        for problem in err.problems:
            print(f"error: {problem}", file=sys.stderr)
        print(f"{len(err.problems)} problem(s); nothing was written or changed", file=sys.stderr)
        return EXIT_BAD_INPUT
    except (OSError, EngineMissing, EngineError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
