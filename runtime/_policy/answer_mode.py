"""Whether an `ask` is requested as a whole answer or as a stream, provider by provider.

A stream protects an attempt early: a provider that sends no response headers within
``first_byte_s``, or no text within ``first_token_s``, is left at once. It costs CPU a
whole answer does not (every event is decoded and parsed on its own: about 270 µs a call
for a 15-event answer, a quarter of what callboard spends on it), and a caller of `ask`
gets nothing from the events themselves. A whole answer's headers come only once the
answer is done, so its only early bound is the time to the whole answer.

So an `ask` sent to a provider whose last `WINDOW` answers each came back in under a
`MARGIN`-th of ``first_byte_s`` (and of the role's ``hedge_after_s``, if it hedges) asks
for a whole answer, bounded by ``first_byte_s``: an answer cut by that bound is `MARGIN`
times slower than the slowest of the last, and a provider that hangs is left as early as a
stream that sends nothing would be. A timeout sends the provider back to streams until
`WINDOW` answers show it fast again. Streaming callers always get streams; a provider
configured ``stream = false`` always answers whole, as before.
"""

from __future__ import annotations

import collections
from collections.abc import Hashable

WINDOW = 8
"""How many of a provider's last answers must have been fast."""
MARGIN = 4.0
"""How many times faster than the bound the slowest of them must have been."""


class AnswerModes:
    """The last answers' latencies of each provider, to say when a whole answer is safe."""

    __slots__ = ("_recent",)

    def __init__(self) -> None:
        self._recent: dict[Hashable, collections.deque[float]] = {}

    def answered(self, key: Hashable, latency_s: float) -> None:
        """Count one answer of ``key`` that took ``latency_s``."""
        recent = self._recent.get(key)
        if recent is None:
            recent = self._recent[key] = collections.deque(maxlen=WINDOW)
        recent.append(latency_s)

    def timed_out(self, key: Hashable) -> None:
        """``key`` ran out of time: back to streams until it shows itself fast again."""
        self._recent.pop(key, None)

    def slowest_if_fast(self, key: Hashable, bound_s: float) -> float | None:
        """Return the slowest of ``key``'s last answers if a whole answer may be asked for.

        That is when there were `WINDOW` of them and each took under ``bound_s / MARGIN``;
        else ``None`` (stream).
        """
        recent = self._recent.get(key)
        if recent is None or len(recent) < WINDOW:
            return None
        slowest = max(recent)
        return slowest if slowest * MARGIN < bound_s else None

    def forget(self, keep: set[Hashable]) -> None:
        """Drop every key not in ``keep`` (providers gone after a reload)."""
        for key in [k for k in self._recent if k not in keep]:
            del self._recent[key]
