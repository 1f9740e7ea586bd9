#!/usr/bin/env python3
"""Benchmark: speech synthesis (cold/warm), script timing, and whole builds against ffmpeg's floor.

Prints figures; checks nothing. Targets (from the issues) are printed beside each figure:
- warm-cache script for 45 minutes < 1 s; cold synthesis / bare Piper on the same phrases <= 1.15
- build at 60 minutes: wall time / ffmpeg encoding the same length <= 1.3; peak RSS < 500 MB warm,
  < 1 GB cold; a cold 20-minute build < 30 s.
- streaming renderer (issue 14, audio/stream.py): warm 60-minute build <= 1.1x the bare LAME
  encode of the same audio; peak RSS of 60- and 120-minute warm builds <= 200 MB and within 10 %;
  first MP3 byte <= 1 s warm, flat in the length: after the plan, and from the request in a
  fresh process (plan fitted, then stored); cold (`--only cold`) <= 3 s from the request; the
  sessions a cold stream makes some speech of first (`--only made-first`), the same figures.

    python scripts/bench.py              # everything (several minutes)
    python scripts/bench.py --only speech
    python scripts/bench.py --only build --lengths 10 30 60
    python scripts/bench.py --only stream --lengths 20 60
    python scripts/bench.py --only cold --lengths 20 60
    python scripts/bench.py --only made-first
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

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
                f"ratio {wall / floor:.2f} (whole process: start, plan, render, encode); peak RSS target <= 200 MB"
            )


# -- streaming renderer ---------------------------------------------------------------------------

STREAM_ROUTINE = "back-pain"


def _stream_script(minutes: int):
    """back-pain at `minutes` (beginner); past 60, sessions chained (60 beginner, 60 intermediate, ...) into one.

    Plans are capped at 60 minutes; a longer track is what a series of them played back to back
    would be, and shows whether memory grows with the length.
    """
    from dataclasses import replace

    from audioworkout import api
    from audioworkout.speech import SpeechSettings, make_speaker

    speaker = make_speaker(SpeechSettings())
    routine = api.load_routine(STREAM_ROUTINE)
    parts: list = []
    left, levels = minutes, ["beginner", "intermediate", "advanced"]
    while left > 0:
        _, part = api.plan_session(routine, min(60, left), levels[len(parts) % 3], speaker=speaker)
        parts.append(part)
        left -= min(60, left)
    script, offset = parts[0], parts[0].total_seconds
    for part in parts[1:]:
        cues = [replace(c, time=c.time + offset) for c in part.cues]
        spans = [replace(sp, start=sp.start + offset, end=sp.end + offset) for sp in part.spans]
        script = replace(
            script, cues=script.cues + cues, spans=script.spans + spans, total_seconds=offset + part.total_seconds
        )
        offset += part.total_seconds
    speaker.forget_audio()
    return script, speaker


class _Clock(io.RawIOBase):
    """A sink that notes when each write came, and how many bytes had come by then."""

    def __init__(self, start: float, keep: io.BufferedWriter | None = None):
        self.start, self.total = start, 0
        self.marks: list[tuple[float, int]] = []
        self.kept = keep  # a file for the bytes themselves, to measure afterwards (not held: RSS is measured)

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.total += len(data)
        self.marks.append((time.perf_counter() - self.start, self.total))
        if self.kept is not None:
            self.kept.write(data)
        return len(data)


def stream_child(job: dict) -> None:
    """One streamed build in this process (run by bench_stream in a child, so its memory is its own)."""
    if job["kind"] == "request":  # first: it times the package's import itself
        request_child(job)
        return
    from audioworkout.audio.mix import ChimeBank
    from audioworkout.audio.mp3 import Chapter, TrackTags
    from audioworkout.audio.stream import StreamRenderer, stream_build, stream_build_file
    from audioworkout.script import SpokenCue

    if job["kind"] == "prepare":  # the session's phrases made and its plan stored, as a build before it would
        from audioworkout import api

        api.plan_session(api.load_routine(STREAM_ROUTINE), job["minutes"], job["level"], speaker=make_speaker_now())
        Path(job["report"]).write_text("{}")
        return
    started = time.perf_counter()
    script, speaker = _stream_script(job["minutes"])
    planned = time.perf_counter()
    out: dict = {"plan_seconds": planned - started, "track_seconds": script.total_seconds}
    tags = TrackTags("bench", "audioworkout", "bench", "Fitness", "2025", "", int(script.total_seconds * 1000))
    chapters = [Chapter(sp.title, sp.start, sp.end, 0 if sp.kind == "section" else 1) for sp in script.spans]
    if job["kind"] == "pcm":  # the mastered audio exactly as the encoder gets it, for the bare LAME run
        from audioworkout.audio.ffmpeg import ffmpeg_exe
        from audioworkout.audio.mp3 import _encoder_gain

        gain = np.float32(_encoder_gain(ffmpeg_exe(), 96))
        renderer = StreamRenderer(script, speaker, ChimeBank())
        renderer.analyse()
        with open(job["path"], "wb") as f:
            for pcm in renderer.blocks():
                f.write(np.clip(pcm * gain, -1.0, 1.0).astype("<f4").tobytes())
    elif job["kind"] == "classic":  # the whole-buffer path the streaming renderer replaced, for comparison
        from audioworkout.audio.mix import encode_mix, master_mix, render

        mix = render(script, lambda text: (speaker.audio(text), speaker.engine.sample_rate), ChimeBank())
        speaker.forget_audio()
        master_mix(mix)
        encode_mix(mix, Path(job["path"]), tags, chapters)
        out.update(build_seconds=time.perf_counter() - planned, loudness=mix.loudness_lufs, peak=mix.true_peak_dbtp)
    elif job["kind"] == "file":
        result = stream_build_file(
            script, speaker, ChimeBank(), None, tags, chapters, Path(job["path"]), measure=job["measure"]
        )
        out.update(
            build_seconds=time.perf_counter() - planned,
            loudness=result.loudness_lufs,
            peak=result.true_peak_dbtp,
            encodes=result.encodes,
        )
    elif job["kind"] == "first":
        sink = _Clock(planned)
        result = stream_build(script, speaker, ChimeBank(), None, tags, chapters, sink)
        first_speech = next(c.time for c in script.cues if isinstance(c, SpokenCue))
        head = sink.marks[0][1]  # the ID3 tag, written at once
        # CBR: the byte that carries media time t (LAME's delay first), 0.2 s into the first phrase.
        need = head + (first_speech + 0.2 + 1105 / 44100) * 96000 / 8
        out.update(
            first_frame=result.first_frame_seconds,
            first_speech=next(t for t, n in sink.marks if n >= need),
            build_seconds=time.perf_counter() - planned,
        )
    Path(job["report"]).write_text(json.dumps(out))


def make_speaker_now():
    from audioworkout.speech import SpeechSettings, make_speaker

    return make_speaker(SpeechSettings())


def request_child(job: dict) -> None:
    """`api.stream` as `build -o -` calls it, from the request on, with whatever cache the environment names."""
    imported = time.perf_counter()
    from audioworkout import api

    started = time.perf_counter()
    imported = started - imported
    routine = api.load_routine(job.get("routine", "back-pain"))
    path = Path(job["report"]).with_suffix(".mp3")
    with open(path, "wb") as kept:
        sink = _Clock(started, keep=kept)
        result = api.stream(routine, sink, job["minutes"], job.get("level", "beginner"), api.SpeechSettings())
    head = sink.marks[0][1]
    # CBR: the byte that carries media time t (LAME's delay first): 0.2 s into the first phrase (at 0.5 s).
    need = head + (0.5 + 0.2 + 1105 / 44100) * 96000 / 8
    out = {
        "cold": result.cold,
        "import_seconds": imported,
        "first_byte": sink.marks[0][0],
        "first_frame": sink.marks[1][0],
        "first_speech": next(t for t, n in sink.marks if n >= need),
        "build_seconds": time.perf_counter() - started,
        "overruns": result.overruns,
        "track_seconds": result.seconds,
    }
    from audioworkout.audio.mp3 import measure_mp3  # after the timings: the stream decoded and measured

    levels = measure_mp3(path)
    path.unlink()
    out.update(loudness=levels.loudness_lufs, peak=levels.true_peak_dbtp)
    Path(job["report"]).write_text(json.dumps(out))


def _stream_run(job: dict, env: dict[str, str], tmp: Path) -> tuple[float, float, dict]:
    """Run stream_child in a fresh process: (wall s, peak RSS MB, its report)."""
    report = tmp / "report.json"
    job = dict(job, report=str(report))
    wall, rss = run_child([sys.executable, str(Path(__file__).resolve()), "--stream-child", json.dumps(job)], env)
    return wall, rss, json.loads(report.read_text())


def bench_stream(lengths: list[int]) -> None:
    """The streaming renderer: warm 60-min build against bare LAME on the same audio, peak RSS, time to first byte."""
    from audioworkout.audio.ffmpeg import ffmpeg_exe

    print("== streaming renderer (audio/stream.py; back-pain, Piper joe, warm cache)")
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = dict(os.environ, AUDIOWORKOUT_CACHE_DIR=str(tmp / "cache"))
        longest = max([120, *lengths])
        start = time.perf_counter()
        _stream_run({"kind": "pcm", "minutes": longest, "path": str(tmp / "warm.f32")}, env, tmp)  # synthesises
        for minutes in sorted({20, 60, *lengths}):
            _stream_run({"kind": "pcm", "minutes": minutes, "path": str(tmp / f"{minutes}.f32")}, env, tmp)
        print(f"(cache warmed and reference audio rendered in {time.perf_counter() - start:.0f} s)")

        # Side by side, alternating, best of two: the streamed file build and LAME alone on its audio.
        bare_cmd = [ffmpeg_exe(), "-v", "error", "-y", "-f", "f32le", "-ar", "22050", "-ac", "1"]
        bare_cmd += ["-i", str(tmp / "60.f32"), "-c:a", "libmp3lame", "-b:a", "96k", "-ac", "1", "-ar", "44100"]
        runs: dict[str, list] = {"bare": [], "measured": [], "unmeasured": [], "classic": []}
        for _ in range(2):
            runs["bare"].append(run_child(bare_cmd + [str(tmp / "bare.mp3")], env)[0])
            for name, measure in (("measured", True), ("unmeasured", False)):
                job = {"kind": "file", "minutes": 60, "measure": measure, "path": str(tmp / "s.mp3")}
                runs[name].append(_stream_run(job, env, tmp))
            runs["classic"].append(
                _stream_run({"kind": "classic", "minutes": 60, "path": str(tmp / "c.mp3")}, env, tmp)
            )
        bare = min(runs["bare"])
        print(f"bare LAME, the same 60-min audio (f32 file in): {bare:.2f} s")
        notes = {
            "measured": "streamed, the MP3 decoded and metered while encoding (what build does)",
            "unmeasured": "streamed, levels predicted, not measured (what -o - does)",
            "classic": "whole buffer: render, master_mix, encode_mix (the build before the renderer)",
        }
        for name in ("measured", "unmeasured", "classic"):
            wall, rss, rep = min(runs[name], key=lambda r: r[2]["build_seconds"])
            note = f"{notes[name]}; peak RSS {rss:.0f} MB"
            print(
                f"60-min file build ({note}): {rep['build_seconds']:.2f} s, ratio "
                f"{rep['build_seconds'] / bare:.2f} (target <= 1.1); whole process {wall:.2f} s "
                f"(of it planning {rep['plan_seconds']:.2f} s), ratio {wall / bare:.2f}; "
                f"{rep.get('loudness', float('nan')):.2f} LUFS, {rep.get('peak', float('nan')):.2f} dBTP"
            )

        rss_by_length = {}
        for minutes in (60, 120):
            _, rss, rep = _stream_run(
                {"kind": "file", "minutes": minutes, "measure": True, "path": str(tmp / "s.mp3")}, env, tmp
            )
            rss_by_length[minutes] = rss
            print(
                f"warm {minutes:3d}-min streamed file build: peak RSS {rss:.0f} MB (target <= 200 MB), {rep['build_seconds']:.1f} s"
            )
        print(
            f"  120 min against 60 min: {100 * (rss_by_length[120] / rss_by_length[60] - 1):+.1f} % (target within 10 %)"
        )

        for minutes in lengths:
            _, _, rep = _stream_run({"kind": "first", "minutes": minutes}, env, tmp)
            print(
                f"warm {minutes:3d}-min stream: first MP3 frame {rep['first_frame']:.2f} s after the plan "
                f"(planning {rep['plan_seconds']:.2f} s), first speech audible {rep['first_speech']:.2f} s; "
                f"whole track sent in {rep['build_seconds']:.1f} s (target first byte <= 1 s, flat)"
            )
        # From the request on, as `build -o -` or the server's /stream.mp3 runs it: load, plan, stream.
        # Phrases cached (made by a build before); the plan first fitted, then from the plan store.
        for minutes in lengths:
            for level in ("beginner", "advanced"):
                _stream_run({"kind": "prepare", "minutes": minutes, "level": level}, env, tmp)
                shutil.rmtree(tmp / "cache" / "plans", ignore_errors=True)
                job = {"kind": "request", "minutes": minutes, "level": level}
                fitted, stored = _stream_run(job, env, tmp)[2], _stream_run(job, env, tmp)[2]
                assert not fitted["cold"] and not stored["cold"], "the phrases should all be cached"
                print(
                    f"warm {minutes:3d}-min {level} stream from the request (api.stream in a fresh process, "
                    f"after its {stored['import_seconds']:.2f} s import of audioworkout): first MP3 frame "
                    f"{stored['first_frame']:.2f} s with the plan stored, {fitted['first_frame']:.2f} s fitting "
                    f"it; first speech audible {stored['first_speech']:.2f} s (target <= 1 s, flat)"
                )
    bench_cold(lengths)


# Beside back-pain, the other bundled routines' longest cold planning (a circuit's rounds make its
# fits dear; found by timing cold_session at every length and level of each).
COLD_OTHERS = [("seven-minute-circuit", 45, "intermediate"), ("desk-break", 30, "advanced")]

# The sessions a cold stream with Piper serves by making some of their speech first (no plan laid out
# in slots kept every rule; swept again at stop 34, after a stretch held again lost its "other side";
# since stop 35 they make first the phrases whose slots hold them back most), desk-break 5 advanced
# and 8 beginner, which were two of them until then, and the circuit at 35 minutes, which was one at
# both levels before stop 32, and back-pain 10 advanced, which streams in slots since stop 36 (its warm-up
# there 27.05 % of the session, within ACSM's minutes): `--only made-first`.
MADE_FIRST = [
    ("back-pain", 5, "beginner"),
    ("back-pain", 8, "intermediate"),
    ("back-pain", 10, "advanced"),
    ("desk-break", 30, "advanced"),
    ("seven-minute-circuit", 12, "advanced"),
    ("desk-break", 5, "advanced"),
    ("desk-break", 8, "beginner"),
    ("seven-minute-circuit", 35, "advanced"),
    ("seven-minute-circuit", 35, "intermediate"),
]


def bench_cold(lengths: list[int], runs: list[tuple[str, int, str]] | None = None) -> None:
    """Cold streams (`build -o -` with an empty phrase cache): time from the request to the tag, the first frame and speech."""
    print("== cold streams (api.stream, Piper joe, empty cache each)")
    if runs is None:
        runs = [
            ("back-pain", minutes, level) for minutes in lengths for level in ("beginner", "advanced")
        ] + COLD_OTHERS
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        env = dict(os.environ)
        for routine, minutes, level in runs:  # an empty phrase cache: played while its phrases are synthesised
            cold = dict(env, AUDIOWORKOUT_CACHE_DIR=str(tmp / f"cold-{routine}-{minutes}-{level}"))
            job = {"kind": "request", "routine": routine, "minutes": minutes, "level": level}
            _, rss, rep = _stream_run(job, cold, tmp)
            print(
                f"cold {routine} {minutes:3d}-min {level} stream (cold={rep['cold']}): from the request, "
                f"ID3 tag {rep['first_byte']:.2f} s, "
                f"first MP3 frame {rep['first_frame']:.2f} s, first speech audible {rep['first_speech']:.2f} s "
                f"(target <= 3 s); whole track sent in {rep['build_seconds']:.1f} s; {rep['overruns']} phrases "
                f"past their slot; peak RSS {rss:.0f} MB; decoded {rep['loudness']:.2f} LUFS (target -16 +-0.3), "
                f"{rep['peak']:.2f} dBTP (<= -1)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["speech", "build", "stream", "cold", "made-first"])
    parser.add_argument("--lengths", type=int, nargs="+", default=None)
    parser.add_argument("--stream-child", help=argparse.SUPPRESS)  # a JSON job for stream_child
    args = parser.parse_args()
    if args.stream_child:
        stream_child(json.loads(args.stream_child))
        return
    if args.only in (None, "speech"):
        bench_speech(args.lengths or [20, 45])
    if args.only in (None, "build"):
        bench_build(args.lengths or [10, 30, 60], cold_minutes=20)
    if args.only in (None, "stream"):
        bench_stream(args.lengths or [20, 60])
    elif args.only == "cold":
        bench_cold(args.lengths or [20, 60])
    elif args.only == "made-first":
        bench_cold([], MADE_FIRST)


if __name__ == "__main__":
    main()
