"""How long a phrase will take before it is synthesised: the planner's first guess, from text alone."""

from __future__ import annotations

from .engines.base import split_sentences
from .textnorm import normalise

# Fitted by least squares to Piper joe medium at pace 1.0 on short workout cue phrases:
# a fixed onset/offset per phrase, a rate in words per minute, and a cost per sentence
# break (the inserted pause plus sentence-final lengthening), then rounded.
ESTIMATE_WPM = 240.0
PHRASE_OVERHEAD = 0.40
SENTENCE_BREAK = 0.50


def estimate_duration(text: str, wpm: float = ESTIMATE_WPM) -> float:
    """Seconds a phrase will take before it has been synthesised (the planner's first guess).

    A fixed onset/offset per phrase, words at `wpm`, and a pause per sentence break;
    calibrated on Piper joe at pace 1.0 (scale wpm by the pace for other paces).
    """
    spoken = normalise(text)
    if not spoken:
        return 0.0
    words = len(spoken.split())
    breaks = max(0, len(split_sentences(spoken)) - 1)
    return PHRASE_OVERHEAD * ESTIMATE_WPM / wpm + words * 60.0 / wpm + breaks * SENTENCE_BREAK
