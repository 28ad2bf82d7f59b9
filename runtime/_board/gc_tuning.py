"""Python's cyclic garbage collector, set for a process that carries many calls at once.

CPython collects its youngest generation each time 700 more container objects (dicts,
lists, instances) are alive than at the last collection, and every generation at the
tenth collection of the one below. A call in flight holds about a hundred such objects
(its request, task record, futures, parsed answer) until it ends, so with 64 calls in
flight the young generation fills every few calls, although almost everything in it is
freed by reference counting moments later: the collector then runs hundreds of times a
second for nothing, and a full collection, which walks every object of the process
(modules, the config, the catalogue of prices, ~90,000 objects) and holds the GIL for
tens of milliseconds, comes every thousand calls or so. Measured: ~10 % of a call's CPU
and a pause of about 45 ms at each full collection, at 64 calls in flight (see the
README's Benchmarks section).

`tune_collector`, which a board calls once it has started (``[startup] tune_gc``, on by
default), does two things, and only what the program has not chosen itself:

- raises the young generation's threshold to `YOUNG_THRESHOLD`, above what thousands of
  calls in flight hold, when it is lower and the collector is enabled (a program that
  set a higher one, or disabled the collector, is left alone);
- moves every object alive at the first board's start into the permanent generation
  (``gc.freeze``), once per process: full collections then walk only what came after.
  Frozen objects are still freed when nothing refers to them; only a cycle among them
  that becomes garbage later stays in memory.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass
from typing import Protocol

YOUNG_THRESHOLD = 10_000
"""The young generation's threshold the board sets: collections come after this many
more objects are alive, so the calls in flight no longer set them off."""


class Collector(Protocol):
    """The part of the `gc` module `tune_collector` uses (injected in tests)."""

    def isenabled(self) -> bool: ...

    def get_threshold(self) -> tuple[int, int, int]: ...

    def set_threshold(self, threshold0: int, threshold1: int, threshold2: int, /) -> None: ...

    def freeze(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Tuning:
    """What `tune_collector` changed: the thresholds before and after, and the freeze."""

    before: tuple[int, int, int]
    after: tuple[int, int, int]
    froze: bool


class CollectorTuner:
    """Tunes a collector at most once for its freeze, and its threshold whenever lower."""

    def __init__(self, collector: Collector, young: int = YOUNG_THRESHOLD) -> None:
        self._collector = collector
        self._young = young
        self._frozen = False

    def tune(self) -> Tuning:
        """Raise the young threshold and freeze what exists, as the module docstring says."""
        collector = self._collector
        before = collector.get_threshold()
        if not collector.isenabled():
            return Tuning(before, before, froze=False)
        after = before
        if before[0] < self._young:
            after = (self._young, before[1], before[2])
            collector.set_threshold(*after)
        froze = not self._frozen
        if froze:
            collector.freeze()
            self._frozen = True
        return Tuning(before, after, froze)


_PROCESS = CollectorTuner(gc)


def tune_collector() -> Tuning:
    """Tune this process's collector (see the module docstring); safe to call again."""
    return _PROCESS.tune()
