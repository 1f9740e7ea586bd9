"""Builds in worker processes on this machine (or in this process with one worker)."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

from .jobs import BuildJob, JobResult, run_job
from .runner import Progress


def default_workers() -> int:
    """One build per core: encoding and mixing keep a core busy each."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


class LocalRunner:
    def __init__(self, workers: int | None = None):
        self.workers = workers or default_workers()

    def run(self, jobs: list[BuildJob], progress: Progress) -> list[JobResult]:
        results: list[JobResult] = []
        if self.workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                results.append(run_job(job))
                progress("tracks", len(results), len(jobs))
            return results
        # Fresh interpreters, not forks: this process may hold a speech engine's threads.
        context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(min(self.workers, len(jobs)), mp_context=context)
        try:
            pending: set[Future[JobResult]] = {pool.submit(run_job, job) for job in jobs}
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    results.append(future.result())
                    progress("tracks", len(results), len(jobs))
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # Ctrl-C: no new builds start; running ones finish
        return results
