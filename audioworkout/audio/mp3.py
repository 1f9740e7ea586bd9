"""Encode the mixed session to MP3, tag it (ID3v2.3, chapters, cover) and measure the file.

ffmpeg/libmp3lame does the encoding (PCM is streamed to its stdin chunk by
chunk, so a 60-minute session never exists twice in memory); mutagen writes the
tags, because ffmpeg cannot write CHAP/CTOC frames.  The output is written to a
hidden temp file beside the target (`fsutil.atomic_target`) and only renamed onto
it once it is complete, tagged and measured, so an interrupted run never leaves a
half-written MP3.

Level: LAME's CBR presets scale the input down before encoding (the "scale" column
of its preset table), so a track mastered to -16 LUFS would play a few tenths of a
dB quieter.  encode_mp3 measures that scale once per ffmpeg and bitrate on a test
tone and feeds LAME the inverse, so the file plays at the level it was given;
write_mp3 then decodes the file and returns its own loudness and true peak.

Timing: LAME adds an encoder delay (576 samples, plus the decoder's 529) and
pads the last frame; ffmpeg records both in the LAME "Info" header of the first
frame, and its decoder (like gapless-aware players) trims them, so decoded
times equal source times (checked in tests/test_mp3.py).
mutagen only parses that header when the encoder string starts with "LAME"
(ffmpeg writes "Lavc..."), so mp3_duration() counts whole frames: up to ~40 ms
long.  TLEN carries the exact length.
"""

from __future__ import annotations

import functools
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import AudioworkoutError
from ..fsutil import atomic_target
from .ffmpeg import ffmpeg_exe, widen_pipe
from .mastering import LevelMeter, Levels

OUTPUT_RATE = 44100
CHUNK_SECONDS = 10.0


@dataclass
class Chapter:
    title: str
    start: float  # seconds
    end: float  # seconds
    level: int = 0  # 0 = section, 1 = exercise inside a section (informational)


@dataclass
class TrackTags:
    title: str
    artist: str
    album: str
    genre: str
    year: str
    comment: str
    length_ms: int | None = None
    cover: bytes | None = None
    cover_mime: str = "image/png"


def _mono_float(samples: np.ndarray) -> np.ndarray:
    a = np.asarray(samples)
    if a.ndim == 2 and 1 in a.shape:
        a = a.reshape(-1)
    if a.ndim != 1:
        raise ValueError(f"expected mono samples, got shape {a.shape}")
    return a


def _last_line(text: bytes) -> str:
    lines = [ln.strip() for ln in text.decode("utf-8", "replace").splitlines() if ln.strip()]
    return lines[-1] if lines else "no error output"


def _encoder_command(sample_rate: int, bitrate_kbps: int, target: Path) -> list[str]:
    return [
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-nostats",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "f32le",
        "-ar",
        str(int(sample_rate)),
        "-ac",
        "1",
        "-i",
        "pipe:0",
        "-map_metadata",
        "-1",
        "-c:a",
        "libmp3lame",
        "-b:a",
        f"{int(bitrate_kbps)}k",
        "-ac",
        "1",
        "-ar",
        str(OUTPUT_RATE),
        "-id3v2_version",
        "0",
        "-write_id3v1",
        "0",
        "-write_xing",
        "1",
        "-f",
        "mp3",
        str(target),
    ]


def _encode(
    samples: np.ndarray,
    sample_rate: int,
    target: Path,
    bitrate_kbps: int,
    gain: float,
    progress: Callable[[float], None] | None,
) -> None:
    """Stream `samples * gain` to ffmpeg/LAME, chunk by chunk."""
    cmd = _encoder_command(sample_rate, bitrate_kbps, target)
    total = len(samples)
    step = max(1, int(CHUNK_SECONDS * sample_rate))
    # stderr goes to a file, not a pipe: a chatty ffmpeg could otherwise fill the
    # pipe and block while we block writing its stdin.
    with tempfile.TemporaryFile() as errf:
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errf)
        except OSError as exc:
            raise AudioworkoutError(f"cannot run ffmpeg ({cmd[0]}): {exc.strerror or exc}") from exc
        assert proc.stdin is not None
        try:
            try:
                for start in range(0, total, step):
                    chunk = samples[start : start + step].astype(np.float32)  # a copy: the caller's stays as it is
                    if gain != 1.0:
                        chunk *= np.float32(gain)
                    np.clip(chunk, -1.0, 1.0, out=chunk)
                    proc.stdin.write(chunk.astype("<f4", copy=False).tobytes())  # one 10-s chunk at a time
                    if progress is not None:
                        progress(min(start + step, total) / total)
                proc.stdin.close()
            except BrokenPipeError:
                pass  # ffmpeg died; its exit status and stderr say why
            rc = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            if not proc.stdin.closed:
                try:
                    proc.stdin.close()
                except BrokenPipeError:
                    pass
        if rc != 0:
            errf.seek(0)
            raise AudioworkoutError(f"ffmpeg failed to encode MP3: {_last_line(errf.read())}")
    if progress is not None and total == 0:
        progress(1.0)


@functools.lru_cache(maxsize=8)
def _encoder_gain(exe: str, bitrate_kbps: int) -> float:
    """The gain that undoes LAME's own input scaling at this bitrate, measured on a 1 kHz tone.

    Measured rather than looked up, so another ffmpeg or LAME (AUDIOWORKOUT_FFMPEG) is right too.
    """
    t = np.arange(OUTPUT_RATE) / OUTPUT_RATE
    tone = (0.25 * np.sin(2 * np.pi * 1000.0 * t)).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tone.mp3"
        _encode(tone, OUTPUT_RATE, path, bitrate_kbps, 1.0, None)
        decoded, _ = decode_mp3(path)
    middle = slice(OUTPUT_RATE // 4, 3 * OUTPUT_RATE // 4)  # clear of the fade-in and the end
    got = float(np.sqrt(np.mean(np.square(decoded[middle], dtype=np.float64))))
    want = float(np.sqrt(np.mean(np.square(tone[middle], dtype=np.float64))))
    gain = want / got if got > 0 else 1.0
    return gain if 0.7 < gain < 1.4 else 1.0  # anything else is not a preset scale: leave the level alone


def encode_mp3(
    samples: np.ndarray,
    sample_rate: int,
    target: Path,
    bitrate_kbps: int = 96,
    progress: Callable[[float], None] | None = None,
) -> None:
    """Encode float mono samples (-1..1) to a 44.1 kHz mono CBR MP3 at `target` that plays at their level.

    `target` must be a real, seekable file: the muxer goes back to fill in the
    Xing/LAME header after the last frame, which players use for the length.
    No tags are written here (see write_tags).
    """
    samples = _mono_float(samples)
    gain = _encoder_gain(ffmpeg_exe(), int(bitrate_kbps))
    _encode(samples, sample_rate, Path(target), int(bitrate_kbps), gain, progress)


def _info(path: Path) -> Any:
    """mutagen's stream info (length, sample rate) of an MP3 file."""
    from mutagen.mp3 import MP3

    info = MP3(path).info
    if info is None:
        raise AudioworkoutError(f"{path}: no MPEG audio stream")
    return info


def _ordered(chapters: list[Chapter]) -> list[Chapter]:
    """Time order; on equal starts the section (lower level) comes first."""
    return sorted(chapters, key=lambda c: (c.start, c.level))


def write_tags(path: Path, tags: TrackTags, chapters: list[Chapter]) -> None:
    """Write ID3v2.3 tags and a flat, ordered chapter list (CHAP + one CTOC).

    v2.3 because it is what most podcast apps and car stereos read; the
    chapter list is flat because most apps ignore nested CTOCs.
    """
    from mutagen.id3 import APIC, CHAP, COMM, CTOC, ID3, TALB, TCON, TDRC, TIT2, TLEN, TPE1, CTOCFlags

    path = Path(path)
    length_ms = tags.length_ms
    if length_ms is None:
        length_ms = int(round(_info(path).length * 1000))
    id3 = ID3()
    id3.add(TIT2(encoding=3, text=[tags.title]))
    id3.add(TPE1(encoding=3, text=[tags.artist]))
    id3.add(TALB(encoding=3, text=[tags.album]))
    id3.add(TCON(encoding=3, text=[tags.genre]))
    if tags.year:
        id3.add(TDRC(encoding=3, text=[str(tags.year)]))  # becomes TYER below
    id3.add(COMM(encoding=3, lang="eng", desc="", text=[tags.comment]))
    id3.add(TLEN(encoding=3, text=[str(int(length_ms))]))
    if tags.cover:
        id3.add(APIC(encoding=3, mime=tags.cover_mime, type=3, desc="Cover", data=tags.cover))
    ids = []
    for i, ch in enumerate(_ordered(chapters)):
        eid = f"chp{i}"
        ids.append(eid)
        id3.add(
            CHAP(
                element_id=eid,
                start_time=max(0, int(round(ch.start * 1000))),
                end_time=max(0, int(round(ch.end * 1000))),
                sub_frames=[TIT2(encoding=3, text=[ch.title])],
            )
        )
    if ids:
        id3.add(
            CTOC(
                element_id="toc",
                flags=CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED,
                child_element_ids=ids,
                sub_frames=[TIT2(encoding=3, text=["Chapters"])],
            )
        )
    id3.update_to_v23()  # save(v2_version=3) alone would write TDRC, a v2.4-only frame
    id3.save(path, v2_version=3, v1=0)


def write_mp3(
    samples: np.ndarray,
    sample_rate: int,
    target: Path,
    tags: TrackTags,
    chapters: list[Chapter],
    bitrate_kbps: int = 96,
    progress: Callable[[float], None] | None = None,
) -> Levels:
    """Encode, tag and measure into a temp file beside `target`, then rename it into place.

    Returns the loudness and true peak of the file itself (decoded back), which is what a listener
    gets. On any failure (including Ctrl-C) the temp file is removed and an existing `target` is
    left untouched.
    """
    with atomic_target(Path(target)) as tmp:
        encode_mp3(samples, sample_rate, tmp, bitrate_kbps, progress)
        write_tags(tmp, tags, chapters)
        return measure_mp3(tmp)


def read_chapters(path: Path) -> list[Chapter]:
    """Chapters in top-level CTOC order (file order if there is no CTOC).

    `level` is not stored in the file; it is inferred: a chapter lying inside
    an earlier top-level chapter's span is level 1.
    """
    from mutagen.id3 import ID3, CTOCFlags

    id3 = ID3(path)
    chaps = {f.element_id: f for f in id3.getall("CHAP")}
    order = None
    for toc in id3.getall("CTOC"):
        if toc.flags & CTOCFlags.TOP_LEVEL:
            order = [e for e in toc.child_element_ids if e in chaps]
            break
    if order is None:
        order = list(chaps)
    out: list[Chapter] = []
    parent: Chapter | None = None
    for eid in order:
        f = chaps[eid]
        tit2 = f.sub_frames.get("TIT2")
        start, end = f.start_time / 1000.0, f.end_time / 1000.0
        nested = parent is not None and parent.start <= start and end <= parent.end
        ch = Chapter(str(tit2.text[0]) if tit2 else eid, start, end, 1 if nested else 0)
        if not nested:
            parent = ch
        out.append(ch)
    return out


def mp3_duration(path: Path) -> float:
    """Length in seconds as players see it (mutagen reads the Xing/LAME header)."""
    return float(_info(path).length)


def _decoder_command(path: Path | None) -> list[str]:
    """ffmpeg decoding an MP3 to float32 mono on stdout: the file at `path`, or (None) MP3 bytes on stdin."""
    source = (
        ["-nostdin", "-loglevel", "error", "-i", str(path)]
        if path is not None
        else ["-loglevel", "error", "-f", "mp3", "-i", "pipe:0"]
    )
    return [
        ffmpeg_exe(),
        "-hide_banner",
        *source,
        "-map",
        "0:a:0",
        "-ac",
        "1",
        "-f",
        "f32le",
        "-acodec",
        "pcm_f32le",
        "-flush_packets",  # whole buffers out, not a write per MP3 frame: a quarter of the reads
        "0",
        "pipe:1",
    ]


def decode_mp3(path: Path) -> tuple[np.ndarray, int]:
    """Decode to float32 mono at the file's rate (for tests and measurements).

    ffmpeg trims LAME's encoder delay and padding using the LAME header, so
    sample i of the result is sample i of the encoded source; no compensation
    is needed here (checked in tests/test_mp3.py). Float output: nothing is
    clipped or rounded to 16 bits before it is measured.
    """
    rate = int(_info(path).sample_rate)
    res = subprocess.run(_decoder_command(path), capture_output=True)
    if res.returncode != 0:
        raise AudioworkoutError(f"ffmpeg failed to decode {path}: {_last_line(res.stderr)}")
    return np.frombuffer(res.stdout, dtype="<f4").astype(np.float32), rate


def measure_mp3(path: Path) -> Levels:
    """Loudness (LUFS, dual mono) and true peak (dBTP) of an MP3 as decoded, streamed through our meter.

    The decoded audio is never held whole: an hour at 44.1 kHz would be 635 MB next to the mix.
    """
    meter = LevelMeter(int(_info(path).sample_rate))
    read = 1 << 20  # bytes per read: a quarter of a million samples
    with tempfile.TemporaryFile() as errf:
        try:
            proc = subprocess.Popen(_decoder_command(path), stdout=subprocess.PIPE, stderr=errf)
        except OSError as exc:
            raise AudioworkoutError(f"cannot run ffmpeg ({ffmpeg_exe()}): {exc.strerror or exc}") from exc
        assert proc.stdout is not None
        widen_pipe(proc.stdout)  # the decoder runs on while the meter takes its turn
        try:
            left = b""
            while data := proc.stdout.read(read):
                data = left + data
                whole = len(data) - len(data) % 4
                left = data[whole:]
                meter.add(np.frombuffer(data[:whole], dtype="<f4"))
            rc = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            proc.stdout.close()
        if rc != 0:
            errf.seek(0)
            raise AudioworkoutError(f"ffmpeg failed to decode {path}: {_last_line(errf.read())}")
    return meter.levels()
