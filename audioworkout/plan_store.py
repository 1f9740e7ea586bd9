"""Fitted plans kept on disk beside the phrases, so a fresh process starts a session without the search.

A fit on estimated lengths is a pure function of the package's code, the routine, the minutes and
the level, and takes up to a second for an hour: a server restarted, or the next `build`, would pay
it again before the first sample. (Where real speech runs too far from the estimates for the rests
to make up, the plan is fitted on the voice's real lengths; that one is kept for the voice.) Each plan is stored as its shape (`Plan.shape`, a few hundred
bytes of JSON) under a key of all four, and built again from it in milliseconds. A file that is
missing, unreadable, corrupt or from other code is simply fitted again; a store that cannot be
written costs only the time. `cache clear` removes the plans with the phrases.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
from functools import cache
from pathlib import Path

from .content import Routine
from .errors import AudioworkoutError
from .fsutil import write_atomic
from .plan import Plan, plan_from_shape

log = logging.getLogger(__name__)

_FORMAT = 1
# Enough for every routine, level and slider position a studio offers many times over; beyond it the
# oldest plans go (a few hundred bytes each).
KEPT = 2000


@cache
def code_digest() -> str:
    """A digest of the package's Python sources and the Python version: a plan from other code is never used."""
    root = Path(__file__).resolve().parent
    digest = hashlib.sha256(f"{sys.version_info[0]}.{sys.version_info[1]}".encode())
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


class PlanStore:
    """Plans fitted on estimates, one JSON file each, in `directory`."""

    def __init__(self, directory: Path | str):
        self.directory = Path(directory)

    def path(self, routine: Routine, minutes: float, level: str, fitted_on: str = "") -> Path:
        """`fitted_on`: what else the plan depends on ("" for estimated lengths; the voice for real ones)."""
        code = code_digest()
        inputs = [_FORMAT, code, repr(routine), float(minutes), level, fitted_on]
        key = hashlib.sha256(json.dumps(inputs).encode()).hexdigest()
        return self.directory / f"{code[:12]}-{key[:32]}.json"

    def get(self, routine: Routine, minutes: float, level: str, fitted_on: str = "") -> Plan | None:
        """The plan stored for these inputs, built again; None if there is none that fits them."""
        try:
            data = json.loads(self.path(routine, minutes, level, fitted_on).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("format") != _FORMAT:
            return None
        return plan_from_shape(routine, level, float(minutes) * 60.0, data.get("shape"))

    def put(self, plan: Plan, minutes: float, fitted_on: str = "") -> None:
        """Keep `plan` (fitted to `minutes` at its level); a store that cannot be written is passed over."""
        if not plan.shape:
            return
        record = {
            "format": _FORMAT,
            "routine": plan.routine.id,
            "minutes": float(minutes),
            "level": plan.level,
            "fitted_on": fitted_on or "estimates",
            "shape": plan.shape,
        }
        try:
            write_atomic(self.path(plan.routine, minutes, plan.level, fitted_on), json.dumps(record))
            self._prune()
        except (AudioworkoutError, OSError) as exc:
            log.debug("plan store %s: not written (%s)", self.directory, exc)

    def _prune(self) -> None:
        """Plans of other code go, and the oldest beyond `KEPT`."""
        current = code_digest()[:12] + "-"
        kept = []
        for p in self.directory.glob("*.json"):
            try:
                if p.name.startswith(current):
                    kept.append((p.stat().st_mtime, p))
                else:
                    p.unlink()
            except OSError:
                pass  # removed meanwhile by another process
        for _, p in sorted(kept)[: max(0, len(kept) - KEPT)]:
            p.unlink(missing_ok=True)
