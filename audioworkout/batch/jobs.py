"""One track as a pure job: its inputs in, its files out; skipped when the inputs have not changed."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import resource
import tempfile
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

from .. import api
from ..content import Routine
from ..errors import AudioworkoutError
from ..programme import Episode, Programme
from ..speech import SpeechSettings
from ..speech.engines import make_engine


@dataclasses.dataclass(frozen=True)
class BuildJob:
    """Everything one track depends on; picklable, so it can run in another process or on another machine."""

    routine: Routine
    minutes: float | None
    level: str | None
    speech: SpeechSettings
    options: api.BuildOptions  # its output_dir, stem, title and cue-sheet extras included
    label: str = ""
    inputs: str = ""  # its fingerprint, when the caller has it (one process decides what is up to date)

    @property
    def stem(self) -> str:
        assert self.options.stem, "a batch job names its track"
        return self.options.stem

    @property
    def mp3(self) -> Path:
        return Path(self.options.output_dir) / f"{self.stem}.mp3"


@dataclasses.dataclass
class JobResult:
    label: str
    stem: str
    skipped: bool = False  # up to date: nothing synthesised, nothing encoded
    seconds: float = 0.0  # the track's length
    synthesised: int = 0  # phrases this job sent to the engine
    wall: float = 0.0  # seconds this job took
    peak_rss_mb: float = 0.0  # the worker process's peak memory so far
    files: dict[str, bytes] = dataclasses.field(default_factory=dict)  # when asked to return them (remote workers)
    error: str = ""


def programme_jobs(
    programme: Programme, episodes: list[Episode], speech: SpeechSettings, output_dir: Path
) -> list[BuildJob]:
    """A job per episode, into `output_dir/<programme>/`, each tagged with its place in the series."""
    folder = Path(output_dir) / programme.id
    return [
        BuildJob(
            e.routine,
            e.minutes,
            e.level,
            speech,
            api.BuildOptions(
                output_dir=folder,
                cover=programme.cover,
                artist=programme.author,
                stem=e.stem,
                title=e.title,
                album=programme.title,
                sheet={"programme": e.sheet(programme.title)},
            ),
            label=e.label,
        )
        for e in episodes
    ]


@lru_cache(maxsize=1)
def code_version() -> str:
    """A hash of the package's own source: a new version of the coach rebuilds every episode."""
    root = Path(__file__).resolve().parent.parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _file_id(path: Path | None) -> str | None:
    """A file's identity for the fingerprint: name, size and content hash (music folders: each file)."""
    if path is None:
        return None
    path = Path(path)
    if path.is_dir():
        return ",".join(f"{p.name}:{_file_id(p)}" for p in sorted(path.iterdir()) if p.is_file())
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError:
        return f"missing:{path}"


def _routine_data(routine: Routine) -> Any:
    """The routine's content, without where it was read from (the same content anywhere is the same)."""
    data = dataclasses.asdict(dataclasses.replace(routine, path=None, cover=None))
    data["cover"] = _file_id(routine.cover)
    return data


def fingerprint(job: BuildJob) -> str:
    """What the track depends on: content, length, level, voice and settings, build options, code version."""
    options = job.options
    inputs = {
        "code": code_version(),
        "routine": _routine_data(job.routine),
        "minutes": job.minutes,
        "level": job.level,
        "voice": make_engine(job.speech).cache_key(),
        "music": _file_id(options.music),
        "chimes": {name: _file_id(path) for name, path in sorted(options.chime_files.items())},
        "chime_set": options.chime_set,
        "cover": _file_id(options.cover),
        "bitrate": options.bitrate_kbps,
        "artist": options.artist,
        "title": options.title,
        "album": options.album,
        "sheet": options.sheet,
    }
    text = json.dumps(inputs, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def up_to_date(job: BuildJob) -> bool:
    """The track and all its sidecars exist, and its cue sheet records these same inputs."""
    folder, stem = Path(job.options.output_dir), job.stem
    if not all((folder / f"{stem}{suffix}").is_file() for suffix in (".mp3", *api.SIDECAR_SUFFIXES)):
        return False
    try:
        sheet = json.loads((folder / f"{stem}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(sheet, dict) and sheet.get("inputs") == (job.inputs or fingerprint(job))


def run_job(job: BuildJob, return_files: bool = False) -> JobResult:
    """Build one track (or skip it when up to date); errors come back as text, so any runner can carry them.

    With `return_files` the track is built in a temporary folder and its files come back as bytes:
    a remote worker need not see the output folder.
    """
    started = time.perf_counter()
    out = JobResult(job.label, job.stem)
    try:
        if not job.inputs:
            job = dataclasses.replace(job, inputs=fingerprint(job))
        if not return_files and up_to_date(job):
            out.skipped = True
        else:
            sheet = {**job.options.sheet, "inputs": job.inputs}
            with tempfile.TemporaryDirectory(prefix="audioworkout-job-") as tmp:
                folder = Path(tmp) if return_files else Path(job.options.output_dir)
                options = dataclasses.replace(job.options, output_dir=folder, sheet=sheet)
                result = api.build(job.routine, job.minutes, job.level, job.speech, options)
                out.seconds, out.synthesised = result.seconds, result.phrases_synthesised
                if return_files:
                    out.files = {p.name: p.read_bytes() for p in [*result.sidecars, result.mp3] if p is not None}
    except AudioworkoutError as exc:
        out.error = f"{job.label}: {exc}"
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        out.error = f"{job.label}: {where}{exc.strerror or exc}"
    out.wall = time.perf_counter() - started
    out.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out
