"""The validated, frozen configuration: what `load_config` returns.

One `Config` is a snapshot. The runtime never changes it; a reload builds a new one and
tasks keep the snapshot they started with.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from runtime._audit import RotateEvery, Rotation
from runtime._chat import Tuning
from runtime._config.budgets import BudgetSettings, TenantSettings, all_budgets
from runtime._config.prices import Price, PriceTable
from runtime._config.provider_types import KINDS, ProviderKind
from runtime._config.routing import RolePolicy, RoutingSettings
from runtime._config.workflows import DEFAULT_WORKFLOW, StageSettings
from runtime.protocols import Endpoint

PositiveFloat = Annotated[float, Field(gt=0)]
NonNegativeFloat = Annotated[float, Field(ge=0)]
PositiveInt = Annotated[int, Field(gt=0)]
Temperature = Annotated[float, Field(ge=0, le=2)]
TopP = Annotated[float, Field(gt=0, le=1)]


MAX_CACHED_TUNINGS = 4096
"""Role and provider pairs whose tuning a config keeps worked out (`Config.tuning_for`)."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class _Tunable(_Section):
    """Tuning parameters: set per provider, overridable per role and per call."""

    temperature: Temperature | None = None
    max_tokens: PositiveInt | None = None
    top_p: TopP | None = None
    stop: tuple[str, ...] | None = Field(default=None, max_length=4)

    def tuning(self) -> Tuning:
        """Return these parameters as a `Tuning`."""
        return Tuning(self.temperature, self.max_tokens, self.top_p, self.stop)


class RetrySettings(_Section):
    """``[retry]``: one policy for every provider and role."""

    attempts: PositiveInt = 3
    backoff_initial_s: NonNegativeFloat = 1.0
    backoff_multiplier: Annotated[float, Field(ge=1)] = 2.0
    backoff_max_s: NonNegativeFloat = 8.0
    jitter: bool = True
    failover: Literal["immediate", "after_retries"] = "immediate"


class TimeoutSettings(_Section):
    """``[timeouts]``, in seconds."""

    connect_s: PositiveFloat = 5.0
    request_s: PositiveFloat = 60.0
    validate_s: PositiveFloat = 2.0
    first_byte_s: PositiveFloat = 4.0
    first_token_s: PositiveFloat = 20.0
    """The longest wait from sending to the first content: a text delta, or the whole
    body of an answer that is not streamed (a provider's own ``first_token_s`` wins)."""
    stream_idle_s: PositiveFloat = 30.0
    min_chars_per_s: NonNegativeFloat = 0.0
    """After its first content, a stream slower than this (over ``rate_window_s``) is
    broken; 0 for no floor (a provider's own ``min_chars_per_s`` wins)."""
    rate_window_s: PositiveFloat = 10.0
    """The window ``min_chars_per_s`` is measured over."""
    task_s: PositiveFloat = 120.0


class BreakerSettings(_Section):
    """``[breaker]``: when repeated failures take a provider out, and for how long."""

    failures: PositiveInt = 5
    cooldown_s: PositiveFloat = 30.0
    failure_rate: Annotated[float, Field(ge=0, le=1)] = 0.5
    """The share of the outcomes of the last ``window_s`` seconds that must have failed for
    a run of ``failures`` to open the breaker (0: the run alone opens it)."""
    window_s: PositiveFloat = 10.0


class SupervisionSettings(_Section):
    """``[supervision]``: restarts of crashed actors (OTP's one_for_one intensity)."""

    max_restarts: Annotated[int, Field(ge=0)] = 5
    window_s: PositiveFloat = 60.0
    backoff_initial_s: NonNegativeFloat = 0.05
    backoff_max_s: NonNegativeFloat = 5.0


class AuditSettings(_Section):
    """``[audit]``: where the JSON-lines audit log goes, and when its file is rotated."""

    path: str = "-"
    """``"-"`` for standard error, ``"off"`` for none, else a file (relative to the config)."""
    max_bytes: Annotated[int, Field(ge=0)] = 0
    """Move the file aside before it would pass this size (0: never by size)."""
    rotate_every: RotateEvery | None = None
    """Move the file aside every hour, at UTC midnight, or on Mondays."""
    keep: PositiveInt = 7
    """How many moved-aside files to keep."""

    def rotation(self) -> Rotation:
        """Return when the audit file is rotated."""
        return Rotation(self.max_bytes, self.rotate_every, self.keep)


class MetricsSettings(_Section):
    """``[metrics]``: the persistent metrics store and its exports."""

    path: str = "callboard-metrics.db"
    """SQLite file, relative to the config file; ``"off"`` keeps live statistics only.
    A config that is not read from a file has no store unless this is absolute."""
    url: str | None = None
    """A PostgreSQL database (``postgresql://user:pass@host:5432/db``) shared by a fleet;
    when set it is the store, and ``path`` is not used (needs ``callboard[postgres]``)."""
    retain_days: PositiveFloat = 90.0
    prometheus_port: Annotated[int, Field(ge=0, le=65535)] | None = None
    """Serve Prometheus metrics on this loopback port (needs ``callboard[prometheus]``)."""
    prometheus_host: str = "127.0.0.1"


class SharedSettings(_Section):
    """``[shared]``: limits and health shared by every process using the same Redis namespace."""

    url: SecretStr | None = None
    """``redis://host:6379/0`` (TLS: ``rediss://``); absent: everything stays local."""
    namespace: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")] = "callboard"
    """Keys live under it; several fleets can share one Redis."""
    lease_s: Annotated[float, Field(gt=0, le=10)] = 1.0
    """How long a lease of requests and tokens may be spent before what is left goes back."""
    timeout_s: PositiveFloat = 0.5
    """How long a Redis command may take before this process falls back to its local share."""
    trial_s: PositiveFloat = 30.0
    """After a rest shared by the fleet, one process sends the trial call; the others wait
    for its outcome this long at most before one of them tries."""

    def redis_url(self) -> str | None:
        """Return the URL with its password, or ``None`` when nothing is shared."""
        return None if self.url is None else self.url.get_secret_value() or None

    def password(self) -> str | None:
        """Return the URL's password, if it has one (a secret, redacted everywhere)."""
        return urlsplit(self.redis_url() or "").password

    def shown_url(self) -> str:
        """Return the URL with any password replaced by ``***``, for messages."""
        url, password = self.redis_url() or "", self.password()
        return url.replace(f":{password}@", ":***@", 1) if password else url


class OtelSettings(_Section):
    """``[otel]``: OpenTelemetry traces and metrics (needs ``callboard[otel]``)."""

    enabled: bool | None = None
    """Not given: on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or its ``_TRACES_`` or ``_METRICS_``
    form) is set; the loaded config always holds ``True`` or ``False``."""
    endpoint: str | None = None
    """The OTLP/HTTP collector (``http://localhost:4318``); ``None``: the ``OTEL_*`` variables
    or the SDK the application set up itself."""
    service_name: str = "callboard"
    """``service.name`` of the spans and metrics when callboard sets up the SDK."""


class PriceSettings(_Section):
    """``[prices."<model>"]``: US dollars per million tokens."""

    input: NonNegativeFloat
    output: NonNegativeFloat
    cached_input: NonNegativeFloat | None = None
    cache_write: NonNegativeFloat | None = None


class StartupSettings(_Section):
    """``[startup]``: what happens before the first task."""

    check_credentials: bool = True
    require_all: bool = False
    """Stop the start when any provider fails its check, even for the provider's own
    trouble (unreachable, timeout, 5xx, 429, a malformed answer); by default such a
    provider starts unchecked, out of rotation, and is checked again in the background."""
    recheck_initial_s: PositiveFloat = 2.0
    """The first wait before an unchecked provider is checked again (doubles, jittered)."""
    recheck_max_s: PositiveFloat = 60.0
    """The longest wait between two checks of an unchecked provider."""
    exit_on_sigterm: bool = True
    """Turn SIGTERM into a clean exit (`SystemExit`), so every record is written first.
    Only done in the main thread, and only when nothing else handles SIGTERM."""
    tune_gc: bool = True
    """Set Python's garbage collector for many calls in flight (`runtime._board.gc_tuning`):
    raise its young threshold when lower, and freeze what exists at the first start."""


class GatewaySettings(_Section):
    """``[gateway]``: ``callboard serve``, the HTTP server of OpenAI's and Anthropic's APIs."""

    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 4000
    keys: dict[str, SecretStr] = Field(default_factory=dict)
    """``[gateway.keys]``: tenant name = its gateway key (given as ``${ENV}``). With keys,
    a request must carry one (``Authorization: Bearer`` or ``x-api-key``) and runs as its
    tenant; with none, the gateway is open (keep it on loopback)."""
    max_body_bytes: PositiveInt = 8 * 1024 * 1024
    """A larger request body is refused with 413."""
    max_in_flight: PositiveInt = 1024
    """Requests served at once; beyond it, 503 at once (no queue without end)."""
    drain_s: NonNegativeFloat = 30.0
    """On SIGTERM or SIGINT: how long requests in flight may take to finish before exit."""
    metrics: bool = False
    """Serve Prometheus ``/metrics`` on the gateway's port (also on when ``[metrics]
    prometheus_port`` is set; needs ``callboard[prometheus]``)."""

    def secrets(self) -> list[str]:
        """Return every gateway key, for redaction."""
        return [key.get_secret_value() for key in self.keys.values() if key.get_secret_value()]


class ProviderSettings(_Tunable):
    """``[providers.<id>]``: one provider's endpoint, credentials, model and limits."""

    type: Annotated[str, Field(min_length=1)]
    """A provider type (see `runtime._provider_types.KINDS`)."""
    model: Annotated[str, Field(min_length=1)]
    api_key: SecretStr | None = None
    base_url: str | None = None
    auth: Literal["default", "bearer", "api-key", "entra", "sigv4", "none"] = "default"
    """How the key is sent: Azure takes ``api-key`` (default) or ``entra`` (a bearer
    token in ``api_key``); Bedrock ``sigv4`` (the AWS credential chain, default) or
    ``api-key`` (a Bedrock API key)."""
    deployment: str | None = None
    """Azure OpenAI: the deployment name (default: the model)."""
    api_version: str | None = None
    """Azure OpenAI: the ``api-version`` query parameter."""
    region: str | None = None
    """AWS Bedrock: the region, e.g. ``us-east-1``."""
    embedding_model: str | None = None
    """The model `Callboard.embed` uses with this provider."""
    images: bool | None = None
    """``False``: the model takes no images, so tasks with images skip it (a type whose
    protocol takes none is skipped whatever this says)."""
    tools: bool | None = None
    """``False``: the model takes no tools, so tasks with tools skip it (a type whose
    protocol takes none is skipped whatever this says)."""
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    rpm: PositiveInt | None = None
    tpm: PositiveInt | None = None
    max_concurrency: PositiveInt = 64
    max_queue: PositiveInt = 1000
    stream: bool = True
    first_token_s: PositiveFloat | None = None
    """This provider's own `TimeoutSettings.first_token_s` (a reasoning model's is long)."""
    min_chars_per_s: NonNegativeFloat | None = None
    """This provider's own `TimeoutSettings.min_chars_per_s` (0: no floor)."""
    api_key_env: str | None = Field(default=None, exclude=True)
    """The environment variable the key came from (filled by the loader, for advice)."""

    @property
    def kind(self) -> ProviderKind:
        """The provider type's row (protocol, defaults, quirks)."""
        return KINDS[self.type]

    def endpoint(self) -> Endpoint:
        """Return the protocol-level endpoint, secret included (never log it)."""
        kind = self.kind
        key = self.api_key.get_secret_value() if self.api_key is not None else None
        headers = tuple((k, v.get_secret_value()) for k, v in self.headers.items())
        options = kind.endpoint_options(self.type_keys(), self.model)
        return Endpoint(
            base_url=self.base_url_or_default().rstrip("/"),
            model=self.model,
            api_key=key,
            extra_headers=headers,
            auth=kind.resolved_auth(self.auth),
            options=tuple(sorted(options.items())),
            embedding_model=self.embedding_model,
        )

    def type_keys(self) -> dict[str, str]:
        """Return the type-only keys this provider sets (Azure's deployment, Bedrock's region)."""
        values = {name: getattr(self, name) for name in self.kind.keys}
        return {name: value for name, value in values.items() if value}

    def base_url_or_default(self) -> str:
        """Return the configured base URL, else the type's (Bedrock's from its region)."""
        if self.base_url:
            return self.kind.versioned(self.base_url)
        return self.kind.default_base_url(self.type_keys()) or ""

    def signs(self) -> bool:
        """Whether this provider's requests are signed (Bedrock with AWS credentials)."""
        return self.kind.signs(self.auth)

    def key_hint(self) -> str:
        """Say where this provider's key comes from, for error advice."""
        if self.signs() and self.kind.credentials_hint:
            return self.kind.credentials_hint
        if self.api_key_env:
            return f"the environment variable {self.api_key_env}"
        return "its api_key in the config"

    def secrets(self) -> list[str]:
        """Return every secret value this provider holds."""
        values = [v.get_secret_value() for v in self.headers.values()]
        if self.api_key is not None:
            values.append(self.api_key.get_secret_value())
        return [v for v in values if v]


class RoleSettings(_Tunable, RolePolicy):
    """``[roles.<name>]``: the providers cast to a role, in priority order.

    Its routing keys (``strategy``, ``weights``, ``slo``, ``rules``) are `RolePolicy`'s.
    """

    providers: tuple[str, ...] = ()
    fallback_to_default: bool = True
    """Try ``default_provider`` last when every provider of the role failed."""
    hedge_after_s: PositiveFloat | None = None
    """When the attempt in flight has sent no content after this long, start the next
    provider too and keep whichever sends content first (``None``: never)."""


class Config(_Section):
    """A whole validated configuration."""

    default_provider: str | None = None
    retry: RetrySettings = Field(default_factory=RetrySettings)
    timeouts: TimeoutSettings = Field(default_factory=TimeoutSettings)
    breaker: BreakerSettings = Field(default_factory=BreakerSettings)
    supervision: SupervisionSettings = Field(default_factory=SupervisionSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    startup: StartupSettings = Field(default_factory=StartupSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    gateway: GatewaySettings = Field(default_factory=GatewaySettings)
    shared: SharedSettings = Field(default_factory=SharedSettings)
    otel: OtelSettings = Field(default_factory=OtelSettings)
    prices: dict[str, PriceSettings] = Field(default_factory=dict)
    providers: dict[str, ProviderSettings]
    roles: dict[str, RoleSettings] = Field(default_factory=dict)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    workflow: dict[str, dict[str, StageSettings]] = Field(default_factory=dict)
    """``[workflow.<name>.<stage>]``; ``default`` is built in unless defined here."""
    budgets: tuple[BudgetSettings, ...] = ()
    """``[[budgets]]``: spend limits (see `runtime._config.budgets`)."""
    tenants: dict[str, TenantSettings] = Field(default_factory=dict)
    """``[tenants.<id>]``: tenants' own chains and budgets."""
    source: str = Field(default="<memory>", exclude=True)
    """Where the config was read from."""

    def workflow_stages(self, name: str = "default") -> dict[str, StageSettings] | None:
        """Return a workflow's stages (the built-in default unless the config defines it)."""
        if name in self.workflow:
            return self.workflow[name]
        return dict(DEFAULT_WORKFLOW) if name == "default" else None

    def chain(self, role: str) -> tuple[str, ...] | None:
        """Return the provider ids cast to ``role`` in order, or ``None`` for an unknown role.

        A role with providers of its own ends with ``default_provider`` as its last
        resort (see `last_resort`); a role with none, or one not configured, is cast to
        ``default_provider`` alone.
        """
        settings = self.roles.get(role)
        if settings is not None and settings.providers:
            last = self.last_resort(role)
            return settings.providers if last is None else (*settings.providers, last)
        if self.default_provider is None:
            return None
        return (self.default_provider,)

    def chain_for(self, role: str, tenant: str | None) -> tuple[str, ...] | None:
        """Return ``role``'s chain for a task of ``tenant``: the tenant's own, else `chain`."""
        own = self.tenants[tenant].roles.get(role) if tenant in self.tenants else None
        return own or self.chain(role)

    @functools.cached_property
    def budget_rules(self) -> tuple[BudgetSettings, ...]:
        """Every budget: those configured, then those the tenants' keys make."""
        return all_budgets(self.budgets, self.tenants)

    def last_resort(self, role: str) -> str | None:
        """Return the default provider added to the end of ``role``'s own providers, if any.

        ``None`` when there is no default, the role lists it already, the role opts out
        (``fallback_to_default = false``), or the role has no providers of its own.
        """
        settings = self.roles.get(role)
        default = self.default_provider
        if settings is None or not settings.providers or default is None:
            return None
        if not settings.fallback_to_default or default in settings.providers:
            return None
        return default

    def first_token_s(self, provider: str) -> float:
        """Return the longest wait for ``provider``'s first content."""
        own = self.providers[provider].first_token_s
        return self.timeouts.first_token_s if own is None else own

    def min_chars_per_s(self, provider: str) -> float:
        """Return the slowest content rate ``provider``'s streams may keep (0: no floor)."""
        own = self.providers[provider].min_chars_per_s
        return self.timeouts.min_chars_per_s if own is None else own

    def hedge_after_s(self, role: str) -> float | None:
        """Return when a task of ``role`` starts a second provider (``None``: never)."""
        settings = self.roles.get(role)
        return settings.hedge_after_s if settings is not None else None

    def role_tuning(self, role: str) -> Tuning:
        """Return the role's own tuning overrides (unset fields are ``None``)."""
        settings = self.roles.get(role)
        return settings.tuning() if settings is not None else Tuning()

    def tuning_for(self, role: str, provider: str) -> Tuning:
        """Return what a task of ``role`` sets for ``provider``: the role's over the provider's.

        Worked out once per role and provider (the router asks at every task).
        """
        key = (role, provider)
        tuning = self._tunings.get(key)
        if tuning is None:
            tuning = self.role_tuning(role).over(self.providers[provider].tuning())
            if len(self._tunings) < MAX_CACHED_TUNINGS:  # roles are open-ended strings
                self._tunings[key] = tuning
        return tuning

    @functools.cached_property
    def _tunings(self) -> dict[tuple[str, str], Tuning]:
        return {}

    def secrets(self) -> list[str]:
        """Return every secret value in this config, for redaction."""
        found = [s for p in self.providers.values() for s in p.secrets()] + self.gateway.secrets()
        password = urlsplit(self.metrics.url).password if self.metrics.url else None
        shared = self.shared.password()
        return found + [s for s in (password, shared) if s]

    def audit_path(self) -> Path | None:
        """Return the audit file, ``None`` for standard error; raise nothing."""
        if self.audit.path in ("-", "off"):
            return None
        return self._beside(self.audit.path) or Path(self.audit.path).expanduser()

    def metrics_store(self) -> Path | str | None:
        """Return where the metrics store is: a PostgreSQL URL, a SQLite file, or ``None``."""
        return self.metrics.url or self.metrics_path()

    def metrics_path(self) -> Path | None:
        """Return the metrics store's file, or ``None`` when there is none."""
        if self.metrics.path == "off":
            return None
        return self._beside(self.metrics.path)

    def _beside(self, name: str) -> Path | None:
        """Resolve ``name`` against the config file's folder (``None``: no file to go by)."""
        path = Path(name).expanduser()
        if path.is_absolute():
            return path
        if self.source.startswith("<"):
            return None
        return Path(self.source).resolve().parent / path

    @functools.cached_property
    def price_table(self) -> PriceTable:
        """The default prices with this config's overrides."""
        overrides = {
            model: Price(p.input, p.output, p.cached_input, p.cache_write)
            for model, p in self.prices.items()
        }
        return PriceTable(overrides)
