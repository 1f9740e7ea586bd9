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

import yaml

from ..errors import ContentError

DEFAULT_OWNER_EMAIL = "podcast@example.com"
DEFAULT_BASE_URL = "http://localhost:8000/"  # where `serve` listens by default

# Apple Podcasts categories and their subcategories
# (https://podcasters.apple.com/support/1691-apple-podcasts-categories).
APPLE_CATEGORIES: dict[str, tuple[str, ...]] = {
    "Arts": ("Books", "Design", "Fashion & Beauty", "Food", "Performing Arts", "Visual Arts"),
    "Business": ("Careers", "Entrepreneurship", "Investing", "Management", "Marketing",
                 "Non-Profit"),
    "Comedy": ("Comedy Interviews", "Improv", "Stand-Up"),
    "Education": ("Courses", "How To", "Language Learning", "Self-Improvement"),
    "Fiction": ("Comedy Fiction", "Drama", "Science Fiction"),
    "Government": (),
    "History": (),
    "Health & Fitness": ("Alternative Health", "Fitness", "Medicine", "Mental Health",
                         "Nutrition", "Sexuality"),
    "Kids & Family": ("Education for Kids", "Parenting", "Pets & Animals", "Stories for Kids"),
    "Leisure": ("Animation & Manga", "Automotive", "Aviation", "Crafts", "Games", "Hobbies",
                "Home & Garden", "Video Games"),
    "Music": ("Music Commentary", "Music History", "Music Interviews"),
    "News": ("Business News", "Daily News", "Entertainment News", "News Commentary",
             "Politics", "Sports News", "Tech News"),
    "Religion & Spirituality": ("Buddhism", "Christianity", "Hinduism", "Islam", "Judaism",
                                "Religion", "Spirituality"),
    "Science": ("Astronomy", "Chemistry", "Earth Sciences", "Life Sciences", "Mathematics",
                "Natural Sciences", "Nature", "Physics", "Social Sciences"),
    "Society & Culture": ("Documentary", "Personal Journals", "Philosophy", "Places & Travel",
                          "Relationships"),
    "Sports": ("Baseball", "Basketball", "Cricket", "Fantasy Sports", "Football", "Golf",
               "Hockey", "Rugby", "Running", "Soccer", "Swimming", "Tennis", "Volleyball",
               "Wilderness", "Wrestling"),
    "Technology": (),
    "True Crime": (),
    "TV & Film": ("After Shows", "Film History", "Film Interviews", "Film Reviews",
                  "TV Reviews"),
}

# ISO 639-1 two-letter language codes (what RSS <language> and Apple expect).
ISO_639_1 = frozenset("""
aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy
da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht
hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky
la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny
oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sn so sq sr ss st
su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za
zh zu
""".split())

SHOW_TYPES = ("episodic", "serial")
COVER_MIN, COVER_MAX = 1400, 3000
_KNOWN_KEYS = ("title", "author", "owner", "description", "language", "category",
               "subcategory", "cover", "explicit", "base_url", "type", "link")
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
        raise ContentError(file, field, url,
                           "expected an http:// or https:// URL without ?query or #fragment")
    return url


def normalize_base_url(url: object, file: object = "base_url", field: str = "base_url") -> str:
    """An absolute http(s) URL ending in '/', so file names can be appended to it."""
    url = check_url(url, file, field)
    return url if url.endswith("/") else url + "/"


def check_cover(path: Path, file: object = "cover", field: str = "cover") -> None:
    """Apple's artwork rules: JPEG or PNG, RGB, square, 1400-3000 px a side."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise ContentError(file, field, str(path), "expected an existing image file")
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
        raise ContentError(file, field, str(path),
                           f"expected {COVER_MIN}-{COVER_MAX} px a side, not {w}x{h}")


def _text(data: dict, key: str, file: Path, default: str, *, required: bool = True) -> str:
    value = data.get(key, default)
    if not isinstance(value, str) or (required and not value.strip()):
        raise ContentError(file, key, value, "expected a non-empty text")
    return value.strip()


def load_show(path: Path | None) -> Show:
    """Read and check a show file; None gives the defaults."""
    if path is None:
        return Show()
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ContentError(path, "file", str(path), f"cannot read it: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ContentError(path, "yaml", str(exc).splitlines()[0], "expected valid YAML") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ContentError(path, "file", type(data).__name__, "expected a mapping of settings")
    for key in data:
        if key not in _KNOWN_KEYS:
            raise ContentError(path, str(key), data[key], "known keys: " + ", ".join(_KNOWN_KEYS))
    d = Show()

    title = _text(data, "title", path, d.title)
    author = _text(data, "author", path, d.author)
    description = _text(data, "description", path, d.description)

    owner = data.get("owner", {}) or {}
    if not isinstance(owner, dict):
        raise ContentError(path, "owner", owner, "expected a mapping with name and email")
    for key in owner:
        if key not in ("name", "email"):
            raise ContentError(path, f"owner.{key}", owner[key], "known keys: name, email")
    owner_name = owner.get("name", author)
    if not isinstance(owner_name, str) or not owner_name.strip():
        raise ContentError(path, "owner.name", owner_name, "expected a non-empty text")
    owner_email = owner.get("email", d.owner_email)
    if not isinstance(owner_email, str) or not _EMAIL.match(owner_email.strip()):
        raise ContentError(path, "owner.email", owner_email,
                           "expected an e-mail address like name@example.org")

    language = data.get("language", d.language)
    m = _LANGUAGE.match(language) if isinstance(language, str) else None
    if not m or m.group(1).lower() not in ISO_639_1:
        raise ContentError(path, "language", language,
                           "expected an ISO 639-1 code, optionally with a region: en, en-US")
    language = m.group(1).lower() + (f"-{m.group(2).upper()}" if m.group(2) else "")

    category = data.get("category", d.category)
    if category not in APPLE_CATEGORIES:
        raise ContentError(path, "category", category,
                           "expected an Apple Podcasts category: " + ", ".join(APPLE_CATEGORIES))
    subcategory = data.get("subcategory", d.subcategory if "category" not in data else None)
    allowed_sub = APPLE_CATEGORIES[category]
    if subcategory is not None and subcategory not in allowed_sub:
        allowed = (f"expected one of {category!r}'s subcategories: " + ", ".join(allowed_sub)
                   if allowed_sub else f"{category!r} has no subcategories; omit it")
        raise ContentError(path, "subcategory", subcategory, allowed)

    cover = data.get("cover")
    if cover is not None:
        if not isinstance(cover, str) or not cover.strip():
            raise ContentError(path, "cover", cover, "expected the path of a JPEG or PNG image")
        cover = (path.parent / Path(cover).expanduser()).resolve()
        check_cover(cover, path, "cover")

    explicit = data.get("explicit", d.explicit)
    if not isinstance(explicit, bool):
        raise ContentError(path, "explicit", explicit, "expected true or false")

    base_url = normalize_base_url(data.get("base_url", d.base_url), path, "base_url")

    show_type = data.get("type", d.type)
    if show_type not in SHOW_TYPES:
        raise ContentError(path, "type", show_type, "expected episodic or serial")

    link = data.get("link")
    if link is not None:
        link = check_url(link, path, "link")

    return Show(title=title, author=author, owner_name=owner_name.strip(),
                owner_email=owner_email.strip(), description=description, language=language,
                category=category, subcategory=subcategory, cover=cover, explicit=explicit,
                base_url=base_url, type=show_type, link=link)
