"""The fakes take images and cache marks in each API's real shapes, and refuse broken ones."""

import httpx
import pytest

from runtime._chat import ChatRequest, ImagePart, Message, TextPart
from runtime.protocols import PROTOCOLS, Endpoint
from runtime.testing import FakeAnthropic, FakeGemini, FakeOpenAI

pytestmark = pytest.mark.timeout(10)

PNG = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
URL = "https://example.com/cat.jpg"
VERSION = {"anthropic-version": "2023-06-01"}


@pytest.fixture
def openai():
    with FakeOpenAI() as fake, httpx.Client(base_url=fake.base_url) as client:
        yield fake, client


@pytest.fixture
def anthropic():
    with FakeAnthropic() as fake, httpx.Client(base_url=fake.base_url, headers=VERSION) as client:
        yield fake, client


@pytest.fixture
def gemini():
    with FakeGemini() as fake, httpx.Client(base_url=fake.base_url) as client:
        yield fake, client


def _openai_ask(*parts):
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": list(parts)}]}


def _anthropic_ask(*blocks, system=None):
    body = {"model": "claude-haiku-4-5", "max_tokens": 64}
    body["messages"] = [{"role": "user", "content": list(blocks)}]
    return body | ({"system": system} if system is not None else {})


def _gemini_ask(*parts):
    return {"contents": [{"role": "user", "parts": list(parts)}]}


def _image(source):
    return {"type": "image", "source": source}


def _text(text, **extra):
    return {"type": "text", "text": text, **extra}


def _roundtrip(fake, messages, model):
    """Send a chat built by the real protocol to ``fake``; return its parsed result."""
    protocol = PROTOCOLS[fake.protocol]
    endpoint = Endpoint(base_url=fake.base_url, model=model)
    call = protocol.chat_request(endpoint, ChatRequest(messages=messages, model=model), False)
    response = httpx.request(call.method, call.url, headers=dict(call.headers), json=call.json)
    return protocol.parse_chat(response.status_code, response.headers, response.content)


# OpenAI


def test_openai_fake_answers_text_and_image_parts(openai):
    """Content parts with images by URL and by data URL are answered; only text counts tokens."""
    fake, client = openai
    ask = _openai_ask(
        {"type": "text", "text": "x" * 40},
        {"type": "image_url", "image_url": {"url": URL}},
        {
            "type": "image_url",
            "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "low"},
        },
    )
    response = client.post("/chat/completions", json=ask)
    assert response.status_code == 200
    assert response.json()["usage"]["prompt_tokens"] == 10
    assert fake.requests[-1].json["messages"][0]["content"][1]["image_url"]["url"] == URL


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("cat.png", "but got a value without the 'data:' prefix."),
        ("data:image/png;base64,", "but got empty base64-encoded bytes."),
        ("data:text/plain;base64,aGk=", "but got unsupported MIME type 'text/plain'."),
        ("data:image/png;base64,***", "but got invalid base64-encoded bytes."),
    ],
)
def test_openai_fake_refuses_a_bad_image_url_as_openai_does(openai, url, problem):
    """A broken image URL is a 400 ``invalid_value`` naming the parameter path."""
    _, client = openai
    ask = _openai_ask(
        {"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": url}}
    )
    response = client.post("/chat/completions", json=ask)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"].startswith("Invalid image URL: 'messages[0].content[1].image_url.url'.")
    assert error["message"].endswith(problem)
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_value")
    assert error["param"] == "messages[0].content[1].image_url.url"


def test_openai_fake_refuses_an_image_part_without_a_url(openai):
    """An ``image_url`` part missing its URL is a 400 ``missing_required_parameter``."""
    _, client = openai
    response = client.post("/chat/completions", json=_openai_ask({"type": "image_url"}))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "missing_required_parameter"
    assert error["param"] == "messages[0].content[0].image_url.url"


def test_openai_fake_refuses_an_unknown_part_type(openai):
    """A content part of an unknown type is a 400 ``invalid_value`` on its ``type``."""
    _, client = openai
    response = client.post("/chat/completions", json=_openai_ask({"type": "image", "url": URL}))
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"].startswith("Invalid value: 'image'. Supported values are: 'text'")
    assert error["param"] == "messages[0].content[0].type"


def test_openai_protocol_images_are_accepted_by_the_fake(openai):
    """A chat with images built by the OpenAI protocol is answered by the fake."""
    fake, _ = openai
    message = Message("user", (TextPart("What?"), ImagePart(data=PNG, media_type="image/png")))
    assert _roundtrip(fake, (message,), "gpt-4o").text


# Anthropic


def test_anthropic_fake_answers_image_blocks_with_cache_control(anthropic):
    """Base64 and URL image blocks, and ``cache_control`` on any block, are answered."""
    fake, client = anthropic
    cache = {"cache_control": {"type": "ephemeral"}}
    ask = _anthropic_ask(
        _image({"type": "base64", "media_type": "image/png", "data": PNG}),
        _image({"type": "url", "url": URL}) | cache,
        _text("x" * 40, cache_control={"type": "ephemeral", "ttl": "1h"}),
        system=[_text("Be brief.", **cache)],
    )
    response = client.post("/messages", json=ask)
    assert response.status_code == 200
    assert response.json()["usage"]["input_tokens"] == len("Be brief.\n" + "x" * 40) // 4
    assert fake.requests[-1].json["messages"][0]["content"][1]["cache_control"]["type"] == (
        "ephemeral"
    )


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            {"type": "base64", "media_type": "image/bmp", "data": PNG},
            (
                "messages.0.content.0.image.source.base64.media_type: Input should be "
                "'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"
            ),
        ),
        (
            {"type": "base64", "media_type": "image/png", "data": ""},
            "messages.0.content.0.image.source.base64: image cannot be empty",
        ),
        ({"type": "url"}, "messages.0.content.0.image.source.url.url: Field required"),
        (None, "messages.0.content.0.image.source: Field required"),
    ],
)
def test_anthropic_fake_refuses_a_broken_image_block_as_anthropic_does(anthropic, source, message):
    """A broken image source is a 400 ``invalid_request_error`` naming the field's path."""
    _, client = anthropic
    response = client.post("/messages", json=_anthropic_ask(_image(source)))
    assert response.status_code == 400
    assert response.json()["error"] == {"type": "invalid_request_error", "message": message}


def test_anthropic_fake_refuses_a_fifth_cache_point(anthropic):
    """Five ``cache_control`` blocks, system ones included, are refused as Anthropic does."""
    _, client = anthropic
    cache = {"cache_control": {"type": "ephemeral"}}
    blocks = [_text(f"part {i}", **cache) for i in range(4)]
    response = client.post("/messages", json=_anthropic_ask(*blocks, system=[_text("s", **cache)]))
    assert response.status_code == 400
    assert response.json()["error"]["message"] == (
        "A maximum of 4 blocks with cache_control may be provided. Found 5."
    )


@pytest.mark.parametrize(
    ("cache_control", "field"),
    [({"type": "persistent"}, "type"), ({"type": "ephemeral", "ttl": "1d"}, "ttl")],
)
def test_anthropic_fake_refuses_an_unknown_cache_control(anthropic, cache_control, field):
    """Only ``{"type": "ephemeral"}``, with an optional ``5m`` or ``1h`` ttl, is a cache mark."""
    _, client = anthropic
    response = client.post(
        "/messages", json=_anthropic_ask(_text("hi", cache_control=cache_control))
    )
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert message.startswith(f"messages.0.content.0.text.cache_control.{field}: Input should be")


def test_anthropic_protocol_images_and_cache_points_are_accepted_by_the_fake(anthropic):
    """A chat with images, cache marks and a marked system, built by the protocol, is answered."""
    fake, _ = anthropic
    messages = (
        Message("system", (TextPart("A manual.", cache=True),)),
        Message("user", (ImagePart(url=URL, cache=True), TextPart("Describe.", cache=True))),
        Message("assistant", "A cat."),
        Message("user", (ImagePart(data=PNG, media_type="image/png"), TextPart("And this?"))),
    )
    assert _roundtrip(fake, messages, "claude-haiku-4-5").text
    assert fake.requests[-1].json["system"][0]["cache_control"] == {"type": "ephemeral"}


# Gemini


@pytest.mark.parametrize(
    "image",
    [
        {"inline_data": {"mime_type": "image/png", "data": PNG}},
        {"inlineData": {"mimeType": "image/png", "data": PNG}},
        {"file_data": {"mime_type": "image/jpeg", "file_uri": URL}},
        {"fileData": {"fileUri": URL}},
    ],
)
def test_gemini_fake_answers_inline_and_file_images(gemini, image):
    """Inline and URL images, in snake_case or camelCase, are answered; only text counts."""
    _, client = gemini
    ask = _gemini_ask({"text": "x" * 40}, image)
    response = client.post("/models/gemini-2.5-flash:generateContent", json=ask)
    assert response.status_code == 200
    assert response.json()["usageMetadata"]["promptTokenCount"] == 10


def test_gemini_fake_refuses_inline_data_that_is_not_base64(gemini):
    """Inline data that does not decode is a 400 ``INVALID_ARGUMENT`` with a field violation."""
    _, client = gemini
    ask = _gemini_ask({"text": "hi"}, {"inline_data": {"mime_type": "image/png", "data": URL}})
    response = client.post("/models/gemini-2.5-flash:generateContent", json=ask)
    assert response.status_code == 400
    error = response.json()["error"]
    field = "contents[0].parts[1].inline_data.data"
    assert error["message"] == (
        f"Invalid value at '{field}' (TYPE_BYTES), Base64 decoding failed for \"{URL}\""
    )
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    (detail,) = error["details"]
    assert detail["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert detail["fieldViolations"][0]["field"] == field


@pytest.mark.parametrize(
    ("part", "field"),
    [
        ({"inline_data": {"data": PNG}}, "inline_data.mime_type"),
        ({"file_data": {"mime_type": "image/png"}}, "file_data.file_uri"),
    ],
)
def test_gemini_fake_refuses_images_missing_a_required_field(gemini, part, field):
    """Inline data without its type, or file data without its URI, is a 400 on that field."""
    _, client = gemini
    response = client.post("/models/gemini-2.5-flash:generateContent", json=_gemini_ask(part))
    assert response.status_code == 400
    violation = response.json()["error"]["details"][0]["fieldViolations"][0]
    assert violation["field"] == f"contents[0].parts[0].{field}"


def test_gemini_protocol_images_are_accepted_by_the_fake(gemini):
    """A chat with inline and URL images built by the Gemini protocol is answered by the fake."""
    fake, _ = gemini
    parts = (TextPart("Compare."), ImagePart(data=PNG, media_type="image/png"), ImagePart(url=URL))
    assert _roundtrip(fake, (Message("user", parts),), "gemini-2.5-flash").text
    sent = fake.requests[-1].json["contents"][0]["parts"]
    assert sent[2] == {"file_data": {"mime_type": "image/jpeg", "file_uri": URL}}
