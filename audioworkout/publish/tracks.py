"""The tracks in an output folder: each MP3 with the cue sheet the build wrote beside it.

What the feed and the web page are both made from; its own module so that neither has to
import the other for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ..errors import ContentError


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
        return str(self.sheet.get("title") or self.sheet.get("routine") or self.stem)

    @property
    def episode_title(self) -> str:
        """Routine title plus length and level: one routine gives several tracks."""
        bits = [f"{self.sheet['minutes']} min" if self.sheet.get("minutes") else "", str(self.sheet.get("level") or "")]
        bits = [b for b in bits if b]
        return f"{self.title} ({', '.join(bits)})" if bits else self.title

    def sidecar(self, suffix: str) -> Path | None:
        """A sibling file such as S.vtt, or None when the build did not write it."""
        path = self.folder / f"{self.stem}{suffix}"
        return path if path.is_file() else None


def find_tracks(folder: Path) -> list[Track]:
    """Every X.mp3 with a sibling X.json cue sheet (has "routine" and "cues"), newest first."""
    from mutagen.mp3 import MP3

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
        track = Track(stem=mp3.stem, mp3=mp3, sheet=sheet, size=mp3.stat().st_size)
        info = MP3(mp3).info
        track.duration = round(info.length) if info is not None else 0
        track.created = _parse_created(sheet.get("created"), mp3)
        tracks.append(track)
    tracks.sort(key=lambda t: (t.created, t.stem), reverse=True)
    return tracks


def _parse_created(value: object, mp3: Path) -> datetime:
    """The cue sheet's creation time (UTC if naive); the MP3's mtime if absent or bad."""
    if isinstance(value, str):
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return when if when.tzinfo else when.replace(tzinfo=UTC)
        except ValueError:
            pass
    return datetime.fromtimestamp(mp3.stat().st_mtime, UTC).replace(microsecond=0)
