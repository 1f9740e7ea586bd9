"""Find ffmpeg: the one on PATH, else the binary shipped in the imageio-ffmpeg wheel.

So that `pip install` alone is a complete install; no system package is needed.
"""

from __future__ import annotations

import functools
import os
import shutil

from .errors import AudioworkoutError


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
        raise AudioworkoutError(
            "ffmpeg not found: install it or `pip install imageio-ffmpeg`"
        ) from exc


def configure_pydub() -> None:
    """Point pydub at our ffmpeg (pydub otherwise only looks on PATH and warns)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        from pydub import AudioSegment

    AudioSegment.converter = ffmpeg_exe()
    AudioSegment.ffmpeg = ffmpeg_exe()
