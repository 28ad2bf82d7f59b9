"""Decoding AWS event streams (``application/vnd.amazon.eventstream``) into named frames.

A message is a prelude (total length, headers length, and the CRC32 of those eight
bytes), typed headers, a payload, and the CRC32 of everything before it, all big-endian.
The decoder checks both CRCs and the limits botocore's ``EventStreamBuffer`` keeps
(headers up to 128 KiB, payloads up to 24 MiB), reads the ten header types, and names
each message for a `StreamParser`:

- ``:message-type`` ``event``: the name is the ``:event-type`` header, the payload the
  message's payload as UTF-8 text;
- ``exception``: the name is the ``:exception-type`` header, the payload likewise;
- ``error``: the name is the ``:error-code`` header, the payload
  ``{"message": <:error-message header>}`` as JSON text.

Written here, not taken from botocore (which decodes the same and is the reference its
tests hold it to): botocore is an optional 10+ MB extra that only SigV4 signing needs,
and a Bedrock API key must work without it. Pure: bytes in, frames out.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping

from runtime._errors import ErrorKind, ProviderError

PRELUDE = struct.Struct(">III")
"""Total length, headers length, prelude CRC."""
PRELUDE_LENGTH = PRELUDE.size
CRC_LENGTH = 4
MAX_HEADERS_LENGTH = 128 * 1024
MAX_PAYLOAD_LENGTH = 24 * 1024 * 1024

HeaderValue = bool | int | bytes | str


def _fixed(fmt: str) -> Callable[[bytes, int], tuple[HeaderValue, int]]:
    unpacker = struct.Struct(fmt)

    def read(data: bytes, at: int) -> tuple[HeaderValue, int]:
        return unpacker.unpack_from(data, at)[0], at + unpacker.size

    return read


def _sized(data: bytes, at: int) -> tuple[bytes, int]:
    (length,) = struct.unpack_from(">H", data, at)
    end = at + 2 + length
    if end > len(data):
        raise struct.error("a header value runs past the headers")
    return data[at + 2 : end], end


def _text(data: bytes, at: int) -> tuple[HeaderValue, int]:
    raw, end = _sized(data, at)
    return raw.decode(), end


def _uuid(data: bytes, at: int) -> tuple[HeaderValue, int]:
    if at + 16 > len(data):
        raise struct.error("a uuid header runs past the headers")
    return data[at : at + 16], at + 16  # its 16 bytes, as botocore gives them


_VALUE_READERS: Mapping[int, Callable[[bytes, int], tuple[HeaderValue, int]]] = {
    0: lambda _data, at: (True, at),
    1: lambda _data, at: (False, at),
    2: _fixed(">b"),
    3: _fixed(">h"),
    4: _fixed(">i"),
    5: _fixed(">q"),
    6: _sized,
    7: _text,
    8: _fixed(">q"),  # a timestamp: milliseconds since the epoch
    9: _uuid,
}
"""Header value types: true, false, byte, short, integer, long, bytes, string, timestamp,
uuid."""


class EventStreamDecoder:
    """Turns the bytes of an AWS event stream, chunk by chunk, into ``(name, payload)``."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> list[tuple[str, str]]:
        """Take the next bytes; return the messages they complete as named frames, in order.

        Raises:
            ProviderError: ``malformed_response`` for bytes that are not an event stream
                (a bad prelude or CRC, an oversized message, a payload not UTF-8).
        """
        return [_frame(headers, payload) for headers, payload in self.messages(chunk)]

    def messages(self, chunk: bytes) -> list[tuple[dict[str, HeaderValue], bytes]]:
        """Take the next bytes; return the headers and payload of each message they complete.

        Raises:
            ProviderError: ``malformed_response`` for bytes that are not an event stream.
        """
        self._buffer += chunk
        messages = []
        while len(self._buffer) >= PRELUDE_LENGTH:
            total, headers_length = _prelude(self._buffer)
            if len(self._buffer) < total:
                break
            message = bytes(self._buffer[:total])
            del self._buffer[:total]
            messages.append(_message(message, headers_length))
        return messages


def _prelude(buffer: bytearray) -> tuple[int, int]:
    """Check a message's prelude; return its total length and its headers' length."""
    total, headers_length, crc = PRELUDE.unpack_from(buffer)
    if zlib.crc32(buffer[: PRELUDE_LENGTH - CRC_LENGTH]) != crc:
        raise malformed("broken event stream: the prelude's checksum does not match")
    if headers_length > MAX_HEADERS_LENGTH:
        raise malformed(f"broken event stream: {headers_length} bytes of headers")
    payload_length = total - headers_length - PRELUDE_LENGTH - CRC_LENGTH
    if payload_length < 0 or payload_length > MAX_PAYLOAD_LENGTH:
        raise malformed(f"broken event stream: a message of {total} bytes")
    return total, headers_length


def _message(message: bytes, headers_length: int) -> tuple[dict[str, HeaderValue], bytes]:
    """Check a whole message's CRC; return its headers and payload."""
    (crc,) = struct.unpack_from(">I", message, len(message) - CRC_LENGTH)
    if zlib.crc32(message[:-CRC_LENGTH]) != crc:
        raise malformed("broken event stream: the message's checksum does not match")
    headers_end = PRELUDE_LENGTH + headers_length
    try:
        headers = _headers(message[PRELUDE_LENGTH:headers_end])
    except (struct.error, KeyError, IndexError, UnicodeDecodeError, ValueError) as exc:
        raise malformed(f"broken event stream: unreadable headers ({exc})") from None
    return headers, message[headers_end:-CRC_LENGTH]


def _headers(data: bytes) -> dict[str, HeaderValue]:
    headers: dict[str, HeaderValue] = {}
    at = 0
    while at < len(data):
        name_end = at + 1 + data[at]
        if name_end > len(data):
            raise ValueError("a header name runs past the headers")
        name = data[at + 1 : name_end].decode()
        if name in headers:
            raise ValueError(f"the header {name!r} comes twice")
        headers[name], at = _VALUE_READERS[data[name_end]](data, name_end + 1)
    return headers


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
        ProviderError: ``malformed_response`` for bytes that are not an event stream.
    """
    decoder = EventStreamDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)


def malformed(message: str) -> ProviderError:
    """Return the error for bytes that are not a well-formed event stream."""
    return ProviderError(ErrorKind.MALFORMED_RESPONSE, message, status=200)
