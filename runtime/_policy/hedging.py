"""Hedging: a second provider started beside a slow first one, and the race between them.

A role with ``hedge_after_s`` starts the next provider of the chain when the attempt in
flight has sent no content after that long (`hedge_choice`), and keeps whichever attempt
sends content first. The race is decided where content arrives, on the I/O thread: the
attempts of a task share one `ContentGate`, the first to claim it wins, the other ends
itself at its first content, so a streaming caller only ever sees the winner's text. The
gate tells the router who won, and the router cancels the other attempt.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

from runtime._config.schema import RetrySettings
from runtime._policy.routing import Dispatch, Health, ProviderProgress, next_step


@dataclass(slots=True)
class ContentGate:
    """Which of a task's attempts sends content: the first to claim it.

    Claims are made on the I/O loop's one thread, so they need no lock. ``on_claim`` is
    called once, with the winner's call id, to tell whoever must know (the router).
    """

    on_claim: Callable[[int], object]
    winner: int | None = None

    def claim(self, call_id: int) -> bool:
        """Claim the task's content for ``call_id``; return whether it is (or was) this one's."""
        if self.winner is None:
            self.winner = call_id
            self.on_claim(call_id)
        return self.winner == call_id


def hedge_choice(  # noqa: PLR0917 - a pure function of the task's whole standing
    chain: Sequence[str],
    busy: Collection[str],
    progress: Mapping[str, ProviderProgress],
    health: Mapping[str, Health],
    policy: RetrySettings,
    now: float,
    deadline: float,
) -> str | None:
    """Return the provider to start beside the ``busy`` ones now, or ``None`` if none can.

    It is the provider the task would go on with if the attempts in flight failed
    (`next_step` over the rest of the chain), provided it can start at once: a hedge
    never waits for a backoff or a cooldown.
    """
    rest = [pid for pid in chain if pid not in busy]
    if not rest:
        return None
    step = next_step(rest, progress, health, policy, now, deadline)
    return step.provider if isinstance(step, Dispatch) else None
