"""Input problems, gathered and reported all at once, one line each."""

from __future__ import annotations

from dataclasses import dataclass

# Bad input (a domain file, a stack file, a command-line value) exits with 2;
# every other failure keeps its own non-zero code.
EXIT_BAD_INPUT = 2


def printable(text: str) -> str:
    """One line as a terminal shows it: control characters (a newline, an ANSI escape) are
    written as escapes, so a file name or a value in a stack's history cannot forge or
    colour a line."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with one field of one file."""

    source: str
    field: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}: {self.field}" if self.field else self.source
        return printable(f"{where}: {self.message}")


class ConfigError(Exception):
    """Raised with every problem found, so a user fixes them in one pass."""

    def __init__(self, problems: list[Problem]):
        self.problems = sorted(set(problems))
        super().__init__("\n".join(str(p) for p in self.problems))


class Problems:
    """Collects problems for one source file while a loader keeps going."""

    def __init__(self, source: str, sink: list[Problem]):
        self.source = source
        self._sink = sink

    def add(self, field: str, message: str) -> None:
        self._sink.append(Problem(self.source, field, message))

    def for_source(self, source: str) -> "Problems":
        return Problems(source, self._sink)


def raise_if_any(problems: list[Problem]) -> None:
    if problems:
        raise ConfigError(problems)
