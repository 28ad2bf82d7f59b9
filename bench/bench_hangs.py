"""Benchmark: how long a task waits for the next provider when the first one hangs.

Run it with ``python bench/bench_hangs.py``. For each way a provider can hang (no
headers; headers only; only the first stream events, none of them text; non-content
events forever; text slower than a floor; a whole answer whose body never comes) and each
wire protocol family, it starts a loopback fake that hangs so as the first provider of a
role and a healthy fake OpenAI as the second, asks once, and prints the seconds until the
second provider's answer arrived.

``--toml`` adds TOML to every config (a ``[timeouts]`` table setting ``first_token_s``,
say) and ``--hedge-after S`` sets the role's ``hedge_after_s``; without them the runtime's
defaults apply. ``--protocols`` and ``--shapes`` pick
some; the cases run side by side (``--parallel``), since each mostly waits.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import time
from typing import Any

from runtime import Callboard, StreamEnd, parse_config
from runtime.testing import (
    FAKES,
    Answer,
    Behaviour,
    FakeOpenAI,
    FakeProvider,
    Hang,
    Stall,
    Trickle,
)

KEY = "bench-key-0001"
SLOW_TEXT = " ".join(["a"] * 800)
"""800 one-letter words: at least 100 chunks (Gemini's are 8 words), 400 s at 4 s apart;
under 5 characters a second in any protocol's chunks."""

SHAPES: dict[str, tuple[Behaviour, dict[str, Any]]] = {
    "no headers": (Hang(), {}),
    "headers only": (Hang(headers=True), {}),
    "first events only": (Stall(after_chunks=0, idle_events=1), {}),
    "non-content events every 1 s": (Trickle(every_s=1.0), {}),
    "text every 4 s": (Answer(SLOW_TEXT, chunk_delay_s=4.0), {}),
    "whole answer, body hangs": (Hang(headers=True), {"stream": False}),
}


def provider_table(pid: str, fake: FakeProvider, extra: dict[str, Any]) -> str:
    """The ``[providers.<pid>]`` table of a fake (Bedrock by API key: no AWS credentials)."""
    values = {
        "type": fake.protocol,
        "api_key": KEY,
        "base_url": fake.base_url,
        "model": fake.models[0],
        **({"auth": "api-key"} if fake.protocol == "bedrock" else {}),
        **extra,
    }
    lines = [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    return f"[providers.{pid}]\n" + "\n".join(lines) + "\n"


def config_for(
    primary: FakeProvider, backup: FakeProvider, extra: dict[str, Any], toml: str, role: str
) -> str:
    """A config casting ``coder`` to the hanging fake, then the healthy one."""
    return "\n".join(
        [
            '[audit]\npath = "off"\n[metrics]\npath = "off"',
            "[startup]\nexit_on_sigterm = false",
            toml,
            provider_table("first", primary, extra),
            provider_table("backup", backup, {}),
            '[roles.coder]\nproviders = ["first", "backup"]',
            role,
        ]
    )


def run_case(protocol: str, shape: str, toml: str, role: str) -> tuple[str, str, str]:
    """Ask once with the first provider hanging so; return the outcome and the seconds."""
    behaviour, extra = SHAPES[shape]
    primary = FAKES[protocol](keys={KEY}).start()
    backup = FakeOpenAI(keys={KEY}, default=Answer("from backup")).start()
    primary.script.append(behaviour)
    try:
        config = parse_config(config_for(primary, backup, extra, toml, role), environ={})
        with Callboard(config, check=False) as board:
            started = time.monotonic()
            provider = answer_of(board, streamed=not extra)
            elapsed = time.monotonic() - started
    except Exception as error:
        return protocol, shape, f"error: {type(error).__name__}: {error}"[:100]
    finally:
        primary.stop()
        backup.stop()
    return protocol, shape, f"{elapsed:6.1f} s ({provider})"


def answer_of(board: Callboard, *, streamed: bool) -> str:
    """Ask (streaming when ``streamed``, restarting elsewhere if it breaks); return who answered."""
    if not streamed:
        return board.ask("coder", "hi").provider
    events = list(board.stream("coder", "hi", on_broken="restart"))
    end = events[-1]
    return end.reply.provider if isinstance(end, StreamEnd) else "?"


def main() -> None:
    """Run every case asked for and print a table: shape by protocol."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocols", nargs="*", default=sorted(FAKES))
    parser.add_argument("--shapes", nargs="*", default=list(SHAPES))
    parser.add_argument("--toml", default="", help="settings added to every config")
    parser.add_argument("--hedge-after", type=float, help="the role's hedge_after_s")
    parser.add_argument("--parallel", type=int, default=12)
    args = parser.parse_args()
    cases = [(p, s) for s in args.shapes for p in args.protocols]
    role = "" if args.hedge_after is None else f"hedge_after_s = {args.hedge_after}"
    with concurrent.futures.ThreadPoolExecutor(args.parallel) as pool:
        results = list(pool.map(lambda case: run_case(*case, args.toml, role), cases))
    added = "\n".join(part for part in (args.toml, role) if part)
    print(f"config added: {added!r}" if added else "config: the defaults")
    width = max(len(s) for s in args.shapes)
    for shape in args.shapes:
        for protocol, case_shape, outcome in results:
            if case_shape == shape:
                print(f"{shape:<{width}}  {protocol:<13} {outcome}")


if __name__ == "__main__":
    main()
