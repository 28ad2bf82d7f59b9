from __future__ import annotations

import concurrent.futures
import uuid

import pytest

from runtime import parse_config
from runtime._audit import Redactor
from runtime._chat import ChatResult, Message, Tuning, Usage
from runtime._policy.provider_table import Routing
from runtime._policy.task import TaskState
from runtime._task_spec import TaskSpec, new_task_id

pytestmark = pytest.mark.timeout(5)

CONFIG = """
[providers.r8]
type = "replicate"
api_key = "r8_token_for_tests"
model = "meta/meta-llama-3-8b-instruct"

[roles.coder]
providers = ["r8"]

[prices."meta/meta-llama-3-8b-instruct"]
input = 0.05
output = 0.25
"""


def task() -> TaskState:
    config = parse_config(CONFIG, environ={})
    spec = TaskSpec("t1", "coder", (Message("user", "Hi"),), None, Tuning(), None, None, 0.0)
    return TaskState(
        spec, concurrent.futures.Future(), Routing(config, {"r8": "r8"}), ("r8",), 60.0
    )


def record(state: TaskState, result: ChatResult):
    return state.record(
        "r8", result=result, error=None, latency_ms=12.0, redactor=Redactor(), wall=1.0
    )


def test_a_priced_call_costs_its_tokens():
    """Counted tokens at the configured prices."""
    row = record(task(), ChatResult("Hi", "", Usage(1_000_000, 1_000_000)))
    assert row.cost_usd == pytest.approx(0.30)


def test_a_call_whose_tokens_could_not_be_counted_has_an_unknown_cost_never_zero():
    """Zero tokens because the provider's counts were lost is not a free call."""
    state = task()
    row = record(state, ChatResult("Hi", "", Usage(), usage_known=False))
    assert row.cost_usd is None
    assert state.task_row("ok", "r8", 1.0, 1.0, None).cost_usd is None


AZURE = """
[providers.az]
type = "azure_openai"
base_url = "https://example.openai.azure.com"
api_key = "azure_key_for_tests"
model = "gpt-4o-mini"
deployment = "team-prod-chat"

[roles.coder]
providers = ["az"]

[prices."gpt-4o-mini"]
input = 1.0
output = 1.0
"""


def test_an_azure_call_is_priced_by_its_configured_model_not_its_deployment():
    """Whatever model name Azure answers with, the provider's configured model sets the price."""
    config = parse_config(AZURE, environ={})
    spec = TaskSpec("t2", "coder", (Message("user", "Hi"),), None, Tuning(), None, None, 0.0)
    state = TaskState(
        spec, concurrent.futures.Future(), Routing(config, {"az": "az"}), ("az",), 60.0
    )
    answer = ChatResult("Hi", "team-prod-chat", Usage(1_000_000, 1_000_000))
    row = state.record(
        "az", result=answer, error=None, latency_ms=5.0, redactor=Redactor(), wall=1.0
    )
    assert row.cost_usd == pytest.approx(2.0)


def test_task_ids_are_distinct_32_hex_digits_in_the_order_they_were_made():
    ids = [new_task_id() for _ in range(2000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids)
    assert ids == sorted(ids)  # the metrics store's keys grow at one end
    assert uuid.UUID(hex=ids[0]).version == 7


def test_a_provider_request_is_built_once_per_task_and_the_same_each_time_it_is_asked():
    state = task()
    first = state.request_for("r8")
    assert state.request_for("r8") is first
    assert first.model == "meta/meta-llama-3-8b-instruct"
    assert first.messages == (Message("user", "Hi"),)
