"""Decoding AWS event streams (``application/vnd.amazon.eventstream``) into named frames.

An event-stream message is a prelude (total length, headers length, prelude CRC32), typed
headers, a payload and a CRC32 of the whole message. botocore's ``EventStreamBuffer``
parses and checks them; this module names each message for a `StreamParser`:

- ``:message-type`` ``event``: the name is the ``:event-type`` header, the payload the
  message's payload as UTF-8 text;
- ``exception``: the name is the ``:exception-type`` header, the payload likewise;
- ``error``: the name is the ``:error-code`` header, the payload
  ``{"message": <:error-message header>}`` as JSON text.

Pure (bytes in, frames out), but it needs botocore, the ``bedrock`` extra; importing this
module does not.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import cast

from runtime._errors import ErrorKind, MissingExtraError, ProviderError


class EventStreamDecoder:
    """Turns the bytes of an AWS event stream, chunk by chunk, into ``(name, payload)``.

    Both CRCs of every message are checked.

    Raises:
        MissingExtraError: botocore (the ``bedrock`` extra) is not installed.
    """

    def __init__(self) -> None:
        try:
            from botocore.eventstream import EventStreamBuffer  # noqa: PLC0415 - optional
        except ImportError:
            raise MissingExtraError(
                "streamed Bedrock answers need botocore: pip install 'callboard[bedrock]'"
            ) from None
        self._buffer = EventStreamBuffer()

    def feed(self, chunk: bytes) -> list[tuple[str, str]]:
        """Take the next bytes; return the messages they complete, in order.

        Raises:
            ProviderError: ``malformed_response`` for bytes that are not an event stream
                (a bad prelude or CRC, an oversized message, a payload not UTF-8).
        """
        from botocore.eventstream import ParserError  # noqa: PLC0415 - optional

        self._buffer.add_data(chunk)
        frames: list[tuple[str, str]] = []
        try:
            for message in self._buffer:
                # botocore's stubs type the headers as int; they are a dict.
                headers = cast("Mapping[str, object]", message.headers)
                frames.append(_frame(headers, message.payload))
        except ParserError as exc:
            raise malformed(f"broken event stream: {exc}") from None
        return frames


def _frame(headers: Mapping[str, object], payload: bytes) -> tuple[str, str]:
    kind = headers.get(":message-type", "event")
    if kind == "error":
        name = str(headers.get(":error-code", "error"))
        return name, json.dumps({"message": str(headers.get(":error-message", ""))})
    key = ":exception-type" if kind == "exception" else ":event-type"
    try:
        return str(headers.get(key, "")), payload.decode()
    except UnicodeDecodeError:
        raise malformed("event stream payload is not UTF-8") from None


def decode_event_stream(chunks: Iterable[bytes]) -> Iterator[tuple[str, str]]:
    """Yield ``(name, payload)`` for each message of an event stream given as byte chunks.

    Raises:
        MissingExtraError: botocore is not installed.
        ProviderError: ``malformed_response`` for bytes that are not an event stream.
    """
    decoder = EventStreamDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)


def malformed(message: str) -> ProviderError:
    """Return the error for bytes that are not a well-formed event stream."""
    return ProviderError(ErrorKind.MALFORMED_RESPONSE, message, status=200)
