"""Loopback fake providers, for testing code that calls LLM APIs without the internet.

Each fake is a real HTTP server on ``127.0.0.1`` that speaks one provider's documented wire
format: its endpoints, authentication, answers (streamed and not), error bodies and
rate-limit headers. Point any client at ``fake.base_url`` and it cannot tell the difference,
so callboard's own tests, ``callboard demo`` and your tests all use them::

    import httpx
    from runtime.testing import Fail, FakeOpenAI

    with FakeOpenAI(keys={"sk-test"}, script=[Fail(429, retry_after_s=1)]) as fake:
        client = httpx.Client(base_url=fake.base_url, headers={"Authorization": "Bearer sk-test"})
        ask = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}
        assert client.post("/chat/completions", json=ask).status_code == 429
        assert client.post("/chat/completions", json=ask).json()["choices"][0]["message"]
        fake.wait_for_requests(2, chat_only=True)

`config_for` builds a validated callboard config whose roles are cast to fakes, so code
that takes a `Callboard` can be tested end to end without keys or network.

A fake's `Script` decides what each chat request gets (`Answer`, `Fail`, `Hang`, `Drop`,
`Reset`, `Malformed`, `ProxyError`, `StreamError`, `Stall`, `Trickle`); its `RequestLog` keeps every
request, secrets masked. ``python -m runtime.testing serve --protocol openai`` serves one from the
command line.
"""

from runtime.testing._anthropic import FakeAnthropic
from runtime.testing._azure import FakeAzureOpenAI
from runtime.testing._bedrock import FakeBedrock
from runtime.testing._cohere import FakeCohere
from runtime.testing._config import config_for
from runtime.testing._gemini import FakeGemini
from runtime.testing._log import RecordedRequest, RequestLog, busiest_window
from runtime.testing._ollama import FakeOllama
from runtime.testing._openai import FakeOpenAI
from runtime.testing._provider import FakeProvider
from runtime.testing._registry import FAKES
from runtime.testing._replicate import FakeReplicate
from runtime.testing._script import (
    Answer,
    Behaviour,
    Drop,
    Fail,
    Hang,
    Malformed,
    ProxyError,
    Reset,
    Script,
    Stall,
    StreamError,
    ToolUse,
    Trickle,
)

__all__ = [
    "FAKES",
    "Answer",
    "Behaviour",
    "Drop",
    "Fail",
    "FakeAnthropic",
    "FakeAzureOpenAI",
    "FakeBedrock",
    "FakeCohere",
    "FakeGemini",
    "FakeOllama",
    "FakeOpenAI",
    "FakeProvider",
    "FakeReplicate",
    "Hang",
    "Malformed",
    "ProxyError",
    "RecordedRequest",
    "RequestLog",
    "Reset",
    "Script",
    "Stall",
    "StreamError",
    "ToolUse",
    "Trickle",
    "busiest_window",
    "config_for",
]
