"""Files that appear whole or not at all: every output (MP3, sidecars, feed, cache) goes through here.

A file is written under a temporary name beside its target and renamed onto it only when complete,
so a reader (a podcast app, a web server, the next build) never sees half a file. The temporary
name is `.{target name}.{pid}.{random}.part`: the process id lets a later build's clean-up
(`api.remove_stale_parts`) delete the leftovers of a killed build while sparing a live one's.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_target(target: Path) -> Iterator[Path]:
    """Yield a fresh temporary path beside `target`; on success rename it onto `target`, on failure delete it.

    The temporary file exists (empty) when yielded, with the permissions a new file would get, so
    a tool may write into it by name (ffmpeg, mutagen). On any exception, Ctrl-C included, the
    temporary file is removed and an existing `target` is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would stick to the final file
        yield tmp
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())  # the data is on disk before the name points at it
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)


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
        tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
