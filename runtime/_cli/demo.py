"""``callboard demo``: the default workflow on simulated providers, with an outage.

Three loopback fakes from `runtime.testing` speak the OpenAI, Anthropic and Gemini wire
formats and answer like a clarifier, a planner, a coder and a reviewer would, with
realistic latency. The demo writes a real config pointing at them, runs the default
workflow through the real runtime, and part-way through takes the Anthropic one down
and makes the Gemini one answer 429 with Retry-After, so retries, fallback and an open
breaker show in the progress display. It ends with the metrics report of the run.
"""

from __future__ import annotations

import argparse
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from runtime._board.board import Callboard
from runtime._cli.run import display_for, run_stages, status_of
from runtime._config.load import load_config
from runtime._config.schema import Config
from runtime._metrics.report_text import render_report
from runtime._workflows.display import WorkflowDisplay
from runtime._workflows.run import TaskView, WorkflowResult, new_workflow_id
from runtime.testing import Answer, Behaviour, Fail, FakeAnthropic, FakeGemini, FakeOpenAI
from runtime.testing._provider import FakeProvider

GOAL = "Add rate limiting to the upload endpoint"
KEYS = {
    "claude": "sk-ant-demo-simulated",
    "gpt": "sk-demo-simulated",
    "gemini": "AIzaDemoSimulatedKey",
}

CONFIG = """\
# Written by `callboard demo`: simulated providers on this machine. To use real ones, copy
# the shipped config.toml, or set api_key = "${{OPENAI_API_KEY}}" (and so on) and drop base_url.
default_provider = "gpt"

[retry]
attempts = 3
backoff_initial_s = 0.5
backoff_max_s = 2.0

[timeouts]
first_byte_s = 4.0
task_s = 60.0

[breaker]
failures = 3
cooldown_s = 20.0

[audit]
path = "audit.jsonl"

[metrics]
path = "metrics.db"

[providers.claude]
type = "anthropic"
api_key = "{claude_key}"
base_url = "{claude_url}"
model = "claude-sonnet-4-5"

[providers.gpt]
type = "openai"
api_key = "{gpt_key}"
base_url = "{gpt_url}"
model = "gpt-4o"

[providers.gemini]
type = "gemini"
api_key = "{gemini_key}"
base_url = "{gemini_url}"
model = "gemini-2.5-flash"

[roles.clarifier]
providers = ["gemini", "gpt"]

[roles.planner]
providers = ["gpt", "claude"]

[roles.coder]
providers = ["claude", "gpt"]
temperature = 0.1

[roles.reviewer]
providers = ["gemini", "claude"]
temperature = 0.0
"""


@dataclass
class SimulatedProviders:
    """The three fakes of the demo, started."""

    claude: FakeProvider
    gpt: FakeProvider
    gemini: FakeProvider

    def all(self) -> tuple[FakeProvider, ...]:
        """Return the three fakes."""
        return (self.claude, self.gpt, self.gemini)

    def stop(self) -> None:
        """Stop them all."""
        for fake in self.all():
            fake.stop()

    def trouble(self) -> None:
        """Take claude down and make gemini answer 429 with Retry-After twice."""
        self.claude.down()
        self.gemini.script.extend([Fail(429, retry_after_s=1.5), Fail(429, retry_after_s=1.5)])


def start_simulated(seed: int = 7) -> SimulatedProviders:
    """Start the three simulated providers, each answering as its roles would."""
    respond = Responder(random.Random(seed))  # noqa: S311 - simulated latency, not secrets
    return SimulatedProviders(
        claude=FakeAnthropic(keys={KEYS["claude"]}, respond=respond).start(),
        gpt=FakeOpenAI(keys={KEYS["gpt"]}, respond=respond).start(),
        gemini=FakeGemini(keys={KEYS["gemini"]}, respond=respond).start(),
    )


def write_config(folder: Path, providers: SimulatedProviders) -> Path:
    """Write the demo's config, pointing at the simulated providers; return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.toml"
    path.write_text(
        CONFIG.format(
            claude_key=KEYS["claude"],
            claude_url=providers.claude.base_url,
            gpt_key=KEYS["gpt"],
            gpt_url=providers.gpt.base_url,
            gemini_key=KEYS["gemini"],
            gemini_url=providers.gemini.base_url,
        ),
        encoding="utf-8",
    )
    return path


class Responder:
    """Answers a prompt of the default workflow like the role it is meant for."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._kinds: list[tuple[str, Callable[[str], str]]] = [
            ("list the questions", _clarify),
            ("numbered list", _plan),
            ("Implement step", _code),
            ("Review the change", _review),
        ]

    def __call__(self, prompt: str) -> Behaviour | None:
        """Return an answer after a realistic delay, streamed in small pieces."""
        for marker, write in self._kinds:
            if marker in prompt:
                delay = self._rng.uniform(0.4, 1.2)
                return Answer(write(prompt), delay_s=delay, chunk_delay_s=0.01)
        return None


def _goal(prompt: str) -> str:
    match = re.search(r"(?:Goal|goal): (.+)", prompt)
    return match.group(1).strip() if match else "the goal"


def _clarify(prompt: str) -> str:
    return (
        f"Questions about: {_goal(prompt)}\n"
        "1. Limit per user or per IP? Assume per API key, falling back to IP.\n"
        "2. What limit? Assume 10 uploads per minute, burst of 3.\n"
        "3. What happens past it? Assume HTTP 429 with a Retry-After header.\n"
        "4. Where is state kept? Assume Redis, shared by every instance."
    )


def _plan(prompt: str) -> str:
    del prompt
    return (
        "1. Add a token-bucket limiter backed by Redis, keyed by API key or IP\n"
        "2. Wire the limiter into the upload endpoint and answer 429 with Retry-After\n"
        "3. Add tests for the limit, the burst and the Retry-After header"
    )


def _code(prompt: str) -> str:
    match = re.search(r"Implement step (\d+): (.+)", prompt)
    index, step = (match.group(1), match.group(2)) if match else ("1", "the step")
    body = {
        "1": (
            "class UploadLimiter:\n"
            "    def __init__(self, redis, rate=10 / 60, burst=3):\n"
            "        self.redis, self.rate, self.burst = redis, rate, burst\n\n"
            "    def allow(self, key: str) -> float:\n"
            '        """Return 0 when allowed, else the seconds to wait."""\n'
            "        return self.redis.eval(TOKEN_BUCKET_LUA, 1, key, self.rate, self.burst)"
        ),
        "2": (
            '@app.post("/upload")\n'
            "async def upload(request: Request):\n"
            "    wait = limiter.allow(request.api_key or request.client.host)\n"
            "    if wait:\n"
            '        raise HTTPException(429, headers={"Retry-After": str(ceil(wait))})\n'
            "    return await store_upload(request)"
        ),
    }.get(index, "def test_limit(client):\n    ...  # 3 pass, the 4th gets 429 with Retry-After")
    return f"```python\n{body}\n```\nSummary: step {index}, {step.lower()}."


def _review(prompt: str) -> str:
    match = re.search(r"step (\d+)", prompt)
    index = match.group(1) if match else "?"
    return (
        f"Step {index}: ready, with two notes.\n"
        "- Make the limit configurable per deployment.\n"
        "- Log rejected uploads at INFO with the key's hash, never the key."
    )


def demo_command(args: argparse.Namespace) -> int:
    """Run the default workflow on simulated providers, with an outage part-way."""
    providers = start_simulated()
    try:
        config_path = write_config(args.dir, providers)
        config = load_config(config_path)
        stages = config.workflow_stages("default")
        assert stages is not None  # noqa: S101 - the default workflow is built in
        with Callboard(config) as board:
            display = display_for(board, args.plain, label="SIMULATED")
            _introduce(display, providers, config_path)
            scenario = _Scenario(display, providers)
            workflow_id = new_workflow_id()
            result = run_stages(
                board, GOAL, stages, args.dir / "answers" / workflow_id, scenario, workflow_id
            )
            display.say(render_report(board.metrics(since="1h", workflow=workflow_id)))
        _conclude(display, config)
    finally:
        providers.stop()
    return status_of(result)


class _Scenario:
    """The demo's listener: the display, plus trouble once the plan is known."""

    def __init__(self, display: WorkflowDisplay, providers: SimulatedProviders) -> None:
        self._display = display
        self._providers = providers
        self._troubled = False

    def started(self, workflow_id: str, goal: str, views: Sequence[TaskView]) -> None:
        self._display.started(workflow_id, goal, views)

    def changed(self, view: TaskView) -> None:
        self._display.changed(view)

    def answered(self, view: TaskView) -> None:
        self._display.answered(view)
        if view.stage == "plan" and not self._troubled:
            self._troubled = True
            self._providers.trouble()
            self._display.say(
                "!! the simulated Anthropic provider (claude) goes down, and the simulated "
                "Gemini one starts answering 429 with Retry-After"
            )

    def finished(self, result: WorkflowResult) -> None:
        self._display.finished(result)


def _introduce(display: WorkflowDisplay, providers: SimulatedProviders, config: Path) -> None:
    lines = [
        "callboard demo: every provider below is SIMULATED on this machine (no keys, no network)",
        f"  claude  Anthropic Messages API    {providers.claude.base_url}",
        f"  gpt     OpenAI chat completions   {providers.gpt.base_url}",
        f"  gemini  Google Gemini API         {providers.gemini.base_url}",
        f"config: {config} (roles: clarifier, planner, coder, reviewer)",
        f"goal: {GOAL}",
        time.strftime("started %H:%M:%S"),
    ]
    for line in lines:
        display.say(line)


def _conclude(display: WorkflowDisplay, config: Config) -> None:
    lines = [
        f"audit log: {config.audit_path()}",
        (
            f"metrics store: {config.metrics_path()}  (try: callboard metrics --config "
            f"{config.source} --since 1h)"
        ),
        "to use real providers: export OPENAI_API_KEY, ANTHROPIC_API_KEY and GEMINI_API_KEY,",
        (
            'then run `callboard check` and `callboard run "your goal"` with the shipped '
            "config.toml (its keys are ${VAR} references to those variables)"
        ),
    ]
    for line in lines:
        display.say(line)
