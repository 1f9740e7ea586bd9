"""Every sentence the coach says, in one table, so a second language is one more table, not a hunt.

Templates are `str.format` strings; `say(key, **fields)` fills one. Amounts are written with digits
("45 seconds") and spelled out by the speech stage's text normaliser, which also keeps the cache
keys of equal sentences equal. Pools of encouragement are chosen from with a seeded random
generator by the script, so a build is reproducible and different tracks do not sound identical.
"""

from __future__ import annotations

import functools
import random

ENGLISH: dict[str, str] = {
    # The intro: what this session holds, what it needs, when to stop, what the sounds mean.
    "welcome": "Welcome to {title}.",
    "session": "This session is {length} at {level} level: {count} exercises, {parts}.",
    "session_parts": "This session is {length}, in {parts}.",
    "interval_plan_same": "There are {count} in all, each {length} long.",
    "interval_plan_one": "Today is one {noun} of {length}.",
    "interval_plan": "There are {count} in all, from {low} to {high}.",
    "session_one_part": "This session is {length} at {level} level: {count} exercises.",
    "equipment": "You will need {items} for this session. Get set up now.",  # fits one item or several, a wall as well as a mat
    "no_equipment": "You need no equipment, just a little space to move.",
    "safety": "Before we start, a few safety points. {notes}",
    "sounds_energetic": "A bell starts each exercise and a low tone ends it. Three short beeps count you in.",
    "sounds_calm": "A soft bell starts each exercise and a low tone ends it.",
    "sounds_intervals": "A bell marks each change, and three short beeps come just before it. "
    "I will tell you what is next before each one.",
    # Sections and rounds.
    "part": "Part {number}: {name}. {intro}",
    "part_no_intro": "Part {number}: {name}.",
    "rounds_ahead": "We will go through it {rounds} times.",
    "round": "Round {round} of {rounds}.",
    "last_round": "Last round. Round {round} of {rounds}.",
    "rest_round": "Rest for {length}. Round {round} is next.",
    # Transitions: a rest named with its length, the next exercise, then how to do it (before the clock).
    "rest": "Rest for {length}.",
    "rest_moving": "Walk for {length}.",  # a warm-up keeps moving between its moves
    "next_first": "Exercise {number} of {total}: {name}. {amount}.",
    "next_last": "Last exercise, number {number} of {total}: {name}. {amount}.",
    "next_again": "Next: {name} again. {amount}.",
    "next_short": "Next: {name}.",
    "move_notes": "A word on the moves ahead. {notes}",
    "move_note": "For the {name}, {text}",
    "easier": "Easier option: {text}",
    "harder": "To make it harder: {text}",
    "safety_note": "Take care: {text}",
    "first_side": "Start with your {side}.",
    "first_side_short": "{side} first.",
    "switch": "Other side: {side}.",
    "ten_seconds": "10 seconds.",
    "get_set": "Get into position.",
    "set_next": "Rest for {length}. Set {set} of {sets} is next.",
    "set_again": "Set {set} of {sets}.",
    "stretch_again": "Once more on each side.",
    "hold_again": "Once more.",
    "reminder": "Remember: {text}",
    # The start of the work clock, by register and kind; short words said inside a phrase so they carry.
    "start_energetic_timed": "Ready, and go!",
    "start_energetic_hold": "Stay right there.",
    "start_energetic_reps": "Ready, here we go.",
    "start_calm_timed": "Moving slowly now.",
    "start_calm_hold": "Settle into the stretch.",
    "start_calm_reps": "Slowly, here we go.",
    "start_warming_timed": "Start easy, and build it up.",
    "start_warming_hold": "Settle into it, nice and easy.",
    "start_warming_reps": "Nice and easy, here we go.",
    "start_breaths": "Follow your breath.",
    # During the work.
    "halfway": "Halfway there.",
    "change_direction": "Change direction.",
    "to_go": "{length} to go.",
    "release": "And slowly release.",
    "ease_off": "And gently ease off.",
    "last_rep": "Last one.",
    "last_breath": "Last breath.",
    # Progress through the session.
    "session_halfway": "You are halfway through the session.",
    "minutes_left": "{length} to go in this session.",
    # Intervals (run and walk): one flows into the next on a bell, so the next is named before it.
    "interval_next": "Next, {name} for {length}.",
    "interval_next_last": "Next, your last {noun}: {length}.",
    "interval_now": "{name} now.",
    "interval_start_your": "Start your {name} now.",
    "interval_keep_going": "Keep going, nice and easy.",
    "interval_done": "That was {noun} {done}. {left} more to go.",
    "interval_one_left": "That was {noun} {done}. Just one more to go.",
    "interval_only_done": "That's your {noun} done. Brilliant work.",
    "interval_all_done": "That was your last {noun}. Well done.",
    "interval_halfway": "Halfway through this {noun}.",
    "interval_minutes_done": "{length} done.",
    # The end.
    "tip": "A tip before you go: {text}",
}

# Said while the work clock runs, by register. Pools of about ten: a long warm-up march hears a word every
# 13 s or so, and a line comes back only after most of its pool (`Pool`), so well over a minute apart.
ENCOURAGEMENT: dict[str, tuple[str, ...]] = {
    "energetic": (
        "Good work, keep it going.",
        "Strong and steady.",
        "Nice form, stay with it.",
        "You are doing well.",
        "Keep breathing, keep moving.",
        "Stay tall and keep it controlled.",
        "That's the way.",
        "Breathe out as you work.",
        "Keep the quality high, not just the speed.",
        "Push on, you can do this.",
        "Find your rhythm and hold it.",
    ),
    "calm": (
        "Let your breathing stay slow and easy.",
        "Soften your shoulders and your jaw.",
        "Nice and easy.",
        "Let each breath out relax you a little more.",
        "Stay gentle. No need to push.",
        "Notice how your body feels.",
        "Breathe out slowly, and let the tension go.",
        "Relax your hands and your face.",
        "Take your time. There is no rush.",
        "Keep everything soft and easy.",
        "Let every breath be slow and full.",
    ),
    # A warm-up before harder work: light to moderate effort that builds (ACSM), never "relax" or "settle".
    "warming": (
        "Feel your body warming up.",
        "Let your breathing deepen a little.",
        "Easy effort for now. You should still be able to talk.",
        "Let your joints loosen up as you go.",
        "Good. Keep it smooth and steady.",
        "Build it up a little at a time.",
        "Let the movement grow a little bigger.",
        "Breathe in through your nose, and out through your mouth.",
        "Stay light and loose as you move.",
        "Warm muscles move more freely. Keep going.",
        "Gradually pick up the pace.",
    ),
}

# Said in a warm-up's changeover, walking gently in place: nothing about recovering or letting the heart rate settle.
MOVING_REST_FILLERS: tuple[str, ...] = (
    "Keep your feet moving, in place or around the room.",
    "Shake out your arms as you walk.",
    "Roll your shoulders as you go.",
    "Take a slow breath in, and let it go.",
    "Stay light on your feet.",
)

# Said now and then through a long interval: company while walking or running, never a how-to.
INTERVAL_COMPANY: tuple[str, ...] = (
    "Nice and steady.",
    "You are doing really well.",
    "Keep it easy. You should be able to talk.",
    "Relax your hands and your shoulders.",
    "Breathe in a steady rhythm.",
    "Stay tall and light on your feet.",
    "Just keep going at your own pace.",
)

# Said in the quiet of a rest so it is not dead air: practical, calm, and about resting, never "keep moving".
REST_FILLERS: tuple[str, ...] = (
    "Shake out your arms and legs.",
    "Take a slow breath in, and let it go.",
    "Have a sip of water if you need one.",
    "Let your heart rate settle.",
    "Good work on that one.",
    "Well done. Use this rest to recover.",
    "Roll your shoulders and let them drop.",
    "Breathe deeply and get ready for the next one.",
)


def say(key: str, **fields: object) -> str:
    """The sentence `key`, filled in; collapses the double spaces an empty field would leave."""
    return " ".join(ENGLISH[key].format(**fields).split())


def length_words(seconds: float) -> str:
    """A length as a coach says it: "45 seconds", "1 minute", "1 minute 30 seconds", "5 minutes"."""
    whole = int(round(seconds))
    minutes, rest = divmod(whole, 60)
    if minutes == 0:
        return f"{rest} second" + ("s" if rest != 1 else "")
    text = f"{minutes} minute" + ("s" if minutes != 1 else "")
    if rest:
        text += f" {rest} seconds"
    return text


def join_words(items: list[str]) -> str:
    """ "a, b and c"."""
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


@functools.lru_cache(maxsize=1024)
def _choices(options: tuple[str, ...], recent: tuple[str, ...]) -> tuple[str, ...]:
    """The options not said lately (all of them if that leaves none); a plan search asks thousands of times."""
    return tuple(o for o in options if o not in recent) or options


class Pool:
    """Seeded choices from phrase pools. A line is not said again until most of its pool has been said since:
    a listener hears "Feel your body warming up" twice in half a minute as a machine, not a coach."""

    def __init__(self, seed: str):
        self._random = random.Random(seed)
        self._said: dict[tuple[str, ...], tuple[str, ...]] = {}  # pool -> its lines said lately, oldest first

    def pick(self, options: tuple[str, ...]) -> str:
        """One line of `options`, leaving out the ones said lately; `said` records it once it is said."""
        return self._random.choice(_choices(options, self._said.get(options, ())))

    def said(self, options: tuple[str, ...], text: str) -> None:
        # Two thirds of the pool stay out of the next pick: no line twice within a minute, yet a real choice.
        keep = max(1, 2 * len(options) // 3)
        self._said[options] = ((*self._said.get(options, ()), text))[-keep:]
