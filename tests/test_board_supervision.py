from __future__ import annotations

import concurrent.futures

import pykka
import pytest
from support import FAST_SECTIONS, config_toml

from actors import MetricsActor, ProviderActor, RouterActor
from runtime import BoardClosedError, TaskFailedError
from runtime.testing import Answer, Hang

pytestmark = pytest.mark.timeout(30)

SUPERVISION = (
    FAST_SECTIONS
    + """
[supervision]
max_restarts = 2
window_s = 60
backoff_initial_s = 0.01
backoff_max_s = 0.05
"""
)


class Garbage:
    """A message no actor handles: telling it crashes the actor, as a bug would."""


def provider_ref(provider_id: str) -> pykka.ActorRef:
    for ref in pykka.ActorRegistry.get_by_class(ProviderActor):
        if ref.proxy().provider_id.get(timeout=5) == provider_id:
            return ref
    raise LookupError(provider_id)


def only_ref(actor_class) -> pykka.ActorRef:
    (ref,) = pykka.ActorRegistry.get_by_class(actor_class)
    return ref


def crash(board, child: str, ref: pykka.ActorRef) -> pykka.ActorRef:
    """Crash ``ref`` and return its replacement once the supervisor has restarted it."""
    ref.tell(Garbage())
    return board._await_child(child, replacing=ref)


def setup(fakes, deployment):
    primary, backup = fakes("openai"), fakes("anthropic")
    deployment.write(
        config_toml(
            deployment,
            {"primary": primary, "backup": backup},
            {"coder": ["primary", "backup"], "solo": ["primary"]},
            sections=SUPERVISION,
        )
    )
    return primary, backup, deployment.board()


def test_a_crashed_provider_is_restarted_and_serves_again(fakes, deployment):
    """A provider actor that crashes is restarted under the same id, and tasks reach it."""
    primary, _backup, board = setup(fakes, deployment)
    assert board.ask("solo", "before").provider == "primary"
    old = provider_ref("primary")
    new = crash(board, "provider:primary#1", old)
    assert new != old
    assert board.ask("solo", "after").provider == "primary"
    events = [e["event"] for e in deployment.audit() if e["event"].startswith("actor_")]
    assert events == ["actor_died", "actor_restarting", "actor_restarted"]
    assert len([r for r in primary.requests if r.is_chat]) == 2


def test_a_task_in_flight_on_a_crashing_provider_falls_back(fakes, deployment):
    """The attempt a crashed provider held fails as internal and the task moves on."""
    primary, backup, board = setup(fakes, deployment)
    primary.script.append(Hang())
    backup.script.append(Answer("rescued"))
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(board.ask, "coder", "x", deadline_s=20)
        primary.wait_for_requests(1, chat_only=True)
        crash(board, "provider:primary#1", provider_ref("primary"))
        reply = pending.result(timeout=10)
    assert reply.text == "rescued"
    assert [(a.provider, a.outcome) for a in reply.attempts] == [
        ("primary", "internal"),
        ("backup", "ok"),
    ]


def test_a_provider_that_keeps_crashing_is_marked_failed_and_its_roles_fall_back(fakes, deployment):
    """Past max_restarts in the window the provider is failed; tasks skip it or fail clearly."""
    _primary, _backup, board = setup(fakes, deployment)
    ref = provider_ref("primary")
    for _ in range(2):
        ref = crash(board, "provider:primary#1", ref)
    ref.tell(Garbage())
    with pytest.raises(BoardClosedError, match="provider:primary#1 has failed"):
        board._await_child("provider:primary#1", replacing=ref)
    reply = board.ask("coder", "x")
    assert [a.provider for a in reply.attempts] == ["backup"]
    with pytest.raises(TaskFailedError, match="primary \\(crashed more than 2 times in 60 s"):
        board.ask("solo", "x")
    assert deployment.events("actor_failed")[0]["actor"] == "provider:primary#1"


def test_a_crashed_router_ends_its_tasks_and_a_new_one_takes_over(fakes, deployment):
    """Tasks the router held fail with a record; the restarted router serves new tasks."""
    primary, _backup, board = setup(fakes, deployment)
    primary.script.append(Hang())
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pending = pool.submit(board.ask, "solo", "stuck", deadline_s=20)
        primary.wait_for_requests(1, chat_only=True)
        crash(board, "router", only_ref(RouterActor))
        with pytest.raises(TaskFailedError, match="the router crashed"):
            pending.result(timeout=10)
    assert board.ask("solo", "after").provider == "primary"
    outcomes = [e["outcome"] for e in deployment.events("task_finished")]
    assert outcomes == ["failed", "ok"]


def test_a_crashed_metrics_actor_is_restarted_and_counts_again(fakes, deployment):
    """After a metrics crash the live stats start again from the next task."""
    _primary, _backup, board = setup(fakes, deployment)
    board.ask("solo", "one")
    assert board.stats().pair("primary", "solo")["attempts"] == 1
    crash(board, "metrics", only_ref(MetricsActor))
    board.ask("solo", "two")
    assert board.stats().pair("primary", "solo")["attempts"] == 1
    assert board.stats().roles["solo"]["tasks"] == 1
