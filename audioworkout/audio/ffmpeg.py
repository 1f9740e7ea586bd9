"""Find ffmpeg: the one on PATH, else the binary shipped in the imageio-ffmpeg wheel.

So that `pip install` alone is a complete install; no system package is needed.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path
from typing import IO

import numpy as np

from ..errors import AudioworkoutError


@functools.lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary to run (AUDIOWORKOUT_FFMPEG overrides)."""
    override = os.environ.get("AUDIOWORKOUT_FFMPEG")
    if override:
        return override
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except Exception as exc:  # pragma: no cover - only without the wheel
        raise AudioworkoutError("ffmpeg not found: install it or `pip install imageio-ffmpeg`") from exc


def decode_audio(source: str | Path | bytes, sample_rate: int, what: str = "audio file") -> np.ndarray:
    """Decode any file (or bytes) ffmpeg reads to mono float32 at sample_rate.

    Runs ffmpeg directly rather than through pydub: pydub probes non-WAV input with ffprobe,
    which the imageio-ffmpeg wheel does not ship. Stereo becomes the average of the channels.
    """
    data = source if isinstance(source, bytes) else None
    name = "the downloaded audio" if data is not None else str(source)
    if not isinstance(source, bytes):
        path = Path(source)
        if not path.is_file():
            reason = "it is a folder" if path.is_dir() else "no such file"
            raise AudioworkoutError(f"cannot read {what} {name}: {reason}")
    cmd = [
        ffmpeg_exe(),
        "-nostdin" if data is None else "-hide_banner",
        "-v",
        "error",
        "-i",
        "pipe:0" if data is not None else name,
        "-vn",
        "-af",
        "aresample=rematrix_maxval=1.0",  # stereo -> mono as the average, never +3 dB
        "-ac",
        "1",
        "-ar",
        str(int(sample_rate)),
        "-f",
        "f32le",
        "pipe:1",
    ]
    try:
        proc = subprocess.run(cmd, input=data, capture_output=True, check=False)
    except OSError as exc:
        raise AudioworkoutError(f"cannot read {what} {name}: {exc}") from exc
    if proc.returncode != 0:
        lines = proc.stderr.decode(errors="replace").strip().splitlines()
        reason = lines[-1] if lines else f"ffmpeg exit status {proc.returncode}"
        raise AudioworkoutError(f"cannot read {what} {name}: {reason[:200]}")
    samples = np.frombuffer(proc.stdout, dtype="<f4")
    if samples.size == 0:
        raise AudioworkoutError(f"cannot read {what} {name}: it holds no audio")
    return np.clip(samples, -1.0, 1.0).astype(np.float32)


PIPE_BYTES = 1 << 20  # 12 s of a 22.05 kHz mix, 6 s of decoded 44.1 kHz (Linux's default pipe holds 64 kB)
_F_SETPIPE_SZ = 1031  # fcntl's F_SETPIPE_SZ (Linux), spelled out: Python has it from 3.10 on Linux only


def widen_pipe(pipe: IO[bytes]) -> None:
    """A bigger pipe buffer to or from ffmpeg, where the system allows, so that neither side waits while
    the other takes its turn: an encoder for its next samples, a decoder for its reader to meter them."""
    try:
        import fcntl

        fcntl.fcntl(pipe.fileno(), getattr(fcntl, "F_SETPIPE_SZ", _F_SETPIPE_SZ), PIPE_BYTES)
    except (ImportError, OSError, ValueError):  # not Linux, or over the system's limit: the default still works
        pass
