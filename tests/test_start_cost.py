"""A board loads no CA bundle: the process's one SSL context serves every provider.

Loading one takes about 20 ms, which a board used to pay for every provider at its first
call and again in the start-up check (its speed is measured in ``bench/bench_start.py``).
"""

from __future__ import annotations

import ssl
from typing import Any

import pytest

from runtime import Callboard
from runtime.testing import Answer, Fail, config_for

pytestmark = pytest.mark.timeout(30)


def test_a_board_start_check_and_failover_build_no_ssl_context(fakes, monkeypatch):
    """Starting (checked) and failing over across three providers loads no CA bundle."""
    bad = [fakes("openai", keys=None, script=[Fail(503)]) for _ in range(2)]
    good = fakes("openai", keys=None, script=[Answer("ok")])
    providers = {"bad0": bad[0], "bad1": bad[1], "good": good}
    config = config_for(providers, {"coder": ["bad0", "bad1", "good"]})
    loads: list[Any] = []
    real = ssl.SSLContext.load_verify_locations

    def counted(context: ssl.SSLContext, *args: Any, **kwargs: Any) -> None:
        loads.append(args or kwargs)
        real(context, *args, **kwargs)

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)
    with Callboard(config, check=True) as board:
        reply = board.ask("coder", "hi")
    assert [a.provider for a in reply.attempts] == ["bad0", "bad1", "good"]
    assert loads == []
