"""Many tracks at once: a programme's episodes or a routine's catalogue, as pure build jobs.

A `BuildJob` holds everything a track depends on (the routine itself, not its file name), so it
runs the same in this process, in a local worker process or on a Dask worker on another machine.
`run_jobs` skips the jobs whose inputs have not changed, synthesises every phrase the rest need
once, then builds them on a runner: `LocalRunner` (worker processes) or `DaskRunner` (an existing
dask.distributed cluster; the optional `[distributed]` extra).
"""

from __future__ import annotations

from .jobs import BuildJob, JobResult, fingerprint, programme_jobs, run_job, up_to_date
from .runner import BatchResult, run_jobs

__all__ = ["BatchResult", "BuildJob", "JobResult", "fingerprint", "programme_jobs", "run_job", "run_jobs", "up_to_date"]
