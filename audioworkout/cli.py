"""The `audioworkout` command: a thin click layer over :mod:`audioworkout.api`.

Every error a user can cause is printed as one line (`Error: …`) with a non-zero exit, never a
traceback: 2 for bad content or arguments, 1 for everything else.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from . import __version__
from .content import CHIME_SETS, LEVELS
from .errors import AudioworkoutError, UsageError, printable
from .speech import SpeechSettings, engine_names

LEVEL_CHOICE = click.Choice(LEVELS)
ENGINE_CHOICE = click.Choice(engine_names())


def report(exc: AudioworkoutError) -> None:
    """Our errors as `Error: …` lines on stderr: one per problem (a content file may have several)."""
    for line in str(exc).splitlines() or [type(exc).__name__]:
        click.echo(f"Error: {line}", err=True)


class Commands(click.Group):
    """The command group; every command's errors pass through `invoke` once, so none can forget them."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except AudioworkoutError as exc:
            report(exc)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted; nothing partial was left behind.", err=True)
            sys.exit(130)
        except OSError as exc:  # the environment: a full disk, a folder we may not write...
            name = os.fsdecode(exc.filename) if isinstance(exc.filename, bytes) else str(exc.filename)
            where = f"{printable(name)}: " if exc.filename else ""
            click.echo(f"Error: {where}{exc.strerror or exc}", err=True)
            sys.exit(1)


def exact_option(func):
    return click.option(
        "--exact",
        is_flag=True,
        help="Play the routine's amounts and rests exactly as written, at its natural length (no fitting).",
    )(func)


def load_for_session(name: str, minutes: float | None, exact: bool):
    """The routine; with --exact, as written (exact mode), which a length cannot go with."""
    from dataclasses import replace

    from . import api

    routine = api.load_routine(name)
    if exact:
        if minutes is not None:
            raise UsageError("--exact plays the routine as written, at its own length; leave out --minutes")
        routine = replace(routine, fit=False)
    return routine


def output_option(help: str, allow_dash: bool = False):
    """The output folder option, the same for build, feed and serve (build also takes `-` for stdout)."""
    return click.option(
        "--output",
        "-o",
        "output_dir",
        type=click.Path(file_okay=False, path_type=Path, allow_dash=allow_dash),
        default=Path("output"),
        show_default=True,
        help=help,
    )


def minutes_option(func):
    return click.option(
        "--minutes",
        "-m",
        type=click.FloatRange(5, 60),
        default=None,
        help="Session length in minutes, 5 to 60 (default: the routine's own).",
    )(func)


def level_option(func):
    return click.option(
        "--level",
        "-l",
        type=LEVEL_CHOICE,
        default=None,
        help="beginner, intermediate or advanced (default: the routine's own).",
    )(func)


def speech_options(func):
    """The options that choose a voice; shared by `script` and `build`."""
    for option in reversed(_speech_option_list()):
        func = option(func)
    return func


def voice_options(func):
    """The speech options without --jobs (which `programme build` uses for episodes at once)."""
    for option in reversed(_speech_option_list()[:-1]):
        func = option(func)
    return func


def _speech_option_list() -> list[Any]:
    return [
        click.option(
            "--engine",
            type=ENGINE_CHOICE,
            default="piper",
            show_default=True,
            help="Speech engine: piper (offline, default), pico (offline, small) or gtts (online extra).",
        ),
        click.option(
            "--voice",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="A Piper voice file (.onnx, with its .onnx.json beside it).",
        ),
        click.option("--lang", default=None, help="Language: pico en-US|en-GB; gtts e.g. en."),
        click.option("--tld", default=None, help="gTTS accent by Google domain, e.g. co.uk, com.au."),
        click.option(
            "--pace",
            type=click.FloatRange(0.6, 1.6),
            default=1.0,
            show_default=True,
            help="Speaking rate (1.0 normal; 0.8 slower; 1.2 faster).",
        ),
        click.option(
            "--sentence-pause",
            type=click.FloatRange(0, 2),
            default=0.25,
            show_default=True,
            help="Seconds of silence between sentences of one phrase (piper, pico).",
        ),
        click.option(
            "--cache-dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            envvar="AUDIOWORKOUT_CACHE_DIR",
            help="Phrase cache folder (env AUDIOWORKOUT_CACHE_DIR).",
        ),
        click.option(
            "--jobs",
            "-j",
            type=click.IntRange(1, 64),
            default=None,
            help="Phrases piper synthesises at once (default: one per CPU core, at most 4); "
            "with several --minutes or --level values, also the tracks built at once.",
        ),
    ]


def speech_settings(kwargs: dict[str, Any]) -> SpeechSettings:
    """The speech options, taken out of a command's keyword arguments once."""
    names = ("engine", "voice", "lang", "tld", "pace", "sentence_pause", "jobs", "cache_dir")
    settings = SpeechSettings(**{name: kwargs.pop(name, None) for name in names if name in kwargs})
    if settings.cache_dir is not None:  # worker processes (or machines) may start elsewhere
        settings = replace(settings, cache_dir=Path(settings.cache_dir).expanduser().absolute())
    return settings


class BatchProgress:
    """One progress bar for many tracks: the shared phrases first, then the tracks (stderr, TTY only)."""

    def __init__(self) -> None:
        self.bar = StageProgress({"phrases": (0, 30), "tracks": (30, 100)})

    def __call__(self, stage: str, done: int, total: int) -> None:
        self.bar(stage, done / max(total, 1), f"{stage} {done}/{total}")

    def close(self) -> None:
        self.bar.close()


def run_batch(jobs: list[Any], workers: int | None, scheduler: str | None) -> Any:
    """Run build jobs with one progress bar; return the batch result."""
    from .batch import run_jobs

    bar = BatchProgress() if sys.stderr.isatty() else None
    try:
        return run_jobs(jobs, workers=workers, scheduler=scheduler, progress=bar)
    finally:
        if bar:
            bar.close()


def report_batch(result: Any) -> None:
    built, skipped = len(result.built), len(result.skipped)
    click.echo(
        f"Built {built} track{'s' if built != 1 else ''} ({skipped} up to date) in {result.wall:.1f} s; "
        f"{result.synthesised} phrase{'s' if result.synthesised != 1 else ''} synthesised"
    )
    for r in result.built:
        click.echo(f"  {r.stem}.mp3  {r.seconds / 60:.1f} min")


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="audioworkout")
def main():
    """Turn a workout routine into a voice-guided MP3 you can follow without a screen."""


@main.command("list")
def list_routines():
    """The bundled routines, their sections and the session lengths each supports."""
    from . import api

    for name in api.routine_names():
        summary = api.summarise(api.load_routine(name))
        click.echo(f"{summary.id}")
        click.echo(f"  {summary.title}")
        click.echo(f"  sections: {', '.join(summary.sections)}")
        if summary.shortest_minutes <= summary.longest_minutes:
            length = f"{summary.shortest_minutes} to {summary.longest_minutes} minutes"
        else:
            length = "no length from 5 to 60 minutes"
        click.echo(f"  length: {length} at {summary.default_level} (default {summary.default_minutes:g} min)")


@main.command()
@click.argument("routine")
def show(routine):
    """A routine's sections, exercises and settings. ROUTINE is a name or a path to a .yaml file."""
    from . import api

    r = api.load_routine(routine)
    click.echo(f"{r.title}  ({r.id})")
    click.echo(r.description)
    click.echo(f"Default: {r.minutes:g} minutes, {r.level}")
    rest = r.rest
    click.echo("Rest between exercises: " + ", ".join(f"{lv} {s:g} s" for lv, s in rest.between_exercises.items()))
    click.echo(
        "Rest between sets: "
        + ", ".join(f"{lv} {s:g} s" for lv, s in rest.between_sets.items())
        + f"; switching sides {rest.switch_sides:g} s"
    )
    click.echo("Safety:")
    for note in r.safety:
        click.echo(f"  - {note}")
    for section in r.sections:
        rounds = (
            "" if max(section.rounds.values()) == 1 else "  rounds " + "/".join(str(v) for v in section.rounds.values())
        )
        click.echo(f"\n{section.name}  (chimes: {section.chimes}){rounds}")
        for item in section.items:
            ex = item.exercise
            amounts = "/".join(str(ex.amounts[lv]) for lv in ("beginner", "intermediate", "advanced"))
            sets = "/".join(str(ex.sets[lv]) for lv in ("beginner", "intermediate", "advanced"))
            sides = "" if ex.sides == "none" else f", {ex.sides} side"
            click.echo(
                f"  {ex.name} [{ex.kind}{sides}] {amounts} {ex.unit}, sets {sets} "
                f"(beginner/intermediate/advanced), priority {item.priority}"
            )
            click.echo(f"    setup: {ex.setup}")
            if ex.brief:  # said where a changeover has no room for the set-up
                click.echo(f"    brief: {ex.brief}")


@main.command()
@click.argument("routine")
@minutes_option
@exact_option
@level_option
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown"]), default="text", show_default=True)
@click.option("--estimate", is_flag=True, help="Estimate phrase lengths from the text instead of synthesising.")
@speech_options
def script(routine, minutes, level, fmt, estimate, exact, **speech):
    """The timed script: every cue with its time, and the total length."""
    from . import api
    from .audio.sidecars import script_markdown
    from .script import print_text

    r = load_for_session(routine, minutes, exact)
    settings = speech_settings(speech)
    speaker = None if estimate else api.make_speaker(settings)
    _, s = api.plan_session(r, minutes, level, speaker=speaker)
    if fmt == "json":
        click.echo(s.to_json())
    elif fmt == "markdown":
        click.echo(script_markdown(s))
    else:
        for line in print_text(s):
            click.echo(line)


@main.command()
@click.argument("routine")
@click.option(
    "--minutes",
    "-m",
    "minutes",
    type=click.FloatRange(5, 60),
    multiple=True,
    help="A length to check (repeatable; default: every 5 minutes the routine supports, and its own).",
)
@click.option(
    "--level",
    "-l",
    "levels",
    type=LEVEL_CHOICE,
    multiple=True,
    help="A level to check (repeatable; default: all three).",
)
def review(routine, minutes, levels):
    """Apply the coaching rules to a routine's sessions; print each rule broken; exit 1 if any."""
    from . import api

    r = api.load_routine(routine)
    sessions = api.review_routine(r, list(minutes) or None, list(levels) or None)
    found = 0
    for session in sessions:
        length = "exact" if session.minutes is None else f"{session.minutes:g} min"
        for finding in session.findings:
            click.echo(f"[{r.id} {length} {session.level}] {finding}")
            found += 1
        if session.skipped:
            click.echo(f"[{r.id} {length} {session.level}] not made: {session.skipped.split('; ', 1)[-1]}")
    checked = len({(s.minutes, s.level) for s in sessions if s.level != "all levels" and not s.skipped})
    click.echo(
        f"{found} finding(s) in {checked} session(s) of {r.id}"
        if found
        else f"{r.id}: {checked} session(s) reviewed, no rule broken"
    )
    if found:
        sys.exit(1)


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def validate(files):
    """Check routine, exercise or show files: every problem in every file, with its line; exit 2 if any."""
    from . import api

    failed = 0
    for path in files:
        try:
            kind = api.validate_file(path)
        except AudioworkoutError as exc:
            report(exc)
            failed += 1
        else:
            click.echo(f"{path}: ok ({kind})")
    if failed:
        sys.exit(2)


@main.command()
def voices():
    """The speech engines and voices on this machine, the default, and each voice's licence."""
    from .speech import list_voices

    for v in list_voices():
        mark = "*" if v.default else " "
        state = "available" if v.available else "not available"
        click.echo(f"{mark} {v.engine:6} {v.voice:28} {v.language:6} {v.sample_rate:>6} Hz  {state}")
        click.echo(f"         licence: {v.licence}" + (f"; {v.note}" if v.note else ""))
    click.echo("* default")


@main.group()
def cache():
    """The phrase cache: synthesised speech kept on disk."""


@cache.command("info")
@click.option(
    "--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None, envvar="AUDIOWORKOUT_CACHE_DIR"
)
def cache_info(cache_dir):
    """Where the cache is, its entries and size."""
    from .speech import PhraseCache

    c = PhraseCache(cache_dir)
    entries, size = c.info()
    click.echo(f"{c.directory}: {entries} phrases, {size / 1e6:.1f} MB")


@cache.command("clear")
@click.option(
    "--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None, envvar="AUDIOWORKOUT_CACHE_DIR"
)
def cache_clear(cache_dir):
    """Delete every cached phrase (with its levels) and the stored plans."""
    from .speech import PhraseCache

    c = PhraseCache(cache_dir)
    click.echo(f"Removed {c.clear()} phrases from {c.directory}")


def _chime_files(values: tuple[str, ...]) -> dict[str, Path]:
    out = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name or not path:
            raise UsageError(f"--chime: got {value!r}; expected NAME=FILE, e.g. start=bell.wav")
        out[name.strip()] = Path(path).expanduser()
    return out


class StageProgress:
    """One progress bar through stages, each a share of it (stderr, TTY only): by default a build's
    synthesis, the loudness analysis (mastering), then rendering into the encoder."""

    STAGES = {"synthesising": (0, 55), "mastering": (55, 70), "encoding": (70, 100)}

    def __init__(self, stages: dict[str, tuple[int, int]] | None = None) -> None:
        self.stages = stages or self.STAGES
        self.bar: Any = click.progressbar(
            length=100, label="building", file=sys.stderr, width=30, show_eta=False, show_percent=True
        )
        self.bar.__enter__()
        self.done = 0

    def __call__(self, stage: str, fraction: float, label: str | None = None) -> None:
        lo, hi = self.stages.get(stage, (0, 100))
        target = int(lo + (hi - lo) * min(max(fraction, 0.0), 1.0))
        self.bar.label = label or f"{stage:12}"
        if target > self.done:
            self.bar.update(target - self.done)
            self.done = target

    def close(self) -> None:
        self.bar.__exit__(None, None, None)


def _stop_on_sigterm() -> None:
    """SIGTERM behaves like Ctrl-C, so temporary files are cleaned up on the way out."""
    import signal

    def handler(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


class CommaList(click.ParamType):
    """`10,20,30` or `beginner,advanced`: each item checked by `item` (a click type)."""

    name = "list"

    def __init__(self, item: click.ParamType):
        self.item = item

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if isinstance(value, list):
            return value
        items = [v.strip() for v in str(value).split(",") if v.strip()]
        if not items:
            self.fail("expected at least one value", param, ctx)
        return list(dict.fromkeys(self.item.convert(v, param, ctx) for v in items))


@main.command()
@click.argument("routine")
@click.option(
    "--minutes",
    "-m",
    "minutes_list",
    type=CommaList(click.FloatRange(5, 60)),
    default=None,
    help="Session length in minutes, 5 to 60 (default: the routine's own); several (10,20,30) build a catalogue.",
)
@exact_option
@click.option(
    "--level",
    "-l",
    "levels",
    type=CommaList(LEVEL_CHOICE),
    default=None,
    help="beginner, intermediate or advanced (default: the routine's own); several (beginner,advanced) "
    "build one track each.",
)
@speech_options
@click.option(
    "--music",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="Background music: a file or a folder of files, looped and ducked under speech.",
)
@click.option(
    "--chime",
    "chime_values",
    multiple=True,
    metavar="NAME=FILE",
    help="Use your own sound for a chime (get_ready, start, halfway, switch, countdown, end, finish).",
)
@click.option(
    "--chimes",
    "chime_set",
    type=click.Choice(("auto", *CHIME_SETS)),
    default="auto",
    show_default=True,
    help="Chime set: each section's own (auto), or bright or soft everywhere.",
)
@click.option(
    "--cover",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Cover art (PNG or JPEG) for the MP3 tags.",
)
@output_option("Folder for the MP3 and its sidecars; - writes the MP3 alone to stdout as it renders.", allow_dash=True)
@click.option(
    "--bitrate",
    type=click.Choice(["64", "96", "128", "160", "192"]),
    default="96",
    show_default=True,
    help="MP3 bitrate in kbps (constant).",
)
@click.option("--dry-run", is_flag=True, help="Print the plan and its length; write nothing.")
def build(
    routine, minutes_list, levels, music, chime_values, chime_set, cover, output_dir, bitrate, dry_run, exact, **speech
):
    """Build the MP3 for ROUTINE with its cue sheet, transcript, chapters and plan.

    Several --minutes and --level values build every combination, in parallel (a catalogue)."""
    from . import api
    from .script import clock

    _stop_on_sigterm()
    lengths, chosen = minutes_list or [None], levels or [None]
    minutes, level = lengths[0], chosen[0]
    r = load_for_session(routine, minutes, exact)
    options = api.BuildOptions(
        music=music,
        chime_files=_chime_files(chime_values),
        chime_set=chime_set,
        cover=cover,
        output_dir=output_dir,
        bitrate_kbps=int(bitrate),
        dry_run=dry_run,
    )
    to_stdout = str(output_dir) == "-"
    if len(lengths) * len(chosen) > 1:
        if dry_run:
            raise UsageError("--dry-run shows one session; give one --minutes and one --level")
        if to_stdout:
            raise UsageError("--output -: stdout takes one track; give one --minutes and one --level")
        _build_catalogue(r, lengths, chosen, speech_settings(speech), options)
        return
    if to_stdout and not dry_run:
        _stream_to_stdout(r, minutes, level, speech_settings(speech), options)
        return
    bar = StageProgress() if not dry_run and sys.stderr.isatty() else None
    try:
        result = api.build(r, minutes, level, speech_settings(speech), options, progress=bar)
    finally:
        if bar:
            bar.close()
    if dry_run:
        for span in result.script.spans:
            indent = "" if span.kind == "section" else "  "
            amount = f"  {span.amount}" if span.amount else ""
            click.echo(f"{clock(span.start)}  {indent}{span.title}{amount}")
        click.echo(
            f"Total: {clock(result.seconds)} ({result.seconds / 60:.1f} minutes); nothing written (dry run: "
            f"{result.cached_phrases} phrases timed from the cache, {result.estimated_phrases} estimated)"
        )
        return
    click.echo(
        f"Wrote {result.mp3}  {clock(result.seconds)} ({result.seconds / 60:.1f} min), "
        f"{result.loudness_lufs:.1f} LUFS, true peak {result.true_peak_dbtp:.1f} dBTP"
    )
    for path in result.sidecars:
        click.echo(f"  {path}")


def _stream_to_stdout(routine, minutes, level, settings, options) -> None:
    """`build -o -`: the MP3 to stdout as it renders (tags and chapters first), the summary to stderr.

    A listener that stops (mpv quit, `| head -c`) closes the pipe: the render and the encoder stop
    and the command ends quietly, as a pipeline expects.
    """
    from . import api
    from .script import clock

    out = sys.stdout.buffer
    if out.isatty():
        raise UsageError("--output -: stdout is a terminal; pipe the MP3 to a player or a file (… -o - | mpv -)")
    bar = StageProgress() if sys.stderr.isatty() else None
    try:
        result = api.stream(routine, out, minutes, level, settings, options, progress=bar)
    except BrokenPipeError:
        _quiet_stdout()
        return
    finally:
        if bar:
            bar.close()
    click.echo(
        f"Streamed {clock(result.seconds)} ({result.seconds / 60:.1f} min), {result.bytes_written} bytes, "
        f"about {result.loudness_lufs:.1f} LUFS, true peak about {result.true_peak_dbtp:.1f} dBTP"
        + ("; played while its speech was synthesised" if result.cold else ""),
        err=True,
    )
    if result.cold:
        _warm_after_stream(routine, minutes, level, settings, options)


def _warm_after_stream(routine, minutes, level, settings, options) -> None:
    """After a cold stream sent in full: stdout closed first (the player has it all and ends), then the
    rest of the file build's phrases, so the next play and `build` of these settings are warm. A stream
    read at its pace has made them as it played (this then only checks); one read faster (a download)
    had ended before. Ctrl-C skips it: what is made is kept, nothing half-made."""
    from . import api

    out = sys.stdout.buffer
    try:
        out.flush()
    except BrokenPipeError:
        pass
    _quiet_stdout()  # the pipe's reader sees its end now, not when this is done
    click.echo("Making the rest of this session's phrases for its next play (Ctrl-C skips)…", err=True)
    try:
        api.warm_cache(routine, minutes, level, settings, options)
    except KeyboardInterrupt:
        click.echo("Skipped; what was made is kept, the next play makes the rest.", err=True)
    except UsageError as exc:  # the stream is whole; only a file build of it is out of this voice's reach
        click.echo(f"Streamed in full, but not kept for a next play: {printable(str(exc))}", err=True)


def _quiet_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so Python's exit flush raises nothing."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


@main.group()
def programme():
    """Programmes: a series of sessions week by week (e.g. Walk to Run 5K), built as a serial podcast."""


@programme.command("list")
def programme_list():
    """The bundled programmes, their weeks and sessions."""
    from .programme import load_programme, programme_names

    for name in programme_names():
        p = load_programme(name)
        click.echo(name)
        click.echo(f"  {p.title}")
        click.echo(f"  {p.weeks} weeks, {len(p.episodes)} sessions")


@programme.command("show")
@click.argument("name")
def programme_show(name):
    """Every session of a programme, expanded: week, session, length, level and what it holds."""
    from . import api
    from .programme import load_programme
    from .script import clock

    p = load_programme(name)
    click.echo(f"{p.title}  ({p.id}): {p.weeks} weeks, {len(p.episodes)} sessions")
    click.echo(p.description)
    week = 0
    for e in p.episodes:
        if e.week != week:
            week = e.week
            click.echo(f"\nWeek {week}")
            if e.week_intro:
                click.echo(f"  {e.week_intro}")
        if e.minutes is None and not e.routine.fit:
            _, script = api.plan_session(e.routine, None, e.level)  # as written: its length is known now
            length = clock(script.total_seconds)
        else:
            length = clock(60 * (e.minutes or e.routine.minutes))
        click.echo(f"  Week {e.week}, Session {e.session}  {length}  {e.summary}  -> {e.stem}.mp3")
    if p.sources:
        click.echo("\nSources:")
        for source in p.sources:
            click.echo(f"  - {source}")


@programme.command("build")
@click.argument("name")
@click.option("--only", default=None, help="Build a subset: week3, week3-session2, or a comma list of them.")
@click.option(
    "--jobs",
    "-j",
    "workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Episodes built at once (default: one per CPU core).",
)
@click.option(
    "--scheduler",
    default=None,
    metavar="tcp://HOST:8786",
    help="Build on an existing Dask cluster (pip install 'audioworkout[distributed]'); "
    "--cache-dir must be a folder every worker sees.",
)
@output_option("The folder the programme's folder (named after the programme) goes in.")
@click.option("--base-url", default=None, help="Where the programme's folder will be published (for the feed).")
@voice_options
def programme_build(name, only, workers, scheduler, output_dir, base_url, **speech):
    """Build every episode of a programme into OUTPUT/<programme>/, then its serial podcast feed and page.

    Episodes whose inputs (content, settings, voice, code) are unchanged are not rebuilt."""
    from .batch import programme_jobs
    from .programme import load_programme
    from .publish.feed import build_feed
    from .publish.podcast import load_show

    _stop_on_sigterm()
    p = load_programme(name)
    episodes = p.select(only)
    folder = Path(output_dir) / p.id
    jobs = programme_jobs(p, episodes, speech_settings(speech), Path(output_dir))
    result = run_batch(jobs, workers, scheduler)
    report_batch(result)
    show = replace(load_show(None), title=p.title, description=p.description, author=p.author, cover=p.cover)
    written = build_feed(folder, base_url=base_url, show=show)
    click.echo(f"Wrote {written.feed} ({written.items} episode{'s' if written.items != 1 else ''}) and {written.page}")


def _build_catalogue(routine: Any, lengths: list[Any], levels: list[Any], settings: Any, options: Any) -> None:
    """Every length at every level, built in parallel (--jobs at once), each skipped when up to date."""
    from . import api
    from .batch import BuildJob

    jobs = []
    for minutes in lengths:
        for level in levels:
            lv = level or routine.level
            stem = api.track_stem(routine, minutes or routine.minutes, lv)
            jobs.append(BuildJob(routine, minutes, lv, settings, replace(options, stem=stem), label=stem))
    report_batch(run_batch(jobs, settings.jobs, None))


@main.command()
@output_option("The folder of built tracks.")
@click.option(
    "--base-url",
    default=None,
    help="Where the folder will be published, e.g. https://example.org/workouts/ (default: the show "
    "file's, else http://localhost:8000/ for `audioworkout serve`).",
)
@click.option(
    "--config",
    "show_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Show settings (title, author, owner, description, language, category, cover…) in YAML.",
)
def feed(output_dir, base_url, show_file):
    """Write feed.xml (a podcast feed) and index.html (a web page) for every track in the folder."""
    from .publish.feed import build_feed

    result = build_feed(output_dir, base_url=base_url, show_file=show_file)
    click.echo(f"Wrote {result.feed} ({result.items} episodes) and {result.page}")
    cover = "generated" if result.cover_generated else "from the show file"
    click.echo(f"  cover: {result.cover} ({cover})")
    click.echo(f"  subscribe at: {result.feed_url}")


@main.command()
@output_option("The folder to serve.")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; 0.0.0.0 lets other devices on your network in.",
)
@click.option("--port", "-p", type=click.IntRange(0, 65535), default=8000, show_default=True)
@click.option(
    "--max-renders",
    type=click.IntRange(1, 16),
    default=2,
    show_default=True,
    help="Sessions the studio renders at once (streams and saves); more get 429 Too Many Requests.",
)
@click.option(
    "--no-studio",
    is_flag=True,
    help="Serve the files only: no /studio, /stream.mp3, /plan.json, /playing.json or /save.",
)
@click.option(
    "--base-url",
    default=None,
    help="For the feed the studio's Save rewrites, as `audioworkout feed --base-url` (default: the same).",
)
@click.option(
    "--config",
    "show_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Show settings for that feed, as `audioworkout feed --config`.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    envvar="AUDIOWORKOUT_CACHE_DIR",
    help="Phrase cache folder for the studio's voices (env AUDIOWORKOUT_CACHE_DIR).",
)
def serve(output_dir, host, port, max_renders, no_studio, base_url, show_file, cache_dir):
    """Serve the output folder over HTTP (range requests, so players can seek) until Ctrl-C.

    Also the studio at http://127.0.0.1:8000/studio: pick a routine, length, level and voice, see
    the plan, press play to hear it as it renders (/stream.mp3), save it to the feed. Routines
    are the bundled ones and OUTPUT/content/routines/*.yaml; music, OUTPUT/music/*."""
    from .publish.serve import serve as run_server

    speech = speech_settings({"cache_dir": cache_dir})
    run_server(
        output_dir,
        host=host,
        port=port,
        studio=not no_studio,
        max_renders=max_renders,
        speech=speech,
        base_url=base_url,
        show_file=show_file,
    )


if __name__ == "__main__":  # pragma: no cover
    main()
