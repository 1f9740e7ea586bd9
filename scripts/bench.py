#!/usr/bin/env python3
"""Benchmark: speech synthesis (cold/warm), script timing, and whole builds against ffmpeg's floor.

Prints figures; checks nothing. Targets (from the issues) are printed beside each figure:
- warm-cache script for 45 minutes < 1 s; cold synthesis / bare Piper on the same phrases <= 1.15
- build at 60 minutes: wall time / ffmpeg encoding the same length <= 1.3; peak RSS < 500 MB warm,
  < 1 GB cold; a cold 20-minute build < 30 s.

    python scripts/bench.py              # everything (several minutes)
    python scripts/bench.py --only speech
    python scripts/bench.py --only build --lengths 10 30 60
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


# Measures a command from a small launcher process: a child forked straight from this (large)
# process would count this process's pages, shared before exec, in its peak RSS.
_LAUNCHER = """
import os, subprocess, sys, time
start = time.perf_counter()
proc = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
_, status, usage = os.wait4(proc.pid, 0)
code = os.waitstatus_to_exitcode(status)
print(code, time.perf_counter() - start, usage.ru_maxrss / 1024)
if code:
    sys.stderr.write(proc.stderr.read().decode())
"""


def run_child(args: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run a command; return (wall seconds, peak RSS in MB) of that command alone."""
    done = subprocess.run([sys.executable, "-c", _LAUNCHER, *args], env=env, capture_output=True, text=True)
    code, wall, rss = done.stdout.split()
    if int(code) != 0 or done.returncode != 0:
        raise SystemExit(f"failed: {' '.join(args)}\n{done.stderr}")
    return float(wall), float(rss)


def bench_speech(lengths: list[int]) -> None:
    from audioworkout import api
    from audioworkout.speech import PhraseCache, PiperEngine, Speaker
    from audioworkout.speech.textnorm import normalise

    routine = api.load_routine("back-pain")
    print("== speech (Piper joe, back-pain, beginner)")
    for minutes in lengths:
        with tempfile.TemporaryDirectory() as cache_dir:
            engine = PiperEngine()  # ours: `jobs` phrases at once
            bare_engine = PiperEngine(jobs=1)  # Piper as it comes: one phrase at a time, onnxruntime's threads
            for warm in (engine, bare_engine):
                warm.synthesize("Warm up.")  # load the models outside the timings, as both sides need one
            speaker = Speaker(engine, PhraseCache(Path(cache_dir)))
            start = time.perf_counter()
            plan, script = api.plan_session(routine, minutes, "beginner", speaker=speaker)
            cold = time.perf_counter() - start
            texts = script.spoken_texts()
            distinct = sorted({normalise(t) for t in texts})
            start = time.perf_counter()
            for text in distinct:
                bare_engine.synthesize(text)
            bare = time.perf_counter() - start
            warm_speaker = Speaker(PiperEngine(), PhraseCache(Path(cache_dir)))
            start = time.perf_counter()
            api.plan_session(routine, minutes, "beginner", speaker=warm_speaker)
            warm = time.perf_counter() - start
            speech_seconds = sum(c.duration for c in script.cues if c.spoken)
            distinct_seconds = speaker.stats.speech_seconds
            print(
                f"{minutes:3d} min: {len(texts)} phrases, {len(distinct)} distinct, "
                f"{speech_seconds:.0f} s of speech in the script ({distinct_seconds:.0f} s distinct)"
            )
            print(
                f"        cold script {cold:.2f} s (synthesised {speaker.stats.synthesised}, {engine.jobs} jobs), "
                f"bare Piper on the same distinct phrases {bare:.2f} s, ratio {cold / bare:.2f} (target <= 1.15)"
            )
            print(
                f"        warm script {warm:.2f} s (synthesised {warm_speaker.stats.synthesised}; target < 1 s), "
                f"real-time factor cold {cold / max(distinct_seconds, 1e-9):.3f}"
            )


def bench_build(lengths: list[int], cold_minutes: int) -> None:
    from audioworkout.audio.ffmpeg import ffmpeg_exe
    from audioworkout.speech import default_jobs

    print(f"== builds (back-pain, beginner, Piper with {default_jobs()} jobs, warm cache unless said)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        env = dict(os.environ, AUDIOWORKOUT_CACHE_DIR=str(tmp / "cache"))
        cli = [sys.executable, "-m", "audioworkout.cli", "build", "back-pain", "--output", str(tmp / "out")]
        wall, rss = run_child(cli + ["--minutes", str(cold_minutes)], env)
        print(f"cold {cold_minutes:3d} min build: {wall:.1f} s (target < 30 s), peak RSS {rss:.0f} MB (target < 1 GB)")
        cold_env = dict(env, AUDIOWORKOUT_CACHE_DIR=str(tmp / "cache-60"))
        wall, rss = run_child(cli + ["--minutes", "60", "--output", str(tmp / "out-60")], cold_env)
        print(f"cold  60 min build: {wall:.1f} s, peak RSS {rss:.0f} MB (target < 1 GB)")
        for minutes in lengths:
            run_child(cli + ["--minutes", str(minutes)], env)  # warm the cache for this length
            wall, rss = run_child(cli + ["--minutes", str(minutes)], env)
            wav = tmp / "floor.wav"
            subprocess.run(
                [
                    ffmpeg_exe(),
                    "-v",
                    "error",
                    "-y",
                    "-f",
                    "lavfi",
                    "-i",
                    f"anoisesrc=d={minutes * 60}:c=pink:r=44100:a=0.05",
                    "-ac",
                    "1",
                    str(wav),
                ],
                check=True,
            )
            floor, _ = run_child(
                [
                    ffmpeg_exe(),
                    "-v",
                    "error",
                    "-y",
                    "-i",
                    str(wav),
                    "-c:a",
                    "libmp3lame",
                    "-b:a",
                    "96k",
                    "-ac",
                    "1",
                    "-ar",
                    "44100",
                    str(tmp / "floor.mp3"),
                ],
                env,
            )
            print(
                f"warm {minutes:3d} min build: {wall:.1f} s, peak RSS {rss:.0f} MB; ffmpeg alone {floor:.1f} s; "
                f"ratio {wall / floor:.2f} (target <= 1.3 at 60 min; peak RSS < 500 MB)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["speech", "build"])
    parser.add_argument("--lengths", type=int, nargs="+", default=None)
    args = parser.parse_args()
    if args.only in (None, "speech"):
        bench_speech(args.lengths or [20, 45])
    if args.only in (None, "build"):
        bench_build(args.lengths or [10, 30, 60], cold_minutes=20)


if __name__ == "__main__":
    main()
