"""The contract between the fake server and a protocol module, and the values they trade.

A protocol module (`_openai`, `_anthropic`, `_gemini`) is a set of pure functions that
satisfies `Wire`: from a request's headers and body to a `ChatAsk`, and from a `Completion`
or an error to the provider's documented bytes. The server (`_provider`) does all the I/O.
"""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from runtime.testing._budget import BudgetState
from runtime.testing._completion import AskError, ChatAsk, Completion
from runtime.testing._script import Fail, StreamError


class Action(enum.Enum):
    """What a route does."""

    CHAT = "chat"
    CHAT_STREAM = "chat_stream"
    """A chat whose route itself asks for a stream (Gemini's ``streamGenerateContent``)."""
    LIST_MODELS = "list_models"
    GET_MODEL = "get_model"
    EMBED = "embed"
    """An embeddings request; only a module that satisfies `EmbedWire` routes to it."""
    FETCH_STREAM = "fetch_stream"
    """The stream of an answer created earlier, read by its URL (Replicate's
    ``urls.stream``); only a module that satisfies `DeferredWire` routes to it."""
    FETCH_RESULT = "fetch_result"
    """An answer created earlier, fetched by its URL (Replicate's ``urls.get``)."""


@dataclass(frozen=True, slots=True)
class Route:
    """One endpoint: method, aiohttp path pattern (``{model}`` is the model) and action."""

    method: str
    path: str
    action: Action


@dataclass(frozen=True, slots=True)
class Reply:
    """A JSON answer: status, body and extra headers."""

    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StreamPlan:
    """A streamed answer as frames: ``head``, one ``body`` frame per text chunk, ``tail``.

    ``idle`` is one frame that carries no answer text (a ``ping``, an empty delta...), sent
    while a model thinks or a stream trickles (`Answer.think_s`, `Stall`, `Trickle`).
    """

    head: tuple[bytes, ...]
    body: tuple[bytes, ...]
    tail: tuple[bytes, ...]
    content_type: str = "text/event-stream"
    idle: bytes = b""


@dataclass(frozen=True, slots=True)
class EmbedAsk:
    """What an embeddings request asked for, whatever its protocol."""

    model: str
    texts: tuple[str, ...]
    dimensions: int | None = None
    encoding: str = "float"
    """OpenAI only: ``encoding_format``, ``"float"`` or ``"base64"`` (little-endian float32)."""


def sse_frame(data: Any, event: str | None = None, *, crlf: bool = False) -> bytes:
    """One server-sent event: ``data`` as compact JSON (a ``str`` as is), optionally named."""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    frame = f"event: {event}\ndata: {text}\n\n" if event else f"data: {text}\n\n"
    return (frame.replace("\n", "\r\n") if crlf else frame).encode()


class Wire(Protocol):
    """What a protocol module provides (each module satisfies this as a whole)."""

    NAME: str
    API_ROOT: str
    ROUTES: tuple[Route, ...]
    MODELS: tuple[str, ...]
    REQUESTS_PER_MINUTE: int
    TOKENS_PER_MINUTE: int

    def presented_key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        """The API key the request carries, where this provider expects it."""

    def auth_error(self, presented: str | None) -> Reply:
        """The provider's answer to a missing (``None``) or invalid key."""

    def header_error(self, headers: Mapping[str, str]) -> Reply | None:
        """The provider's answer to a required header missing, or ``None``."""

    def read_ask(
        self, body: Any, *, model: str | None, stream: bool, query: Mapping[str, str]
    ) -> ChatAsk:
        """Read a chat request; ``model`` and ``stream`` come from the path where APIs put them.

        Raises:
            AskError: the real API would answer 400.
        """

    def bad_request(self, error: AskError) -> Reply:
        """The provider's 400 answer."""

    def unknown_model(self, model: str) -> Reply:
        """The provider's 404 answer for a model it does not offer."""

    def unknown_path(self, method: str, path: str) -> Reply:
        """The provider's 404 answer for a path it does not serve."""

    def failure(self, fail: Fail, model: str) -> Reply:
        """The provider's error answer for a scripted `Fail`."""

    def rate_limited(self, model: str, limit: int, wait_s: float) -> Reply:
        """The provider's 429 answer when its requests-per-minute limit is spent."""

    def limit_headers(self, requests: BudgetState, tokens: BudgetState) -> dict[str, str]:
        """The rate-limit headers of every answer (none for providers that send none)."""

    def id_headers(self) -> dict[str, str]:
        """The request-id headers of every answer."""

    def answer(self, completion: Completion, model: str) -> Any:
        """The whole (non-streamed) answer body."""

    def stream(self, completion: Completion, ask: ChatAsk) -> StreamPlan:
        """The streamed answer."""

    def stream_error(self, error: StreamError) -> bytes | None:
        """The frame that reports an error mid-stream, or ``None`` to cut the connection."""

    def stream_error_failure(self, error: StreamError) -> Fail:
        """The error to answer instead when a `StreamError` meets a non-streamed request."""

    def model_list(self, models: tuple[str, ...]) -> Any:
        """The body of the list-models endpoint."""

    def model_info(self, model: str) -> Any:
        """The body of the get-model endpoint."""


class DeferredWire(Wire, Protocol):
    """A protocol module whose streamed answers are created first and read by URL."""

    def started(self, model: str, ident: str, base_url: str) -> Any:
        """The answer to a create call asking for a stream: the work ``ident``, just started.

        It names the URLs (under ``base_url``) of its stream and of its result.
        """

    def finished(self, completion: Completion, model: str, ident: str, base_url: str) -> Any:
        """The result of the work ``ident`` once its stream has ended."""


class EmbedWire(Wire, Protocol):
    """A protocol module that also serves embeddings (routes with `Action.EMBED`)."""

    def read_embed(self, body: Any) -> EmbedAsk:
        """Read an embeddings request.

        Raises:
            AskError: the real API would answer 400.
        """

    def embed_answer(
        self, ask: EmbedAsk, vectors: tuple[tuple[float, ...], ...], input_tokens: int
    ) -> Any:
        """The embeddings answer body: one vector per text of ``ask``, in order."""


def wire_of(module_name: str) -> Any:
    """Return the module named ``module_name``: the wire format a fake class serves.

    Each fake class lives in its API's module, whose functions are its wire format
    (``wire: ClassVar[Wire] = wire_of(__name__)``); the class attribute's annotation says
    which contract (`Wire`, `EmbedWire`, `DeferredWire`) the module keeps.
    """
    return sys.modules[module_name]
