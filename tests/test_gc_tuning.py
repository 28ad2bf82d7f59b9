"""The board sets Python's collector for many calls in flight, and only where the program did not.

The rules run against a recording collector; a child interpreter then shows what a real
board does to its process (this one's collector is shared by every test, so it cannot).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from runtime._board.gc_tuning import YOUNG_THRESHOLD, CollectorTuner, Tuning

pytestmark = pytest.mark.timeout(60)


class RecordingCollector:
    """A collector with Python's default settings that records what is done to it."""

    def __init__(self, threshold: tuple[int, int, int] = (700, 10, 10), enabled: bool = True):
        self.threshold = threshold
        self.enabled = enabled
        self.freezes = 0

    def isenabled(self) -> bool:
        """As `gc.isenabled`."""
        return self.enabled

    def get_threshold(self) -> tuple[int, int, int]:
        """As `gc.get_threshold`."""
        return self.threshold

    def set_threshold(self, threshold0: int, threshold1: int, threshold2: int, /) -> None:
        """As `gc.set_threshold`."""
        self.threshold = (threshold0, threshold1, threshold2)

    def freeze(self) -> None:
        """As `gc.freeze`: counted."""
        self.freezes += 1


def test_a_default_collector_gets_a_higher_young_threshold_and_one_freeze() -> None:
    collector = RecordingCollector()
    tuner = CollectorTuner(collector)
    first = tuner.tune()
    assert first == Tuning((700, 10, 10), (YOUNG_THRESHOLD, 10, 10), froze=True)
    assert collector.threshold == (YOUNG_THRESHOLD, 10, 10)
    second = tuner.tune()  # a second board in the same process
    assert second == Tuning((YOUNG_THRESHOLD, 10, 10), (YOUNG_THRESHOLD, 10, 10), froze=False)
    assert collector.freezes == 1


def test_a_program_s_own_higher_threshold_and_older_generations_are_kept() -> None:
    collector = RecordingCollector((50_000, 20, 5))
    CollectorTuner(collector).tune()
    assert collector.threshold == (50_000, 20, 5)
    lower = RecordingCollector((2_000, 10, 0))  # CPython 3.14's defaults
    CollectorTuner(lower).tune()
    assert lower.threshold == (YOUNG_THRESHOLD, 10, 0)


def test_a_disabled_collector_is_left_alone() -> None:
    collector = RecordingCollector(enabled=False)
    tuning = CollectorTuner(collector).tune()
    assert tuning == Tuning((700, 10, 10), (700, 10, 10), froze=False)
    assert collector.threshold == (700, 10, 10)
    assert collector.freezes == 0


CHILD = """
import gc, json, sys
before = sys.argv[1]
if before == "own":
    gc.set_threshold(50000, 10, 10)
elif before == "disabled":
    gc.disable()
from runtime import Callboard, parse_config
text = '''
[audit]
path = "off"
[metrics]
path = "off"
[startup]
check_credentials = false
exit_on_sigterm = false
tune_gc = %s
[providers.gpt]
type = "openai"
api_key = "sk-test-0000000000"
base_url = "http://127.0.0.1:9/v1"
model = "gpt-4o"
[roles.coder]
providers = ["gpt"]
'''
default = list(gc.get_threshold())
with Callboard(parse_config(text % sys.argv[2], environ={})):
    print(json.dumps([default, list(gc.get_threshold()), gc.get_freeze_count()]))
"""


def run_child(before: str, tune: str) -> tuple[list[int], list[int], int]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, before, tune],
        capture_output=True,
        text=True,
        timeout=45,
        check=True,
    )
    default, after, frozen = json.loads(done.stdout.strip().splitlines()[-1])
    return default, after, frozen


def test_a_board_tunes_its_process_collector_unless_told_not_to() -> None:
    default, after, frozen = run_child("default", "true")
    assert after == [YOUNG_THRESHOLD, default[1], default[2]]
    assert frozen > 1000  # the modules and the config, at least
    default, after, frozen = run_child("default", "false")
    assert (after, frozen) == (default, 0)


def test_a_board_keeps_the_program_s_own_collector_settings() -> None:
    _, after, frozen = run_child("own", "true")
    assert after[0] == 50_000
    assert frozen > 1000  # a higher threshold is kept; the freeze is still the board's
    default, after, frozen = run_child("disabled", "true")
    assert (after, frozen) == (default, 0)
