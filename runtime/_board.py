"""`Callboard`: the public face of the runtime, for threads and for asyncio.

A board loads one config, checks every provider's credentials, starts the actor tree
(supervisor, metrics, providers, router) and the I/O thread, and from then on takes
tasks by role. Blocking waits happen only here, in the caller's thread, or are awaited.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import os
import signal
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pykka

from actors import Supervisor
from runtime._audit import AuditLog, Redactor
from runtime._chat import Message, Progress, Reply, Tuning
from runtime._config import Config
from runtime._config_load import load_config
from runtime._credentials import check_credentials
from runtime._errors import (
    BoardClosedError,
    CallboardError,
    ConfigError,
    StartupError,
    StoreError,
    TaskFailedError,
)
from runtime._io_loop import IoLoop
from runtime._messages import (
    AwaitChild,
    CancelTask,
    GetHealth,
    GetStats,
    ListChildren,
    ProviderHealth,
    Reconfigure,
    Submit,
    SyncStore,
    TaskSpec,
)
from runtime._metrics_store import Filters, MetricsStore
from runtime._report import Every, GroupBy, Report, Trend
from runtime._stats import Stats
from runtime._timespec import span_s

CONTROL_TIMEOUT_S = 5.0
"""Bound on every control-plane wait (stats, reload, router hand-over)."""
GRACE_S = 5.0
"""How long past a task's deadline a caller waits before declaring the task lost."""

MessageLike = Message | Mapping[str, Any]


class Callboard:
    """Routes tasks by role to the providers a config casts to each role.

    Build one with `Callboard.from_config`; use it as a context manager (or call `close`).
    `ask` and `aask` return a `Reply` or raise `TaskFailedError` (with every attempt and
    what to do), `UnknownRoleError`, or `BoardClosedError`.
    """

    def __init__(
        self,
        config: Config,
        *,
        check: bool | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """Start a board for a validated ``config``.

        Args:
            config: the validated configuration (see `load_config`).
            check: check every provider's credentials first; defaults to the config's
                ``[startup] check_credentials``.
            environ: where `reload` reads ``${VAR}`` values (default: ``os.environ``).

        Raises:
            StartupError: a provider failed the credential check (one line each).
        """
        self._config = config
        self._environ = environ
        self._closed = False
        self._redactor = Redactor(config.secrets())
        self._audit = AuditLog(
            config.audit_path(), self._redactor, enabled=config.audit.path != "off"
        )
        self._io = IoLoop()
        try:
            if config.startup.check_credentials if check is None else check:
                self._check(config, None)
            self._supervisor = Supervisor.start(config=config, io=self._io, audit=self._audit)
            self._router = self._await_router()
        except BaseException:
            self._io.close()
            self._audit.close()
            raise
        self._audit.event(
            "config_loaded",
            source=config.source,
            providers=sorted(config.providers),
            roles=sorted(config.roles),
        )
        self._close_at_exit = _exit_hook(self)
        atexit.register(self._close_at_exit)
        if config.startup.exit_on_sigterm:
            _exit_on_sigterm()

    @classmethod
    def from_config(
        cls,
        path: str | os.PathLike[str] = "config.toml",
        *,
        check: bool | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> Self:
        """Load, validate and start from the config file at ``path``.

        Raises:
            ConfigError: the file has problems; all of them are listed with their place.
            StartupError: a provider failed the credential check.
        """
        return cls(load_config(path, environ), check=check, environ=environ)

    @property
    def config(self) -> Config:
        """The config new tasks use."""
        return self._config

    # -- tasks ---------------------------------------------------------------------------

    def ask(
        self,
        role: str,
        prompt: str | None = None,
        *,
        messages: Sequence[MessageLike] = (),
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        top_p: float | None = None,
        stop: Sequence[str] | None = None,
        deadline_s: float | None = None,
        workflow_id: str | None = None,
        on_progress: Callable[[Progress], object] | None = None,
    ) -> Reply:
        """Run one task for ``role`` and block until its reply.

        Give a ``prompt`` (one user turn), ``messages`` (a conversation), or both (the
        prompt is appended). Tuning arguments override the role's and the provider's.
        ``deadline_s`` bounds the whole task, retries and fallbacks included (default:
        ``[timeouts] task_s``). ``on_progress`` is called with a `Progress` at each step
        (attempt started, failed, fallback, waiting, ended), on the runtime's thread: it
        must return at once (hand the event to a queue or an event loop).
        """
        tuning = _tuning(temperature, max_tokens, top_p, stop)
        spec, reply = self._submit(
            role, prompt, messages, system, tuning, deadline_s, workflow_id, on_progress
        )
        try:
            return reply.result(timeout=self._wait_s(spec))
        except concurrent.futures.TimeoutError:
            raise self._lost(spec) from None

    async def aask(
        self,
        role: str,
        prompt: str | None = None,
        *,
        messages: Sequence[MessageLike] = (),
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        top_p: float | None = None,
        stop: Sequence[str] | None = None,
        deadline_s: float | None = None,
        workflow_id: str | None = None,
        on_progress: Callable[[Progress], object] | None = None,
    ) -> Reply:
        """Run one task for ``role`` from asyncio; the same as `ask` without blocking.

        Cancelling the awaiting task cancels the task in the runtime: its attempt in
        flight is dropped and its terminal record says ``cancelled``.
        """
        tuning = _tuning(temperature, max_tokens, top_p, stop)
        spec, reply = self._submit(
            role, prompt, messages, system, tuning, deadline_s, workflow_id, on_progress
        )
        try:
            async with asyncio.timeout(self._wait_s(spec)):
                return await asyncio.wrap_future(reply)
        except asyncio.CancelledError:
            self._tell_router(CancelTask(spec.task_id))
            raise
        except TimeoutError:
            raise self._lost(spec) from None

    def _submit(  # noqa: PLR0917 - private; mirrors ask's parameters
        self,
        role: str,
        prompt: str | None,
        messages: Sequence[MessageLike],
        system: str | None,
        tuning: Tuning,
        deadline_s: float | None,
        workflow_id: str | None,
        on_progress: Callable[[Progress], object] | None = None,
    ) -> tuple[TaskSpec, concurrent.futures.Future[Reply]]:
        if self._closed:
            raise BoardClosedError("the board is closed")
        turns = [Message.coerce(m) for m in messages]
        if prompt is not None:
            turns.append(Message("user", prompt))
        if not any(m.role == "user" for m in turns):
            raise ValueError("a task needs a prompt or at least one user message")
        if deadline_s is not None and deadline_s <= 0:
            raise ValueError(f"deadline_s must be positive, not {deadline_s}")
        spec = TaskSpec(
            task_id=uuid.uuid4().hex,
            role=role,
            messages=tuple(turns),
            system=system,
            tuning=tuning,
            deadline_s=deadline_s,
            workflow_id=workflow_id,
            submitted_at=time.monotonic(),
            on_progress=on_progress,
        )
        reply: concurrent.futures.Future[Reply] = concurrent.futures.Future()
        self._tell_router(Submit(spec, reply))
        return spec, reply

    def _wait_s(self, spec: TaskSpec) -> float:
        return (spec.deadline_s or self._config.timeouts.task_s) + GRACE_S

    def _lost(self, spec: TaskSpec) -> TaskFailedError:
        self._tell_router(CancelTask(spec.task_id))
        return TaskFailedError(
            task_id=spec.task_id,
            role=spec.role,
            reason="no reply came back in time: the runtime lost track of the task",
            advice=["see the audit log for this task id; please report it as a bug"],
        )

    def _tell_router(self, message: object) -> None:
        try:
            self._router.tell(message)
        except pykka.ActorDeadError:
            self._router = self._await_router()
            self._router.tell(message)

    def _await_router(self) -> pykka.ActorRef[Any]:
        try:
            return self._await_child("router")
        except concurrent.futures.TimeoutError:
            raise BoardClosedError("the board is closed: its router is not running") from None

    def _await_child(
        self, child: str, replacing: pykka.ActorRef[Any] | None = None
    ) -> pykka.ActorRef[Any]:
        """Block until the supervisor runs ``child`` (under a ref other than ``replacing``)."""
        reply: concurrent.futures.Future[pykka.ActorRef[Any]] = concurrent.futures.Future()
        try:
            self._supervisor.tell(AwaitChild(child, reply, replacing))
        except pykka.ActorDeadError:
            raise BoardClosedError("the board is closed") from None
        return reply.result(timeout=CONTROL_TIMEOUT_S)

    # -- control -------------------------------------------------------------------------

    def stats(self) -> Stats:
        """Return the live aggregates per (provider, role) and per role."""
        reply: concurrent.futures.Future[Stats] = concurrent.futures.Future()
        self._tell_router(GetStats(reply))
        try:
            return reply.result(timeout=CONTROL_TIMEOUT_S)
        except concurrent.futures.TimeoutError:
            raise BoardClosedError("the metrics actor did not answer; see the audit log") from None

    def health(self) -> dict[str, ProviderHealth]:
        """Return how each provider stands now: ready, cooling, breaker open, out, failed."""
        reply: concurrent.futures.Future[dict[str, ProviderHealth]] = concurrent.futures.Future()
        self._tell_router(GetHealth(reply))
        try:
            return reply.result(timeout=CONTROL_TIMEOUT_S)
        except concurrent.futures.TimeoutError:
            raise BoardClosedError("the router did not answer; see the audit log") from None

    def metrics(
        self,
        *,
        since: str | float = "24h",
        until: float | None = None,
        by: GroupBy = "provider,role",
        role: str | None = None,
        provider: str | None = None,
        workflow: str | None = None,
    ) -> Report:
        """Report how each provider does in each role, from the metrics store.

        ``since`` is a span back from ``until`` (``"24h"``, ``"7d"``) or Unix seconds;
        ``until`` defaults to now. Every task answered before the call is counted.

        Raises:
            StoreError: there is no store (``[metrics] path = "off"``) or it cannot be read.
        """
        store, first, last = self._open_store(since, until)
        try:
            return store.report(first, last, by, Filters(role, provider, workflow))
        finally:
            store.close()

    def trend(
        self,
        *,
        every: Every = "hour",
        since: str | float = "7d",
        until: float | None = None,
        by: GroupBy = "provider,role",
        role: str | None = None,
        provider: str | None = None,
        workflow: str | None = None,
    ) -> Trend:
        """Report the same figures as `metrics`, per hour or per day."""
        store, first, last = self._open_store(since, until)
        try:
            return store.trend(first, last, every, by, Filters(role, provider, workflow))
        finally:
            store.close()

    def _open_store(
        self, since: str | float, until: float | None
    ) -> tuple[MetricsStore, float, float]:
        reply: concurrent.futures.Future[Path | None] = concurrent.futures.Future()
        self._tell_router(SyncStore(reply))
        try:
            path = reply.result(timeout=CONTROL_TIMEOUT_S)
        except concurrent.futures.TimeoutError:
            raise BoardClosedError("the metrics actor did not answer; see the audit log") from None
        path = path or self._config.metrics_path()
        if path is None:
            raise StoreError('there is no metrics store: set [metrics] path (it is "off")')
        last = time.time() if until is None else until
        first = last - span_s(since) if isinstance(since, str) else since
        return MetricsStore(path, readonly=True), first, last

    def reload(self, path: str | os.PathLike[str] | None = None) -> Config:
        """Load the config file again; tasks that start afterwards use it.

        Tasks in flight finish as they began. An invalid config (or one whose new or
        changed providers fail the credential check) is rejected and the old one stays.

        Raises:
            ConfigError: the new file has problems (listed).
            StartupError: a new or changed provider failed its credential check.
        """
        source = str(path) if path is not None else self._config.source
        try:
            config = load_config(source, self._environ)
            changed = [
                pid
                for pid, settings in config.providers.items()
                if self._config.providers.get(pid) != settings
            ]
            if changed and config.startup.check_credentials:
                self._check(config, changed)
        except (ConfigError, StartupError) as exc:
            problems = [str(p) for p in getattr(exc, "problems", ())]
            self._audit.event("config_rejected", source=source, problems=problems)
            raise
        self._redactor.add(config.secrets())
        self._supervisor.ask(Reconfigure(config), block=True, timeout=CONTROL_TIMEOUT_S)
        self._config = config
        self._audit.event(
            "config_loaded",
            source=source,
            providers=sorted(config.providers),
            roles=sorted(config.roles),
            reload=True,
        )
        return config

    def reload_on_sighup(
        self, on_reload: Callable[[Config | CallboardError], object] | None = None
    ) -> None:
        """Reload the config whenever the process gets SIGHUP (call from the main thread).

        The reload runs on a short-lived thread; ``on_reload`` (if given) gets the new
        config, or the error that rejected it (also recorded in the audit log).
        """

        def handle(_signum: int, _frame: object) -> None:
            worker = threading.Thread(
                target=self._reload_reporting,
                args=(on_reload,),
                name="callboard-reload",
                daemon=True,
            )
            worker.start()

        signal.signal(signal.SIGHUP, handle)

    def _reload_reporting(
        self, on_reload: Callable[[Config | CallboardError], object] | None
    ) -> None:
        outcome: Config | CallboardError
        try:
            outcome = self.reload()
        except CallboardError as exc:
            outcome = exc
        if on_reload is not None:
            on_reload(outcome)

    def _check(self, config: Config, provider_ids: Iterable[str] | None) -> None:
        timeout_s = config.timeouts.validate_s + CONTROL_TIMEOUT_S
        problems = self._io.run(check_credentials(config, provider_ids), timeout_s)
        if problems:
            problems = [self._redactor.text(p) for p in problems]
            self._audit.event("startup_failed", source=config.source, problems=problems)
            raise StartupError(problems)

    def close(self, timeout_s: float = CONTROL_TIMEOUT_S) -> None:
        """Stop every actor (tasks still running end as cancelled) and the I/O thread."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self._close_at_exit)
        try:
            children = self._supervisor.ask(ListChildren(), block=True, timeout=timeout_s)
            self._supervisor.stop(block=True, timeout=timeout_s)
        except (pykka.ActorDeadError, pykka.Timeout):
            children = []
        for ref in children:
            try:
                ref.stop(block=True, timeout=timeout_s)
            except (pykka.ActorDeadError, pykka.Timeout):
                continue
        self._io.close(timeout_s)
        self._audit.event("board_closed")
        self._audit.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.close)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<Callboard {state} {self._config.source} providers={sorted(self._config.providers)}>"
        )


def _exit_hook(board: Callboard) -> Callable[[], None]:
    """Return a hook that closes ``board`` at interpreter exit, if it is still alive."""
    ref = weakref.ref(board)

    def close_at_exit() -> None:
        alive = ref()
        if alive is not None:
            alive.close()

    return close_at_exit


def _exit_on_sigterm() -> None:
    """Make SIGTERM raise `SystemExit` in the main thread, if nothing else handles it.

    The default action kills the process at once; an exit instead unwinds ``with``
    blocks and runs exit hooks, so boards close and write every record first.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def exit_cleanly(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, exit_cleanly)


def _tuning(
    temperature: float | None,
    max_tokens: int | None,
    top_p: float | None,
    stop: Sequence[str] | None,
) -> Tuning:
    return Tuning(temperature, max_tokens, top_p, tuple(stop) if stop is not None else None)
