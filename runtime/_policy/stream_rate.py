"""Whether a stream keeps to a floor rate of content, with the time passed in.

After a stream's first content, every window of ``window_s`` seconds must carry at least
``floor * window_s`` characters of it; a pause between sentences is fine as long as the
window around it holds enough. `StreamRate.deadline` says when the stream breaks the
floor if nothing more arrives, so the reader can set one timer instead of checking on
every frame. Each piece of content costs O(1), amortised.
"""

from __future__ import annotations

from collections import deque


class StreamRate:
    """The content a stream delivered lately, against a floor of characters per second."""

    __slots__ = ("_first_at", "_held", "_need", "_recent", "_window_s")

    def __init__(self, floor_per_s: float, window_s: float, first_at: float) -> None:
        self._need = floor_per_s * window_s
        self._window_s = window_s
        self._first_at = first_at
        self._recent: deque[tuple[float, int]] = deque()
        """The latest pieces (time, characters): just enough of them to hold `_need`."""
        self._held = 0

    def add(self, chars: int, now: float) -> None:
        """Count ``chars`` characters of content that arrived at ``now``."""
        recent = self._recent
        recent.append((now, chars))
        self._held += chars
        while len(recent) > 1 and self._held - recent[0][1] >= self._need:
            self._held -= recent.popleft()[1]

    def deadline(self) -> float:
        """Return when the stream falls under the floor unless more content comes first.

        The latest pieces that together reach the floor's need are kept; once the oldest
        of them is a window old, the last window holds less than the need.
        """
        if self._held < self._need:
            return self._first_at + self._window_s
        return self._recent[0][0] + self._window_s

    def recent_chars(self, now: float) -> int:
        """Return the characters among the kept pieces that arrived in the last window."""
        return sum(chars for at, chars in self._recent if at > now - self._window_s)
