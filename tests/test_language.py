from __future__ import annotations

import pytest

from runtime._policy.language import detect, matches

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("请帮我写一个排序函数", "zh-Hans"),
        ("請幫我寫一個排序函數", "zh-Hant"),
        ("中文", "zh"),
        ("def sort(xs):  # 把这个列表排序并返回", "zh-Hans"),
        ("ソート関数を書いてください", "ja"),
        ("정렬 함수를 작성해 주세요", "ko"),
        ("Schreib mir bitte eine Sortierfunktion in Python", "de"),
        ("Please write me a function that sorts a list of integers", "en"),
    ],
)
def test_detect_names_the_language_and_the_chinese_script(text, language):
    """CJK is told by script (Chinese inside code too), the Chinese script too; others by lingua."""
    assert detect(text) == language


def test_a_rule_language_matches_a_detected_one():
    """``zh`` takes either script; ``zh-Hans`` takes Simplified, or text that could be both."""
    assert matches("zh-Hant", "zh")
    assert matches("zh", "zh-Hans")
    assert not matches("zh-Hant", "zh-Hans")
    assert matches("en", "en")
    assert not matches(None, "en")
