"""The Speaker: phrases through an engine and the cache, each distinct phrase synthesised at most once.

At most once per process (the phrases held in memory) and, through the cache's lock files, at most
once between concurrent builds sharing a cache: a phrase another build is synthesising is waited
for and then read from the cache.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass

import numpy as np

from .cache import LOCK_WAIT, PhraseCache, quantise
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
            samples = self._fetch(spoken, LOCK_WAIT)
            assert samples is not None  # with a wait, the phrase is always made
            self._audio[spoken] = samples
            self._counts[spoken] = len(samples)
            return samples

    def forget_audio(self) -> None:
        """Drop the phrase audio held in memory (durations stay known); the cache still has it."""
        with self._lock:
            self._audio.clear()

    def _fetch(self, spoken: str, wait: float) -> np.ndarray | None:
        """The phrase from the cache, else from the engine, holding the phrase's lock across processes.

        The cache is read again once the lock is ours: another build may have made the phrase while
        we waited. Returns None, doing nothing, when another process holds the phrase and `wait`
        (seconds) ran out with `wait` 0; after a longer wait it is synthesised anyway (a stuck
        process must not stop this one). Runs in worker threads during prefetch.
        """
        if self.cache is None:
            return self._synthesise(spoken)
        with self.cache.claim(self.engine, spoken, timeout=wait) as mine:
            if not mine and wait == 0:
                return None
            samples = self.cache.get(self.engine, spoken)
            if samples is not None:
                with self._stats_lock:
                    self.stats.cache_hits += 1
                return samples
            return self._synthesise(spoken)

    def _synthesise(self, spoken: str) -> np.ndarray:
        """Engine, then cache; runs in worker threads during prefetch (no shared state but stats)."""
        started = time.perf_counter()
        raw = self.engine.synthesize(spoken)
        elapsed = time.perf_counter() - started
        samples = quantise(raw).astype(np.float32) / 32767.0  # identical to what the cache returns
        if self.cache:
            from ..audio import levels

            # What the renderer sets the level from, written with the entry.
            measured = levels.measure_phrase(samples, self.engine.sample_rate)
            self.cache.put(self.engine, spoken, samples, {levels.CACHE_KIND: levels.to_bytes(measured)})
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

    def reserve_seconds(self, text: str) -> float | None:
        """An upper bound of the phrase's length from the engine, made or not (None if it has none).

        Not its real length once made: a cold stream lays out the phrases it found unmade in slots
        of this bound, whatever is made while it plans, so its plan does not depend on that race.
        """
        bound = getattr(self.engine, "reserve_seconds", None)
        return bound(normalise(text)) if bound is not None else None

    def expect_seconds(self, text: str) -> float | None:
        """The phrase's most likely length from the engine before it is made (None if it has no guess)."""
        expect = getattr(self.engine, "expect_seconds", None)
        return expect(normalise(text)) if expect is not None else None

    def prefetch(
        self,
        texts: Iterable[str],
        progress: Callable[[int, int, str], None] | None = None,
        *,
        keep: bool = True,
    ) -> None:
        """Synthesise every distinct phrase not yet in memory or cache; progress(done, total, text).

        Engines with `jobs` > 1 get that many phrases at once, longest first, so the
        workers finish together instead of one of them ending on a long phrase alone. Builds running
        side by side share the work: each takes the phrases no other is making. `keep` False leaves
        the audio in the cache only (a cold stream's phrases, read back as they sound).
        """
        missing: list[str] = []
        for text in texts:
            spoken = normalise(text)
            if spoken and spoken not in missing and self.known_duration(spoken) is None:
                missing.append(spoken)
        done = 0

        def finished(spoken: str, samples: np.ndarray) -> None:
            nonlocal done
            with self._lock:
                if keep:
                    self._audio[spoken] = samples
                self._counts[spoken] = len(samples)
            done += 1
            if progress:
                progress(done, len(missing), spoken)

        jobs = min(int(getattr(self.engine, "jobs", 1)), len(missing))
        pool = ThreadPoolExecutor(jobs, thread_name_prefix="speech") if jobs > 1 else None
        # Two passes: first every phrase no other process is making; then the ones that were busy
        # elsewhere, waiting for them, by which time most are in the cache.
        order = missing if pool is None else sorted(missing, key=len, reverse=True)
        try:
            for wait in (0, LOCK_WAIT):
                results: Iterable[tuple[str, np.ndarray | None]]
                if pool is None:
                    results = ((spoken, self._fetch(spoken, wait)) for spoken in order)
                else:
                    futures = {pool.submit(self._fetch, spoken, wait): spoken for spoken in order}
                    results = ((futures[f], f.result()) for f in as_completed(futures))
                busy = []
                for spoken, samples in results:
                    if samples is None:
                        busy.append(spoken)  # another build is making it: the second pass waits for it
                    else:
                        finished(spoken, samples)
                order = busy
                if not order:
                    break
        finally:
            if pool is not None:
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
