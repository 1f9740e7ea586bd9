"""gTTS: Google's online voice, an optional extra (`pip install 'audioworkout[gtts]'`).

Nothing from gtts or requests is imported until an engine is made, so the package works
(and lists gtts as not available) without them.
"""

from __future__ import annotations

import io
import logging
import time

import numpy as np

from ...errors import AudioworkoutError, EngineError
from ..settings import SpeechSettings
from .base import PIPELINE_VERSION, VoiceInfo, check_pace, importable, register, trim_silence

log = logging.getLogger(__name__)

GTTS_OFFLINE_HINT = "it needs the internet — use the offline default `--engine piper`"
GTTS_MISSING = "gtts: the online engine is not installed; pip install 'audioworkout[gtts]'"


@register
class GttsEngine:
    """Google Translate's TTS through gTTS: online only, subject to Google's terms; 24 kHz.

    Requests carry a (connect, read) timeout. A transient failure (timeout, HTTP 429/5xx)
    is retried with backoff inside a ~6 s budget; a failure that shows there is no network
    (DNS lookup failed, connection refused) fails at once. Pace: Google offers only normal
    and slow, so pace < 0.85 selects `slow=True` and any other pace is normal speed
    (no time-stretching), hence the cache key holds `slow`, not pace.
    """

    name = "gtts"
    hidden = False
    sample_rate = 24000
    licence = "Google TTS terms; needs internet"
    note = "online only; --lang and --tld choose the accent"
    timeout = (3.0, 10.0)
    attempts = 3
    budget = 6.0  # seconds; no retry is started after this

    def __init__(self, lang: str = "en", tld: str = "com", pace: float = 1.0):
        try:
            import gtts  # noqa: F401  (first, so a missing package is told apart from a missing submodule)
            from gtts.lang import tts_langs
        except ImportError:
            raise EngineError(GTTS_MISSING) from None

        self.lang, self.tld = lang, tld
        if lang not in tts_langs():
            raise EngineError(f"gtts: unknown language {lang!r} (try 'en')")
        self.pace = check_pace(pace)
        self.slow = self.pace < 0.85

    @classmethod
    def from_settings(cls, settings: SpeechSettings) -> GttsEngine:
        """Google picks the voice from language and domain; a voice file means the user wanted piper."""
        if settings.voice:
            raise EngineError("gtts: --voice does not apply; use --lang and --tld")
        return cls(settings.lang or "en", settings.tld or "com", pace=settings.pace)

    @classmethod
    def voices(cls) -> list[VoiceInfo]:
        """Listed, not probed: no network is touched."""
        return [
            VoiceInfo(cls.name, "en (tld com)", "en", cls.sample_rate, cls.licence, False, importable("gtts"), cls.note)
        ]

    def cache_key(self) -> str:
        return "|".join(["gtts", self.lang, self.tld, f"slow={int(self.slow)}", f"v{PIPELINE_VERSION}"])

    def _fetch(self, text: str) -> bytes:
        import requests
        from gtts import gTTS, gTTSError

        started, delay = time.monotonic(), 0.5
        for attempt in range(1, self.attempts + 1):
            buf = io.BytesIO()
            try:
                gTTS(
                    text, lang=self.lang, tld=self.tld, slow=self.slow, lang_check=False, timeout=self.timeout
                ).write_to_fp(buf)
                if buf.tell() == 0:
                    raise EngineError("gtts: Google Text-to-Speech returned no audio")
                return buf.getvalue()
            except gTTSError as exc:
                cause = exc.__context__
                status = getattr(exc.rsp, "status_code", None)
                transient = isinstance(cause, requests.Timeout) or (
                    status is not None and (status == 429 or status >= 500)
                )
                if isinstance(cause, requests.Timeout):
                    reason = "timed out"
                elif isinstance(cause, requests.ConnectionError):
                    reason = _connection_reason(cause)
                else:
                    reason = str(exc).split(". Probable cause")[0]
                elapsed = time.monotonic() - started
                if not transient or attempt == self.attempts or elapsed + delay > self.budget:
                    tries = f" after {attempt} attempts" if attempt > 1 else ""
                    raise EngineError(
                        f"gtts: cannot reach Google Text-to-Speech ({reason}{tries}); {GTTS_OFFLINE_HINT}"
                    ) from None
                log.info("gtts: %s; retrying in %.1f s", reason, delay)
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")  # pragma: no cover

    def synthesize(self, text: str) -> np.ndarray:
        from ...audio.ffmpeg import decode_audio

        mp3 = self._fetch(text)
        try:
            samples = decode_audio(mp3, self.sample_rate, what="gtts MP3")
        except AudioworkoutError as exc:
            raise EngineError(f"gtts: could not decode the MP3 from Google: {exc}") from None
        return trim_silence(samples, self.sample_rate)


def _connection_reason(exc: BaseException) -> str:
    text = str(exc)
    if (
        "NameResolution" in text
        or "Name or service not known" in text
        or "getaddrinfo" in text
        or "Temporary failure in name resolution" in text
    ):
        return "DNS lookup of translate.google failed"
    if "ProxyError" in type(exc).__name__ or "ProxyError" in text:
        return "proxy unreachable"
    if "refused" in text:
        return "connection refused"
    if "unreachable" in text.lower():
        return "network unreachable"
    return type(exc).__name__
