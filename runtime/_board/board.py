"""`Callboard`: the public face of the runtime, for threads and for asyncio.

A board loads one config, checks every provider's credentials, starts the actor tree
(supervisor, metrics, providers, router) and the I/O thread, and from then on takes
tasks by role. Blocking waits happen only here, in the caller's thread, or are awaited.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import dataclasses
import functools
import os
import signal
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, Self

import pykka
from typing_extensions import Unpack

from actors import Supervisor
from actors._messages import AwaitChild, CancelTask, ListChildren, Submit
from runtime._audit import AuditLog, Redactor
from runtime._board.admin import CONTROL_TIMEOUT_S, BoardAdmin
from runtime._board.asking import AskOptions, EmbedOptions, embed_spec, task_spec
from runtime._board.budgets import restored_ledger
from runtime._board.gc_tuning import tune_collector
from runtime._board.loop_replies import LoopReplies
from runtime._board.streams import AsyncStreamSink, ThreadStreamSink, aread_stream, read_stream
from runtime._chat import EmbedReply, Reply, StreamEvent
from runtime._config.load import load_config
from runtime._config.price_source import load_catalogue_in_background, wait_for_catalogue
from runtime._config.schema import Config
from runtime._errors import (
    BoardClosedError,
    TaskCancelledError,
    TaskFailedError,
)
from runtime._metrics.otel import current_traceparent
from runtime._policy.budget_ledger import BudgetAlert
from runtime._task_spec import ReplyTo, TaskSpec
from runtime._transport.credentials import CheckFailure, calls_clients, close_clients
from runtime._transport.http import ProviderClient
from runtime._transport.io_loop import IoLoop
from runtime._transport.shared_budgets import SharedBudgets
from runtime._transport.shared_store import RedisStore, shared_store_for
from runtime._transport.signing import require_signing_extra

GRACE_S = 5.0
"""How long past a task's deadline a caller waits before declaring the task lost."""

CANCEL_WAIT_S = 2.0
"""How long an interrupted caller waits for its task's terminal record before going on."""


class Callboard(BoardAdmin):
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
        check_only: Collection[str] | None = None,
        on_budget: Callable[[BudgetAlert], object] | None = None,
    ) -> None:
        """Start a board for a validated ``config``.

        A provider whose check finds it in trouble (unreachable, timeout, 5xx, 429, a
        malformed answer) starts unchecked: out of rotation, checked again in the
        background, joining once a check passes (unless ``[startup] require_all``).

        Args:
            config: the validated configuration (see `load_config`).
            check: check the providers' credentials first; defaults to the config's
                ``[startup] check_credentials``.
            environ: where `reload` reads ``${VAR}`` values (default: ``os.environ``).
            check_only: check only these provider ids (default: every provider); the
                others start in rotation unchecked, as with ``check=False``.
            on_budget: called with a `BudgetAlert` each time a budget crosses one of its
                ``alert_at`` thresholds (on the runtime's thread; it must return at once).

        Raises:
            StartupError: a provider failed the credential check for the user's own
                mistake (or for any reason, with ``require_all``); one line each.
            MissingExtraError: a provider needs an optional extra that is not installed.
        """
        self._config = config
        self._environ = environ
        self._closed = False
        self._unconfigured_roles: set[str] = set()
        self._unconfigured_lock = threading.Lock()
        self._loop_replies: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, LoopReplies]
        self._loop_replies = weakref.WeakKeyDictionary()
        self._redactor = Redactor(config.secrets())
        self._audit = AuditLog(
            config.audit_path(),
            self._redactor,
            enabled=config.audit.path != "off",
            rotation=config.audit.rotation(),
        )
        require_signing_extra(config)
        # loaded by `from runtime import Callboard` already, unless the board was imported alone
        load_catalogue_in_background()
        self._io = IoLoop()
        self._shared: RedisStore | None = None
        clients: dict[str, ProviderClient] = {}
        try:
            self._shared = shared_store_for(config, self._io)
            unchecked: dict[str, CheckFailure] = {}
            if config.startup.check_credentials if check is None else check:
                # checked through the clients the calls will use: the first reuses a connection
                clients = calls_clients(config, check_only)
                unchecked = self._check(config, check_only, clients)
            shared_budgets = (
                SharedBudgets(config, self._shared, self._io, self._audit)
                if self._shared is not None and config.budget_rules
                else None
            )
            ledger, unread = restored_ledger(
                config, ledger=None if shared_budgets is None else shared_budgets.ledger
            )
            if unread is not None:
                self._audit.event("budgets_not_restored", reason=unread)
            self._supervisor = Supervisor.start(
                config=config,
                io=self._io,
                audit=self._audit,
                unchecked=unchecked,
                ledger=ledger,
                on_budget=on_budget,
                shared=self._shared,
                clients=clients,
            )
            clients = {}  # the provider actors own them now
            self._router = self._await_router()
        except BaseException:
            self._io.run(close_clients(clients.values()), CONTROL_TIMEOUT_S)
            if self._shared is not None:
                self._shared.close()
            self._io.close()
            self._audit.close()
            raise
        self._audit.event(
            "config_loaded",
            source=config.source,
            providers=sorted(config.providers),
            roles=sorted(config.roles),
        )
        atexit.register(self.close)
        if config.startup.exit_on_sigterm:
            _exit_on_sigterm()
        if config.startup.tune_gc:
            tune_collector()

    @classmethod
    def from_config(
        cls,
        path: str | os.PathLike[str] = "config.toml",
        *,
        check: bool | None = None,
        environ: Mapping[str, str] | None = None,
        on_budget: Callable[[BudgetAlert], object] | None = None,
    ) -> Self:
        """Load, validate and start from the config file at ``path``.

        Raises:
            ConfigError: the file has problems; all of them are listed with their place.
            StartupError: a provider failed the credential check.
        """
        return cls(load_config(path, environ), check=check, environ=environ, on_budget=on_budget)

    @property
    def config(self) -> Config:
        """The config new tasks use."""
        return self._config

    # -- tasks ---------------------------------------------------------------------------

    def ask(self, role: str, prompt: str | None = None, **options: Unpack[AskOptions]) -> Reply:
        """Run one task for ``role`` and block until its reply.

        Give a ``prompt`` (one user turn), ``messages`` (a conversation), or both (the
        prompt is appended). Tuning arguments override the role's and the provider's.
        ``deadline_s`` bounds the whole task, retries and fallbacks included (default:
        ``[timeouts] task_s``). ``on_progress`` is called with a `Progress` at each step
        (attempt started, failed, fallback, waiting, ended), on the runtime's thread: it
        must return at once (hand the event to a queue or an event loop). ``tools`` the
        model may call come back as ``reply.tool_calls``; with ``output``, the answer is
        checked against the schema and ``reply.parsed`` holds its value. Every option is
        described in `AskOptions`.
        """
        spec, reply = self._submit(task_spec(role, prompt, options))
        result: Reply = self._wait_for(spec, reply)
        return result

    async def aask(
        self, role: str, prompt: str | None = None, **options: Unpack[AskOptions]
    ) -> Reply:
        """Run one task for ``role`` from asyncio; the same as `ask` without blocking.

        Cancelling the awaiting task cancels the task in the runtime: its attempt in
        flight is dropped and its terminal record says ``cancelled``.
        """
        spec, reply = self._asubmit(task_spec(role, prompt, options))
        try:
            answer: Reply = await reply  # guarded: fails as lost after _wait_s
        except asyncio.CancelledError:
            self._tell_router(CancelTask(spec.task_id))
            raise
        return answer

    def stream(
        self,
        role: str,
        prompt: str | None = None,
        *,
        on_broken: Literal["raise", "restart"] = "raise",
        **options: Unpack[AskOptions],
    ) -> Iterator[StreamEvent]:
        """Run one task for ``role`` and yield its answer as it arrives.

        Yields `StreamDelta` pieces of text (and `StreamToolDelta` pieces of tool calls:
        a call's name first, then fragments of its arguments), then one `StreamEnd` whose
        ``reply`` holds the whole text, the whole tool calls, usage, provider and time to
        first token. A failure before the first content falls back like any task. After
        it, ``on_broken="raise"`` raises `StreamBrokenError` with the ``partial_text`` and
        the tool calls that had arrived whole; ``"restart"`` goes on with the next
        provider and yields a `StreamRestart` first: what came so far is void. Breaking out
        of the loop cancels the task. The options are those of `ask`.
        """
        sink = ThreadStreamSink()
        spec, reply = self._submit(task_spec(role, prompt, options, sink=sink, on_broken=on_broken))
        reply.add_done_callback(sink.close)
        return read_stream(
            sink,
            reply,
            self._wait_s(spec),
            lambda stop: self._abandon(spec, reply, stop),
            lambda: self._lost(spec),
        )

    def astream(
        self,
        role: str,
        prompt: str | None = None,
        *,
        on_broken: Literal["raise", "restart"] = "raise",
        **options: Unpack[AskOptions],
    ) -> AsyncIterator[StreamEvent]:
        """The same as `stream`, for asyncio (``async for event in board.astream(...)``).

        Call it from a running event loop; the text arrives on that loop.
        """
        sink = AsyncStreamSink(asyncio.get_running_loop())
        spec, reply = self._submit(task_spec(role, prompt, options, sink=sink, on_broken=on_broken))
        reply.add_done_callback(sink.close)
        return aread_stream(
            sink,
            reply,
            self._wait_s(spec),
            lambda: self._tell_router(CancelTask(spec.task_id)),
            lambda: self._lost(spec),
        )

    def embed(self, role: str, texts: Sequence[str], **options: Unpack[EmbedOptions]) -> EmbedReply:
        """Embed ``texts`` with the first provider of ``role`` that has embeddings.

        Only providers with an ``embedding_model`` serve, and a fallback goes only to a
        provider with the same embedding model, so the vectors of one task never mix.
        ``tenant`` says whose task it is (its chains and budgets apply); every option is
        described in `EmbedOptions`.
        """
        spec, reply = self._submit(embed_spec(role, texts, options))
        result: EmbedReply = self._wait_for(spec, reply)
        return result

    async def aembed(
        self, role: str, texts: Sequence[str], **options: Unpack[EmbedOptions]
    ) -> EmbedReply:
        """The same as `embed`, for asyncio."""
        spec, reply = self._asubmit(embed_spec(role, texts, options))
        try:
            result: EmbedReply = await reply  # guarded: fails as lost after _wait_s
        except asyncio.CancelledError:
            self._tell_router(CancelTask(spec.task_id))
            raise
        return result

    def _submit(self, spec: TaskSpec) -> tuple[TaskSpec, concurrent.futures.Future[Any]]:
        """Hand a task to the router; return its spec and the future of its reply."""
        reply: concurrent.futures.Future[Any] = concurrent.futures.Future()
        return self._submit_to(spec, reply), reply

    def _asubmit(self, spec: TaskSpec) -> tuple[TaskSpec, asyncio.Future[Any]]:
        """Hand an asyncio caller's task to the router; return its spec and awaitable reply.

        The reply comes through the loop's `LoopReplies`, with the others that end with it;
        if none has come by the task's deadline and a grace (`_wait_s`), it fails as lost.
        """
        loop = asyncio.get_running_loop()
        replies = self._loop_replies.get(loop)
        if replies is None:
            replies = self._loop_replies.setdefault(loop, LoopReplies(loop))
        reply = replies.reply()
        spec = self._submit_to(spec, reply)
        replies.guard(reply, self._wait_s(spec), functools.partial(self._lost, spec))
        return spec, reply.future

    def _submit_to(self, spec: TaskSpec, reply: ReplyTo) -> TaskSpec:
        """Hand a task to the router, its reply to go to ``reply``; return its spec."""
        if self._closed:
            raise BoardClosedError("the board is closed")
        if spec.provider is None:
            self._note_unconfigured(spec.role)
        if self._config.otel.enabled and spec.traceparent is None:
            spec = dataclasses.replace(spec, traceparent=current_traceparent())
        self._tell_router(Submit(spec, reply))
        return spec

    def _note_unconfigured(self, role: str) -> None:
        """Record, once per board, a role that only the default provider serves (a typo?)."""
        config = self._config
        if role in config.roles or config.default_provider is None:
            return
        with self._unconfigured_lock:
            if role in self._unconfigured_roles:
                return
            self._unconfigured_roles.add(role)
        self._audit.event(
            "role_unconfigured",
            role=role,
            provider=config.default_provider,
            roles=sorted(config.roles),
        )

    def _wait_for(self, spec: TaskSpec, reply: concurrent.futures.Future[Any]) -> Any:
        """Block until the task's reply; an interrupt of the wait cancels the task first.

        A signal handler's exception (KeyboardInterrupt on SIGINT, SystemExit on SIGTERM)
        raised while the caller waits goes on up, so the program ends as it would have;
        the task ends first as cancelled, with its terminal record.
        """
        try:
            return reply.result(timeout=self._wait_s(spec))
        except concurrent.futures.TimeoutError:
            raise self._lost(spec) from None
        except BaseException as stop:  # re-raised: the task's own error, or an interrupt
            self._abandon(spec, reply, stop)
            raise

    def _abandon(
        self, spec: TaskSpec, reply: concurrent.futures.Future[Any], stop: BaseException
    ) -> None:
        """Cancel a task its (blocking) caller stopped waiting for, and wait for its record.

        ``stop`` is why: an interrupt (KeyboardInterrupt, SystemExit), `GeneratorExit`
        when a stream is left early. Nothing happens when the task has ended already.
        """
        if reply.done():
            return
        interrupted = isinstance(stop, KeyboardInterrupt | SystemExit)
        reason = "the caller cancelled it"
        if interrupted:
            reason = f"its caller was interrupted ({_describe(stop)})"
            wait_for_catalogue(CANCEL_WAIT_S)
        self._tell_router(CancelTask(spec.task_id, reason))
        ended = concurrent.futures.wait([reply], timeout=CANCEL_WAIT_S).done
        if interrupted and ended and isinstance(reply.exception(), TaskCancelledError):
            stop.add_note(f"callboard: task {spec.task_id} (role {spec.role!r}) was cancelled")

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

    def close(self, timeout_s: float = CONTROL_TIMEOUT_S) -> None:
        """Stop every actor (tasks still running end as cancelled) and the I/O thread."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
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
        if self._shared is not None:
            self._shared.close()
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


def _describe(stop: BaseException) -> str:
    """Name what interrupted a caller: ``KeyboardInterrupt``, ``SystemExit(143)``..."""
    name = type(stop).__name__
    return f"{name}({stop.code})" if isinstance(stop, SystemExit) else name


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
