"""Routing rules: the first of a role's rules that a task matches picks its chain.

A rule holds when every condition it gives does: the prompt's language, a tag passed with
the task, the task's tenant. The language is detected only when a rule asks for it and
its other conditions hold, and at most once per task.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from runtime._config.routing import RuleSettings, RuleWhen
from runtime._policy import language
from runtime._task_spec import TaskSpec

Detect = Callable[[str, Sequence[str]], str | None]
"""Tells the language of a text (`language.detect`, or a stand-in in tests)."""


@dataclass(frozen=True, slots=True)
class RuleMatch:
    """The rule that picked a task's chain."""

    index: int
    rule: RuleSettings

    def describe(self) -> str:
        """Say which rule it was, for the audit log: ``rules[0]: language=zh-Hans``."""
        when = self.rule.when
        parts = [
            f"{name}={value}"
            for name, value in (
                ("language", when.language),
                ("tag", when.tag),
                ("tenant", when.tenant),
            )
            if value is not None
        ]
        return f"rules[{self.index}]: " + ", ".join(parts)


def matching_rule(
    rules: Sequence[RuleSettings], spec: TaskSpec, detect: Detect = language.detect
) -> RuleMatch | None:
    """Return the first rule ``spec`` matches, or ``None``."""
    detected: list[str | None] = []

    def prompt_language() -> str | None:
        if not detected:
            wanted = [r.when.language for r in rules if r.when.language is not None]
            detected.append(detect(prompt_text(spec), wanted))
        return detected[0]

    for index, rule in enumerate(rules):
        if _holds(rule.when, spec, prompt_language):
            return RuleMatch(index, rule)
    return None


def _holds(when: RuleWhen, spec: TaskSpec, prompt_language: Callable[[], str | None]) -> bool:
    if when.tag is not None and when.tag not in spec.tags:
        return False
    if when.tenant is not None and when.tenant != spec.tenant:
        return False
    return when.language is None or language.matches(prompt_language(), when.language)


def prompt_text(spec: TaskSpec) -> str:
    """Return the text whose language counts: the last user turn (else the system prompt).

    For an embeddings task, its first text.
    """
    if spec.embed is not None:
        return spec.embed.texts[0] if spec.embed.texts else ""
    for message in reversed(spec.messages):
        if message.role == "user" and message.text:
            return message.text
    return spec.system or ""
