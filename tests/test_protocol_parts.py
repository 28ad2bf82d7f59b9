"""Message parts on the wire: images, cache points and auth styles, for each protocol."""

import pytest

from runtime._chat import ChatRequest, ImagePart, Message, TextPart
from runtime.protocols import PROTOCOLS, Endpoint
from runtime.protocols import _anthropic as anthropic
from runtime.protocols import _gemini as gemini
from runtime.protocols import _openai as openai

pytestmark = pytest.mark.timeout(10)

PNG = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)
URL = "https://example.com/cat.png"


def _endpoint(base, model, **kwargs):
    return Endpoint(base_url=base, model=model, api_key="key-123", **kwargs)


OPENAI = _endpoint("https://api.openai.com/v1", "gpt-4o")
ANTHROPIC = _endpoint("https://api.anthropic.com/v1", "claude-sonnet-4-5")
GEMINI = _endpoint("https://generativelanguage.googleapis.com/v1beta", "gemini-2.5-flash")


def _chat(*messages, system=None, model="m"):
    return ChatRequest(messages=tuple(messages), model=model, system=system)


def _user(*parts):
    return Message("user", tuple(parts))


def _openai_content(*parts):
    return openai.chat_request(OPENAI, _chat(_user(*parts)), False).json["messages"][0]["content"]


def _anthropic_body(*messages, system=None):
    return anthropic.chat_request(ANTHROPIC, _chat(*messages, system=system), False).json


def _anthropic_content(*parts):
    return _anthropic_body(_user(*parts))["messages"][0]["content"]


def _gemini_parts(*parts):
    return gemini.chat_request(GEMINI, _chat(_user(*parts)), False).json["contents"][0]["parts"]


def _header_names(call):
    return {name for name, _ in call.headers}


@pytest.mark.parametrize("name", ["openai", "anthropic", "gemini"])
def test_every_protocol_takes_images(name):
    """The three protocols declare that messages may hold images."""
    assert PROTOCOLS[name].images is True


def test_only_anthropic_sends_explicit_cache_points():
    """Anthropic marks cache points; OpenAI and Gemini cache prefixes on their own."""
    assert PROTOCOLS["anthropic"].cache_points is True
    assert PROTOCOLS["openai"].cache_points is False
    assert PROTOCOLS["gemini"].cache_points is False


# OpenAI


def test_openai_single_text_part_stays_a_string_even_when_marked_for_caching():
    """One text part and no image is sent as plain string content, the cache mark dropped."""
    assert _openai_content(TextPart("Hello", cache=True)) == "Hello"


def test_openai_text_parts_become_text_content_parts():
    """Several text parts become a list of ``text`` content parts, in order."""
    assert _openai_content(TextPart("a"), TextPart("b")) == [
        {"type": "text", "text": "a"},
        {"type": "text", "text": "b"},
    ]


def test_openai_image_by_url_is_an_image_url_part():
    """An image given by URL is an ``image_url`` part carrying that URL."""
    assert _openai_content(TextPart("What is this?"), ImagePart(url=URL)) == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": URL}},
    ]


def test_openai_inline_image_is_a_base64_data_url():
    """An image given as base64 data is sent as a ``data:`` URL with its media type."""
    content = _openai_content(ImagePart(data=PNG, media_type="image/png", cache=True))
    assert content == [{"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}]


def test_openai_system_message_with_parts_is_joined_text():
    """A system message given as parts still leads the messages as one string."""
    system = Message("system", (TextPart("Be brief.", cache=True), TextPart("Be kind.")))
    call = openai.chat_request(OPENAI, _chat(system, Message("user", "Hi")), False)
    assert call.json["messages"][0] == {"role": "system", "content": "Be brief.\n\nBe kind."}


def test_openai_auth_none_sends_no_key():
    """With ``auth = "none"`` no Authorization header is sent, even with a key set."""
    endpoint = _endpoint("http://localhost:8000/v1", "m", auth="none")
    assert "authorization" not in _header_names(openai.chat_request(endpoint, _chat(), False))
    assert "authorization" not in _header_names(openai.models_request(endpoint))


# Anthropic


def test_anthropic_plain_text_part_stays_a_string():
    """One unmarked text part is sent as plain string content."""
    assert _anthropic_content(TextPart("Hello")) == "Hello"


def test_anthropic_inline_image_is_a_base64_source():
    """An image given as data is an ``image`` block with a ``base64`` source."""
    assert _anthropic_content(
        ImagePart(data=PNG, media_type="image/png"), TextPart("Caption?")
    ) == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "text", "text": "Caption?"},
    ]


def test_anthropic_image_by_url_is_a_url_source():
    """An image given by URL is an ``image`` block with a ``url`` source."""
    assert _anthropic_content(ImagePart(url=URL)) == [
        {"type": "image", "source": {"type": "url", "url": URL}}
    ]


def test_anthropic_data_url_becomes_a_base64_source():
    """A ``data:`` URL is unpacked into a ``base64`` source, which Anthropic requires."""
    (block,) = _anthropic_content(ImagePart(url=f"data:image/webp;base64,{PNG}"))
    assert block["source"] == {"type": "base64", "media_type": "image/webp", "data": PNG}


def test_anthropic_cache_mark_puts_cache_control_on_its_block():
    """A marked part, text or image, carries ``cache_control: ephemeral``; others do not."""
    content = _anthropic_content(
        TextPart("long context", cache=True),
        ImagePart(url=URL, cache=True),
        TextPart("question"),
    )
    assert content[0] == {
        "type": "text",
        "text": "long context",
        "cache_control": {"type": "ephemeral"},
    }
    assert content[1]["cache_control"] == {"type": "ephemeral"}
    assert "cache_control" not in content[2]


def test_anthropic_single_marked_text_part_becomes_a_block():
    """One text part marked for caching is sent as a block, so it can carry the mark."""
    assert _anthropic_content(TextPart("Hello", cache=True)) == [
        {"type": "text", "text": "Hello", "cache_control": {"type": "ephemeral"}}
    ]


def test_anthropic_sends_only_the_last_four_cache_points():
    """Past Anthropic's limit of four cache points, only the last four marks are sent."""
    turns = [_user(TextPart(f"turn {i}", cache=True)) for i in range(6)]
    body = _anthropic_body(*turns)
    marked = [
        block["text"]
        for message in body["messages"]
        for block in message["content"]
        if "cache_control" in block
    ]
    assert marked == ["turn 2", "turn 3", "turn 4", "turn 5"]


def test_anthropic_string_system_prompt_is_unchanged():
    """An unmarked system prompt is sent as the plain top-level string, as before."""
    system = Message("system", (TextPart("Rule one."), TextPart("Rule two.")))
    body = _anthropic_body(system, Message("user", "Hi"), system="Be brief.")
    assert body["system"] == "Be brief.\n\nRule one.\n\nRule two."


def test_anthropic_marked_system_message_makes_system_blocks():
    """A cache mark in a system message makes ``system`` text blocks carrying the mark."""
    system = Message("system", (TextPart("A long manual.", cache=True),))
    body = _anthropic_body(system, Message("user", "Hi"), system="Be brief.")
    assert body["system"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "A long manual.", "cache_control": {"type": "ephemeral"}},
    ]
    assert body["messages"] == [{"role": "user", "content": "Hi"}]


def test_anthropic_cache_point_limit_counts_system_blocks_first():
    """System marks come first in the body, so they are the ones dropped past four."""
    system = Message("system", (TextPart("manual", cache=True),))
    turns = [_user(TextPart(f"turn {i}", cache=True)) for i in range(4)]
    body = _anthropic_body(system, *turns)
    assert body["system"] == [{"type": "text", "text": "manual"}]
    assert all("cache_control" in m["content"][0] for m in body["messages"])


@pytest.mark.parametrize(
    ("auth", "expected", "absent"),
    [
        ("default", ("x-api-key", "key-123"), "authorization"),
        ("bearer", ("authorization", "Bearer key-123"), "x-api-key"),
    ],
)
def test_anthropic_auth_style_chooses_the_key_header(auth, expected, absent):
    """The key goes in ``x-api-key``, or in ``Authorization: Bearer`` with ``auth = "bearer"``."""
    call = anthropic.chat_request(_endpoint(ANTHROPIC.base_url, "m", auth=auth), _chat(), False)
    assert expected in call.headers
    assert absent not in _header_names(call)
    assert ("anthropic-version", anthropic.API_VERSION) in call.headers


def test_anthropic_auth_none_sends_no_key_but_the_version():
    """With ``auth = "none"`` no key header is sent; ``anthropic-version`` still is."""
    call = anthropic.chat_request(_endpoint(ANTHROPIC.base_url, "m", auth="none"), _chat(), False)
    assert _header_names(call) == {"anthropic-version", "content-type"}


# Gemini


def test_gemini_inline_image_is_inline_data():
    """An image given as data is an ``inline_data`` part with its mime type."""
    assert _gemini_parts(
        TextPart("Caption this."), ImagePart(data=PNG, media_type="image/png")
    ) == [
        {"text": "Caption this."},
        {"inline_data": {"mime_type": "image/png", "data": PNG}},
    ]


def test_gemini_image_by_url_is_file_data_with_a_guessed_type():
    """An image given by URL is a ``file_data`` part whose type comes from the extension."""
    assert _gemini_parts(ImagePart(url=URL)) == [
        {"file_data": {"mime_type": "image/png", "file_uri": URL}}
    ]


def test_gemini_data_url_becomes_inline_data():
    """A ``data:`` URL is unpacked into ``inline_data``, which Gemini reads."""
    assert _gemini_parts(ImagePart(url=f"data:image/gif;base64,{PNG}")) == [
        {"inline_data": {"mime_type": "image/gif", "data": PNG}}
    ]


def test_gemini_ignores_cache_marks():
    """Cache marks leave Gemini's parts unchanged: it caches prefixes on its own."""
    assert _gemini_parts(TextPart("Hello", cache=True)) == [{"text": "Hello"}]


@pytest.mark.parametrize(
    ("url", "media_type"),
    [
        ("https://x.test/a.PNG", "image/png"),
        ("https://x.test/a.jpeg?size=large", "image/jpeg"),
        ("https://x.test/a.webp#frag", "image/webp"),
        ("https://x.test/photo", "image/jpeg"),
        ("gs://bucket/scan.heic", "image/heic"),
    ],
)
def test_gemini_image_type_comes_from_the_url_extension(url, media_type):
    """The URL's path extension names the type, ignoring query and case; else image/jpeg."""
    assert gemini.image_type(url) == media_type


@pytest.mark.parametrize(
    ("auth", "expected", "absent"),
    [
        ("default", ("x-goog-api-key", "key-123"), "authorization"),
        ("bearer", ("authorization", "Bearer key-123"), "x-goog-api-key"),
    ],
)
def test_gemini_auth_style_chooses_the_key_header(auth, expected, absent):
    """The key goes in ``x-goog-api-key``, or an OAuth token in ``Authorization: Bearer``."""
    call = gemini.chat_request(_endpoint(GEMINI.base_url, "m", auth=auth), _chat(), False)
    assert expected in call.headers
    assert absent not in _header_names(call)


def test_gemini_auth_none_sends_no_key():
    """With ``auth = "none"`` no key header is sent, nor a key in the URL."""
    endpoint = _endpoint(GEMINI.base_url, "m", auth="none")
    call = gemini.chat_request(endpoint, _chat(), False)
    assert _header_names(call) == {"content-type"}
    assert "key=" not in call.url


@pytest.mark.parametrize(
    ("part", "inline"),
    [
        (ImagePart(data="QUJD", media_type="image/png"), ("image/png", "QUJD")),
        (ImagePart(url="data:image/jpeg;base64,QUJD"), ("image/jpeg", "QUJD")),
        (ImagePart(url="https://example.com/a.png"), None),
        (ImagePart(url="data:text/plain,hello"), None),
    ],
)
def test_an_image_is_inline_when_it_is_data_or_a_base64_data_url(part, inline):
    """`ImagePart.inline` gives the media type and base64 data; a fetched URL is remote."""
    assert part.inline() == inline
    assert part.remote is (inline is None)
