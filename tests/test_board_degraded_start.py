"""A board starts while a provider is in trouble, and stops only for the user's own mistakes."""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any

import pykka
import pytest
from support import FAST_SECTIONS, KEYS, config_toml, eventually

from actors import ProviderActor, RouterActor
from actors._messages import AttemptDone, StartAttempt
from runtime import StartupError, TaskFailedError
from runtime._chat import ChatRequest, Message, Tuning
from runtime._errors import ErrorKind
from runtime.testing import Fail, FakeProvider, Hang, Malformed, ProxyError

pytestmark = pytest.mark.timeout(30)

SLOW_RECHECK = FAST_SECTIONS + "\n[startup]\nrecheck_initial_s = 30.0\nrecheck_max_s = 60.0\n"
"""Rechecks too far off to happen during a test: the provider stays unchecked."""
FAST_RECHECK = FAST_SECTIONS + "\n[startup]\nrecheck_initial_s = 0.05\nrecheck_max_s = 0.2\n"


def start(deployment, troubled: FakeProvider, fine: FakeProvider, sections: str = SLOW_RECHECK):
    """Start a board whose coder role tries ``troubled`` first; the reviewer uses only ``fine``."""
    deployment.write(
        config_toml(
            deployment,
            {"troubled": troubled, "fine": fine},
            {"coder": ["troubled", "fine"], "reviewer": ["fine"]},
            sections=sections,
        )
    )
    return deployment.board(check=True)


def state_of(board, provider: str, state: str) -> Any:
    """Return the provider's health once it is in ``state`` (else ``None``)."""
    health = board.health()[provider]
    return health if health.state == state else None


def test_a_provider_down_at_start_is_unchecked_and_the_board_serves_without_it(fakes, deployment):
    """An unreachable provider does not stop the start: it is marked, logged, and skipped."""
    troubled, fine = fakes("openai"), fakes("anthropic")
    troubled.down()
    board = start(deployment, troubled, fine)
    health = board.health()["troubled"]
    assert health.state == "unchecked"
    assert "unreachable" in health.reason
    assert health.for_s is not None
    assert 0 < health.for_s <= 30
    (record,) = deployment.events("provider_unchecked")
    assert record["provider"] == "troubled"
    assert "unreachable" in record["reason"]
    reply = board.ask("coder", "x")
    assert [(a.provider, a.outcome) for a in reply.attempts] == [("fine", "ok")]
    assert board.ask("reviewer", "y").provider == "fine"
    assert board.health()["fine"].state == "ready"


@pytest.mark.parametrize(
    ("behaviour", "said"),
    [
        (Fail(503), "HTTP 503"),
        (Fail(500), "HTTP 500"),
        (Fail(429, retry_after_s=5), "HTTP 429"),
        (Malformed("not json at all"), "malformed_response"),
        (ProxyError(502), "HTTP 502"),
        (Hang(), "did not answer within validate_s"),
    ],
)
def test_the_providers_own_trouble_at_start_leaves_it_unchecked(fakes, deployment, behaviour, said):
    """5xx, 429, a malformed answer or a timeout at the check: the board starts without it."""
    troubled, fine = fakes("openai", checks=[behaviour]), fakes("anthropic")
    board = start(deployment, troubled, fine)
    health = board.health()["troubled"]
    assert health.state == "unchecked"
    assert said in health.reason
    assert board.ask("coder", "x").provider == "fine"


@pytest.mark.parametrize(
    ("options", "said"),
    [
        ({"keys": {"another-key"}}, "the key was rejected (HTTP 401)"),
        ({"models": ["gpt-4.1"]}, 'model "gpt-4o" was not found'),
        ({"checks": [Fail(403)]}, "the key lacks access (HTTP 403)"),
    ],
)
def test_the_users_own_mistakes_still_stop_the_start(fakes, deployment, options, said):
    """A rejected key, a model not offered or a key without access stop the start, listed."""
    mistaken, fine = fakes("openai", **options), fakes("anthropic")
    with pytest.raises(StartupError) as caught:
        start(deployment, mistaken, fine)
    (problem,) = caught.value.problems
    assert problem.startswith(f"troubled: {said}")
    assert not deployment.events("provider_unchecked")


def test_a_mistake_stops_the_start_and_every_problem_is_listed(fakes, deployment):
    """With a mistake and a provider down, the start stops and both are listed."""
    mistaken, down = fakes("openai", keys={"another-key"}), fakes("anthropic")
    down.down()
    with pytest.raises(StartupError) as caught:
        start(deployment, down, mistaken)
    text = "\n".join(caught.value.problems)
    assert "fine: the key was rejected" in text
    assert "troubled: unreachable" in text


def test_require_all_stops_the_start_for_a_provider_down(fakes, deployment):
    """``[startup] require_all = true`` keeps the strict start: any failure stops it."""
    troubled, fine = fakes("openai"), fakes("anthropic")
    troubled.down()
    strict = FAST_SECTIONS + "\n[startup]\nrequire_all = true\n"
    with pytest.raises(StartupError, match="troubled: unreachable"):
        start(deployment, troubled, fine, strict)
    (failed,) = deployment.events("startup_failed")
    assert "troubled: unreachable" in failed["problems"][0]


def test_an_unchecked_provider_joins_the_rotation_once_a_recheck_passes(fakes, deployment):
    """Checked again in the background, the provider joins once it answers, and serves."""
    troubled, fine = fakes("openai"), fakes("anthropic")
    troubled.down()
    board = start(deployment, troubled, fine, FAST_RECHECK)
    assert board.health()["troubled"].state == "unchecked"
    troubled.up()
    eventually(lambda: state_of(board, "troubled", "ready"))
    (joined,) = deployment.events("provider_joined")
    assert joined["provider"] == "troubled"
    assert joined["checks"] >= 2
    assert board.ask("coder", "x").provider == "troubled"


def test_rechecks_go_on_through_trouble_until_one_passes(fakes, deployment):
    """Each failed recheck keeps it unchecked; the first that passes lets it join."""
    troubled, fine = fakes("openai", checks=[Fail(503)] * 4), fakes("anthropic")
    board = start(deployment, troubled, fine, FAST_RECHECK)
    eventually(lambda: state_of(board, "troubled", "ready"))
    assert len([r for r in troubled.requests if r.action == "list_models"]) == 5
    (joined,) = deployment.events("provider_joined")
    assert joined["checks"] == 5


def test_a_recheck_that_finds_the_key_rejected_takes_the_provider_out(fakes, deployment):
    """If the provider comes back and rejects the key, it goes out of rotation, saying why."""
    troubled, fine = fakes("openai"), fakes("anthropic")
    troubled.down()
    board = start(deployment, troubled, fine, FAST_RECHECK)
    troubled.revoke_key(KEYS["openai"])
    troubled.up()
    out = eventually(lambda: state_of(board, "troubled", "out"))
    assert "the key was rejected (HTTP 401)" in out.reason
    assert "OPENAI_KEY" in out.reason
    (record,) = deployment.events("provider_out")
    assert record["provider"] == "troubled"
    assert "OPENAI_KEY" in record["reason"]
    assert not deployment.events("provider_joined")


def test_tasks_do_not_wait_for_a_provider_being_checked(fakes, deployment, silent_port):
    """While a recheck hangs on a silent provider, its role's other provider answers at once."""
    fine = fakes("anthropic")
    silent = (fine, {"base_url": f"http://127.0.0.1:{silent_port}/v1"})
    deployment.write(
        config_toml(
            deployment,
            {"silent": silent, "fine": fine},
            {"coder": ["silent", "fine"]},
            sections=FAST_RECHECK,
        )
    )
    board = deployment.board(check=True)
    for _ in range(3):
        reply = board.ask("coder", "x")
        assert [(a.provider, a.outcome) for a in reply.attempts] == [("fine", "ok")]
    assert board.health()["silent"].state == "unchecked"


class _Collector(pykka.ThreadingActor):
    """Resolves a future with the first `AttemptDone` it gets (health news comes first)."""

    def __init__(self, got: concurrent.futures.Future[Any]) -> None:
        super().__init__()
        self.got = got

    def on_receive(self, message: Any) -> None:
        if isinstance(message, AttemptDone) and not self.got.done():
            self.got.set_result(message)


def test_an_unchecked_provider_refuses_a_call_saying_why_and_when(fakes, deployment):
    """A call that reaches an unchecked provider is refused as unavailable, with the reason."""
    troubled, fine = fakes("openai"), fakes("anthropic")
    troubled.down()
    start(deployment, troubled, fine)
    (ref,) = [
        r
        for r in pykka.ActorRegistry.get_by_class(ProviderActor)
        if r.proxy().provider_id.get(timeout=5) == "troubled"
    ]
    got: concurrent.futures.Future[AttemptDone] = concurrent.futures.Future()
    collector = _Collector.start(got)
    request = ChatRequest((Message("user", "hi"),), "gpt-4o", None, Tuning())
    ref.tell(StartAttempt(1, "t1", "coder", request, time.monotonic() + 5, 1.0, 1.0, collector))
    done = got.result(timeout=5)
    assert done.error is not None
    assert done.error.kind is ErrorKind.UNAVAILABLE
    assert "not checked yet" in done.error.message
    assert "unreachable" in done.error.message
    assert "next check in" in done.error.message


def test_a_restarted_provider_actor_stays_unchecked(fakes, deployment):
    """A provider actor that crashes while unchecked comes back unchecked, not in rotation."""
    troubled, fine = fakes("openai"), fakes("anthropic")
    troubled.down()
    board = start(deployment, troubled, fine)
    (ref,) = [
        r
        for r in pykka.ActorRegistry.get_by_class(ProviderActor)
        if r.proxy().provider_id.get(timeout=5) == "troubled"
    ]
    slot = ref.proxy().slot.get(timeout=5)
    ref.tell(object())  # a message no actor handles: it crashes, as a bug would
    board._await_child(f"provider:{slot}", replacing=ref)
    assert board.health()["troubled"].state == "unchecked"
    assert board.ask("coder", "x").provider == "fine"


def test_a_reload_with_a_provider_down_applies_and_leaves_it_unchecked(fakes, deployment):
    """A reload whose new provider is unreachable applies; that provider starts unchecked."""
    troubled, fine = fakes("openai"), fakes("anthropic")
    deployment.write(
        config_toml(deployment, {"fine": fine}, {"coder": ["fine"]}, sections=SLOW_RECHECK)
    )
    board = deployment.board(check=True)
    troubled.down()
    start_config = config_toml(
        deployment,
        {"troubled": troubled, "fine": fine},
        {"coder": ["troubled", "fine"]},
        sections=SLOW_RECHECK,
    )
    deployment.write(start_config)
    board.reload()
    assert board.health()["troubled"].state == "unchecked"
    assert board.ask("coder", "x").provider == "fine"


def test_a_429_at_the_check_is_rechecked_no_sooner_than_it_asked(fakes, deployment):
    """A provider that answered 429 with Retry-After is left alone that long before a recheck."""
    troubled = fakes("openai", checks=[Fail(429, retry_after_s=20)])
    board = start(deployment, troubled, fakes("anthropic"), FAST_RECHECK)
    health = board.health()["troubled"]
    assert health.state == "unchecked"
    assert health.for_s is not None
    assert health.for_s > 15


def test_a_restarted_router_still_skips_an_unchecked_provider(fakes, deployment):
    """After a router crash the new router knows the provider is unchecked, from its start."""
    troubled, fine = fakes("openai"), fakes("anthropic")
    troubled.down()
    board = start(deployment, troubled, fine)
    (router,) = pykka.ActorRegistry.get_by_class(RouterActor)
    router.tell(object())  # a message no actor handles: it crashes, as a bug would
    board._await_child("router", replacing=router)
    reply = board.ask("coder", "x")
    assert [(a.provider, a.outcome) for a in reply.attempts] == [("fine", "ok")]
    assert board.health()["troubled"].state == "unchecked"


def test_a_task_whose_only_provider_is_unchecked_fails_at_once_saying_why(fakes, deployment):
    """No waiting for the next check: the task fails now, and its advice says what goes on."""
    troubled, fine = fakes("openai"), fakes("anthropic")
    troubled.down()
    deployment.write(
        config_toml(
            deployment,
            {"troubled": troubled, "fine": fine},
            {"solo": ["troubled"]},
            sections=SLOW_RECHECK,
        )
    )
    board = deployment.board(check=True)
    with pytest.raises(TaskFailedError) as caught:
        board.ask("solo", "x")
    assert caught.value.attempts == ()
    assert "out of rotation: troubled (unreachable" in caught.value.reason
    (advice,) = caught.value.advice
    assert advice.startswith("troubled: not checked yet (unreachable")
    assert "checked again in the background" in advice
