"""The phrase cache: each synthesised phrase on disk, so a rebuild never has to load a model.

A workout repeats the same few dozen phrases, so each distinct (engine settings, text) is
synthesised once and kept. Entries carry checksums, because a cache is only worth having
if a damaged entry is caught and re-made rather than played.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import AudioworkoutError, printable
from ..fsutil import file_lock, remove_dead_parts, remove_unheld_locks, write_atomic
from .textnorm import normalise

if TYPE_CHECKING:
    from .engines.base import Engine

log = logging.getLogger(__name__)

_MAGIC = b"AWSC"
_FORMAT_VERSION = 1
_HEADER = struct.Struct("<4sHHIII")  # magic, version, header size, sample rate, samples, payload crc32
HEADER_SIZE = 32  # _HEADER + crc32 of those bytes + zero padding
_SUFFIX = ".pcm"
_STALE_TEMP = 3600  # seconds after which a leftover temp file is surely not being written
_LOCK = ".lock"
# How long to wait for another process's synthesis of one phrase before doing it too: far above any
# phrase's synthesis time, so it only matters if that process is stuck (stopped, swapping): then a
# duplicate beats a hang.
LOCK_WAIT = 120.0


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
    if (
        magic != _MAGIC
        or version != _FORMAT_VERSION
        or size != HEADER_SIZE
        or head_crc != zlib.crc32(raw[: _HEADER.size])
    ):
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
    on read, deleted and re-synthesised, never played. Writes go through `write_atomic`
    (a temp file named by pid and a random part in the same shard directory, renamed into
    place), so concurrent builds and threads never see half an entry.
    """

    def __init__(self, directory: Path | str | None = None):
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.discarded = 0  # corrupt entries found and deleted
        self._warned = False
        self._lock_warned = False
        self._warning = threading.Lock()  # speech workers share a cache: each warning is said once, not once each

    @staticmethod
    def key(engine: Engine, text: str) -> str:
        return hashlib.sha256((engine.cache_key() + "\0" + normalise(text)).encode()).hexdigest()

    def path(self, engine: Engine, text: str) -> Path:
        key = self.key(engine, text)
        return self.directory / key[:2] / (key + _SUFFIX)

    @contextmanager
    def claim(self, engine: Engine, text: str, timeout: float | None = LOCK_WAIT) -> Iterator[bool]:
        """Hold the phrase's lock file (`<shard>/.<key>.lock`) while it is looked up and synthesised.

        So that concurrent builds synthesise each phrase once: the first to claim a phrase makes it,
        the others wait, then find it in the cache. Yields True when the phrase is ours to make; False
        when another process still held it after `timeout` seconds (0: do not wait). A cache where no
        lock file can be made (read-only) yields True after one warning: the phrase is made without
        coordination, as it would be without a cache.
        """
        key = self.key(engine, text)
        lock = self.directory / key[:2] / f".{key}{_LOCK}"
        with ExitStack() as stack:
            try:
                lock.parent.mkdir(parents=True, exist_ok=True)
                mine = stack.enter_context(file_lock(lock, timeout=timeout))
                if mine:  # a build killed while writing this phrase left its temp file; nobody else writes it now
                    remove_dead_parts(sorted(lock.parent.glob(f".{key}{_SUFFIX}.*.part")))
            except OSError as exc:
                if self._first("_lock_warned"):
                    log.warning(
                        "speech cache: cannot lock phrases in %s (%s); concurrent builds may synthesise a phrase twice",
                        self.directory,
                        exc.strerror or exc,
                    )
                mine = True
            yield mine

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
        payload = memoryview(raw)[HEADER_SIZE:]  # not a copy: a long phrase is a few MB
        if len(payload) != 2 * count or zlib.crc32(payload) != crc:
            self._discard(path, "truncated or corrupt")
            return None
        if rate != engine.sample_rate:
            self._discard(path, f"sample rate {rate} != {engine.sample_rate}")
            return None
        audio = np.frombuffer(payload, dtype="<i2").astype(np.float32)
        audio /= np.float32(32767.0)  # in place: one float copy of the phrase, not two
        return audio

    def header(self, engine: Engine, text: str) -> tuple[int, int] | None:
        """(sample rate, sample count) from the header alone (32 bytes read), or None."""
        head = self._header(engine, text)
        return (head[0], head[1]) if head is not None else None

    def _header(self, engine: Engine, text: str) -> tuple[int, int, int] | None:
        """(sample rate, sample count, payload crc) of an entry that looks whole, or None."""
        path = self.path(engine, text)
        try:
            with path.open("rb") as f:
                head = _unpack_header(f.read(HEADER_SIZE))
                size = os.fstat(f.fileno()).st_size
        except OSError:
            return None
        if head is None or size != HEADER_SIZE + 2 * head[1] or head[0] != engine.sample_rate:
            return None  # get() will discard it
        return head

    def derived(self, engine: Engine, text: str, kind: str) -> bytes | None:
        """Data made from a phrase's samples (its levels), kept beside the entry as `<key>.<kind>`.

        None when there is none, or when it was made from other samples than the entry now holds
        (each such file starts with the crc32 of the samples it was made from).
        """
        head = self._header(engine, text)
        if head is None:
            return None
        try:
            raw = self.path(engine, text).with_suffix("." + kind).read_bytes()
        except OSError:
            return None
        if len(raw) < 4 or struct.unpack_from("<I", raw)[0] != head[2]:
            return None
        return raw[4:]

    def put_derived(self, engine: Engine, text: str, kind: str, data: bytes) -> None:
        """Keep `data` made from the phrase's cached samples (atomically; silently skipped if it cannot be)."""
        head = self._header(engine, text)
        if head is None:
            return
        try:
            self._write_derived(self.path(engine, text).with_suffix("." + kind), head[2], data)
        except OSError:
            pass  # only speed is lost: the levels are measured again next time

    @staticmethod
    def _write_derived(target: Path, crc: int, data: bytes) -> None:
        # A build killed while writing this file left its temp file (it is only written when missing).
        remove_dead_parts(sorted(target.parent.glob(f".{target.name}.*.part")))
        write_atomic(target, struct.pack("<I", crc) + data)

    def put(self, engine: Engine, text: str, samples: np.ndarray, derived: dict[str, bytes] | None = None) -> None:
        """Store samples, and data made from them (`derived`, by kind); a cache that cannot be written
        only costs speed, so it warns once. The derived files go first: the entry's rename is the last
        write, so a build killed right after it has nothing left to do but let go of the phrase's lock."""
        path = self.path(engine, text)
        payload = quantise(samples).tobytes()
        crc = zlib.crc32(payload)
        data = _pack_header(engine.sample_rate, len(payload) // 2, crc) + payload
        try:
            for kind, made in (derived or {}).items():
                self._write_derived(path.with_suffix("." + kind), crc, made)
            write_atomic(path, data)
        except OSError as exc:
            if self._first("_warned"):
                log.warning("speech cache: cannot write %s: %s", self.directory, exc)

    def _first(self, flag: str) -> bool:
        """True the first time only (across threads): the flag is set under a lock."""
        with self._warning:
            if getattr(self, flag):
                return False
            setattr(self, flag, True)
            return True

    def _entries(self) -> Iterable[Path]:
        if not self.directory.is_dir():
            return []
        return (p for p in self.directory.glob("*/*" + _SUFFIX) if not p.name.startswith("."))  # "." = temp

    def _derived_files(self) -> Iterable[Path]:
        if not self.directory.is_dir():
            return []
        return (p for p in self.directory.glob("*/*.*") if p.suffix != _SUFFIX and not p.name.startswith("."))

    def info(self) -> tuple[int, int]:
        """(entries, bytes on disk, their derived files included)."""
        entries = size = 0
        for p in self._entries():
            try:
                size += p.stat().st_size
                entries += 1
            except OSError:
                pass
        for p in self._derived_files():
            try:
                size += p.stat().st_size
            except OSError:
                pass
        return entries, size

    def remove_leftovers(self) -> int:
        """Delete what killed builds left: lock files no process holds, temp files of dead processes.

        A build killed after a phrase's entry is renamed into place, before it lets go of the
        phrase's lock, leaves a lock file that no later build looks at (the phrase is cached); one
        killed mid-write leaves a temp file. A held lock or a live process's temp file is spared.
        """
        if not self.directory.is_dir():
            return 0
        locks = remove_unheld_locks(sorted(self.directory.glob("*/.*" + _LOCK)))
        return locks + remove_dead_parts(sorted(self.directory.glob("*/.*.part")))

    def clear(self) -> int:
        """Delete every entry (and stale temp files, empty shards); returns entries removed.

        Raises AudioworkoutError if some entries could not be removed (a read-only cache),
        so `cache clear` never reports success while phrases remain.
        """
        removed = failed = 0
        cause: OSError | None = None
        for p in list(self._entries()):
            try:
                p.unlink()
                removed += 1
            except FileNotFoundError:
                pass  # removed meanwhile by another clear
            except OSError as exc:
                failed += 1
                cause = cause or exc
        for p in list(self._derived_files()):
            try:
                p.unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                cause = cause or exc
        if self.directory.is_dir():
            remove_unheld_locks(sorted(self.directory.glob("*/.*" + _LOCK)))  # a held one: a build is at work
            for p in self.directory.glob("*/.*.part"):  # temp files: a build may be writing the fresh ones
                try:
                    if time.time() - p.stat().st_mtime > _STALE_TEMP:
                        p.unlink()
                except OSError:
                    pass
            for shard in self.directory.iterdir():
                try:
                    shard.rmdir()
                except OSError:
                    pass
        if cause is not None:
            why = cause.strerror or str(cause)
            raise AudioworkoutError(
                f"cannot remove {failed} cached phrases from {printable(str(self.directory))}: "
                f"{why} ({removed} removed)"
            )
        return removed
