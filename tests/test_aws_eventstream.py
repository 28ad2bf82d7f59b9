"""The event-stream decoder agrees with botocore's, message for message and error for error."""

from __future__ import annotations

import json
import struct
import uuid
import zlib

import pytest
from botocore.eventstream import EventStreamBuffer, ParserError

from runtime._errors import ErrorKind, ProviderError
from runtime.protocols._aws_eventstream import EventStreamDecoder
from runtime.testing._bedrock import encode_message, event_message

pytestmark = pytest.mark.timeout(10)

EVERY_TYPE = [
    ("flag-on", 0, b""),
    ("flag-off", 1, b""),
    ("byte", 2, struct.pack(">b", -7)),
    ("short", 3, struct.pack(">h", -300)),
    ("integer", 4, struct.pack(">i", 70000)),
    ("long", 5, struct.pack(">q", -(2**40))),
    ("bytes", 6, struct.pack(">H", 3) + b"\x00\xff\x10"),
    ("string", 7, struct.pack(">H", 4) + "h\u00e9!".encode()),
    ("timestamp", 8, struct.pack(">q", 1_700_000_000_000)),
    ("uuid", 9, uuid.UUID(int=12345).bytes),
]


def typed_message(headers: list[tuple[str, int, bytes]], payload: bytes) -> bytes:
    """Encode a message with headers of any type (raw value bytes given), both CRCs right."""
    encoded = b"".join(
        struct.pack(">B", len(name)) + name.encode() + bytes([kind]) + raw
        for name, kind, raw in headers
    )
    prelude = struct.pack(">II", 16 + len(encoded) + len(payload), len(encoded))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def botocore_messages(data: bytes) -> list[tuple[dict[str, object], bytes]]:
    buffer = EventStreamBuffer()
    buffer.add_data(data)
    return [(dict(m.headers), m.payload) for m in buffer]  # type: ignore[call-overload]


def ours(data: bytes, step: int | None = None) -> list[tuple[dict[str, object], bytes]]:
    decoder = EventStreamDecoder()
    step = step or len(data) or 1
    return [m for i in range(0, len(data), step) for m in decoder.messages(data[i : i + step])]


STREAMS = {
    "every header type": typed_message(EVERY_TYPE, b'{"x": 1}'),
    "no headers, no payload": typed_message([], b""),
    "the fake's answer": b"".join(
        event_message("contentBlockDelta", {"delta": {"text": t}, "contentBlockIndex": 0})
        for t in ("Hel", "lo", "!")
    ),
    "an exception": encode_message(
        {":message-type": "exception", ":exception-type": "throttlingException"},
        b'{"message":"slow down"}',
    ),
}


@pytest.mark.parametrize("name", list(STREAMS))
def test_messages_decode_as_botocore_decodes_them(name):
    """Headers of every type and payloads are what botocore's EventStreamBuffer reads."""
    data = STREAMS[name]
    expected = botocore_messages(data)
    assert expected
    assert ours(data) == expected


@pytest.mark.parametrize("step", [1, 3, 7, 64])
def test_messages_split_anywhere_decode_the_same(step):
    """Chunks cut at any byte give the same messages as the whole stream."""
    data = b"".join(STREAMS.values())
    assert ours(data, step) == botocore_messages(data)


CORRUPTIONS = {
    "prelude crc": lambda m: m[:8] + bytes([m[8] ^ 0xFF]) + m[9:],
    "headers": lambda m: m[:14] + bytes([m[14] ^ 0x01]) + m[15:],
    "payload": lambda m: m[:-6] + bytes([m[-6] ^ 0x20]) + m[-5:],
    "message crc": lambda m: m[:-1] + bytes([m[-1] ^ 0xFF]),
    "headers too long": lambda m: _with_prelude(m, len(m), 200 * 1024),
    "payload too long": lambda m: _with_prelude(m, 30 * 1024 * 1024, 10),
}


def _with_prelude(message: bytes, total: int, headers: int) -> bytes:
    prelude = struct.pack(">II", total, headers)
    return prelude + struct.pack(">I", zlib.crc32(prelude)) + message[12:]


@pytest.mark.parametrize("name", list(CORRUPTIONS))
def test_what_botocore_refuses_is_malformed(name):
    """A bad checksum or an oversized part fails in both decoders."""
    data = CORRUPTIONS[name](STREAMS["every header type"])
    with pytest.raises(ParserError):
        botocore_messages(data)
    with pytest.raises(ProviderError) as caught:
        ours(data)
    assert caught.value.kind is ErrorKind.MALFORMED_RESPONSE
    assert "event stream" in caught.value.message


def test_a_header_running_past_its_section_is_malformed():
    """Headers that claim more bytes than they have are refused, not read past."""
    data = typed_message([("string", 7, struct.pack(">H", 50) + b"short")], b"")
    with pytest.raises(ProviderError, match="unreadable headers"):
        ours(data)


def test_frames_are_named_for_the_parser():
    """An event is named by its type, its payload given as text."""
    frame = event_message("messageStop", {"stopReason": "end_turn"})
    ((name, payload),) = EventStreamDecoder().feed(frame)
    assert name == "messageStop"
    assert json.loads(payload)["stopReason"] == "end_turn"
