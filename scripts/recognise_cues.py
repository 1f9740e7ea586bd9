"""Check with an offline speech recogniser that the coach's short cue words are heard as meant.

Each cue is synthesised with the real Piper voice through the project's own speech stage, resampled
to 16 kHz, padded with 0.3 s of silence either side and transcribed by PocketSphinx (its US English
model ships in the wheel: `pip install pocketsphinx`; not a project dependency) in two ways:

* a plain decode with PocketSphinx's general English language model: what a machine with no idea
  of what was meant hears. It is weak on short, isolated words even when a person hears them well,
  so this is the harsh measure;
* a grammar decode: a JSGF grammar allows, for every content word of the cue, that word or one of
  its confusions (the ones listeners reported, e.g. lift / left, begin / again, go / no / oh, slide /
  fly, plus the commonest dictionary words one phone away from it); unstressed function words
  ("and", "the", "your", ...) are fixed. The decoder must say which candidate the audio is.

Piper samples noise inside its model, so a phrase sounds a little different every time it is
synthesised: the grammar decode runs on `--takes` renderings (the cached one a build uses, then
fresh ones), and a cue counts as *recognised* when it is right in at least half of them. Each
utterance is normalised by its own cepstral mean, so results do not depend on the order of the cues.

    python scripts/recognise_cues.py [--takes 5] [--cache-dir /tmp/cue-cache]
    python scripts/recognise_cues.py --takes 5 "Stay right there." "Keep still"   # try replacements

Without phrases it prints a table of the OLD cue words (the old start words, and the tempo and
breath words of every version of content/exercises up to the commit before the rewrite) and one of
the NEW ones (every `start_*` phrase of phrases.ENGLISH, a few other short cues, every tempo and
breath `say` of content/exercises/*.yaml as the files are now), the word errors of each, and ends
with `old: N/M recognised, new: N/M recognised; shortest new phrase X.XX s`.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import yaml
from scipy.signal import resample_poly

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from audioworkout.phrases import ENGLISH  # noqa: E402
from audioworkout.speech.textnorm import normalise  # noqa: E402

RATE = 16000  # PocketSphinx's en-us model
PAD_SECONDS = 0.3  # silence either side, so the recogniser hears a start and an end
NEIGHBOURS = 6  # automatic confusions per word: the commonest words one phone away
COMMON_FLOOR = -150000  # unigram log-probability (PocketSphinx logmath units) below which a word is too rare

# The start words the coach said before the phrases replaced them, and the short cues listeners
# complained about (old, as spoken then).
OLD_WORDS = ["Lift", "Begin.", "Go.", "Hold.", "Slide up", "and lower", "Reach", "hold", "Breathe in"]
# The last commit before the tempo words were rewritten: the old tempo words are those of every
# version of content/exercises up to it.
OLD_REV = "b6041c992cf3ca04fbc72a9f9f5b68a8b286cd4f"
# Short cues said during the work, besides the start phrases and the tempo words.
OTHER_NEW = ["Last one.", "Halfway there.", "Change direction.", "Switch sides. Left knee."]

# Confusions listeners reported, or that the sound of the word invites; the grammar decode adds the
# commonest words one phone away to these.
CONFUSIONS: dict[str, tuple[str, ...]] = {
    "lift": ("left", "list", "lived"),
    "left": ("lift", "lived", "loved"),
    "begin": ("again", "begun", "began"),
    "go": ("no", "oh", "so", "know"),
    "slide": ("fly", "slight", "sly", "side"),
    "hold": ("old", "hole", "whole"),
    "reach": ("rich", "teach", "each", "breach"),
    "breathe": ("breeze", "breed", "bring"),
    "lower": ("lover", "lore", "lure"),
    "up": ("off", "op"),
    "in": ("and", "an", "on"),
    "and": ("in", "an", "end"),
    "rise": ("rides", "rice", "wise"),
    "lean": ("leave", "clean", "lame"),
    "turn": ("term", "ton"),
    "right": ("write", "ride", "light"),
    "return": ("retain", "returned"),
    "ready": ("reading", "rainy"),
    "here": ("hear", "near", "fear"),
    "stretch": ("stress", "stitch", "straight"),
    "ease": ("these", "easy", "eat"),
    "start": ("star", "stark", "stop"),
    "still": ("steel", "stall", "fill"),
}


# Unstressed function words: spoken reduced they sound alike ("and" / "an" / "in", "the" / "a") to a
# person as much as to the recogniser, and a listener fills them in from the frame. The grammar keeps
# them fixed, so a cue is judged on the words that carry it.
FUNCTION_WORDS = frozenset("a an and the to of in on it its your you we at into with".split())
# Dictionary entries that are names, abbreviations or not words a listener would think of.
NOT_CANDIDATES = frozenset(
    "pres los lo op 'em ver til lol holt dan cheney eddie teddy freddie mitchell ritter owen stan brees swiss "
    "kelly billy barry strep fuck stuart prem jedi rudy uh".split()
)
# A candidate that is the word with one of these endings (or the reverse) is the same word to a listener.
INFLECTIONS = ("s", "es", "d", "ed", "er", "r", "ing")


def _same_word(a: str, b: str) -> bool:
    return any(a == b + end or b == a + end for end in INFLECTIONS)


@dataclass
class Result:
    text: str
    seconds: float  # the first take: the speech stage's (cached) audio, as a build uses it
    heard: str  # plain language-model decode of the first take
    chosen: list[str]  # grammar decode of every take, the first take first

    @property
    def want(self) -> list[str]:
        return words_of(self.text)

    @property
    def heard_ok(self) -> bool:
        return self.heard.split() == self.want

    @property
    def chosen_ok(self) -> bool:
        return self.chosen[0].split() == self.want

    @property
    def takes_ok(self) -> int:
        return sum(c.split() == self.want for c in self.chosen)

    @property
    def recognised(self) -> bool:
        """The grammar decode is right in at least half the takes (Piper renders a phrase differently each time)."""
        return 2 * self.takes_ok >= len(self.chosen)

    def misses(self) -> list[tuple[str, str]]:
        """(intended word, chosen instead) for every word the grammar decode got wrong, over all takes."""
        out = []
        for c in self.chosen:
            got = c.split()
            if len(got) == len(self.want):
                out += [(w, g) for w, g in zip(self.want, got, strict=True) if w != g]
            else:
                out.append((" ".join(self.want), c or "-"))
        return out


def words_of(text: str) -> list[str]:
    """The words of a cue as the recogniser's dictionary spells them: lower case, no punctuation."""
    return re.findall(r"[a-z]+(?:'[a-z]+)?", normalise(text).lower())


def to_pcm16k(samples: np.ndarray, rate: int) -> bytes:
    """float32 mono at `rate` -> 16 kHz int16 bytes with PAD_SECONDS of silence either side."""
    from math import gcd

    g = gcd(RATE, rate)
    audio = resample_poly(np.asarray(samples, dtype=np.float64), RATE // g, rate // g)
    pad = np.zeros(int(PAD_SECONDS * RATE))
    audio = np.concatenate([pad, audio, pad])
    return (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()


def _edit_distance(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    row = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (x != y))
    return row[-1]


class Recogniser:
    """PocketSphinx with its bundled US English model: a plain decode and a confusion-grammar decode."""

    def __init__(self, neighbours: int = NEIGHBOURS):
        from pocketsphinx import Decoder, get_model_path

        self.decoder = Decoder(samprate=RATE, loglevel="FATAL")
        self._cmn_init = self.decoder.get_cmn()
        self.lm = self.decoder.get_lm()
        self.neighbours = neighbours
        self._dict_path = Path(get_model_path()) / "en-us" / "cmudict-en-us.dict"
        self._prons: dict[str, set[tuple[str, ...]]] | None = None
        self._index: dict[tuple[str, ...], set[str]] | None = None
        self._searches = 0

    # The dictionary and the one-phone neighbourhood of a word.
    def _load(self) -> None:
        prons: dict[str, set[tuple[str, ...]]] = {}
        for line in self._dict_path.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) < 2:
                continue
            word = re.sub(r"\(\d+\)$", "", parts[0])
            prons.setdefault(word, set()).add(tuple(parts[1:]))
        index: dict[tuple[str, ...], set[str]] = {}
        for word, variants in prons.items():
            if self.lm.prob([word]) < COMMON_FLOOR:
                continue
            for pron in variants:
                for key in {pron, *(pron[:i] + pron[i + 1 :] for i in range(len(pron)))}:
                    index.setdefault(key, set()).add(word)
        self._prons, self._index = prons, index

    @cache  # noqa: B019 - one recogniser per run
    def candidates(self, word: str) -> tuple[str, ...]:
        """`word` first, then its listed confusions, then the commonest words one phone away (no homophones)."""
        if self._prons is None:
            self._load()
        assert self._prons is not None and self._index is not None
        own = self._prons.get(word)
        if not own:
            raise KeyError(f"{word!r} is not in the recogniser's dictionary")
        if word in FUNCTION_WORDS:
            return (word,)
        near: set[str] = set()
        for pron in own:
            for key in {pron, *(pron[:i] + pron[i + 1 :] for i in range(len(pron)))}:
                near |= self._index.get(key, set())

        def distinct(other: str) -> bool:
            theirs = self._prons.get(other, set())
            return (
                bool(theirs)
                and not (theirs & own)
                and other != word
                and other not in NOT_CANDIDATES
                and not _same_word(word, other)
            )

        near = {w for w in near if distinct(w) and min(_edit_distance(p, q) for p in own for q in self._prons[w]) == 1}
        auto = sorted(near, key=lambda w: (-self.lm.prob([w]), w))[: self.neighbours]
        listed = [w for w in CONFUSIONS.get(word, ()) if distinct(w)]
        out = [word]
        for w in listed + auto:
            if w not in out:
                out.append(w)
        return tuple(out)

    def grammar(self, words: list[str]) -> str:
        rules = [f"<w{i}> = {' | '.join(self.candidates(w))};" for i, w in enumerate(words)]
        head = " ".join(f"<w{i}>" for i in range(len(words)))
        return "#JSGF V1.0;\ngrammar cue;\npublic <cue> = " + head + ";\n" + "\n".join(rules) + "\n"

    # Decoding.
    def _run(self, pcm: bytes) -> str:
        """Decode `pcm` with the active search, normalised by its own cepstral mean.

        The decoder carries its cepstral mean from one utterance to the next, so a phrase's result
        would depend on the phrases decoded before it. Each phrase is therefore passed twice: once
        from the model's initial mean to estimate its own, then decoded with that.
        """
        self.decoder.set_cmn(self._cmn_init)
        for _ in range(2):
            self.decoder.start_utt()
            self.decoder.process_raw(pcm, full_utt=True)
            self.decoder.end_utt()
            self.decoder.set_cmn(self.decoder.get_cmn())
        hyp = self.decoder.hyp()
        return hyp.hypstr if hyp is not None else ""

    def decode_lm(self, pcm: bytes) -> str:
        """What the general English language model hears."""
        self.decoder.activate_search()
        return self._run(pcm)

    def decode_choice(self, pcm: bytes, words: list[str]) -> str:
        """Which candidate sequence of the confusion grammar for `words` the decoder prefers."""
        self._searches += 1
        name = f"cue{self._searches}"
        self.decoder.add_jsgf_string(name, self.grammar(words))
        self.decoder.activate_search(name)
        try:
            return self._run(pcm)
        finally:
            self.decoder.activate_search()
            self.decoder.remove_search(name)


def contains(heard: list[str], key: list[str]) -> bool:
    """`key` appears as consecutive words in `heard`."""
    return any(heard[i : i + len(key)] == key for i in range(len(heard) - len(key) + 1))


def check(recogniser: Recogniser, text: str, takes: list[np.ndarray], rate: int) -> Result:
    """The plain decode of the first take (the cached one a build uses); the grammar decode of every take."""
    want = words_of(text)
    heard = recogniser.decode_lm(to_pcm16k(takes[0], rate))
    chosen = [recogniser.decode_choice(to_pcm16k(t, rate), want) for t in takes]
    return Result(text, len(takes[0]) / rate, heard, chosen)


def renderings(speaker, text: str, count: int) -> list[np.ndarray]:
    """The speech stage's audio for `text` (cached, as a build uses it), then count - 1 fresh renderings.

    Piper samples noise in its model, so each synthesis of a phrase differs a little; the fresh
    ones go through the same engine and quantisation as the speaker's, but not into the cache.
    """
    from audioworkout.speech.cache import quantise

    out = [speaker.audio(text)]
    for _ in range(count - 1):
        out.append(quantise(speaker.engine.synthesize(normalise(text))).astype(np.float32) / 32767.0)
    return out


# Where the cues come from.
def start_phrases() -> dict[str, str]:
    return {key: text for key, text in ENGLISH.items() if key.startswith("start_")}


def _spoken_tempo(doc: object) -> list[str]:
    """Every `say` of an exercise file (tempo phases, and breath phases in the newer format), as the
    script speaks it: tempo words of a reps exercise capitalised, breath words as written."""
    out: list[str] = []
    if not isinstance(doc, dict):
        return out
    breaths = doc.get("kind") == "breaths"

    def walk(node: object, in_tempo: bool) -> None:
        if isinstance(node, dict):
            say = node.get("say")
            if isinstance(say, str) and say:
                out.append(say[0].upper() + say[1:] if in_tempo and not breaths else say)
            for key, value in node.items():
                walk(value, in_tempo or key == "tempo")
        elif isinstance(node, list):
            for item in node:
                walk(item, in_tempo)

    walk(doc, False)
    return out


def current_tempo_words() -> list[str]:
    out: list[str] = []
    for path in sorted((ROOT / "content" / "exercises").glob("*.yaml")):
        for say in _spoken_tempo(yaml.safe_load(path.read_text(encoding="utf-8"))):
            if say not in out:
                out.append(say)
    return out


def old_tempo_words(rev: str = OLD_REV) -> list[str]:
    """Tempo and breath words of every committed version of content/exercises up to `rev` (read-only git)."""
    git = ["git", "-C", str(ROOT)]
    commits = subprocess.run(
        git + ["log", "--format=%H", rev, "--", "content/exercises"], capture_output=True, text=True, check=True
    ).stdout.split()
    specs = []
    for commit in reversed(commits):
        names = subprocess.run(
            git + ["ls-tree", "--name-only", commit, "content/exercises/"], capture_output=True, text=True, check=True
        ).stdout.split()
        specs += [f"{commit}:{name}" for name in names if name.endswith(".yaml")]
    blobs = subprocess.run(
        git + ["cat-file", "--batch"], input=("\n".join(specs) + "\n").encode(), capture_output=True, check=True
    ).stdout
    out: list[str] = []
    pos = 0
    while pos < len(blobs):
        end = blobs.index(b"\n", pos)
        header = blobs[pos:end].split()
        pos = end + 1
        if len(header) < 3 or header[1] != b"blob":
            continue
        size = int(header[2])
        body, pos = blobs[pos : pos + size], pos + size + 1
        for say in _spoken_tempo(yaml.safe_load(body.decode("utf-8"))):
            if say not in out:
                out.append(say)
    return out


def unique(items: list[str]) -> list[str]:
    out: list[str] = []
    for item in items:
        if item not in out:
            out.append(item)
    return out


def make_voice(cache_dir: Path, engine: str = "piper"):
    from audioworkout.speech import SpeechSettings, make_speaker

    return make_speaker(SpeechSettings(engine=engine, cache_dir=cache_dir))


def table(title: str, results: list[Result]) -> None:
    width = max(len(r.text) for r in results) + 2
    yes = {True: "yes", False: "no"}
    print(f"\n{title}")
    print(
        f"{'phrase':<{width}} {'dur s':>5}  {'LM decode':<30} {'ok':<3}  {'grammar decode':<30} {'ok':<3}  "
        f"{'takes':>5}  recognised"
    )
    for r in results:
        print(
            f"{r.text:<{width}} {r.seconds:5.2f}  {r.heard or '-':<30} {yes[r.heard_ok]:<3}  "
            f"{r.chosen[0] or '-':<30} {yes[r.chosen_ok]:<3}  {r.takes_ok:>2}/{len(r.chosen):<2}  {yes[r.recognised]}"
        )


def miss_tally(results: list[Result]) -> str:
    """ "hold->old 12, knee->me 9, ...": the grammar decode's word errors over every take."""
    counts: dict[tuple[str, str], int] = {}
    for r in results:
        for miss in r.misses():
            counts[miss] = counts.get(miss, 0) + 1
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{w}->{g} {n}" for (w, g), n in ranked) or "none"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "phrases",
        nargs="*",
        help="try these phrases instead of the old and new cue words (e.g. candidate replacements)",
    )
    parser.add_argument(
        "--cache-dir", type=Path, default=Path("/tmp/cue-cache"), help="phrase cache (default %(default)s)"
    )
    parser.add_argument(
        "--old-rev", default=OLD_REV, help="last commit of the old tempo words (default: the one before the rewrite)"
    )
    parser.add_argument("--engine", default="piper", help="speech engine (default %(default)s; pico to compare voices)")
    parser.add_argument(
        "--neighbours",
        type=int,
        default=NEIGHBOURS,
        help="automatic confusions per word in the grammar (default %(default)s)",
    )
    parser.add_argument(
        "--takes",
        type=int,
        default=3,
        help="renderings per phrase for the grammar decode, the cached one first (default %(default)s)",
    )
    parser.add_argument("--show-grammar", action="store_true", help="print each cue's candidate words")
    args = parser.parse_args(argv)

    try:
        recogniser = Recogniser(args.neighbours)
    except ImportError:
        print("pocketsphinx is not installed: pip install pocketsphinx", file=sys.stderr)
        return 1

    if args.phrases:
        groups = {"tried": unique(args.phrases)}
    else:
        groups = {
            "old": unique(OLD_WORDS + old_tempo_words(args.old_rev)),
            "new": unique(list(start_phrases().values()) + OTHER_NEW + current_tempo_words()),
        }
    for texts in groups.values():
        for text in texts:
            for word in words_of(text):
                recogniser.candidates(word)  # fail early on a word the dictionary lacks
    speaker = make_voice(args.cache_dir, args.engine)
    speaker.prefetch([t for texts in groups.values() for t in texts])
    rate = speaker.engine.sample_rate

    results: dict[str, list[Result]] = {}
    for name, texts in groups.items():
        results[name] = [check(recogniser, text, renderings(speaker, text, max(1, args.takes)), rate) for text in texts]
        table(f"{name.upper()} cue words ({len(texts)}), {args.engine}", results[name])
        if args.show_grammar:
            for text in texts:
                print(f"  {text}: " + " / ".join("|".join(recogniser.candidates(w)) for w in words_of(text)))
        print(f"{name} word errors (grammar decode, all takes): {miss_tally(results[name])}")

    def count(name: str, attr: str) -> str:
        return f"{sum(getattr(r, attr) for r in results[name])}/{len(results[name])}"

    print(f"\nrecognised = the grammar decode is right in at least half of {max(1, args.takes)} takes")
    if "tried" in results:
        print(f"tried: {count('tried', 'recognised')} recognised")
        return 0
    shortest = min(results["new"], key=lambda r: r.seconds)
    print(
        f"plain LM decode, first take: old: {count('old', 'heard_ok')} heard exactly, "
        f"new: {count('new', 'heard_ok')} heard exactly"
    )
    print(f"grammar decode, first take: old: {count('old', 'chosen_ok')}, new: {count('new', 'chosen_ok')}")
    print(f"shortest new phrase: {shortest.text!r}")
    print(
        f"old: {count('old', 'recognised')} recognised, new: {count('new', 'recognised')} recognised; "
        f"shortest new phrase {shortest.seconds:.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
