"""MP3 encode + tag, checked against the real ffmpeg and the file read back."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
from mutagen.id3 import ID3, CTOCFlags
from mutagen.mp3 import MP3, BitrateMode

from audioworkout import fsutil
from audioworkout.audio import mp3
from audioworkout.audio.mastering import Levels, dual_mono_loudness, true_peak_dbtp
from audioworkout.audio.mp3 import Chapter, TrackTags
from audioworkout.errors import AudioworkoutError

SR = 44100
TONE = (2.0, 5.0)  # seconds where the 440 Hz tone sounds; silence elsewhere


def _signal(seconds: float = 10.0, sr: int = SR) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = np.zeros(len(t), dtype=np.float32)
    on = (t >= TONE[0]) & (t < TONE[1])
    x[on] = 0.5 * np.sin(2 * np.pi * 440 * t[on])
    return x


def _cover() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


TAGS = TrackTags(
    title="Morning Mobility",
    artist="audioworkout",
    album="Routines — Ünïcode",
    genre="Podcast",
    year="2025",
    comment="Made with audioworkout",
    length_ms=10000,
    cover=None,
)

CHAPTERS = [  # given out of order on purpose; exercise shares its section's start
    Chapter("Squats", 5.0, 7.0, level=1),
    Chapter("Warm-up", 0.0, 5.0, level=0),
    Chapter("Arm circles", 0.0, 2.5, level=1),
    Chapter("Main", 5.0, 10.0, level=0),
    Chapter("Lunges", 7.0, 10.0, level=1),
    Chapter("Neck rolls", 2.5, 5.0, level=1),
]


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> tuple[Path, Levels]:
    path = tmp_path_factory.mktemp("mp3") / "session.mp3"
    tags = TrackTags(**{**TAGS.__dict__, "cover": _cover()})
    calls: list[float] = []
    levels = mp3.write_mp3(_signal(), SR, path, tags, CHAPTERS, progress=calls.append)
    assert calls and calls[-1] == 1.0 and calls == sorted(calls)
    return path, levels


@pytest.fixture(scope="module")
def made(written) -> Path:
    return written[0]


def test_write_mp3_returns_the_files_own_levels(written):
    path, levels = written
    y, rate = mp3.decode_mp3(path)
    assert levels.loudness_lufs == pytest.approx(dual_mono_loudness(y, rate), abs=1e-6)
    assert levels.true_peak_dbtp == pytest.approx(true_peak_dbtp(y, rate), abs=1e-4)


@pytest.mark.parametrize("bitrate", [64, 96, 128])
def test_the_file_plays_at_the_level_it_was_given(tmp_path, bitrate):
    """LAME scales its input down at these bitrates; encode_mp3 undoes that."""
    path = tmp_path / "tone.mp3"
    x = _signal()
    mp3.encode_mp3(x, SR, path, bitrate_kbps=bitrate)
    y, _ = mp3.decode_mp3(path)
    on = slice(int(2.5 * SR), int(4.5 * SR))
    gain_db = 20 * np.log10(
        np.sqrt(np.mean(np.square(y[on], dtype=np.float64))) / np.sqrt(np.mean(np.square(x[on], dtype=np.float64)))
    )
    assert abs(gain_db) < 0.05


def test_stream_parameters(made):
    info = MP3(made).info
    assert info.sample_rate == 44100
    assert info.channels == 1
    assert info.bitrate == 96000
    assert info.bitrate_mode == BitrateMode.CBR
    assert info.mode == 3  # MONO
    # mutagen counts whole frames: + 576 delay + padding samples (~31 ms here)
    assert abs(info.length - 10.0) < 0.05
    assert abs(mp3.mp3_duration(made) - 10.0) < 0.05


def test_info_header_present(made):
    data = made.read_bytes()
    head = ID3(made).size  # audio starts after the ID3v2 tag
    first_frame = data[head : head + 1000]
    assert b"Info" in first_frame or b"Xing" in first_frame  # CBR → "Info"
    assert b"ID3" not in first_frame and data[-128:-125] != b"TAG"  # no tags from ffmpeg


def test_tags_v23(made):
    id3 = ID3(made)
    assert id3.version == (2, 3, 0)
    assert id3["TIT2"].text == ["Morning Mobility"]
    assert id3["TPE1"].text == ["audioworkout"]
    assert id3["TALB"].text == ["Routines — Ünïcode"]
    assert id3["TCON"].text == ["Podcast"]
    assert str(id3["TDRC"].text[0]) == "2025"  # stored as TYER, read back upgraded
    assert id3.getall("COMM")[0].text == ["Made with audioworkout"]
    assert id3.getall("COMM")[0].lang == "eng"
    assert id3["TLEN"].text == ["10000"]
    raw = made.read_bytes()[: id3.size]
    assert b"TYER" in raw and b"TDRC" not in raw
    i = raw.index(b"TALB")
    assert raw[i + 10] in (0, 1)  # Latin-1 or UTF-16: v2.3 has no UTF-8


def test_cover(made):
    apic = ID3(made).getall("APIC")
    assert len(apic) == 1
    assert apic[0].type == 3 and apic[0].mime == "image/png"
    assert apic[0].data == _cover()


def test_chapters(made):
    id3 = ID3(made)
    tocs = id3.getall("CTOC")
    assert len(tocs) == 1
    toc = tocs[0]
    assert toc.element_id == "toc"
    assert toc.flags == CTOCFlags.TOP_LEVEL | CTOCFlags.ORDERED
    assert toc.child_element_ids == [f"chp{i}" for i in range(6)]
    assert toc.sub_frames["TIT2"].text == ["Chapters"]
    chap0 = id3["CHAP:chp0"]
    assert (chap0.start_time, chap0.end_time) == (0, 5000)
    assert chap0.sub_frames["TIT2"].text == ["Warm-up"]

    got = mp3.read_chapters(made)
    assert [(c.title, c.start, c.end, c.level) for c in got] == [
        ("Warm-up", 0.0, 5.0, 0),
        ("Arm circles", 0.0, 2.5, 1),
        ("Neck rolls", 2.5, 5.0, 1),
        ("Main", 5.0, 10.0, 0),
        ("Squats", 5.0, 7.0, 1),
        ("Lunges", 7.0, 10.0, 1),
    ]


def _onset_offset(y: np.ndarray, x: np.ndarray, sr: int) -> int:
    """Lag (samples) of y against x around the tone onset, by cross-correlation."""
    a, b, pad = int((TONE[0] - 0.1) * sr), int((TONE[0] + 0.2) * sr), int(0.05 * sr)
    c = np.correlate(y[a - pad : b + pad], x[a:b], "valid")
    return int(np.argmax(c)) - pad


def test_decode_timing(made):
    x = _signal()
    y, rate = mp3.decode_mp3(made)
    assert rate == SR and y.dtype == np.float32
    # ffmpeg trims LAME's encoder delay and end padding from the LAME header
    assert len(y) == len(x)
    assert abs(_onset_offset(y, x, SR)) <= int(0.010 * SR)
    loud = np.nonzero(np.abs(y) > 0.1)[0]
    assert abs(loud[0] / SR - TONE[0]) < 0.010
    assert abs(loud[-1] / SR - TONE[1]) < 0.010
    # and it is still a 440 Hz tone
    seg = y[int(3 * SR) : int(4 * SR)]
    peak = np.argmax(np.abs(np.fft.rfft(seg))) * SR / len(seg)
    assert abs(peak - 440) < 2


def test_resamples_other_rates(tmp_path):
    path = tmp_path / "r.mp3"
    mp3.encode_mp3(_signal(sr=22050), 22050, path)
    assert MP3(path).info.sample_rate == 44100
    y, rate = mp3.decode_mp3(path)
    assert abs(len(y) / rate - 10.0) < 0.01
    loud = np.nonzero(np.abs(y) > 0.1)[0]
    assert abs(loud[0] / rate - TONE[0]) < 0.010


def _parts(d: Path) -> list[str]:
    return [p.name for p in d.iterdir() if p.name.endswith(".part")]


def test_atomic_bad_ffmpeg(tmp_path, monkeypatch):
    target = tmp_path / "out.mp3"
    target.write_bytes(b"previous good file")
    bogus = tmp_path / "ffmpeg"
    bogus.write_text("#!/bin/sh\necho 'first line' >&2\necho 'Unknown encoder libmp3lame' >&2\nexit 1\n")
    bogus.chmod(0o755)
    monkeypatch.setattr(mp3, "ffmpeg_exe", lambda: str(bogus))
    with pytest.raises(AudioworkoutError) as err:
        mp3.write_mp3(_signal(1.0), SR, target, TAGS, [])
    assert "Unknown encoder libmp3lame" in str(err.value) and "\n" not in str(err.value)
    assert target.read_bytes() == b"previous good file"
    assert _parts(tmp_path) == []


def test_atomic_missing_ffmpeg(tmp_path, monkeypatch):
    target = tmp_path / "out.mp3"
    monkeypatch.setattr(mp3, "ffmpeg_exe", lambda: str(tmp_path / "nope"))
    with pytest.raises(AudioworkoutError):
        mp3.write_mp3(_signal(1.0), SR, target, TAGS, [])
    assert not target.exists() and _parts(tmp_path) == []


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_atomic_interrupted(tmp_path, exc):
    target = tmp_path / "out.mp3"
    mp3.write_mp3(_signal(), SR, target, TAGS, CHAPTERS)
    before = target.read_bytes()

    def progress(frac):
        if frac > 0.3:
            raise exc("stop")

    with pytest.raises(exc):
        mp3.write_mp3(_signal(30.0), SR, target, TAGS, CHAPTERS, progress=progress)
    assert target.read_bytes() == before
    assert _parts(tmp_path) == []


def test_temporary_file_is_named_by_pid_beside_the_target(tmp_path, monkeypatch):
    """`.{name}.{pid}.{random}.part`, so another build's clean-up spares it while this process lives."""
    seen: list[Path] = []
    real = mp3.encode_mp3

    def spy(samples, rate, target, *args, **kwargs):
        seen.append(Path(target))
        return real(samples, rate, target, *args, **kwargs)

    monkeypatch.setattr(mp3, "encode_mp3", spy)
    mp3.write_mp3(_signal(1.0), SR, tmp_path / "out.mp3", TAGS, [])
    (tmp,) = seen
    assert tmp.parent == tmp_path
    bits = tmp.name.split(".")
    assert bits[:4] == ["", "out", "mp3", str(os.getpid())] and bits[-1] == "part" and len(bits) == 6
    assert not tmp.exists() and _parts(tmp_path) == []


def test_atomic_target_renames_on_success_and_removes_on_failure(tmp_path):
    target = tmp_path / "sub" / "file.bin"
    with fsutil.atomic_target(target) as tmp:
        assert tmp.is_file() and not target.exists()
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and _parts(target.parent) == []
    with pytest.raises(KeyboardInterrupt), fsutil.atomic_target(target) as tmp:
        tmp.write_bytes(b"half")
        raise KeyboardInterrupt
    assert target.read_bytes() == b"new" and _parts(target.parent) == []
    fsutil.write_atomic(target, "text é")
    assert target.read_text(encoding="utf-8") == "text é"


def test_permissions_follow_umask(tmp_path):
    target = tmp_path / "out.mp3"
    mp3.write_mp3(_signal(1.0), SR, target, TAGS, [])
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask


def test_no_chapters_no_ctoc(tmp_path):
    target = tmp_path / "out.mp3"
    tags = TrackTags(**{**TAGS.__dict__, "length_ms": None})
    mp3.write_mp3(_signal(1.0), SR, target, tags, [])
    id3 = ID3(target)
    assert id3.getall("CTOC") == [] and mp3.read_chapters(target) == []
    assert abs(int(id3["TLEN"].text[0]) - 1000) < 60  # taken from the file
