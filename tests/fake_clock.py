"""A clock that moves only when slept on: a watcher's waits take no time in a test."""

from __future__ import annotations


class Clock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
