"""One process of a fleet, for the shared-state tests: ``python fleet_worker.py CONFIG CALLS``.

It starts a board from CONFIG, prints ``ready``, waits for a line on standard input, sends
CALLS asks to role ``coder`` at once, closes the board when they have all ended (or after
``[timeouts] task_s``), and prints one JSON line: how many answered and how many failed.
"""

from __future__ import annotations

import asyncio
import json
import sys

from runtime import Callboard


async def run(board: Callboard, calls: int) -> dict[str, object]:
    """Send ``calls`` asks at once; return the counts and the failures' reasons."""
    asks = [board.aask("coder", f"task {i}") for i in range(calls)]
    outcomes = await asyncio.gather(*asks, return_exceptions=True)
    failed = [str(o)[:200] for o in outcomes if isinstance(o, BaseException)]
    return {"ok": calls - len(failed), "failed": len(failed), "errors": failed[:3]}


def main() -> None:
    """Run one worker."""
    config, calls = sys.argv[1], int(sys.argv[2])
    with Callboard.from_config(config) as board:
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        sys.stdin.readline()
        summary = asyncio.run(run(board, calls))
    sys.stdout.write(json.dumps(summary) + "\n")


if __name__ == "__main__":
    main()
