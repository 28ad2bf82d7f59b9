"""The pure parts of the fakes: budgets, time formats, masking, completion planning."""

from datetime import UTC, datetime

import pytest

from runtime._chat import Usage
from runtime.testing import Answer
from runtime.testing._anthropic import display_name
from runtime.testing._budget import Budget, go_duration, proto_duration, rfc3339_in
from runtime.testing._completion import ChatAsk, Ending, plan_completion, split_text
from runtime.testing._log import mask_secret
from runtime.testing._openai import mask_key

pytestmark = pytest.mark.timeout(10)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.0004, "1ms"),
        (0.012, "12ms"),
        (1, "1s"),
        (1.5, "1.5s"),
        (360, "6m0s"),
        (3725, "1h2m5s"),
    ],
)
def test_go_duration_prints_as_go_does(seconds, text):
    """Durations print as Go's ``time.Duration`` does, the format of OpenAI's reset headers."""
    assert go_duration(seconds) == text


@pytest.mark.parametrize(("seconds", "text"), [(2, "2s"), (0.5, "0.5s"), (47.4343, "47.434s")])
def test_proto_duration_prints_as_protobuf_json_does(seconds, text):
    """Durations print as protobuf JSON does, the format of Gemini's ``retryDelay``."""
    assert proto_duration(seconds) == text


def test_rfc3339_rounds_up_to_the_second():
    """Reset times are whole UTC seconds, rounded up, with a ``Z``."""
    now = datetime(2026, 11, 23, 10, 0, 0, tzinfo=UTC)
    assert rfc3339_in(0.01, now) == "2026-11-23T10:00:01Z"
    assert rfc3339_in(60, now) == "2026-11-23T10:01:00Z"


def test_enforced_budget_refuses_when_spent_and_refills():
    """An enforced budget refuses past its limit and refills ``limit`` per minute."""
    budget = Budget(2, enforced=True)
    assert budget.take(1, 0.0)
    assert budget.take(1, 0.0)
    assert not budget.take(1, 0.0)
    assert budget.wait_s(1, 0.0) == pytest.approx(30.0)
    assert budget.state(0.0).remaining == 0
    assert budget.take(1, 30.0)
    assert budget.state(30.0).reset_s == pytest.approx(60.0)


def test_unenforced_budget_never_refuses_nor_reads_empty():
    """An unenforced budget counts for the headers but never refuses or shows zero left."""
    budget = Budget(1, enforced=False)
    assert all(budget.take(5, 0.0) for _ in range(3))
    assert budget.state(0.0).remaining == 1


def test_budget_rejects_a_zero_limit():
    """A limit below one a minute is refused."""
    with pytest.raises(ValueError, match="at least 1"):
        Budget(0, enforced=True)


@pytest.mark.parametrize(
    ("key", "shown"),
    [("sk-abcdefghijklmnopqrst1234", "sk-abcde" + "*" * 15 + "1234"), ("sk-test", "sk-****")],
)
def test_openai_masks_keys_as_openai_does(key, shown):
    """OpenAI's 401 message shows a key's first 8 and last 4 characters only."""
    assert mask_key(key) == shown


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        ("Bearer sk-proj-abcdefghijklmnop1234", "Bearer sk-...1234"),
        ("Bearer short", "Bearer ***"),
        ("AIzaSyA-0123456789abcdefgh", "AIz...efgh"),
        ("k", "***"),
    ],
)
def test_logged_secrets_are_masked(value, shown):
    """The request log keeps a secret's scheme and, for long ones, a hint of both ends."""
    assert mask_secret(value) == shown


def test_plan_applies_stop_before_max_tokens():
    """A stop sequence inside the token budget wins; one beyond it loses to ``max_tokens``."""
    ask = ChatAsk(model="m", prompt="p" * 12, max_tokens=3, stop=("X",))
    stopped = plan_completion(ask, Answer("abcdXefghijklmnop"))
    assert (stopped.text, stopped.ending, stopped.stop_sequence) == (
        "abcd",
        Ending.STOP_SEQUENCE,
        "X",
    )
    cut = plan_completion(ask, Answer("abcdefghijklmnopX"))
    assert (cut.text, cut.ending, cut.stop_sequence) == ("abcdefghijkl", Ending.LENGTH, None)
    assert (cut.input_tokens, cut.output_tokens) == (3, 3)


def test_plan_uses_scripted_usage_and_finish():
    """An answer's own usage and finish reason are carried as given."""
    plan = plan_completion(
        ChatAsk(model="m", prompt="p"), Answer("t", usage=Usage(9, 8), finish="x")
    )
    assert (plan.input_tokens, plan.output_tokens, plan.finish) == (9, 8, "x")


@pytest.mark.parametrize("text", ["", "one", " lead and trail ", "a  b\nc", "x " * 30])
def test_split_text_joins_back(text):
    """Streamed pieces are whole words that join back to the exact text."""
    assert "".join(split_text(text)) == text
    assert "".join(split_text(text, words_per_piece=8)) == text


@pytest.mark.parametrize(
    ("model", "name"),
    [
        ("claude-sonnet-4-5", "Claude Sonnet 4.5"),
        ("claude-3-5-haiku-20241022", "Claude 3.5 Haiku"),
        ("claude-opus-4-1", "Claude Opus 4.1"),
    ],
)
def test_anthropic_display_names(model, name):
    """Model display names are derived as Anthropic writes them."""
    assert display_name(model) == name
