"""Files that appear whole or not at all: every output (MP3, sidecars, feed, cache) goes through here.

A file is written under a temporary name beside its target and renamed onto it only when complete,
so a reader (a podcast app, a web server, the next build) never sees half a file. The temporary
name is `.{target name}.{pid}.{random}.part`: the process id lets a later build's clean-up
(`remove_dead_parts`) delete the leftovers of a killed build while sparing a live one's.

Also here: `atomic_set`, which commits several files (an MP3 and its sidecars) as one set;
`file_lock`, the lock file processes use to take turns (one build per target, one synthesis
per cached phrase); and `cover_type`, the one check a cover image passes before it is used.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from .errors import AudioworkoutError, UsageError, printable


@contextmanager
def atomic_target(target: Path) -> Iterator[Path]:
    """Yield a fresh temporary path beside `target`; on success rename it onto `target`, on failure delete it.

    The temporary file exists (empty) when yielded, with the permissions a new file would get, so
    a tool may write into it by name (ffmpeg, mutagen). On any exception, Ctrl-C included, the
    temporary file is removed and an existing `target` is left untouched.
    """
    target = Path(target)
    with atomic_set([target]) as tmp:
        yield tmp[target]


def _fsync_dir(folder: Path) -> None:
    """Make a rename durable; not every system can open a folder for that."""
    try:
        dfd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def write_atomic(target: Path, data: str | bytes) -> None:
    """Write text (UTF-8) or bytes to `target` through a temporary file and a rename."""
    with atomic_target(target) as tmp:
        try:
            tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
        except OSError as exc:
            raise _naming(exc, target) from None


@contextmanager
def atomic_set(targets: Sequence[Path]) -> Iterator[dict[Path, Path]]:
    """Yield {target: temporary path}; once every one is written, rename them onto their targets in order.

    Nothing is renamed until the caller's block has finished and every temporary file is flushed to
    disk, so a failure while writing any of them (no space, Ctrl-C, a crash) leaves every previous
    target whole and removes the temporary files. The renames come last, in the order given: put
    the file readers look for first (the MP3) at the end, so a new set becomes visible only once
    it is complete. A rename within one folder writes no data (no space needed), so the only gap left
    is a SIGKILL or a power cut between two renames, a window of microseconds.
    """
    with ExitStack() as stack:
        pending: dict[Path, Path] = {}
        for target in targets:
            pending[Path(target)] = stack.enter_context(_temporary_beside(Path(target)))
        yield dict(pending)
        for target, tmp in pending.items():
            try:
                _fsync_file(tmp)
            except OSError as exc:
                raise _naming(exc, target) from None
        for target, tmp in pending.items():
            try:
                os.replace(tmp, target)
            except OSError as exc:
                raise _naming(exc, target) from None
        for folder in {t.parent for t in pending}:
            _fsync_dir(folder)


@contextmanager
def _temporary_beside(target: Path) -> Iterator[Path]:
    """A fresh temporary file beside `target`, removed on the way out unless it was renamed meanwhile."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".part", dir=target.parent)
    except OSError as exc:
        raise _naming(exc, target) from None
    os.close(fd)
    tmp = Path(name)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would stick to the final file
        yield tmp
    finally:
        tmp.unlink(missing_ok=True)  # gone already once renamed


def _naming(exc: OSError, target: Path) -> OSError:
    """The same error, naming the file the user asked for rather than its hidden temporary name."""
    return type(exc)(exc.errno, exc.strerror or str(exc), str(target))


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())  # the data is on disk before a name points at it


# ------------------------------------------------------------------ locks between processes


@contextmanager
def file_lock(path: Path, timeout: float | None = None, on_wait: Callable[[], None] | None = None) -> Iterator[bool]:
    """Hold an exclusive `flock` on the lock file `path` for the block; yields True once held.

    `timeout` None waits as long as it takes (Ctrl-C still interrupts); a number waits at most that
    many seconds (0: not at all) and then yields False, the lock not held, for the caller to decide.
    `on_wait` is called once if the lock is busy, e.g. to say what we are waiting for. The kernel
    drops the lock when its holder dies, so a killed process never leaves a lock held.

    The file is deleted by its holder before release, so lock files do not pile up; a waiter that
    then gets the lock on the deleted file notices (the name no longer leads to its file) and
    starts again on the current one. Raises OSError if the lock file cannot be created.
    """
    fd = _acquire(Path(path), timeout, on_wait)
    if fd is None:
        yield False
        return
    try:
        yield True
    finally:
        try:
            os.unlink(path)  # before the unlock: nobody can be holding the name we remove
        except OSError:
            pass
        os.close(fd)


_POLL = 0.02  # seconds between tries while waiting with a timeout


def _acquire(path: Path, timeout: float | None, on_wait: Callable[[], None] | None) -> int | None:
    """A descriptor holding the lock on the file now at `path`, or None when `timeout` ran out."""
    deadline = None if timeout is None else time.monotonic() + timeout
    told = False
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        try:
            if not _try_lock(fd):
                if not told and on_wait is not None:
                    on_wait()
                told = True
                if deadline is None:
                    fcntl.flock(fd, fcntl.LOCK_EX)  # interrupted by Ctrl-C like any wait
                else:
                    while not _try_lock(fd):
                        if time.monotonic() >= deadline:
                            os.close(fd)
                            return None
                        time.sleep(_POLL)
            if _same_file(fd, path):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)  # we locked a file its holder had deleted: try the current one


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _same_file(fd: int, path: Path) -> bool:
    try:
        on_disk = os.stat(path)
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)


def remove_unheld_locks(paths: Iterator[Path] | Sequence[Path]) -> int:
    """Delete lock files no process holds (left by a killed one); returns how many went."""
    removed = 0
    for path in paths:
        try:
            with file_lock(path, timeout=0) as held:
                removed += held  # file_lock deletes the file it held
        except OSError:
            pass
    return removed


def remove_dead_parts(paths: Iterator[Path] | Sequence[Path]) -> int:
    """Delete temporary files (`.<name>.<pid>.<random>.part`) whose process is gone; returns how many went.

    A live process's file (this one's included) is spared: it may still be renamed into place.
    """
    removed = 0
    for part in paths:
        bits = part.name.split(".")
        pid = int(bits[-3]) if len(bits) >= 4 and bits[-3].isdigit() else None
        if pid is not None and _alive(pid):
            continue
        try:
            part.unlink()
            removed += 1
        except OSError:
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


# ------------------------------------------------------------------ cover images

# A 3000 px JPEG, the largest cover Apple takes, is typically 1-4 MB; 10 MB leaves room for a PNG
# of that size while keeping what is read into memory (and copied into every MP3's tags) small.
MAX_COVER_BYTES = 10 * 1024 * 1024
_IMAGE_MAGIC = {b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}


class CoverError(UsageError):
    """A cover that is not a PNG or JPEG file of a bounded size: `cover: PATH: problem; expected …` (exit 2)."""

    def __init__(self, path: Path, problem: str, expected: str):
        self.path, self.problem, self.expected = path, problem, expected
        super().__init__(f"cover: {printable(str(path))}: {problem}; expected {expected}")


def cover_type(path: Path) -> str:
    """The MIME type of a cover ('image/png' or 'image/jpeg'), from its first bytes; raises CoverError.

    Checked by `os.stat` before any byte is read: a regular file (not a FIFO or a device that would
    block or never end) of at most MAX_COVER_BYTES; then by its signature, whatever its name says.
    A cover the system refuses to read is an environment failure (AudioworkoutError, exit 1).
    """
    path = Path(path)
    expected = f"a PNG or JPEG file of at most {MAX_COVER_BYTES // (1024 * 1024)} MB"
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise CoverError(path, "no such file", expected) from None
    except OSError as exc:
        raise AudioworkoutError(f"cover: {printable(str(path))}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise CoverError(path, "not a regular file", expected)
    if info.st_size > MAX_COVER_BYTES:
        raise CoverError(path, f"{info.st_size / (1024 * 1024):.0f} MB", expected)
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise AudioworkoutError(f"cover: {printable(str(path))}: {exc.strerror or exc}") from None
    for magic, mime in _IMAGE_MAGIC.items():
        if head.startswith(magic):
            return mime
    what = "an empty file" if not head else f"a file starting {head[:4]!r}, neither PNG nor JPEG"
    raise CoverError(path, what, expected)


def read_cover(path: Path) -> tuple[bytes, str]:
    """A checked cover's bytes and MIME type, read with a bound (the file may have grown since the check)."""
    mime = cover_type(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_COVER_BYTES + 1)
    except OSError as exc:
        raise AudioworkoutError(f"cover: {printable(str(path))}: {exc.strerror or exc}") from None
    if len(data) > MAX_COVER_BYTES:
        raise CoverError(path, "grew past the limit while being read", f"at most {MAX_COVER_BYTES} bytes")
    return data, mime
