"""A programme's episodes in a folder: their place in the series, read from each cue sheet.

The feed numbers them (seasons are weeks) and the page groups them by week; both read it here.
"""

from __future__ import annotations

from .tracks import Track


def serial_info(track: Track) -> dict | None:
    """A programme episode's place in its series (from its cue sheet), or None for a single track."""
    info = track.sheet.get("programme")
    if not isinstance(info, dict):
        return None
    numbers = [info.get(k) for k in ("week", "session", "episode")]
    if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in numbers):
        return None
    return info


def serial_order(tracks: list[Track]) -> list[Track] | None:
    """The tracks in programme order when every one is an episode of one programme, else None."""
    infos = [serial_info(t) for t in tracks]
    if not tracks or any(i is None for i in infos) or len({i["id"] for i in infos if i}) != 1:
        return None
    return sorted(tracks, key=lambda t: (serial_info(t) or {}).get("episode", 0))
