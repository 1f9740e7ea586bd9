"""The tracks in an output folder: each MP3 with the cue sheet the build wrote beside it.

What the feed and the web page are both made from; its own module so that neither has to
import the other for it. Every text in a cue sheet is passed through `xml_text` as it is read, so
whatever a sheet holds (it may have been edited by hand, or come from another tool), the feed is
well-formed XML and the page valid HTML.
"""

from __future__ import annotations

import json
import re
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..errors import AudioworkoutError, ContentError, printable

# What XML 1.0 forbids or HTML warns about, and no title needs: C0 controls but tab and newline,
# DEL, C1 controls, lone surrogates (JSON's "\ud800" escapes make them) and the non-characters
# U+FFFE/U+FFFF.
_NOT_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def xml_text(text: str) -> str:
    """`text` without the characters that would make an XML document ill-formed (see _NOT_TEXT)."""
    return _NOT_TEXT.sub("", text)


def clean_texts(value: Any) -> Any:
    """A JSON value with `xml_text` applied to every string in it, keys included."""
    if isinstance(value, str):
        return xml_text(value)
    if isinstance(value, dict):
        return {clean_texts(k): clean_texts(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_texts(v) for v in value]
    return value


@dataclass
class Track:
    """One built track: its MP3 and the cue sheet the build stage wrote beside it."""

    stem: str
    mp3: Path
    sheet: dict
    size: int = 0
    duration: int = 0  # whole seconds, from the MP3 itself
    created: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def folder(self) -> Path:
        return self.mp3.parent

    @property
    def title(self) -> str:
        return xml_text(str(self.sheet.get("title") or self.sheet.get("routine") or self.stem))

    @property
    def episode_title(self) -> str:
        """Routine title plus length and level: one routine gives several tracks."""
        bits = [f"{self.sheet['minutes']} min" if self.sheet.get("minutes") else "", str(self.sheet.get("level") or "")]
        bits = [xml_text(b) for b in bits if b]
        return f"{self.title} ({', '.join(bits)})" if bits else self.title

    def sidecar(self, suffix: str) -> Path | None:
        """A sibling file such as S.vtt, or None when the build did not write it."""
        path = self.folder / f"{self.stem}{suffix}"
        return path if path.is_file() else None


def find_tracks(folder: Path) -> list[Track]:
    """Every X.mp3 with a sibling X.json cue sheet (has "routine" and "cues"), newest first.

    A build commits the cue sheet before the MP3 (`api.build`), so an MP3 found here has its sheet.
    An MP3 that cannot be read is an error naming it, not a traceback and not a silent gap in the
    feed. Lock and temporary files are hidden (`.x.lock`, `.x.mp3.<pid>.<random>.part`) and never
    match `*.mp3`.
    """
    tracks = []
    for mp3 in sorted(folder.glob("*.mp3")):
        sheet_path = mp3.with_suffix(".json")
        if not sheet_path.is_file():
            continue
        try:
            sheet = json.loads(sheet_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ContentError(
                sheet_path, "json", str(exc), "expected a cue sheet written by `audioworkout build`"
            ) from None
        if not isinstance(sheet, dict) or "routine" not in sheet or "cues" not in sheet:
            continue
        size, duration = _mp3_facts(mp3)
        track = Track(stem=mp3.stem, mp3=mp3, sheet=clean_texts(sheet), size=size, duration=duration)
        track.created = _parse_created(sheet.get("created"), mp3)
        tracks.append(track)
    tracks.sort(key=lambda t: (t.created, t.stem), reverse=True)
    return tracks


def _mp3_facts(mp3: Path) -> tuple[int, int]:
    """(bytes, whole seconds) of an MP3; AudioworkoutError naming it if it is not a readable MP3 file."""
    from mutagen import MutagenError
    from mutagen.mp3 import MP3

    def fail(why: str) -> AudioworkoutError:
        return AudioworkoutError(f"{printable(str(mp3))}: cannot read the track ({why}); rebuild it or move it away")

    try:
        info = mp3.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO would block the reader forever
            raise fail("not a regular file")
        audio = MP3(mp3).info
    except OSError as exc:
        raise fail(exc.strerror or str(exc)) from None
    except MutagenError as exc:
        cause = exc.__context__ if isinstance(exc.__context__, OSError) else None
        raise fail((cause.strerror or str(cause)) if cause else (str(exc) or type(exc).__name__)) from None
    if audio is None or not audio.length:
        raise fail("no MPEG audio in it")
    return info.st_size, round(audio.length)


def _parse_created(value: object, mp3: Path) -> datetime:
    """The cue sheet's creation time (UTC if naive); the MP3's mtime if absent or bad."""
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return when if when.tzinfo else when.replace(tzinfo=UTC)
        except ValueError:
            pass
    return datetime.fromtimestamp(mp3.stat().st_mtime, UTC).replace(microsecond=0)
