"""The language of a prompt, for routing rules: an ISO 639-1 code, and Chinese by script.

Chinese, Japanese and Korean are told apart by their scripts, which is exact and costs a
pass over the text (an n-gram model misreads Chinese inside code or English). Other
languages are left to lingua (``lingua-language-detector``), which handles short and
mixed text; Simplified and Traditional Chinese to ``hanzidentifier``. Both are imported,
and lingua's models loaded, on the first prompt a language rule asks about; only the
first ``SAMPLE_CHARS`` characters are read.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

SAMPLE_CHARS = 300
"""How much of a prompt is read to tell its language."""
COMMON = (
    *("en", "zh", "ja", "ko", "es", "fr", "de", "pt", "ru", "it", "nl", "pl", "tr", "ar"),
    *("hi", "vi", "id", "uk", "sv", "cs", "el", "he", "th", "fa", "ro", "hu", "da", "fi"),
)
"""The languages lingua tells apart besides those the rules name (more cost more time)."""
_MIN_HAN_SHARE = 0.2
"""The share of letters that must be Han characters for a text to count as Chinese."""


def detect(text: str, wanted: Iterable[str] = ()) -> str | None:
    """Return the language of ``text``: ``zh-Hans``, ``zh-Hant``, ``zh`` or an ISO 639-1 code.

    ``zh`` alone when the script could be either. ``None`` when nothing can be told (or
    lingua is not installed and the text is not Chinese, Japanese or Korean).
    ``wanted`` adds languages (ISO 639-1) to those lingua considers.
    """
    sample = text[:SAMPLE_CHARS]
    by_script = _by_script(sample)
    if by_script == "zh":
        return _chinese_script(sample)
    if by_script is not None:
        return by_script
    try:
        detector = _detector(tuple(sorted({*COMMON, *(w.split("-")[0] for w in wanted)})))
    except ImportError:  # as above: without lingua only the CJK scripts are told
        return None
    found = detector.detect_language_of(sample)
    return None if found is None else str(found.iso_code_639_1.name).lower()


def matches(detected: str | None, wanted: str) -> bool:
    """Whether a detected language satisfies a rule's ``language`` (``zh`` takes either script)."""
    if detected is None:
        return False
    if wanted == "zh":
        return detected.startswith("zh")
    if wanted.startswith("zh-"):
        return detected in (wanted, "zh")
    return detected == wanted


def _by_script(text: str) -> str | None:
    """Return ``zh``, ``ja`` or ``ko`` when the text is mostly in their scripts."""
    han = kana = hangul = letters = 0
    for char in text:
        code = ord(char)
        if 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF:  # noqa: PLR2004
            han += 1
        elif 0x3040 <= code <= 0x30FF:  # noqa: PLR2004
            kana += 1
        elif 0xAC00 <= code <= 0xD7AF:  # noqa: PLR2004
            hangul += 1
        elif char.isalpha():
            letters += 1
    cjk = han + kana + hangul
    if not cjk:
        return None
    if kana:
        return "ja"
    if hangul:
        return "ko"
    return "zh" if han >= _MIN_HAN_SHARE * (cjk + letters) else None


def _chinese_script(text: str) -> str:
    try:
        import hanzidentifier  # noqa: PLC0415 - only when a rule asks for a Chinese script
    except ImportError:  # a config built in code skips the check that asks for it
        return "zh"
    kind = hanzidentifier.identify(text)
    if kind == hanzidentifier.SIMPLIFIED:
        return "zh-Hans"
    if kind == hanzidentifier.TRADITIONAL:
        return "zh-Hant"
    return "zh"


@functools.lru_cache(maxsize=4)
def _detector(codes: tuple[str, ...]) -> Any:
    import lingua  # noqa: PLC0415 - loaded on the first prompt a language rule asks about

    known = [getattr(lingua.IsoCode639_1, c.upper(), None) for c in codes]
    builder = lingua.LanguageDetectorBuilder.from_iso_codes_639_1(*[k for k in known if k])
    return builder.with_low_accuracy_mode().with_preloaded_language_models().build()
