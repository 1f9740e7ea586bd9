"""Podcast show settings: a small YAML file (`show.yaml`) read into a `Show`.

Every field has a default so the feed works without a show file, but podcast
directories reject some defaults: at least `owner.email` (default
`podcast@example.com`, a placeholder) and `base_url` (default the local
`serve` address) must be changed before a feed is submitted anywhere.

Example `show.yaml` (every key optional; unknown keys are errors so typos show)::

    title: Morning Moves
    author: Jane Doe
    owner: {name: Jane Doe, email: jane@example.org}
    description: Short voice-guided workouts.
    language: en-GB            # ISO 639-1, optionally with a region
    category: Health & Fitness # Apple Podcasts category...
    subcategory: Fitness       # ...and one of its subcategories (or omit)
    cover: cover.jpg           # square RGB JPEG/PNG, 1400-3000 px; relative to this file
    explicit: false
    base_url: https://example.org/workouts/
    type: episodic             # or serial
    link: https://example.org/
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .. import validation
from ..errors import ContentError
from ..fsutil import CoverError, cover_type
from .tracks import xml_text

DEFAULT_OWNER_EMAIL = "podcast@example.com"
DEFAULT_BASE_URL = "http://localhost:8000/"  # where `serve` listens by default

# Apple Podcasts categories and their subcategories
# (https://podcasters.apple.com/support/1691-apple-podcasts-categories).
APPLE_CATEGORIES: dict[str, tuple[str, ...]] = {
    "Arts": ("Books", "Design", "Fashion & Beauty", "Food", "Performing Arts", "Visual Arts"),
    "Business": ("Careers", "Entrepreneurship", "Investing", "Management", "Marketing", "Non-Profit"),
    "Comedy": ("Comedy Interviews", "Improv", "Stand-Up"),
    "Education": ("Courses", "How To", "Language Learning", "Self-Improvement"),
    "Fiction": ("Comedy Fiction", "Drama", "Science Fiction"),
    "Government": (),
    "History": (),
    "Health & Fitness": ("Alternative Health", "Fitness", "Medicine", "Mental Health", "Nutrition", "Sexuality"),
    "Kids & Family": ("Education for Kids", "Parenting", "Pets & Animals", "Stories for Kids"),
    "Leisure": (
        "Animation & Manga",
        "Automotive",
        "Aviation",
        "Crafts",
        "Games",
        "Hobbies",
        "Home & Garden",
        "Video Games",
    ),
    "Music": ("Music Commentary", "Music History", "Music Interviews"),
    "News": (
        "Business News",
        "Daily News",
        "Entertainment News",
        "News Commentary",
        "Politics",
        "Sports News",
        "Tech News",
    ),
    "Religion & Spirituality": ("Buddhism", "Christianity", "Hinduism", "Islam", "Judaism", "Religion", "Spirituality"),
    "Science": (
        "Astronomy",
        "Chemistry",
        "Earth Sciences",
        "Life Sciences",
        "Mathematics",
        "Natural Sciences",
        "Nature",
        "Physics",
        "Social Sciences",
    ),
    "Society & Culture": ("Documentary", "Personal Journals", "Philosophy", "Places & Travel", "Relationships"),
    "Sports": (
        "Baseball",
        "Basketball",
        "Cricket",
        "Fantasy Sports",
        "Football",
        "Golf",
        "Hockey",
        "Rugby",
        "Running",
        "Soccer",
        "Swimming",
        "Tennis",
        "Volleyball",
        "Wilderness",
        "Wrestling",
    ),
    "Technology": (),
    "True Crime": (),
    "TV & Film": ("After Shows", "Film History", "Film Interviews", "Film Reviews", "TV Reviews"),
}

# ISO 639-1 two-letter language codes (what RSS <language> and Apple expect).
ISO_639_1 = frozenset(
    """
aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy
da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht
hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky
la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny
oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sn so sq sr ss st
su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za
zh zu
""".split()
)

SHOW_TYPES = ("episodic", "serial")
COVER_MIN, COVER_MAX = 1400, 3000
SHOW_KEYS = (
    "title",
    "author",
    "owner",
    "description",
    "language",
    "category",
    "subcategory",
    "cover",
    "explicit",
    "base_url",
    "type",
    "link",
)
_EMAIL = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+\.[A-Za-z0-9-]{2,}$")
_LANGUAGE = re.compile(r"^([A-Za-z]{2})(?:-([A-Za-z]{2}|[0-9]{3}))?$")


@dataclass(frozen=True)
class Show:
    """The channel-level settings of the podcast feed and web page."""

    title: str = "audioworkout"
    author: str = "audioworkout"
    owner_name: str = "audioworkout"
    owner_email: str = DEFAULT_OWNER_EMAIL
    description: str = "Voice-guided workouts you can follow without looking at a screen."
    language: str = "en"
    category: str = "Health & Fitness"
    subcategory: str | None = "Fitness"
    cover: Path | None = None
    explicit: bool = False
    base_url: str = DEFAULT_BASE_URL
    type: str = "episodic"
    link: str | None = None  # None: the web page at base_url

    @property
    def page_url(self) -> str:
        return self.link or self.base_url


def check_url(url: object, file: object, field: str) -> str:
    """An absolute http(s) URL, stripped of surrounding blanks."""
    if not isinstance(url, str) or not url.strip():
        raise ContentError(file, field, url, "expected an http:// or https:// URL")
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ContentError(file, field, url, "expected an http:// or https:// URL without ?query or #fragment")
    return url


def normalize_base_url(url: object, file: object = "base_url", field: str = "base_url") -> str:
    """An absolute http(s) URL ending in '/', so file names can be appended to it."""
    url = check_url(url, file, field)
    return url if url.endswith("/") else url + "/"


def check_cover(path: Path, file: object = "cover", field: str = "cover") -> None:
    """Apple's artwork rules: JPEG or PNG, RGB, square, 1400-3000 px a side.

    First the check every cover passes (`fsutil.cover_type`: a regular file of bounded size that
    starts as a PNG or JPEG does; CoverError otherwise), so Pillow never opens anything else.
    """
    from PIL import Image, UnidentifiedImageError

    cover_type(path)
    try:
        with Image.open(path) as img:
            fmt, mode, (w, h) = img.format, img.mode, img.size
    except (UnidentifiedImageError, OSError):
        raise ContentError(file, field, str(path), "expected a JPEG or PNG image") from None
    if fmt not in ("JPEG", "PNG"):
        raise ContentError(file, field, str(path), f"expected a JPEG or PNG image, not {fmt}")
    if mode != "RGB":
        raise ContentError(file, field, str(path), f"expected RGB colour, not {mode} mode")
    if w != h:
        raise ContentError(file, field, str(path), f"expected a square image, not {w}x{h}")
    if not COVER_MIN <= w <= COVER_MAX:
        raise ContentError(file, field, str(path), f"expected {COVER_MIN}-{COVER_MAX} px a side, not {w}x{h}")


def load_show(path: Path | None) -> Show:
    """Read and check a show file (the same reader as routines: every problem, with its line); None: defaults."""
    if path is None:
        return Show()
    path = Path(path)
    return parse_show(validation.read(path), path)


def parse_show(root: validation.Reader, path: Path) -> Show:
    """The show settings in an already read file; raises ContentError listing every problem."""
    d = Show()
    f = root.fields(SHOW_KEYS, what="show settings")
    title = root_text(f, "title", d.title)
    author = root_text(f, "author", d.author)
    description = root_text(f, "description", d.description)

    owner = f["owner"].fields(("name", "email"), what="owner fields")
    owner_name = _clean(owner["name"].text(default=author, collapse=False))
    owner_email = _clean(owner["email"].text(default=d.owner_email, collapse=False))
    if owner_email is not None and not _EMAIL.match(owner_email):
        owner["email"].fail("expected an e-mail address like name@example.org")

    language = f["language"].text(default=d.language, collapse=False)
    m = _LANGUAGE.match(language) if language is not None else None
    if language is not None and (not m or m.group(1).lower() not in ISO_639_1):
        f["language"].fail("expected an ISO 639-1 code, optionally with a region: en, en-US")
    elif m:
        language = m.group(1).lower() + (f"-{m.group(2).upper()}" if m.group(2) else "")

    category = f["category"].text(default=d.category, collapse=False)
    if category is not None and category not in APPLE_CATEGORIES:
        f["category"].fail("expected an Apple Podcasts category: " + ", ".join(APPLE_CATEGORIES))
        category = None
    subcategory = f["subcategory"].text(default=d.subcategory if "category" not in f else None, collapse=False)
    if category is not None and subcategory is not None and subcategory not in APPLE_CATEGORIES[category]:
        allowed_sub = APPLE_CATEGORIES[category]
        f["subcategory"].fail(
            f"expected one of {category!r}'s subcategories: " + ", ".join(allowed_sub)
            if allowed_sub
            else f"{category!r} has no subcategories; omit it"
        )

    cover = None
    cover_text = f["cover"].text(collapse=False, max_len=1000)
    if cover_text is not None:
        cover = validation.local_file(path, cover_text)
        try:
            check_cover(cover or path.parent / cover_text, path, "cover")
        except ContentError as exc:
            f["cover"].fail(exc.allowed)
        except CoverError as exc:
            f["cover"].fail(f"{exc.problem}; expected {exc.expected}")
        except (OSError, ValueError):  # an image so broken that PIL fails outside its own errors
            f["cover"].fail("expected a JPEG or PNG image")

    explicit = f["explicit"].boolean(default=d.explicit)
    base_url = _url(f["base_url"], d.base_url, base=True)
    show_type = f["type"].choice(SHOW_TYPES, default=d.type)
    link = _url(f["link"], None)

    root.report.raise_if_any()
    return validation.build(
        Show,
        title=title,
        author=author,
        owner_name=owner_name,
        owner_email=owner_email,
        description=description,
        language=language,
        category=category,
        subcategory=subcategory,
        cover=cover,
        explicit=bool(explicit),
        base_url=base_url,
        type=show_type,
        link=link,
    )


def root_text(f: validation.Fields, key: str, default: str) -> str | None:
    """A show's text field: stripped, inner spacing kept (the description may have paragraphs)."""
    return _clean(f[key].text(default=default, collapse=False, max_len=4000))


def _clean(text: str | None) -> str | None:
    """Text for the feed and the page: control characters (a YAML "\x01" escape makes them) removed."""
    return None if text is None else xml_text(text)


def _url(r: validation.Reader, default: str | None, base: bool = False) -> str | None:
    """A URL field checked like --base-url, its problem placed at its line."""
    text = _clean(r.text(default=default, collapse=False, max_len=2000))
    if text is None:
        return None
    try:
        return normalize_base_url(text, r.file, r.path) if base else check_url(text, r.file, r.path)
    except ContentError as exc:
        r.fail(exc.allowed)
        return None
