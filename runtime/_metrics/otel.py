"""OpenTelemetry traces and metrics in the GenAI semantic conventions (v1.37.0).

Fed from what the router already records: each finished task's `TaskEvent` (its row, its
attempts' rows and a `TaskContext`) reaches the metrics actor, which turns it into one span
per task with one child span per attempt, built after the fact with the attempts' own start
and end times, and records the conventions' client metrics. Nothing runs on a call's path.

Spans and metrics go to the OpenTelemetry SDK the application set up; when it set up none,
`install_sdk` sets one up exporting OTLP over HTTP (``[otel] endpoint`` or the ``OTEL_*``
variables). No prompt, answer, error message or key is ever put in a span: only names,
models, counts, times and outcomes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from runtime._errors import MissingExtraError
from runtime._rows import AttemptRow, TaskContext, TaskEvent, TaskRow
from runtime._version import __version__

SEMCONV_VERSION = "1.37.0"
"""The GenAI semantic conventions version the attributes follow."""

PROVIDER_NAMES = {
    "openai": "openai",
    "anthropic": "anthropic",
    "gemini": "gcp.gemini",
    "azure_openai": "azure.ai.openai",
    "bedrock": "aws.bedrock",
    "cohere": "cohere",
    "mistral": "mistral_ai",
    "groq": "groq",
    "deepseek": "deepseek",
}
"""``gen_ai.provider.name``: the conventions' well-known values; other types go by name."""

_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48,
                     40.96, 81.92)  # fmt: skip
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304,
                  16777216, 67108864)  # fmt: skip


class OtelUnavailableError(MissingExtraError):
    """OpenTelemetry was asked for, but its packages are not installed."""

    def __init__(self) -> None:
        super().__init__(
            "OpenTelemetry needs the opentelemetry-sdk and OTLP exporter packages: "
            "pip install 'callboard[otel]'"
        )


@dataclass(frozen=True, slots=True)
class Server:
    """A provider as traces name it."""

    type: str
    model: str
    """The configured model (``gen_ai.request.model``)."""
    address: str | None
    embedding_model: str | None = None
    """The configured embedding model (``gen_ai.request.model`` of an embeddings call)."""

    def requested(self, operation: str) -> str:
        """Return the model a call of ``operation`` asked for."""
        if operation == "embeddings" and self.embedding_model:
            return self.embedding_model
        return self.model


def current_traceparent() -> str | None:
    """Return the calling thread's current span as a W3C ``traceparent``, if there is one."""
    try:
        from opentelemetry.trace.propagation.tracecontext import (  # noqa: PLC0415
            TraceContextTextMapPropagator,
        )
    except ImportError:
        return None
    carrier: dict[str, str] = {}
    TraceContextTextMapPropagator().inject(carrier)
    return carrier.get("traceparent")


def install_sdk(endpoint: str | None, service_name: str) -> bool:
    """Set up the SDK with OTLP/HTTP exporters unless the application set one up; say if so.

    Raises:
        OtelUnavailableError: the ``otel`` extra is not installed.
    """
    try:
        from opentelemetry import metrics, trace  # noqa: PLC0415 - optional
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import (  # noqa: PLC0415
            OTLPMetricExporter,
        )
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
            OTLPSpanExporter,
        )
        from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415
        from opentelemetry.sdk.metrics.export import (  # noqa: PLC0415
            PeriodicExportingMetricReader,
        )
        from opentelemetry.sdk.resources import Resource  # noqa: PLC0415
        from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
        from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415
    except ImportError:
        raise OtelUnavailableError from None
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return False
    root = endpoint.rstrip("/") if endpoint else None
    named = {} if os.environ.get("OTEL_SERVICE_NAME") else {"service.name": service_name}
    resource = Resource.create(named)
    tracer_provider = TracerProvider(resource=resource)
    spans = OTLPSpanExporter(endpoint=f"{root}/v1/traces" if root else None)
    tracer_provider.add_span_processor(BatchSpanProcessor(spans))
    trace.set_tracer_provider(tracer_provider)
    readings = OTLPMetricExporter(endpoint=f"{root}/v1/metrics" if root else None)
    reader = PeriodicExportingMetricReader(readings)
    metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[reader]))
    return True


class OtelExporter:
    """Turns finished tasks into spans and GenAI client metrics."""

    def __init__(
        self,
        servers: Mapping[str, Server],
        tracer_provider: Any = None,
        meter_provider: Any = None,
    ) -> None:
        try:
            from opentelemetry import metrics, trace  # noqa: PLC0415 - optional
        except ImportError:
            raise OtelUnavailableError from None
        self._servers = dict(servers)
        tracers = tracer_provider or trace.get_tracer_provider()
        self._providers = (tracers, meter_provider or metrics.get_meter_provider())
        self._tracer = tracers.get_tracer("callboard", __version__)
        meter = (meter_provider or metrics.get_meter_provider()).get_meter("callboard", __version__)
        self._duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration",
            explicit_bucket_boundaries_advisory=list(_DURATION_BUCKETS),
        )
        self._tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used",
            explicit_bucket_boundaries_advisory=list(_TOKEN_BUCKETS),
        )
        self._first_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description="Time to receive the first chunk of a streamed answer",
            explicit_bucket_boundaries_advisory=list(_DURATION_BUCKETS),
        )

    def flush(self) -> None:
        """Export what the SDK holds (the board is closing); wait at most 5 seconds."""
        for provider in self._providers:
            flush = getattr(provider, "force_flush", None)
            if flush is not None:
                flush(5000)

    def observe(self, event: TaskEvent) -> None:
        """Record one finished task: its span, its attempts' spans, and their metrics."""
        from opentelemetry import context, trace  # noqa: PLC0415 - loaded by __init__

        parent = _parent(event.context)
        task = event.task
        span = self._tracer.start_span(
            f"callboard.task {task.role}",
            context=parent,
            kind=trace.SpanKind.INTERNAL,
            start_time=_ns(task.ts - task.latency_ms / 1000),
            attributes=_task_attributes(task, event.context),
        )
        inside = trace.set_span_in_context(span, context.Context())
        previous: AttemptRow | None = None
        for attempt in event.attempts:
            if previous is not None:
                _mark_change(span, previous, attempt)
            self._attempt(attempt, event.context, inside)
            previous = attempt
        for wall, provider, state in event.context.health_changes if event.context else ():
            span.add_event(
                "callboard.health",
                {"callboard.provider": provider, "callboard.state": state},
                timestamp=_ns(wall),
            )
        if task.outcome != "ok":
            span.set_status(trace.Status(trace.StatusCode.ERROR, task.outcome))
        span.end(end_time=_ns(task.ts))

    def _attempt(self, attempt: AttemptRow, task: TaskContext | None, parent: Any) -> None:
        from opentelemetry import trace  # noqa: PLC0415 - loaded by __init__

        server = self._servers.get(attempt.provider)
        operation = task.operation if task is not None else "chat"
        attributes = _attempt_attributes(attempt, task, server, operation)
        span = self._tracer.start_span(
            f"{operation} {attributes['gen_ai.request.model']}",
            context=parent,
            kind=trace.SpanKind.CLIENT,
            start_time=_ns(attempt.ts - attempt.latency_ms / 1000),
            attributes=attributes,
        )
        if attempt.outcome != "ok":
            span.set_status(trace.Status(trace.StatusCode.ERROR, attempt.outcome))
        span.end(end_time=_ns(attempt.ts))
        measured = {k: v for k, v in attributes.items() if k in _METRIC_KEYS}
        self._duration.record(attempt.latency_ms / 1000, measured)
        for kind, count in (("input", attempt.input_tokens), ("output", attempt.output_tokens)):
            if count:
                self._tokens.record(count, {**measured, "gen_ai.token.type": kind})
        if attempt.ttft_ms is not None:
            self._first_chunk.record(attempt.ttft_ms / 1000, measured)


_METRIC_KEYS = frozenset(
    {
        "gen_ai.operation.name",
        "gen_ai.provider.name",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "server.address",
        "error.type",
    }
)


def _parent(task: TaskContext | None) -> Any:
    """The caller's span as the parent context, or a fresh trace."""
    from opentelemetry import context  # noqa: PLC0415 - loaded by the exporter
    from opentelemetry.trace.propagation.tracecontext import (  # noqa: PLC0415
        TraceContextTextMapPropagator,
    )

    if task is None or task.traceparent is None:
        return context.Context()
    return TraceContextTextMapPropagator().extract({"traceparent": task.traceparent})


def _task_attributes(task: TaskRow, context: TaskContext | None) -> dict[str, Any]:
    values: dict[str, Any] = {
        "callboard.task_id": task.task_id,
        "callboard.role": task.role,
        "callboard.outcome": task.outcome,
        "callboard.attempts": task.attempts,
        "callboard.fallback": task.fallback,
    }
    optional: dict[str, Any] = {
        "callboard.provider": task.provider,
        "callboard.workflow_id": task.workflow_id,
        "callboard.cost_usd": task.cost_usd,
    }
    if context is not None:
        optional["callboard.chain"] = list(context.chain) or None
        optional["callboard.tenant"] = context.tenant
        values["callboard.streamed"] = context.streamed
        values["gen_ai.operation.name"] = context.operation
    if task.outcome != "ok":
        values["error.type"] = task.outcome
    values.update({k: v for k, v in optional.items() if v is not None})
    return values


def _attempt_attributes(
    attempt: AttemptRow, task: TaskContext | None, server: Server | None, operation: str
) -> dict[str, Any]:
    kind = server.type if server is not None else attempt.provider
    values: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": PROVIDER_NAMES.get(kind, kind),
        "gen_ai.request.model": server.requested(operation) if server else attempt.model,
        "gen_ai.response.model": attempt.model,
        "gen_ai.usage.input_tokens": attempt.input_tokens,
        "gen_ai.usage.output_tokens": attempt.output_tokens,
        "callboard.provider": attempt.provider,
        "callboard.attempt": attempt.attempt,
        "callboard.outcome": attempt.outcome,
    }
    optional = {
        "server.address": server.address if server is not None else None,
        "http.response.status_code": attempt.status,
        "gen_ai.request.temperature": task.temperature if task is not None else None,
        "gen_ai.request.max_tokens": task.max_tokens if task is not None else None,
        "callboard.cost_usd": attempt.cost_usd,
        "callboard.time_to_first_chunk_s": (
            attempt.ttft_ms / 1000 if attempt.ttft_ms is not None else None
        ),
    }
    if attempt.outcome != "ok":
        values["error.type"] = attempt.outcome
    elif task is not None and task.finish_reason is not None:
        values["gen_ai.response.finish_reasons"] = [task.finish_reason]
    values.update({k: v for k, v in optional.items() if v is not None})
    return values


def _mark_change(span: Any, previous: AttemptRow, attempt: AttemptRow) -> None:
    """Add the span event of a retry (same provider) or a fallback (another one)."""
    name = "callboard.retry" if attempt.provider == previous.provider else "callboard.fallback"
    span.add_event(
        name,
        {
            "callboard.from_provider": previous.provider,
            "callboard.to_provider": attempt.provider,
            "callboard.reason": previous.outcome,
            "callboard.attempt": attempt.attempt,
        },
        timestamp=_ns(attempt.ts - attempt.latency_ms / 1000),
    )


def _ns(seconds: float) -> int:
    return int(seconds * 1_000_000_000)
