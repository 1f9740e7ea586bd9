"""Builds on an existing Dask cluster (`--scheduler tcp://HOST:8786`; the `[distributed]` extra).

Each job is sent whole (the routine itself, not a file name) and its track comes back as bytes,
so workers need not see the content or the output folder. They must share the phrase cache,
or every worker would synthesise every phrase again: that is checked before any job is sent.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from ..errors import AudioworkoutError
from ..fsutil import atomic_set
from ..speech import SpeechSettings
from .jobs import BuildJob, JobResult, run_job
from .runner import Progress

CONNECT_TIMEOUT = "15s"
_TOKEN_PREFIX = ".audioworkout-shared-"


def _cache_dir(cache_dir: str | None) -> Path:
    from ..speech.cache import default_cache_dir

    return Path(cache_dir) if cache_dir else default_cache_dir()


def _write_token(cache_dir: str | None, token: str) -> str:
    folder = _cache_dir(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{_TOKEN_PREFIX}{token}"
    path.write_text(token)
    return str(path)


def _read_token(cache_dir: str | None, token: str) -> str:
    path = _cache_dir(cache_dir) / f"{_TOKEN_PREFIX}{token}"
    try:
        return "ok" if path.read_text() == token else f"{path}: holds another value"
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"


def _remove_token(cache_dir: str | None, token: str) -> None:
    (_cache_dir(cache_dir) / f"{_TOKEN_PREFIX}{token}").unlink(missing_ok=True)


class DaskRunner:
    def __init__(self, scheduler: str, speech: SpeechSettings | None = None):
        try:
            from distributed import Client
        except ImportError:
            raise AudioworkoutError(
                "--scheduler needs dask.distributed: pip install 'audioworkout[distributed]'"
            ) from None
        try:
            self.client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            raise AudioworkoutError(f"--scheduler {scheduler}: cannot connect ({exc})") from None
        self.scheduler = scheduler
        if speech is not None:
            self.check_shared_cache(speech)

    def check_shared_cache(self, speech: SpeechSettings) -> None:
        """Every worker sees the same phrase cache: one worker writes a token there, all must read it."""
        cache_dir = str(speech.cache_dir) if speech.cache_dir else None
        token = secrets.token_hex(8)
        where = self.client.submit(_write_token, cache_dir, token, pure=False).result()
        try:
            answers = self.client.run(_read_token, cache_dir, token)
        finally:
            self.client.submit(_remove_token, cache_dir, token, pure=False).result()
        if not answers:
            raise AudioworkoutError(f"--scheduler {self.scheduler}: the cluster has no workers")
        blind = {worker: answer for worker, answer in answers.items() if answer != "ok"}
        if blind:
            worker, answer = next(iter(blind.items()))
            raise AudioworkoutError(
                f"--scheduler {self.scheduler}: the phrase cache must be one folder every worker sees; "
                f"worker {worker} cannot read what another wrote to {where} ({answer}); "
                f"give --cache-dir a shared path"
            )

    def run(self, jobs: list[BuildJob], progress: Progress) -> list[JobResult]:
        from distributed import as_completed

        futures = [self.client.submit(run_job, job, True, pure=False, key=f"build-{job.stem}") for job in jobs]
        by_key = {f.key: job for f, job in zip(futures, jobs)}
        results: list[JobResult] = []
        try:
            for future in as_completed(futures):
                result: JobResult = future.result()
                job = by_key[future.key]
                _store(job, result)
                results.append(result)
                progress("tracks", len(results), len(jobs))
        finally:
            for future in futures:
                future.cancel()
            self.client.close()
        return results


def _store(job: BuildJob, result: JobResult) -> None:
    """A remote build's files into the output folder, committed as one set the way `api.build` commits
    its own (`fsutil.atomic_set`): all written first, then renamed, the MP3 last (it makes the set visible)."""
    folder = Path(job.options.output_dir)
    names = sorted(result.files, key=lambda name: name.endswith(".mp3"))
    with atomic_set([folder / name for name in names]) as tmp:
        for name in names:
            tmp[folder / name].write_bytes(result.files[name])
    result.files = {}
