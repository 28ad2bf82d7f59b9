"""Benchmark: what a board's start and its first calls cost, each in a fresh process.

Run it with ``python bench/bench_start.py`` (``--runs N`` fresh processes per figure,
default 9). Loopback fake OpenAI servers run in this process; every figure comes from
child processes, which time with the monotonic clock:

- the import of ``Callboard``, the set-up of a board with one provider, its first call,
  and a warm call (the median of the calls after it, back to back), and a warm call made
  after a pause (the median of calls each made 50 ms after the last: a daemon's calls
  come that way, and so does a first call, after the set-up); then the set-up of a second
  board in the same process and its first call (what every board costs, once the process
  has loaded and run what any board needs);
- the first call that fails over across three providers (the first two answer 503),
  against a warm call that does the same;
- the set-up of a board with three providers, without the start-up check
  (``check=False``) and with it (three ``GET /models`` against the fakes);
- the floor: the same request sent directly with callboard's HTTP client (no board),
  its first (on a new connection) against a warm one (on a kept connection).

Each figure is the median over the fresh processes, with the spread (min..max) beside
it: the machine's noise shows there. A call after a pause costs more than one made back
to back, with or without callboard (the direct figures show it): the threads it passes
through, in this process and in the server's, have gone to sleep and must be woken.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runtime import Config

KEY = "sk-bench-0000"
PROMPT = "Write a function that parses ISO dates"
WARM_CALLS = 30
IDLE_CALLS = 10
IDLE_S = 0.05
"""Warm calls made one at a time after a pause, as a daemon's calls come: after 50 ms
with nothing to do the machine's threads (the board's, the HTTP client's, the server's)
have gone to sleep, and a call pays for waking them (see the module's docstring)."""

MODES: dict[str, tuple[str, str]] = {
    "one provider": ("good0", "board"),
    "failover across three (the first two answer 503)": ("bad0 bad1 good0", "board"),
    "three providers": ("good0 good1 good2", "board"),
    "three providers, start-up check": ("good0 good1 good2", "checked"),
    "direct, without callboard": ("good0", "direct"),
}
"""Each child's providers (in the role's order) and what it runs: a board, a board that
runs the start-up check, or the requests alone."""


def config_text(urls: dict[str, str], chain: list[str], workdir: Path) -> str:
    """A config casting role ``bench`` to ``chain``, with an audit log and a metrics store."""
    parts = [
        f'[audit]\npath = "{workdir / "audit.jsonl"}"\n',
        f'[metrics]\npath = "{workdir / "metrics.db"}"\n',
        "[breaker]\nfailures = 1000000\n",
    ]
    parts += [
        f'[providers.{pid}]\ntype = "openai"\napi_key = "{KEY}"\n'
        f'base_url = "{urls[pid]}"\nmodel = "gpt-4o"\n'
        for pid in chain
    ]
    parts.append("[roles.bench]\nproviders = [" + ", ".join(f'"{p}"' for p in chain) + "]\n")
    return "\n".join(parts)


def timed_ms(action: Callable[[], object]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return (time.perf_counter() - start) * 1000, result


def after_pause(action: Callable[[], object]) -> float:
    """Sleep `IDLE_S`, then time ``action`` (in ms)."""
    time.sleep(IDLE_S)
    return timed_ms(action)[0]


def child(config_path: str, how: str) -> None:
    """In a fresh process: start a board, make its first call and warm calls; print JSON."""
    start = time.perf_counter()
    from runtime import Callboard, load_config  # noqa: PLC0415 - timed: the child's import

    import_ms = (time.perf_counter() - start) * 1000
    config = load_config(config_path)
    if how == "direct":
        print(json.dumps(direct(config)))
        return
    check = how == "checked"
    setup_ms, board = timed_ms(lambda: Callboard(config, check=check))
    first_ms, _ = timed_ms(lambda: board.ask("bench", PROMPT))
    warm = [timed_ms(lambda: board.ask("bench", PROMPT))[0] for _ in range(WARM_CALLS)]
    idle = [after_pause(lambda: board.ask("bench", PROMPT)) for _ in range(IDLE_CALLS)]
    close_ms, _ = timed_ms(board.close)
    again_ms, board = timed_ms(lambda: Callboard(config, check=check))
    first_again_ms, _ = timed_ms(lambda: board.ask("bench", PROMPT))
    board.close()
    figures = {"import": import_ms, "setup": setup_ms, "first": first_ms}
    figures |= {"warm": statistics.median(warm), "warm after pause": statistics.median(idle)}
    figures |= {"close": close_ms, "setup again": again_ms}
    figures["first again"] = first_again_ms
    figures["to first answer"] = import_ms + setup_ms + first_ms
    print(json.dumps(figures))


def direct(config: Config) -> dict[str, float]:
    """The first and warm requests of the one provider, sent with its client but no board."""
    from runtime._chat import ChatRequest, Message, Tuning  # noqa: PLC0415 - child only
    from runtime._transport.http import ProviderClient  # noqa: PLC0415
    from runtime._transport.io_loop import IoLoop  # noqa: PLC0415
    from runtime.protocols import PROTOCOLS  # noqa: PLC0415

    (settings,) = config.providers.values()
    request = ChatRequest((Message("user", PROMPT),), settings.model, None, Tuning())
    call = PROTOCOLS["openai"].chat_request(settings.endpoint(), request, True)  # noqa: FBT003
    io = IoLoop("bench-direct")
    setup_ms, client = timed_ms(lambda: ProviderClient(64, 5.0))
    first_ms, _ = timed_ms(lambda: io.run(client.fetch(call), 10))
    warm = [timed_ms(lambda: io.run(client.fetch(call), 10))[0] for _ in range(WARM_CALLS)]
    idle = [after_pause(lambda: io.run(client.fetch(call), 10)) for _ in range(IDLE_CALLS)]
    io.run(client.aclose(), 10)
    io.close()
    figures = {"setup": setup_ms, "first": first_ms, "warm": statistics.median(warm)}
    return figures | {"warm after pause": statistics.median(idle)}


def run_children(config: str, how: str, runs: int) -> list[dict[str, float]]:
    """Run ``runs`` fresh child processes on ``config``; return each one's figures."""
    results = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "config.toml"
            path.write_text(config.replace("@WORKDIR@", tmp))
            command = [sys.executable, __file__, "--child", str(path), "--how", how]
            out = subprocess.run(command, capture_output=True, text=True, check=True)  # noqa: S603
            results.append(json.loads(out.stdout.splitlines()[-1]))
    return results


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):7.1f} ms  [{min(values):.1f}..{max(values):.1f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="fresh processes per figure")
    parser.add_argument("--child", metavar="CONFIG", help=argparse.SUPPRESS)
    parser.add_argument("--how", default="board", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.how)
        return
    from runtime.testing import Fail, FakeOpenAI  # noqa: PLC0415 - the parent's only

    fakes = {f"good{i}": FakeOpenAI(keys={KEY}) for i in range(3)}
    fakes |= {f"bad{i}": FakeOpenAI(keys={KEY}, respond=lambda _: Fail(503)) for i in range(2)}
    for fake in fakes.values():
        fake.start()
    urls = {pid: fake.base_url for pid, fake in fakes.items()}
    print(f"callboard start benchmark: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    print(f"{args.runs} fresh processes per line; median [min..max]")
    try:
        for label, (chain, how) in MODES.items():
            config = config_text(urls, chain.split(), Path("@WORKDIR@"))
            results = run_children(config, how, args.runs)
            figures = {key: [r[key] for r in results] for key in results[0]}
            print(f"\n{label}")
            for key, values in figures.items():
                print(f"  {key:26} {spread(values)}")
            for warm in ("warm", "warm after pause"):
                ratio = [r["first"] / r[warm] for r in results]
                print(f"  {'first / ' + warm:26} {statistics.median(ratio):7.1f} x")
    finally:
        for fake in fakes.values():
            fake.stop()


if __name__ == "__main__":
    main()
