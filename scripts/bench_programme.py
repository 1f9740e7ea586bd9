#!/usr/bin/env python3
"""Benchmark: a whole programme built cold and warm, in local worker processes and on a Dask cluster.

Prints figures; checks nothing. Targets (issue 13) beside them: a warm rebuild with nothing changed
does no synthesis and no encoding, in under 5 s. Run by `scripts/bench.py --only programme`, or:

    python scripts/bench_programme.py                      # Walk to Run 5K, all 27 episodes
    python scripts/bench_programme.py --only week1 --no-dask
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _row(label: str, result, wall: float) -> None:
    workers = sorted({round(r.peak_rss_mb) for r in result.built}) or [0]
    audio = sum(r.seconds for r in result.built) / 60
    print(
        f"{label:34} {wall:7.1f} s  built {len(result.built):2}  up to date {len(result.skipped):2}  "
        f"phrases synthesised {result.synthesised:4}  audio {audio:6.1f} min  "
        f"peak RSS per worker {workers[0]}-{workers[-1]} MB"
    )


def bench_programme(name: str = "walk-to-run-5k", only: str | None = None, dask: bool = True, jobs: int = 2) -> None:
    from audioworkout.batch import programme_jobs, run_jobs
    from audioworkout.programme import load_programme
    from audioworkout.speech import SpeechSettings

    programme = load_programme(name)
    episodes = programme.select(only)
    print(f"== programme {name} ({len(episodes)} episodes, Piper joe, --jobs {jobs})")
    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp) / "cache"
        settings = SpeechSettings(cache_dir=cache)
        jobs_local = programme_jobs(programme, episodes, settings, Path(tmp) / "local")
        for label in ("cold (empty cache), local", "warm rebuild, nothing changed"):
            started = time.perf_counter()
            result = run_jobs(jobs_local, workers=jobs)
            _row(label, result, time.perf_counter() - started)
        cli = [sys.executable, "-m", "audioworkout", "programme", "build", name, "-o", str(Path(tmp) / "local")]
        if only:
            cli += ["--only", only]
        started = time.perf_counter()
        done = subprocess.run([*cli, "--cache-dir", str(cache)], capture_output=True, text=True)
        wall = time.perf_counter() - started
        print(
            f"{'warm, the CLI (feed and page too)':34} {wall:7.1f} s  {done.stdout.splitlines()[0] if done.stdout else done.stderr}"
        )
        print("   target: the warm rebuild synthesises and encodes nothing, in under 5 s")
        if not dask:
            return
        try:
            from distributed import LocalCluster
        except ImportError:
            print("   dask: not installed (pip install 'audioworkout[distributed]')")
            return
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        try:
            cold_cache = SpeechSettings(cache_dir=Path(tmp) / "cache-dask")
            jobs_dask = programme_jobs(programme, episodes, cold_cache, Path(tmp) / "dask")
            started = time.perf_counter()
            result = run_jobs(jobs_dask, scheduler=cluster.scheduler_address)
            _row("cold, Dask LocalCluster (2 workers)", result, time.perf_counter() - started)
            warm = programme_jobs(programme, episodes, settings, Path(tmp) / "dask-warm")
            started = time.perf_counter()
            result = run_jobs(warm, scheduler=cluster.scheduler_address)
            _row("warm cache, Dask (2 workers)", result, time.perf_counter() - started)
        finally:
            cluster.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--programme", default="walk-to-run-5k")
    parser.add_argument("--only", default=None)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--no-dask", action="store_true")
    args = parser.parse_args()
    bench_programme(args.programme, args.only, not args.no_dask, args.jobs)


if __name__ == "__main__":
    main()
