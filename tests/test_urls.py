"""Every URL form of the reference (§3.3, §4.3, §4.5)."""

from __future__ import annotations

import pytest

from gateway.twentythree import urls

SITE = "https://video.example.com"
TLT = "5ea04282ea3c4a9beca6234606006b56e0cb923d-1292438117"


def test_embed() -> None:
    assert urls.embed_url(SITE, 97531, TLT) == (
        f"{SITE}/v.ihtml?token={TLT}&source=embed&photo_id=97531"
    )


def test_download_and_video_files() -> None:
    assert urls.file_url(SITE, 123, 97531, TLT, "video_hd") == f"{SITE}/123/97531/{TLT}/video_hd"
    assert urls.file_url(SITE, 10820441, 11623454, TLT, "video_hd", "example-video.mp4") == (
        f"{SITE}/10820441/11623454/{TLT}/video_hd/example-video.mp4"
    )
    assert urls.file_url(SITE, 1, 2, TLT, "video_original") == f"{SITE}/1/2/{TLT}/video_original"


def test_file_names_are_escaped_and_formats_checked() -> None:
    assert urls.file_url(SITE, 1, 2, TLT, "audio", "a b/../c.mp3").endswith(
        "/audio/a%20b%2F..%2Fc.mp3"
    )
    for bad in ("../x", "VIDEO", "video hd", "", "a" * 41):
        with pytest.raises(ValueError):
            urls.file_url(SITE, 1, 2, TLT, bad)


def test_thumbnails() -> None:
    assert urls.thumbnail_url(SITE, 1, 2, TLT) == f"{SITE}/1/2/{TLT}/large"
    assert urls.thumbnail_url(SITE, 1, 2, TLT, "portrait") == f"{SITE}/1/2/{TLT}/portrait"
    assert (
        urls.thumbnail_url(SITE, 1, 2, TLT, "600x400") == f"{SITE}/1/2/{TLT}/600x400/thumbnail.jpg"
    )
    for bad in ("huge", "0x400", "600x", "600x400x1"):
        with pytest.raises(ValueError):
            urls.thumbnail_url(SITE, 1, 2, TLT, bad)


def test_mobile_api_and_redeem() -> None:
    assert urls.mobile_url(SITE, 97531, TLT) == f"{SITE}/m/d/97531/{TLT}"
    assert urls.api_url(SITE, 97531, TLT) == f"{SITE}/api/photo/list?photo_id=97531&token={TLT}"
    assert urls.redeem_session_url(SITE, "abc+/=") == (
        f"{SITE}/api/session/redeem-token?session_token=abc%2B%2F%3D"
    )
    assert (
        urls.redeem_login_url(SITE, "xyz") == f"{SITE}/api/user/redeem-login-token?login_token=xyz"
    )
