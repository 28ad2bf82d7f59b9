"""What ``rpm`` and ``tpm`` mean, read from the fake providers' own request logs."""

from __future__ import annotations

import asyncio

import pytest
from support import config_toml

from runtime._chat import Usage
from runtime.testing import Answer, busiest_window

pytestmark = pytest.mark.timeout(120)

USAGE = Usage(input_tokens=100, output_tokens=50)
"""What the token-limited fake says each answer used: 150 tokens."""


def test_no_rolling_minute_carries_more_than_rpm_or_tpm(fakes, deployment):
    """Kept busy for 61 s, no provider receives more than its limits in any minute.

    A 60 rpm provider gets at most 60 requests in any rolling minute, and a 6,000 tpm
    provider at most 6,000 tokens (150 a request, estimated at 202 up front).
    """
    by_requests = fakes("openai")
    by_tokens = fakes("anthropic", default=Answer("ok", usage=USAGE))
    providers = {
        "by_requests": (by_requests, {"rpm": 60}),
        "by_tokens": (by_tokens, {"tpm": 6000, "max_tokens": 200}),
    }
    roles = {"counted": ["by_requests"], "weighed": ["by_tokens"]}
    deployment.write(config_toml(deployment, providers, roles))
    board = deployment.board()

    async def keep_busy_for_61_s() -> None:
        roles = ["counted"] * 80 + ["weighed"] * 60
        asks = [
            asyncio.ensure_future(board.aask(r, f"task {i}", deadline_s=120))
            for i, r in enumerate(roles)
        ]
        await asyncio.wait(asks, timeout=61.0)
        await asyncio.to_thread(board.close)  # the calls still waiting are cancelled
        await asyncio.gather(*asks, return_exceptions=True)

    asyncio.run(keep_busy_for_61_s())
    counted = [r.received_at for r in by_requests.requests if r.is_chat]
    weighed = [r.received_at for r in by_tokens.requests if r.is_chat]
    assert busiest_window(counted) == 60
    assert len(counted) >= 68  # ten more once the first burst's minute has passed
    assert busiest_window(weighed) * 150 <= 6000
    assert busiest_window(weighed) > 6000 // 202  # usage below the estimate is given back
