import pytest

from audioworkout.speech.textnorm import normalise, number_words, ordinal_words


@pytest.mark.parametrize(
    "text, spoken",
    [
        ("11, 12", "eleven, twelve"),
        ("30 s", "thirty seconds"),
        ("30s", "thirty seconds"),
        ("1 s", "one second"),
        ("10 min", "ten minutes"),
        ("1 min", "one minute"),
        ("x10", "ten times"),
        ("10x", "ten times"),
        ("Push-ups x10", "Push-ups ten times"),
        ("3-2-1", "three, two, one"),
        ("3 - 2 - 1, go!", "three, two, one, go!"),
        ("7-9 hours", "seven to nine hours"),
        ("30–45 s", "thirty to forty-five seconds"),
        ("2nd", "second"),
        ("21st set", "twenty-first set"),
        ("12th round", "twelfth round"),
        ("50%", "fifty percent"),
        ("a & b", "a and b"),
        ("e.g. squats", "for example squats"),
        ("approx. 5 min", "approximately five minutes"),
        ("push vs pull", "push versus pull"),
        ("1.5", "one point five"),
        ("0.25 km", "zero point two five kilometres"),
        ("1,000 reps", "one thousand reps"),
        ("3x10 reps", "three by ten reps"),
        ("1:30 rest", "one minute thirty seconds rest"),
        ("Round 3 of 10.", "Round three of ten."),
        ('<speak>Hello <break time="1s"/> there</speak>', "Hello there"),
        ("“Go” – it’s time", '"Go", it\'s time'),
        ("  lots \n of\tspace  ", "lots of space"),
        ("**Plank** #1", "Plank number one"),
    ],
)
def test_normalise(text, spoken):
    assert normalise(text) == spoken
    assert normalise(spoken) == spoken  # idempotent: the cache key does not drift


@pytest.mark.parametrize(
    "n, words",
    [
        (0, "zero"),
        (7, "seven"),
        (13, "thirteen"),
        (40, "forty"),
        (99, "ninety-nine"),
        (100, "one hundred"),
        (105, "one hundred five"),
        (1001, "one thousand one"),
        (2024, "two thousand twenty-four"),
        (9999, "nine thousand nine hundred ninety-nine"),
        (-3, "minus three"),
    ],
)
def test_number_words(n, words):
    assert number_words(n) == words


def test_ordinals():
    assert [ordinal_words(n) for n in (1, 2, 3, 5, 8, 9, 12, 20, 40, 101)] == [
        "first",
        "second",
        "third",
        "fifth",
        "eighth",
        "ninth",
        "twelfth",
        "twentieth",
        "fortieth",
        "one hundred first",
    ]


def test_no_digits_or_tags_survive():
    out = normalise("<prosody rate='slow'>Do 3 sets of 12 @ 60% for 2.5 min</prosody>")
    assert not any(ch.isdigit() for ch in out)
    assert "<" not in out and ">" not in out


def test_normalise_remembers_what_it_said():
    """A session's few hundred phrases are normalised thousands of times while a stream is planned
    and levelled (their cache keys, their lengths): the second time is a lookup, the same answer."""
    text = "Hold for 20 seconds, then 2 x 10 reps @ 50%."
    first = normalise(text)
    before = normalise.cache_info().hits
    assert normalise(text) == first == "Hold for twenty seconds, then two by ten reps at fifty percent."
    assert normalise.cache_info().hits == before + 1
