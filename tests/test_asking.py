"""`task_spec`: a plain ``ask(role, prompt)`` gets the spec that spelling out every default gets."""

from __future__ import annotations

import dataclasses

import pytest

from runtime._board.asking import task_spec
from runtime._chat import Message, Tuning

pytestmark = pytest.mark.timeout(5)

DEFAULTS = {
    "messages": (),
    "system": None,
    "temperature": None,
    "max_tokens": None,
    "top_p": None,
    "stop": None,
    "deadline_s": None,
    "workflow_id": None,
    "on_progress": None,
    "tools": (),
    "tool_choice": None,
    "output": None,
    "tags": (),
    "tenant": None,
    "session": None,
    "provider": None,
    "model": None,
    "request_id": None,
    "traceparent": None,
}


def _same_call(spec: object) -> object:
    return dataclasses.replace(spec, task_id="t", submitted_at=0.0)  # type: ignore[type-var]


@pytest.mark.parametrize("on_broken", ["raise", "restart"])
def test_a_prompt_alone_gives_the_spec_of_every_option_at_its_default(on_broken: str) -> None:
    plain = task_spec("coder", "hi", {}, on_broken=on_broken)
    spelled = task_spec("coder", "hi", DEFAULTS, on_broken=on_broken)  # type: ignore[arg-type]
    assert _same_call(plain) == _same_call(spelled)
    assert plain.messages == (Message("user", "hi"),)
    assert plain.tuning == Tuning()
    assert plain.on_broken == on_broken
    assert plain.task_id != task_spec("coder", "hi", {}).task_id


def test_a_plain_call_is_still_checked() -> None:
    with pytest.raises(ValueError, match="on_broken must be"):
        task_spec("coder", "hi", {}, on_broken="retry")
    with pytest.raises(ValueError, match="needs a prompt"):
        task_spec("coder", None, {})
