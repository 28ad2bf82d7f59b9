"""OpenTelemetry: spans and metrics of tasks, from an in-memory exporter."""

from __future__ import annotations

import httpx
import pytest
from gateway_support import ServedGateway
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from support import FAST_SECTIONS, KEYS, config_toml

from runtime import Callboard, TaskFailedError
from runtime._metrics.otel import OtelExporter, Server
from runtime._rows import AttemptRow, TaskContext, TaskEvent, TaskRow
from runtime.testing import Answer, Fail, FakeOpenAI, config_for

pytestmark = pytest.mark.timeout(30)

SECRET_PROMPT = "the launch codes are 0000"


@pytest.fixture(scope="module")
def otel():
    """The process's SDK, set up once (the API allows one global provider)."""
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
    # the API takes one global provider: no other test may have set one up first
    assert trace.get_tracer_provider() is tracer_provider
    return spans, reader


@pytest.fixture
def traced(otel, fakes, deployment):
    """A task with a fallback under a caller's span, a stream, an embedding and a failure."""
    spans, reader = otel
    spans.clear()
    primary, backup = fakes("openai"), fakes("anthropic")
    providers = {
        "primary": (primary, {"embedding_model": "text-embedding-3-small"}),
        "backup": backup,
    }
    roles = {"coder": ["primary", "backup"], "writer": ["backup"], "search": ["primary"]}
    breaker = FAST_SECTIONS.replace("failures = 3", "failures = 1\nfailure_rate = 0")
    sections = (
        breaker.replace("cooldown_s = 0.5", "cooldown_s = 0.05") + "\n[otel]\nenabled = true\n"
    )
    deployment.write(config_toml(deployment, providers, roles, sections=sections))
    board = deployment.board()
    with trace.get_tracer("the-agent").start_as_current_span("agent step") as step:
        primary.script.append(Fail(500))
        backup.script.append(Answer("from backup"))
        assert (
            board.ask("coder", SECRET_PROMPT, temperature=0.2, max_tokens=64).provider == "backup"
        )
    backup.script.append(Answer("one two three four"))
    assert list(board.stream("writer", SECRET_PROMPT))
    board.embed("search", [SECRET_PROMPT])
    primary.script.extend([Fail(500)] * 20)
    backup.script.extend([Fail(500)] * 20)
    with pytest.raises(TaskFailedError):
        board.ask("coder", SECRET_PROMPT)
    board.close()
    finished = [s for s in spans.get_finished_spans() if s.name != "agent step"]
    tasks = sorted(
        (s for s in finished if s.name.startswith("callboard.task")), key=lambda s: s.start_time
    )
    children = {
        t.context.span_id: sorted(
            (s for s in finished if s.parent and s.parent.span_id == t.context.span_id),
            key=lambda s: s.start_time,
        )
        for t in tasks
    }
    return step.get_span_context(), tasks, children, finished, reader


def test_a_fallback_is_traced_under_the_callers_span(traced):
    """The task span's parent is the caller's; a failed attempt, a fallback event, a good one."""
    step, tasks, children, _, _ = traced
    assert len(tasks) == 4
    fallback = tasks[0]
    assert fallback.parent.span_id == step.span_id
    assert fallback.context.trace_id == step.trace_id
    assert fallback.attributes["callboard.role"] == "coder"
    assert list(fallback.attributes["callboard.chain"]) == ["primary", "backup"]
    first, second = children[fallback.context.span_id]
    assert (first.name, first.kind) == ("chat gpt-4o", trace.SpanKind.CLIENT)
    assert first.attributes["gen_ai.provider.name"] == "openai"
    assert first.attributes["error.type"] == "server"
    assert first.attributes["server.address"] == "127.0.0.1"
    assert second.attributes["gen_ai.provider.name"] == "anthropic"
    assert second.attributes["gen_ai.request.model"] == "claude-sonnet-4-5"
    assert second.attributes["gen_ai.request.temperature"] == 0.2
    assert second.attributes["gen_ai.request.max_tokens"] == 64
    assert second.attributes["gen_ai.usage.output_tokens"] > 0
    assert "error.type" not in second.attributes
    assert list(second.attributes["gen_ai.response.finish_reasons"]) == ["stop"]
    (event,) = [e for e in fallback.events if e.name == "callboard.fallback"]
    assert event.attributes["callboard.to_provider"] == "backup"


def test_a_stream_and_an_embedding_are_traced_as_their_operations(traced):
    """A stream's attempt has its time to first chunk; an embedding is ``embeddings {model}``."""
    _, tasks, children, _, _ = traced
    stream, embedding = tasks[1], tasks[2]
    assert stream.parent is None
    assert stream.attributes["callboard.streamed"] is True
    (streamed,) = children[stream.context.span_id]
    assert streamed.attributes["callboard.time_to_first_chunk_s"] >= 0
    assert embedding.attributes["gen_ai.operation.name"] == "embeddings"
    (embedded,) = children[embedding.context.span_id]
    assert embedded.name == "embeddings text-embedding-3-small"


def test_a_failure_marks_the_task_and_every_attempt_in_error(traced):
    """A task that failed everywhere: error status and ``error.type`` on all its spans."""
    _, tasks, children, _, _ = traced
    failure = tasks[3]
    assert failure.status.status_code == trace.StatusCode.ERROR
    assert failure.attributes["error.type"] == "failed"
    attempts = children[failure.context.span_id]
    assert attempts
    assert all(s.status.status_code == trace.StatusCode.ERROR for s in attempts)
    assert [e.name for e in failure.events].count("callboard.fallback") >= 1


def test_no_prompt_text_or_key_is_in_any_span(traced):
    """Names, attributes and events carry neither the prompt nor a provider's key."""
    _, _, _, finished, _ = traced
    everything = repr(
        [(s.name, dict(s.attributes), [dict(e.attributes) for e in s.events]) for s in finished]
    )
    assert "launch codes" not in everything
    assert not any(key in everything for key in KEYS.values())


def test_the_genai_client_metrics_are_recorded(traced):
    """Duration, token usage and time to first chunk, in the conventions' names."""
    reader = traced[4]
    data = reader.get_metrics_data()
    names = {m.name for r in data.resource_metrics for sc in r.scope_metrics for m in sc.metrics}
    assert {
        "gen_ai.client.operation.duration",
        "gen_ai.client.token.usage",
        "gen_ai.client.operation.time_to_first_chunk",
    } <= names


def test_a_breaker_change_while_a_task_ran_is_an_event_of_its_span(otel):
    """A provider's change of standing during the task becomes a ``callboard.health`` event."""
    spans, _ = otel
    spans.clear()
    task = TaskRow(10.0, "t1", None, "coder", "ok", "backup", "m", 2, 1, 1, 0, 1000.0, True)
    attempts = (
        AttemptRow(
            9.5, "t1", None, "coder", 1, "primary", "m", "server", 500, 400.0, None, 0, 0, 0, False
        ),
        AttemptRow(
            10.0, "t1", None, "coder", 2, "backup", "m", "ok", 200, 500.0, None, 1, 1, 0, True
        ),
    )
    context = TaskContext("chat", False, None, None, ("primary", "backup"), None, None,
                          health_changes=((9.5, "primary", "open"),))  # fmt: skip
    servers = {"primary": Server("openai", "m", "127.0.0.1"), "backup": Server("groq", "m", None)}
    OtelExporter(servers).observe(TaskEvent(task, attempts, context))
    (span,) = [s for s in spans.get_finished_spans() if s.name == "callboard.task coder"]
    (health,) = [e for e in span.events if e.name == "callboard.health"]
    assert dict(health.attributes) == {"callboard.provider": "primary", "callboard.state": "open"}
    assert health.timestamp == 9_500_000_000
    backup = [
        s
        for s in spans.get_finished_spans()
        if s.attributes.get("callboard.provider") == "backup" and s.kind == trace.SpanKind.CLIENT
    ]
    assert backup[0].attributes["gen_ai.provider.name"] == "groq"


def test_no_otel_section_and_no_variables_means_no_spans(otel, fakes, deployment):
    """Off unless configured: a board without ``[otel]`` traces nothing."""
    spans, _ = otel
    spans.clear()
    gpt = fakes("openai")
    deployment.write(config_toml(deployment, {"gpt": gpt}, {"coder": ["gpt"]}))
    board = deployment.board()
    assert board.config.otel.enabled is False
    gpt.script.append(Answer("hi"))
    board.ask("coder", "hi")
    board.close()
    assert spans.get_finished_spans() == ()


def test_a_gateway_requests_traceparent_is_the_parent_of_its_task(otel):
    """A W3C ``traceparent`` header at the gateway parents the task's span; a bad one is ignored."""
    spans, _ = otel
    spans.clear()
    trace_id, span_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    with FakeOpenAI(default=Answer("Hello")) as fake:
        config = config_for({"gpt": fake}, {"coder": ["gpt"]}, toml="[otel]\nenabled = true\n")
        with Callboard(config, check=False) as board, ServedGateway(board) as served:
            url = f"{served.url}/v1/chat/completions"
            body = {"model": "coder", "messages": [{"role": "user", "content": "Hi"}]}
            headers = {"traceparent": f"00-{trace_id}-{span_id}-01", "x-request-id": "traced"}
            assert httpx.post(url, json=body, headers=headers).status_code == 200
            bad = {"traceparent": f"00-{trace_id}-{'0' * 16}-01", "x-request-id": "untraced"}
            assert httpx.post(url, json=body, headers=bad).status_code == 200
    traced, untraced = sorted(
        (s for s in spans.get_finished_spans() if s.name.startswith("callboard.task")),
        key=lambda s: s.start_time,
    )
    assert traced.parent is not None
    assert traced.parent.span_id == int(span_id, 16)
    assert traced.context.trace_id == int(trace_id, 16)
    assert untraced.parent is None
    assert untraced.context.trace_id != int(trace_id, 16)


def test_traceparent_option_is_checked():
    """``traceparent=`` takes a W3C value only: a wrong one is refused before anything is sent."""
    with (
        FakeOpenAI() as fake,
        Callboard(config_for({"gpt": fake}, {"coder": ["gpt"]}), check=False) as board,
        pytest.raises(ValueError, match="W3C traceparent"),
    ):
        board.ask("coder", "hi", traceparent="00-abc-def-01")
