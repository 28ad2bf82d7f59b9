"""Prometheus ``/metrics`` on the gateway's port, when ``[gateway] metrics`` or a port is set."""

from __future__ import annotations

import httpx
import pytest
from gateway_support import ServedGateway
from prometheus_client.parser import text_string_to_metric_families

from runtime import Callboard
from runtime.testing import Answer, FakeOpenAI, config_for

pytestmark = pytest.mark.timeout(60)

HI = [{"role": "user", "content": "Hi"}]


def tasks_counted(text: str) -> dict[tuple[str, str], float]:
    """``callboard_tasks_total`` by (role, outcome)."""
    return {
        (s.labels["role"], s.labels["outcome"]): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "callboard_tasks_total"
    }


@pytest.mark.parametrize(
    "toml", ["[gateway]\nmetrics = true\n", "[metrics]\nprometheus_port = 0\n"]
)
def test_metrics_on_the_gateways_port(toml: str) -> None:
    """A request answered is counted in /metrics, which needs no key, as Prometheus scrapes."""
    keys = '[gateway.keys]\nteam-a = "gw-key-a"\n'
    with FakeOpenAI(default=Answer("Hello")) as fake:
        config = config_for({"gpt": fake}, {"coder": ["gpt"]}, toml=toml + keys)
        with Callboard(config, check=False) as board, ServedGateway(board) as served:
            body = {"model": "coder", "messages": HI}
            headers = {"authorization": "Bearer gw-key-a"}
            chat = httpx.post(f"{served.url}/v1/chat/completions", json=body, headers=headers)
            assert chat.status_code == 200
            scraped = httpx.get(f"{served.url}/metrics")
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert tasks_counted(scraped.text) == {("coder", "ok"): 1.0}
    assert "gw-key-a" not in scraped.text


def test_metrics_off_is_404() -> None:
    """Without either setting the gateway keeps no registry: /metrics says how to turn it on."""
    with FakeOpenAI() as fake:
        config = config_for({"gpt": fake}, {"coder": ["gpt"]})
        with Callboard(config, check=False) as board, ServedGateway(board) as served:
            scraped = httpx.get(f"{served.url}/metrics")
    assert scraped.status_code == 404
    assert "[gateway] metrics = true" in scraped.text
