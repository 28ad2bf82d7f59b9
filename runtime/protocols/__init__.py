"""Wire protocols: pure functions that speak each provider's HTTP API.

A `WireProtocol` builds the `HttpCall` for a chat or a start-up check from an `Endpoint`,
and turns what comes back (a whole body, or server-sent events fed to a `StreamParser`)
into a `ChatResult` or a `ProviderError`. No protocol performs I/O. `PROTOCOLS` holds one
per API, keyed by name: ``"openai"`` (OpenAI chat completions, and every
OpenAI-compatible service through its base URL), ``"anthropic"`` (the Messages API),
``"gemini"`` (Google's ``generateContent``), ``"azure_openai"`` (OpenAI's API on Azure
deployments), ``"bedrock"`` (AWS Bedrock's Converse API, streamed as AWS event-stream
frames), ``"ollama"`` (``/api/chat``, streamed as NDJSON), ``"cohere"`` (Cohere's v2 chat)
and ``"replicate"`` (predictions, in sync mode or streamed by URL).

The APIs callboard serves (``callboard serve``) have a server side beside their client
side: ``_openai_server`` and ``_anthropic_server`` read a request into the options of
``ask`` and write a reply, whole or as the API's event stream (``_serving`` holds what
they share).
"""

from runtime.protocols._base import (
    Embeddings,
    Endpoint,
    HttpCall,
    ListModels,
    StreamByUrl,
    StreamParser,
    WireProtocol,
)
from runtime.protocols._framing import Framing
from runtime.protocols._registry import PROTOCOLS

__all__ = [
    "PROTOCOLS",
    "Embeddings",
    "Endpoint",
    "Framing",
    "HttpCall",
    "ListModels",
    "StreamByUrl",
    "StreamParser",
    "WireProtocol",
]
