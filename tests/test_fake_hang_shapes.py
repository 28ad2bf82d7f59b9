"""The fakes' ways to hang, in every wire format: headers only, non-content events, thinking.

Each test sends a real request built by the protocol module to a fake, reads the answer
with the protocol's framing and parser (the pure parts), and checks what came and when.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import pytest
from support import ENV, provider_toml

from runtime._chat import ChatRequest, Message
from runtime._config.load import parse_config
from runtime.protocols import PROTOCOLS, HttpCall, WireProtocol
from runtime.protocols._common import load_json
from runtime.testing import FAKES, Answer, FakeProvider, Hang, Stall, Trickle

pytestmark = pytest.mark.timeout(15)

PROTOCOL_NAMES = sorted(FAKES)
QUIET_S = 0.4
"""How long a test listens to a stalled answer to see that nothing more comes."""
HEADERS_S = 10.0
"""How long headers that do come may take on a loaded machine."""


@dataclass
class Reader:
    """Sends one protocol's chat request to a fake and reads the answer's frames."""

    fake: FakeProvider
    protocol: WireProtocol
    call: HttpCall
    frames: list[tuple[float, list[str]]]
    """Each frame read: when (monotonic), and the text it carried (often none)."""

    async def read(
        self, client: httpx.AsyncClient, listen_s: float, headers_s: float | None = None
    ) -> int | None:
        """Read the answer for up to ``listen_s``; return its status (``None``: no headers).

        With ``headers_s``, the headers may take that long (a loaded machine), and the
        ``listen_s`` of listening for more starts when they arrive.
        """
        status: int | None = None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(headers_s or listen_s) as deadline:
                async with self._open(client) as response:
                    status = response.status_code
                    deadline.reschedule(loop.time() + listen_s)
                    if not self.call.stream:
                        await response.aread()
                        self.frames.append((time.monotonic(), ["(whole answer)"]))
                        return status
                    parser = self.protocol.stream_parser(response.headers)
                    async for event, data in self.protocol.framing.frames(response):
                        self.frames.append((time.monotonic(), parser.feed(event, data)))
        except TimeoutError:
            pass
        return status

    def _open(
        self, client: httpx.AsyncClient
    ) -> contextlib.AbstractAsyncContextManager[httpx.Response]:
        return _opened(client, self.protocol, self.call)

    @property
    def texts(self) -> list[str]:
        """The text of every frame, in order."""
        return [text for _, texts in self.frames for text in texts]


@contextlib.asynccontextmanager
async def _opened(
    client: httpx.AsyncClient, protocol: WireProtocol, call: HttpCall
) -> AsyncIterator[httpx.Response]:
    """Open the call; for Replicate's streamed prediction, open its ``urls.stream`` instead."""
    by_url = protocol.stream_by_url
    if call.stream and by_url is not None:
        created = await client.request(call.method, call.url, headers=call.headers, json=call.json)
        follow = by_url.stream_call(call, created.content)
        assert follow is not None
        call = follow
    request = client.build_request(call.method, call.url, headers=call.headers, json=call.json)
    response = await client.send(request, stream=True)
    try:
        yield response
    finally:
        await response.aclose()


@pytest.fixture(params=PROTOCOL_NAMES)
def start(request, fakes) -> Callable[..., Reader]:
    """Start the fake of one protocol; build a reader for a streamed or whole answer."""
    protocol = request.param

    def build(*, stream: bool) -> Reader:
        fake = fakes(protocol)
        extra = {"auth": "api-key"} if protocol == "bedrock" else {}
        config = parse_config(provider_toml("p", fake, **extra), environ=ENV)
        settings = config.providers["p"]
        wire = PROTOCOLS[settings.kind.protocol]
        ask = ChatRequest((Message("user", "Hello"),), settings.model)
        return Reader(fake, wire, wire.chat_request(settings.endpoint(), ask, stream), [])

    return build


def _read(reader: Reader, listen_s: float, headers_s: float | None = None) -> int | None:
    async def go() -> int | None:
        async with httpx.AsyncClient(timeout=30) as client:
            return await reader.read(client, listen_s, headers_s)

    return asyncio.run(go())


def test_hang_with_headers_sends_a_streams_headers_and_nothing_more(start):
    """`Hang(headers=True)` on a streamed request: status 200 arrives, then not one frame."""
    reader = start(stream=True)
    reader.fake.script.append(Hang(headers=True))
    assert _read(reader, QUIET_S, headers_s=HEADERS_S) == 200
    assert reader.frames == []


def test_hang_with_headers_sends_a_whole_answers_headers_and_no_body(start):
    """`Hang(headers=True)` on a whole-answer request: status 200 arrives, the body never."""
    reader = start(stream=False)
    reader.fake.script.append(Hang(headers=True))
    assert _read(reader, QUIET_S, headers_s=HEADERS_S) == 200
    assert reader.frames == []


def test_stall_with_idle_events_sends_only_events_without_content(start):
    """`Stall(after_chunks=0, idle_events=1)`: the opening events and one more, none with text."""
    reader = start(stream=True)
    reader.fake.script.append(Stall(after_chunks=0, idle_events=1))
    assert _read(reader, QUIET_S) == 200
    if reader.fake.protocol != "replicate":  # an SSE comment is no event to a reader
        assert reader.frames
    assert reader.texts == []


def test_trickle_sends_non_content_events_forever(start):
    """`Trickle(every_s)` keeps sending events that carry no text, one per ``every_s``."""
    reader = start(stream=True)
    reader.fake.script.append(Trickle(every_s=0.05, after_chunks=1))
    assert _read(reader, QUIET_S) == 200
    first, *rest = reader.texts
    assert first
    assert rest == []
    if reader.fake.protocol != "replicate":
        assert len(reader.frames) >= 4


def test_a_thinking_answer_streams_non_content_events_before_its_text(start):
    """`Answer(think_s)` sends events without text for ``think_s``, then the whole answer."""
    reader = start(stream=True)
    reader.fake.script.append(Answer("thought it through", think_s=0.6))
    began = time.monotonic()
    assert _read(reader, 5.0) == 200
    first_text = next(at for at, texts in reader.frames if texts)
    assert first_text - began >= 0.6
    assert "".join(reader.texts) == "thought it through"
    if reader.fake.protocol != "replicate":
        assert sum(1 for at, texts in reader.frames if at < first_text and not texts) >= 2


def test_a_thinking_whole_answer_comes_that_much_later(start):
    """A whole answer with ``think_s`` arrives after it, in one piece."""
    reader = start(stream=False)
    reader.fake.script.append(Answer("thought", think_s=0.5))
    began = time.monotonic()
    assert _read(reader, 5.0) in (200, 201)
    assert reader.frames[0][0] - began >= 0.5


def test_the_idle_frame_of_each_wire_parses_as_no_text():
    """Each wire's non-content frame is valid in its format and carries no text."""
    idle_of = {name: _idle_frame(name) for name in PROTOCOL_NAMES}
    assert all(idle_of.values())
    for name, frame in idle_of.items():
        if name == "replicate":
            assert frame.startswith(b":")
        elif name not in ("bedrock", "ollama"):
            data = frame.decode().split("data: ", 1)[1]
            assert isinstance(load_json(data.strip()), dict), name


def _idle_frame(name: str) -> bytes:
    from runtime.testing._completion import ChatAsk, plan_completion  # noqa: PLC0415

    wire = FAKES[name].wire
    ask = ChatAsk(model=wire.MODELS[0], prompt="Hi", stream=True)
    return wire.stream(plan_completion(ask, Answer("x")), ask).idle
