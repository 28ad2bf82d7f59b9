"""Each scripted behaviour, the request log and the rpm limit, against the SSE chat fakes.

The other fakes' behaviours are tested in their own files, in their own wire formats.
"""

import threading
import time
from dataclasses import dataclass

import httpx
import pytest
from httpx_sse import connect_sse

from runtime.testing import (
    FAKES,
    Answer,
    Drop,
    Fail,
    FakeProvider,
    Hang,
    Malformed,
    ProxyError,
    Reset,
    Stall,
    StreamError,
)

pytestmark = pytest.mark.timeout(10)

KEY = "test-key-0123456789abcdefghij"
AUTH = {
    "openai": {"Authorization": f"Bearer {KEY}"},
    "anthropic": {"x-api-key": KEY, "anthropic-version": "2023-06-01"},
    "gemini": {"x-goog-api-key": KEY},
}
ERROR_STATUS = {"openai": 500, "anthropic": 529, "gemini": 503}
"""What a `StreamError` answers to a request that is not streamed."""


@dataclass
class Caller:
    """Sends one protocol's chat requests and reads its answers."""

    fake: FakeProvider
    client: httpx.Client

    @property
    def protocol(self):
        """The protocol of the fake."""
        return self.fake.protocol

    def path(self, stream=False):
        """The chat path under the base URL."""
        if self.protocol == "openai":
            return "/chat/completions"
        if self.protocol == "anthropic":
            return "/messages"
        action = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"/models/gemini-2.5-flash:{action}"

    def body(self, text="Hi", stream=False):
        """A chat request body asking ``text``."""
        content = [{"role": "user", "content": text}]
        if self.protocol == "openai":
            return {"model": "gpt-4o", "messages": content, "stream": stream}
        if self.protocol == "anthropic":
            return {
                "model": "claude-haiku-4-5",
                "max_tokens": 64,
                "messages": content,
                "stream": stream,
            }
        return {"contents": [{"role": "user", "parts": [{"text": text}]}]}

    def post(self, text="Hi", **kwargs):
        """Send one non-streamed chat request."""
        return self.client.post(self.path(), json=self.body(text), **kwargs)

    def text_of(self, response):
        """The answer text of a non-streamed response."""
        body = response.json()
        if self.protocol == "openai":
            return body["choices"][0]["message"]["content"]
        if self.protocol == "anthropic":
            return body["content"][0]["text"]
        return body["candidates"][0]["content"]["parts"][0]["text"]

    def stream(self):
        """Open one streamed chat request, as an SSE event source."""
        return connect_sse(self.client, "POST", self.path(stream=True), json=self.body(stream=True))

    def is_text_chunk(self, event):
        """Whether ``event`` carries answer text."""
        if self.protocol == "openai":
            delta = {} if event.data == "[DONE]" else event.json()["choices"][0]["delta"]
            return "content" in delta and "role" not in delta
        return self.protocol == "gemini" or event.event == "content_block_delta"

    def is_final(self, event):
        """Whether ``event`` is the one that ends a complete stream."""
        markers = {"openai": "[DONE]", "anthropic": "message_stop", "gemini": "finishReason"}
        return markers[self.protocol] in event.data


@pytest.fixture(params=sorted(AUTH))
def caller(request):
    with (
        FAKES[request.param](keys={KEY}) as fake,
        httpx.Client(base_url=fake.base_url, headers=AUTH[request.param], timeout=5) as client,
    ):
        yield Caller(fake, client)


def test_script_is_consumed_in_order_then_the_default(caller):
    """Scripted behaviours answer chat requests one each, in order, then the default answers."""
    caller.fake.script.extend([Answer("first"), Fail(500), Answer("second")])
    first, failed, second, default = (caller.post() for _ in range(4))
    assert caller.text_of(first) == "first"
    assert failed.status_code == 500
    assert caller.text_of(second) == "second"
    assert caller.text_of(default) == caller.fake.default.text
    assert len(caller.fake.script) == 0


def test_script_appended_from_another_thread_is_used(caller):
    """Behaviours appended by another thread while the server runs answer the next requests."""
    writer = threading.Thread(target=caller.fake.script.extend, args=([Answer("late")],))
    writer.start()
    writer.join()
    assert caller.text_of(caller.post()) == "late"


def test_refused_requests_do_not_consume_the_script(caller):
    """A request refused for its key or model leaves the script untouched."""
    caller.fake.script.append(Answer("kept"))
    assert caller.post(headers=dict.fromkeys(AUTH[caller.protocol], "wrong")).status_code in (
        400,
        401,
    )
    assert caller.text_of(caller.post()) == "kept"


def test_answer_delay_and_default_latency_are_waited(caller):
    """An answer waits its own delay; answers without one wait the fake's latency."""
    caller.fake.latency_s = 0.2
    caller.fake.script.append(Answer("slow", delay_s=0.3))
    started = time.monotonic()
    caller.post()
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    caller.post()
    assert time.monotonic() - started >= 0.2


def test_fail_waits_its_delay(caller):
    """A failure with a delay answers its error only after that delay."""
    caller.fake.script.append(Fail(500, delay_s=0.2))
    started = time.monotonic()
    assert caller.post().status_code == 500
    assert time.monotonic() - started >= 0.2


def test_unknown_path_gets_a_json_404(caller):
    """A path the API does not serve gets a JSON 404, as the provider's front end sends."""
    response = caller.client.get("/no/such/path")
    assert response.status_code == 404
    assert response.json()
    assert caller.fake.wait_for_requests(1)[0].action == ""


def test_malformed_answers_200_with_an_undocumented_body(caller):
    """`Malformed` answers 200 with JSON that is not the documented shape."""
    caller.fake.script.append(Malformed())
    response = caller.post()
    assert response.status_code == 200
    assert response.json() == {"unexpected": "shape"}


def test_malformed_stream_sends_an_undocumented_event(caller):
    """`Malformed` on a stream sends one event of undocumented JSON, then ends."""
    caller.fake.script.append(Malformed())
    with caller.stream() as source:
        assert [e.json() for e in source.iter_sse()] == [{"unexpected": "shape"}]


def test_proxy_error_is_a_non_json_page(caller):
    """`ProxyError` answers an HTML error page, as a proxy in front of the API does."""
    caller.fake.script.append(ProxyError())
    response = caller.post()
    assert response.status_code == 502
    assert response.headers["content-type"].startswith("text/html")
    assert "<html>" in response.text
    with pytest.raises(ValueError, match="Expecting value"):
        response.json()


def test_drop_closes_the_connection_without_answering(caller):
    """`Drop` closes the connection before any answer, and the next request is served."""
    caller.fake.script.append(Drop())
    with pytest.raises(httpx.RemoteProtocolError):
        caller.post()
    assert caller.post().status_code == 200


def test_reset_resets_the_connection_without_answering(caller):
    """`Reset` ends the connection with a TCP reset, and the next request is served."""
    caller.fake.script.append(Reset())
    with pytest.raises(httpx.ReadError, match="reset"):
        caller.post()
    assert caller.post().status_code == 200


def test_hang_never_answers_until_the_server_stops(caller):
    """`Hang` holds the request until `stop`, which returns promptly and cuts it."""
    caller.fake.script.append(Hang())
    outcome = []
    thread = threading.Thread(target=lambda: outcome.append(_outcome(caller.post)))
    thread.start()
    caller.fake.wait_for_requests(1, chat_only=True)
    started = time.monotonic()
    caller.fake.stop()
    assert time.monotonic() - started < 2
    thread.join(5)
    assert outcome == [httpx.RemoteProtocolError]


def test_stream_error_on_a_plain_request_is_an_error_answer(caller):
    """A `StreamError` met by a non-streamed request answers the provider's error status."""
    caller.fake.script.append(StreamError())
    assert caller.post().status_code == ERROR_STATUS[caller.protocol]


def test_stall_stops_a_stream_midway_until_the_server_stops(caller):
    """`Stall` sends some chunks, then nothing, until the server stops and cuts the stream."""
    caller.fake.script.append(Stall(after_chunks=1))
    events, chunk_seen = [], threading.Event()

    def read():
        with caller.stream() as source:
            for event in source.iter_sse():
                events.append(event)
                if caller.is_text_chunk(event):
                    chunk_seen.set()

    thread = threading.Thread(target=lambda: _outcome(read))
    thread.start()
    assert chunk_seen.wait(5)
    caller.fake.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert [e for e in events if caller.is_text_chunk(e)] == [events[-1]]
    assert not any(caller.is_final(e) for e in events)


def test_log_records_requests_with_secrets_masked(caller):
    """Every request is logged with its method, path and body; the key is never kept."""
    caller.post("remember me")
    caller.client.get("/models")
    (chat, models) = caller.fake.wait_for_requests(2)
    assert (chat.method, chat.is_chat) == ("POST", True)
    assert chat.path == "/" + caller.fake.base_url.split("/", 3)[-1] + caller.path().split("?")[0]
    assert "remember me" in repr(chat.json)
    assert (models.method, models.is_chat, models.action) == ("GET", False, "list_models")
    assert KEY not in repr(caller.fake.requests)
    secret = {"openai": "authorization", "anthropic": "x-api-key", "gemini": "x-goog-api-key"}
    assert chat.headers[secret[caller.protocol]].endswith("...ghij")


def test_wait_for_requests_blocks_until_they_arrive(caller):
    """The wait helper returns as soon as requests sent by another thread have arrived."""
    thread = threading.Thread(target=lambda: [caller.post() for _ in range(3)])
    thread.start()
    assert len(caller.fake.wait_for_requests(3, chat_only=True)) == 3
    thread.join(5)


def test_wait_for_requests_times_out(caller):
    """The wait helper raises `TimeoutError` when too few requests arrive in time."""
    caller.client.get("/models")
    with pytest.raises(TimeoutError, match="0 of 1"):
        caller.fake.wait_for_requests(1, chat_only=True, timeout_s=0.05)


def test_rpm_limit_answers_429_past_it(caller):
    """Past its requests-per-minute limit a fake answers the provider's 429 with a wait."""
    with FAKES[caller.protocol](keys={KEY}, rpm=2) as fake:
        caller.client.base_url = fake.base_url
        statuses = [caller.post().status_code for _ in range(2)]
        refused = caller.post()
    assert statuses == [200, 200]
    assert refused.status_code == 429
    if caller.protocol == "gemini":
        retry = refused.json()["error"]["details"][-1]["retryDelay"]
        assert 25 <= float(retry.rstrip("s")) <= 30
    else:
        assert 25 <= int(refused.headers["retry-after"]) <= 30
    if caller.protocol == "openai":
        assert refused.headers["x-ratelimit-remaining-requests"] == "0"
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"
    if caller.protocol == "anthropic":
        assert refused.headers["anthropic-ratelimit-requests-remaining"] == "0"
        assert refused.json()["error"]["type"] == "rate_limit_error"


def _outcome(call):
    try:
        call()
    except httpx.HTTPError as error:
        return type(error)
    return None
