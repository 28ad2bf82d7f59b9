"""A provider's queue of calls waiting for its rate limits or a free slot.

First in, first out, with what admission needs in constant time: the tokens the waiting
calls will take (for the time a new call would wait behind them) and when the next one
may reach its deadline. Expired calls are looked for only once that time has come, so a
burst of thousands of waiting calls costs each admission and each completion the same.
Plain code: the provider actor owns one and passes it the time.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Waiting(Generic[T]):
    """One waiting item, its estimated tokens and its deadline (monotonic seconds)."""

    item: T
    tokens: int
    deadline: float


class WaitQueue(Generic[T]):
    """Waiting items in arrival order, with their token total and their next deadline."""

    def __init__(self) -> None:
        self._entries: deque[Waiting[T]] = deque()
        self.tokens = 0
        """The estimated tokens of every waiting item."""
        self._next_deadline = math.inf

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Waiting[T]]:
        return iter(self._entries)

    def push(self, item: T, tokens: int, deadline: float) -> None:
        """Add ``item`` at the back."""
        self._entries.append(Waiting(item, tokens, deadline))
        self.tokens += tokens
        self._next_deadline = min(self._next_deadline, deadline)

    def first(self) -> Waiting[T]:
        """Return the item at the front, leaving it there.

        Raises:
            IndexError: the queue is empty.
        """
        return self._entries[0]

    def pop(self) -> Waiting[T]:
        """Remove and return the item at the front.

        Raises:
            IndexError: the queue is empty.
        """
        entry = self._entries.popleft()
        self.tokens -= entry.tokens
        if not self._entries:
            self._next_deadline = math.inf
        return entry

    def next_deadline(self) -> float:
        """When the next waiting item may reach its deadline (never later than it does).

        It can be earlier, once the item with that deadline has left; `expire` then
        finds nothing and sets it right.
        """
        return self._next_deadline

    def expire(self, now: float) -> list[T]:
        """Remove and return the items whose deadline is ``now`` or earlier, in order."""
        if now < self._next_deadline:
            return []
        expired = [e.item for e in self._entries if e.deadline <= now]
        if expired:
            self._entries = deque(e for e in self._entries if e.deadline > now)
            self.tokens = sum(e.tokens for e in self._entries)
        self._next_deadline = min((e.deadline for e in self._entries), default=math.inf)
        return expired

    def remove(self, match: Callable[[T], bool]) -> T | None:
        """Remove and return the first item ``match`` accepts, if any."""
        for entry in self._entries:
            if match(entry.item):
                self._entries.remove(entry)
                self.tokens -= entry.tokens
                return entry.item
        return None

    def clear(self) -> list[T]:
        """Remove and return every item, in order."""
        items = [e.item for e in self._entries]
        self._entries.clear()
        self.tokens = 0
        self._next_deadline = math.inf
        return items
