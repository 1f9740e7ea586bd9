"""Turn routine text into plain words that every speech engine reads the same way.

Engines differ on digits, units and symbols (Piper reads "30s" as "thirties", reads
SSML tags aloud, Pico spells out "x10"), so the text is normalised once, before the
engine and before the cache key: "30 s" and "thirty seconds" then share one recording.
The result is idempotent: normalise(normalise(t)) == normalise(t).
"""

from __future__ import annotations

import html
import re
from functools import lru_cache

from num2words import num2words

_DIGITS = "zero one two three four five six seven eight nine".split()
_HUGE = 10**12  # from here numbers are read digit by digit (no routine needs them)


def _us_style(words: str) -> str:
    """num2words writes British "one hundred and five" and "one thousand, two hundred"; engines get
    the US form without "and" and commas, which keeps every existing cache key and test."""
    return words.replace(",", "").replace(" and ", " ")


@lru_cache(maxsize=4096)
def number_words(n: int) -> str:
    """English words for an integer, US style: 105 -> "one hundred five", 21 -> "twenty-one".

    Numbers of a trillion or more are read digit by digit (no routine needs them).
    """
    if n < 0:
        return "minus " + number_words(-n)
    if n >= _HUGE:
        return " ".join(_DIGITS[int(d)] for d in str(n))
    return _us_style(num2words(n, lang="en"))


@lru_cache(maxsize=1024)
def ordinal_words(n: int) -> str:
    """2 -> "second", 21 -> "twenty-first", 40 -> "fortieth"."""
    if n < 0:
        return "minus " + ordinal_words(-n)
    if n >= _HUGE:  # digit by digit, like number_words, with the last digit ordinal
        return " ".join([_DIGITS[int(d)] for d in str(n)[:-1]] + [num2words(int(str(n)[-1]), lang="en", to="ordinal")])
    return _us_style(num2words(n, lang="en", to="ordinal"))


def _num(token: str) -> str:
    """Words for "12" or "1.5" ("one point five": digits after the point one by one)."""
    if "." in token:
        whole, frac = token.split(".", 1)
        return number_words(int(whole or "0")) + " point " + " ".join(_DIGITS[int(d)] for d in frac)
    return number_words(int(token))


_N = r"\d+(?:\.\d+)?"
_UNITS = {  # spoken singular, plural
    "s": ("second", "seconds"),
    "sec": ("second", "seconds"),
    "secs": ("second", "seconds"),
    "second": ("second", "seconds"),
    "seconds": ("second", "seconds"),
    "min": ("minute", "minutes"),
    "mins": ("minute", "minutes"),
    "minute": ("minute", "minutes"),
    "minutes": ("minute", "minutes"),
    "h": ("hour", "hours"),
    "hr": ("hour", "hours"),
    "hrs": ("hour", "hours"),
    "hour": ("hour", "hours"),
    "hours": ("hour", "hours"),
    "kg": ("kilogram", "kilograms"),
    "kgs": ("kilogram", "kilograms"),
    "km": ("kilometre", "kilometres"),
    "lb": ("pound", "pounds"),
    "lbs": ("pound", "pounds"),
    "bpm": ("beat per minute", "beats per minute"),
}
_UNIT_RE = re.compile(
    rf"(?<![\w.])({_N})(?:\s*[-–]\s*({_N}))?\s*({'|'.join(sorted(_UNITS, key=len, reverse=True))})\b",
    re.IGNORECASE,
)


def _unit(m: re.Match) -> str:
    first, second, unit = m.group(1), m.group(2), m.group(3).lower()
    singular, plural = _UNITS[unit]
    last = second or first
    name = singular if float(last) == 1 and "." not in last and not second else plural
    spoken = _num(first) + (" to " + _num(second) if second else "")
    return f"{spoken} {name}"


def _clock(m: re.Match) -> str:
    """ "1:30" in a workout is minutes:seconds -> "one minute thirty seconds"."""
    minutes, seconds = int(m.group(1)), int(m.group(2))
    parts = []
    if minutes:
        parts.append(number_words(minutes) + (" minute" if minutes == 1 else " minutes"))
    if seconds or not minutes:
        parts.append(number_words(seconds) + (" second" if seconds == 1 else " seconds"))
    return " ".join(parts)


_QUOTES = str.maketrans(
    {
        "‘": "'",
        "’": "'",
        "‚": "'",
        "′": "'",
        "“": '"',
        "”": '"',
        "„": '"',
        "″": '"',
        "«": '"',
        "»": '"',
        "\u00a0": " ",
        "×": "x",
    }
)

# (pattern, replacement) applied in order; numbers are turned into words last.
_RULES: list[tuple[re.Pattern, object]] = [
    (re.compile(r"<[^<>]*>"), " "),  # SSML / HTML tags
    (re.compile(r"(?<=\d)\s*–\s*(?=\d)"), "-"),  # en dash in ranges
    (re.compile(r"\s*[—–]\s*"), ", "),  # other dashes are pauses
    (re.compile(r"(?<=\d),(?=\d{3}\b)"), ""),  # 1,000 -> 1000
    (re.compile(r"\be\.\s?g\.", re.I), "for example"),
    (re.compile(r"\bi\.\s?e\.", re.I), "that is"),
    (re.compile(r"\betc\.", re.I), "et cetera"),
    (re.compile(r"\bapprox\b\.?", re.I), "approximately"),
    (re.compile(r"\bvs\b\.?", re.I), "versus"),
    (re.compile(r"\s*&\s*"), " and "),
    (
        re.compile(r"\b\d+(?:\s*-\s*\d+){2,}\b"),  # 3-2-1 countdown
        lambda m: ", ".join(number_words(int(d)) for d in re.findall(r"\d+", m.group())),
    ),
    (re.compile(r"\b(\d{1,2}):([0-5]\d)\b"), _clock),  # 1:30
    (_UNIT_RE, _unit),  # 30s, 10 min, 30-45 s
    (
        re.compile(rf"\b({_N})\s*x\s*(\d+)\b", re.I),  # 3x10 -> three by ten
        lambda m: f"{_num(m.group(1))} by {_num(m.group(2))}",
    ),
    (re.compile(r"(?<![\w.])x\s?(\d+)\b", re.I), lambda m: f"{_num(m.group(1))} times"),
    (re.compile(rf"(?<![\w.])({_N})\s?x\b", re.I), lambda m: f"{_num(m.group(1))} times"),
    (re.compile(r"#\s?(?=\d)"), "number "),
    (re.compile(rf"\b({_N})\s*-\s*({_N})\b"), lambda m: f"{_num(m.group(1))} to {_num(m.group(2))}"),
    (re.compile(r"\b(\d+)(?:st|nd|rd|th)\b", re.I), lambda m: ordinal_words(int(m.group(1)))),
    (re.compile(rf"({_N})\s*%"), lambda m: f"{_num(m.group(1))} percent"),
    (re.compile(r"\s*%"), " percent"),
    (re.compile(r"\+"), " plus "),
    (re.compile(r"\s*@\s*"), " at "),
    (re.compile(r"(?<![\d.])(\d+\.\d+)\b"), lambda m: _num(m.group(1))),
    (re.compile(r"\d+"), lambda m: number_words(int(m.group()))),
    (re.compile(r"[*_#~^|\\{}\[\]]"), " "),  # markdown and stray symbols
    (re.compile(r"\s+"), " "),
    (re.compile(r"\s+([,.;:!?])"), r"\1"),
    (re.compile(r"([,;:])(?:\s*[,;:])+"), r"\1"),  # ", ," left by removals
]


@lru_cache(maxsize=4096)
def normalise(text: str) -> str:
    """Plain spoken-form text: numbers, units and symbols as words, no markup, one space.

    Remembered: a session says a few hundred phrases, and each is looked up (its cache key, its
    length) many times while a stream is planned and levelled (an hour: 2,500 calls, 0.05 s).
    """
    text = html.unescape(text).translate(_QUOTES)
    for pattern, repl in _RULES:
        text = pattern.sub(repl, text)
    return text.strip(" ,;")
