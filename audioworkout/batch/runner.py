"""Running many build jobs: skip what is up to date, synthesise shared phrases once, build in parallel.

Two runners with one interface (`run(jobs, progress) -> results`), one file each:
`local.LocalRunner` (worker processes on this machine) and `dask_cluster.DaskRunner` (an existing
dask.distributed cluster).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

from ..errors import AudioworkoutError
from ..speech import SpeechSettings
from .jobs import BuildJob, JobResult, fingerprint, up_to_date

Progress = Callable[[str, int, int], None]  # (stage, done, total): "phrases" then "tracks"


class Runner(Protocol):
    def run(self, jobs: list[BuildJob], progress: Progress) -> list[JobResult]: ...


@dataclass
class BatchResult:
    results: list[JobResult]
    phrases_synthesised: int = 0  # by the shared pass before the builds
    wall: float = 0.0
    skipped: list[str] = field(default_factory=list)

    @property
    def built(self) -> list[JobResult]:
        return [r for r in self.results if not r.skipped]

    @property
    def synthesised(self) -> int:
        """Every phrase sent to an engine, in the shared pass and in the builds."""
        return self.phrases_synthesised + sum(r.synthesised for r in self.results)


def run_jobs(
    jobs: list[BuildJob],
    workers: int | None = None,
    scheduler: str | None = None,
    progress: Progress | None = None,
) -> BatchResult:
    """Build every job that is not up to date; raises one AudioworkoutError listing the jobs that failed."""
    report = progress or (lambda stage, done, total: None)
    started = time.perf_counter()
    todo: list[BuildJob] = []
    skipped: list[BuildJob] = []
    for job in jobs:  # fingerprinted here, once: a worker started later (or elsewhere) records the same
        job = replace(job, inputs=job.inputs or fingerprint(job))
        (skipped if up_to_date(job) else todo).append(job)
    synthesised = 0
    runner: Runner
    if scheduler:
        from .dask_cluster import DaskRunner

        runner = DaskRunner(scheduler, jobs[0].speech if jobs else None)
    else:
        from .local import LocalRunner

        runner = LocalRunner(workers)
        if todo:
            synthesised = synthesise_shared(todo, report)
    results = runner.run(todo, report) if todo else []
    failed = [r.error for r in results if r.error]
    if failed:
        raise AudioworkoutError("\n".join(failed))
    results += [JobResult(job.label, job.stem, skipped=True) for job in skipped]
    order = {job.stem: k for k, job in enumerate(jobs)}
    results.sort(key=lambda r: order.get(r.stem, 0))
    return BatchResult(results, synthesised, time.perf_counter() - started, [j.label for j in skipped])


def synthesise_shared(jobs: list[BuildJob], progress: Progress) -> int:
    """Every phrase the jobs' scripts need, synthesised once in this process before the builds start.

    The scripts are laid out on estimated lengths (no synthesis); the builds then find their phrases
    in the cache. A phrase a build still lacks (a rest the real speech lengths changed) is made by
    that build, and the cache's per-phrase lock keeps two builds from making it twice.
    """
    from .. import api
    from ..speech import make_speaker

    groups: dict[SpeechSettings, list[BuildJob]] = {}
    for job in jobs:
        groups.setdefault(job.speech, []).append(job)
    total = 0
    for settings, members in groups.items():
        speaker = make_speaker(settings)
        texts: dict[str, None] = {}
        for job in members:
            _, script = api.plan_session(job.routine, job.minutes, job.level)
            texts.update(dict.fromkeys(script.spoken_texts()))
        speaker.prefetch(list(texts), progress=lambda done, n, *_: progress("phrases", done, n))
        total += speaker.stats.synthesised
        speaker.forget_audio()
    return total
