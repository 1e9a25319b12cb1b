"""The emulated site's data: credentials, users and a small video catalogue."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.twentythree.urls import THUMBNAIL_SIZES

LEVELS = ("none", "anonymous", "read", "write", "admin", "super")

# Demo credentials, printed in config/gateway.toml. They open nothing but this emulator.
DEMO_SUPER = (
    "demo-super-consumer",
    "demo-super-consumer-secret",
    "demo-super-access",
    "demo-super-access-secret",
)
DEMO_READ = (
    "demo-read-consumer",
    "demo-read-consumer-secret",
    "demo-read-access",
    "demo-read-access-secret",
)

VIDEO_FORMATS = ("video_medium", "video_hd", "video_1080p", "video_mobile_high", "audio")
STILL_SIZES = tuple(THUMBNAIL_SIZES)  # the named sizes 23 documents


@dataclass(frozen=True)
class Credential:
    consumer_key: str
    consumer_secret: str
    access_token: str
    access_token_secret: str
    level: str


@dataclass
class Photo:
    photo_id: int
    tree_id: int
    title: str
    published: bool = True
    formats: tuple[str, ...] = ("video_medium", "video_hd", "video_mobile_high")
    token: str = field(default_factory=lambda: secrets.token_hex(16))
    protected_token: str = ""  # set when protected
    password: str = ""  # for protection_method=password
    video_length: int = 0  # seconds
    albums: tuple[int, ...] = ()  # channel ids; the first is album_id
    tags: tuple[str, ...] = ()

    @property
    def slug(self) -> str:
        return "-".join(self.title.lower().split())[:40]

    def filename(self, fmt: str) -> str:
        return f"{self.slug}.{'mp3' if fmt == 'audio' else 'mp4'}"

    def as_api(self, level: str, typed: bool = False) -> dict[str, object]:
        """The photo object as photo/list shows it: legacy mixes strings and numbers; api/2
        (``typed``) has the types of 23's OpenAPI file (numbers, booleans)."""
        base = f"/{self.tree_id}/{self.photo_id}/{self.token}"
        num: Callable[[int], object] = (lambda n: n) if typed else str
        flag: Callable[[bool], object] = (lambda b: b) if typed else (lambda b: 1 if b else 0)
        obj: dict[str, object] = {
            "photo_id": num(self.photo_id),
            "tree_id": num(self.tree_id),
            "token": self.token,
            "title": self.title,
            "published_p": flag(self.published),
            "video_p": flag(True),
            "protected_p": flag(bool(self.protected_token)),
            "protection_method": "custom" if self.protected_token else "",
            "one": f"/video/{self.photo_id}/{self.slug}",
            "original_filename": f"/var/spool/23/uploads/{self.photo_id}/{self.slug}.mov",
            "video_length": num(self.video_length),
            "album_id": num(self.albums[0]) if self.albums else (0 if typed else ""),
            "all_albums": " ".join(str(a) for a in self.albums),
            "number_of_albums": num(len(self.albums)),
            "tags": list(self.tags),
            "number_of_tags": num(len(self.tags)),
            "content": "<p>" + "A description 23 sends with every video. " * 20 + "</p>",
        }
        if typed:
            obj["video_length_float"] = self.video_length + 0.48  # the spec's float twin
        for fmt in VIDEO_FORMATS:
            present = fmt in self.formats
            obj[f"{fmt}_download"] = f"{base}/{fmt}/{self.filename(fmt)}" if present else ""
            obj[f"{fmt}_size"] = num(1048576 if present else 0)
        # Not playable downloads: a JPEG of frames and an HLS playlist (23 lists both).
        obj["video_frames_download"] = f"{base}/video_frames/{self.slug}.jpg"
        obj["video_hls_download"] = f"{base}/video_hls/playlist.m3u8"
        for size in STILL_SIZES:
            obj[f"{size}_download"] = f"{base}/{size}"
        obj.update(self._the_rest(num, flag))
        if self.protected_token and LEVELS.index(level) >= LEVELS.index("read"):
            obj["protected_token"] = self.protected_token
        return obj

    def _the_rest(
        self, num: Callable[[int], object], flag: Callable[[bool], object]
    ) -> dict[str, object]:
        """What else 23's photo object carries (the OpenAPI file's fields; the gateway reads
        none of it): dates, owner, counters, each size's and format's dimensions. A real
        object is ~6 KB, which is what ``fields`` saves a sync from."""
        stamp = 1_700_000_000 + self.photo_id * 60
        rest: dict[str, object] = {
            "absolute_url": f"https://video.example.com/video/{self.photo_id}/{self.slug}",
            "locale": "en",
            "promoted_p": flag(False),
            "placeholder_p": flag(False),
            "video_encoded_p": flag(True),
            "audio_p": flag(False),
            "subtitles_p": flag(False),
            "album_title": "Company news" if self.albums else "",
            "user_id": num(501),
            "username": "ada",
            "display_name": "Ada Lovelace",
            "user_url": "/user/ada/",
            "view_count": num(self.photo_id % 977),
            "number_of_comments": num(0),
            "content_text": "A description 23 sends with every video. " * 20,
        }
        for when in ("publish_date", "creation_date", "original_date"):
            rest[f"{when}_ansi"] = "2024-01-15 09:00:00+00"
            rest[f"{when}_epoch"] = num(stamp)
            rest[f"{when}__date"] = "January 15, 2024"
            rest[f"{when}__time"] = "09:00"
        for kind in (*STILL_SIZES, *VIDEO_FORMATS):
            rest[f"{kind}_width"] = num(1920)
            rest[f"{kind}_height"] = num(1080)
        rest.update({f"{size}_size": num(785432) for size in STILL_SIZES})
        return rest


@dataclass
class User:
    user_id: int
    username: str
    email: str
    full_name: str
    site_admin: bool = False


BOARD_ALBUM = 9001  # the demo's board-only channel
NEWS_ALBUM = 9002


def demo_photos() -> list[Photo]:
    return [
        Photo(1001, 7001, "Welcome to the demo site", video_length=95, albums=(NEWS_ALBUM,)),
        Photo(
            1002,
            7001,
            "Quarterly all-hands",
            formats=("video_medium", "video_hd", "video_1080p", "audio"),
            video_length=5400,
            albums=(NEWS_ALBUM,),
            tags=("all-hands",),
        ),
        Photo(1003, 7002, "Unpublished draft", published=False, video_length=30),
        Photo(
            1004,
            7002,
            "Members only keynote",
            protected_token=secrets.token_hex(16),
            video_length=2700,
            tags=("premium",),
        ),
        Photo(1005, 7002, "Board meeting", video_length=7200, albums=(BOARD_ALBUM, NEWS_ALBUM)),
    ]


def generated_photos(count: int, first_id: int = 2001) -> list[Photo]:
    """Extra published videos (for catalogue tests, benchmarks and load tests): lengths from
    a minute to five hours, every 7th in the board channel, every 10th tagged premium."""
    photos = []
    for i in range(count):
        albums = (NEWS_ALBUM, BOARD_ALBUM) if i % 7 == 3 else (NEWS_ALBUM,)
        tags = ("premium", "generated") if i % 10 == 5 else ("generated",)
        length = 60 + (i * 997) % (5 * 3600)
        photos.append(
            Photo(
                first_id + i,
                7100 + i // 1000,
                f"Generated video {i + 1}",
                video_length=length,
                albums=albums,
                tags=tags,
            )
        )
    return photos


_FILE_KEYS = {"photo_id", "tree_id", "title", "published", "video_length", "albums", "tags"}


def photos_from_file(path: str) -> list[Photo]:
    """Videos from a JSON list of objects: ``photo_id`` (required), ``title``, ``tree_id``,
    ``published``, ``video_length``, ``albums``, ``tags``, ``protected`` (true: a protected
    token is made up). Unknown keys are refused, so a typo does not pass unseen."""
    import json

    with open(path, encoding="utf-8") as handle:
        items = json.load(handle)
    if not isinstance(items, list):
        raise ValueError(f"{path}: must hold a JSON list of videos")
    photos = []
    for n, item in enumerate(items):
        unknown = set(item) - _FILE_KEYS - {"protected"} if isinstance(item, dict) else {"?"}
        if unknown or not isinstance(item.get("photo_id"), int) or item["photo_id"] <= 0:
            raise ValueError(f"{path}[{n}]: needs an int photo_id; keys: {sorted(_FILE_KEYS)}")
        photos.append(
            Photo(
                item["photo_id"],
                int(item.get("tree_id", 7500)),
                str(item.get("title", f"Video {item['photo_id']}")),
                published=bool(item.get("published", True)),
                video_length=int(item.get("video_length", 0)),
                albums=tuple(int(a) for a in item.get("albums", ())),
                tags=tuple(str(t) for t in item.get("tags", ())),
                protected_token=secrets.token_hex(16) if item.get("protected") else "",
            )
        )
    return photos


def demo_users() -> list[User]:
    return [
        User(501, "ada", "ada@example.com", "Ada Lovelace", site_admin=True),
        User(502, "grace", "grace@example.org", "Grace Hopper"),
    ]


def demo_credentials() -> list[Credential]:
    return [Credential(*DEMO_SUPER, level="super"), Credential(*DEMO_READ, level="read")]
