"""The Speaker: phrases through an engine and the cache, each distinct phrase synthesised at most once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

import numpy as np

from .cache import PhraseCache, quantise
from .engines import Engine, make_engine
from .settings import SpeechSettings
from .textnorm import normalise


@dataclass
class SpeakerStats:
    synthesised: int = 0  # phrases sent to the engine
    cache_hits: int = 0  # phrases read from the disk cache
    speech_seconds: float = 0.0  # seconds of audio synthesised
    synth_seconds: float = 0.0  # engine time, summed over phrases (so over workers too)

    @property
    def real_time_factor(self) -> float:
        """Engine time / audio time (< 1 is faster than real time; per worker when parallel)."""
        return self.synth_seconds / self.speech_seconds if self.speech_seconds else 0.0


class Speaker:
    """Speaks phrases through an engine with the cache; each distinct phrase synthesised at most once per process."""

    def __init__(self, engine: Engine, cache: PhraseCache | None):
        self.engine, self.cache = engine, cache
        self.stats = SpeakerStats()
        self._audio: dict[str, np.ndarray] = {}  # normalised text -> samples
        self._counts: dict[str, int] = {}  # normalised text -> sample count
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
            futures = {
                pool.submit(self._synthesise, spoken): spoken for spoken in sorted(missing, key=len, reverse=True)
            }
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
    the activations of a parallel synthesis would stay in the process through mixing and
    mastering, raising the build's peak memory for no use.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def make_speaker(settings: SpeechSettings) -> Speaker:
    """A speaker for the settings' engine, with the phrase cache (default: the user cache dir)."""
    return Speaker(make_engine(settings), PhraseCache(settings.cache_dir))
