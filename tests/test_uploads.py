"""Browser uploads for signed-in staff (seed 003) against the emulated site: the form, the
upload token (one, unpublished, single use, its return_url on the gateway), the page that
posts the file straight to 23, and the unsigned callback, believed only when a signed call
confirms it, for the visitor who started it, once."""

from __future__ import annotations

import hashlib
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from gateway.devsite.catalog import demo_photos
from tests.helpers import (
    Devsite,
    free_port,
    make_settings,
    records_of,
    serving,
    site_table,
)

STAFF = {"X-Email": "ada@example.com", "X-Groups": "video-staff"}
OUTSIDER = {"X-Email": "carol@example.com", "X-Groups": "sales"}
CHANNEL = 9002
KEYS = {"editor": "editor-key-0123456789abcdef", "mint": "mint-only-key-0123456789abcdef"}


@dataclass
class UploadWorld:
    gateway: str
    devsite: Devsite
    app: Any

    def calls(self, method: str | None = None) -> list[dict[str, Any]]:
        return [c for c in self.devsite.calls() if method is None or c.get("method") == method]

    def get(self, path: str, who: dict[str, str] | None = None, **kw: Any) -> requests.Response:
        return requests.get(
            self.gateway + path, headers=who or {}, allow_redirects=False, timeout=15, **kw
        )

    def start(self, title: str, who: dict[str, str] = STAFF) -> requests.Response:
        form = self.get("/upload/intranet", who)
        assert form.status_code == 200, form.text
        csrf = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert csrf is not None
        return requests.post(
            f"{self.gateway}/upload/intranet",
            data={"csrf": html.unescape(csrf.group(1)), "title": title, "album_id": CHANNEL},
            headers=who,
            allow_redirects=False,
            timeout=15,
        )

    def send_file(self, page: str) -> requests.Response:
        """What the browser does with the page: post the file straight to 23."""
        action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', page)[1])  # type: ignore[index]
        token = re.search(r'name="upload_token" value="([^"]+)"', page)[1]  # type: ignore[index]
        return requests.post(
            action,
            data={"upload_token": token},
            files={"file": ("clip.mp4", b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 2048, "video/mp4")},
            allow_redirects=False,
            timeout=15,
        )


@pytest.fixture(scope="module")
def world() -> Iterator[UploadWorld]:
    port = free_port()
    gateway = f"http://127.0.0.1:{port}"
    devsite = Devsite.for_gateway(gateway, "intranet", photos=demo_photos())
    site = site_table(devsite.url, identity="proxy", catalogue="sync")
    site["uploads"] = {"allow_groups": ["video-staff"], "album_ids": [CHANNEL, 9001]}
    digest = {name: hashlib.sha256(key.encode()).hexdigest() for name, key in KEYS.items()}
    settings = make_settings(
        {"intranet": site},
        gateway={"public_url": gateway, "trusted_proxies": ["127.0.0.1/32"]},
        identity={
            "proxy": {
                "type": "header",
                "email_header": "X-Email",
                "groups_header": "X-Groups",
            }
        },
        api_keys={
            "editor": {"key_sha256": digest["editor"], "sites": ["intranet"], "uploads": True},
            "mint": {"key_sha256": digest["mint"], "sites": ["intranet"]},
        },
    )
    with serving(settings, port, devsite, synced="intranet") as app:
        yield UploadWorld(gateway, devsite, app)


@pytest.fixture()
def uploads(world: UploadWorld) -> UploadWorld:
    world.devsite.reset()  # nothing any other test asked of 23
    return world


def test_a_stranger_is_sent_to_sign_in_and_back(uploads: UploadWorld) -> None:
    answer = uploads.get("/upload/intranet")
    assert answer.status_code == 303
    assert "/sso/intranet/login?" in answer.headers["Location"]
    assert "next=/upload/intranet" in answer.headers["Location"]


def test_someone_outside_the_upload_groups_is_refused_without_asking_23(
    uploads: UploadWorld,
) -> None:
    for answer in (
        uploads.get("/upload/intranet", OUTSIDER),
        requests.post(
            f"{uploads.gateway}/upload/intranet",
            data={"title": "Mine"},
            headers=OUTSIDER,
            timeout=15,
        ),
    ):
        assert answer.status_code == 403
    assert uploads.calls() == []


def test_a_post_without_the_form_token_asks_23_for_nothing(uploads: UploadWorld) -> None:
    answer = requests.post(
        f"{uploads.gateway}/upload/intranet",
        data={"title": "No token", "album_id": CHANNEL},
        headers=STAFF,
        timeout=15,
    )
    assert answer.status_code == 400
    assert uploads.calls() == []


def _posts_straight_to_23(uploads: UploadWorld, page: requests.Response, title: str) -> None:
    """The page's form posts the file to 23 (multipart, token hidden, title escaped), after
    exactly one upload token asked for what the form said, unpublished, single use."""
    assert page.status_code == 200, page.text
    assert "<script>alert" not in page.text and "&lt;script&gt;" in page.text  # escaped
    assert f'action="{uploads.devsite.url}/api/photo/redeem-upload-token"' in page.text
    assert 'enctype="multipart/form-data"' in page.text
    assert 'type="hidden" name="upload_token"' in page.text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    (asked,) = uploads.calls("photo/get-upload-token")
    params = asked["params"]
    assert params["title"] == title and params["album_id"] == str(CHANNEL)
    assert params["publish"] == "0" and params["max_uploads"] == "1"
    assert params["return_url"] == f"{uploads.gateway}/upload/intranet/done"


def _audited_upload(audited: list[Any], photo_id: int, title: str) -> None:
    (line,) = [r.__dict__ for r in audited if r.getMessage() == "upload"]
    assert line["email"] == "ada@example.com" and line["site"] == "intranet"
    assert line["photo_id"] == photo_id and line["title"] == title
    assert all("upload_token" not in str(v) for v in line.values())


def _mintable_without_a_lookup(uploads: UploadWorld, photo_id: int) -> None:
    before = len(uploads.calls())
    minted = requests.post(
        f"{uploads.gateway}/api/v1/sites/intranet/tokens",
        json={"photo_ids": [photo_id]},
        headers={"Authorization": f"Bearer {KEYS['editor']}"},
        timeout=15,
    ).json()["tokens"][0]
    assert "token" in minted and len(uploads.calls()) == before  # no lookup


def test_staff_upload_straight_to_23_and_the_video_is_mintable_at_once(
    uploads: UploadWorld,
) -> None:
    title = 'Q3 all-hands <script>alert("x")</script> & more'
    page = uploads.start(title)
    _posts_straight_to_23(uploads, page, title)

    sent = uploads.send_file(page.text)
    assert sent.status_code == 301
    callback = sent.headers["Location"]
    assert callback.startswith(f"{uploads.gateway}/upload/intranet/done?")
    with records_of("gateway.audit") as audited:
        done = uploads.get(callback.removeprefix(uploads.gateway), STAFF)
    assert done.status_code == 200, done.text
    assert "Video uploaded" in done.text and "&lt;script&gt;" in done.text
    confirming = [c for c in uploads.calls("photo/list") if "upload_token" in c["params"]]
    assert len(confirming) == 1 and confirming[0]["level"] == "super"  # a signed call
    photo_id = int(re.search(r"photo_id=(\d+)", callback)[1])  # type: ignore[index]
    _audited_upload(audited, photo_id, title)
    _mintable_without_a_lookup(uploads, photo_id)

    again = uploads.send_file(page.text)
    assert again.status_code == 403  # 23 takes the upload token once
    replay = uploads.get(callback.removeprefix(uploads.gateway), STAFF)
    assert replay.status_code == 403  # and the gateway believes the callback once


def test_forged_callbacks_report_nothing_as_uploaded(uploads: UploadWorld) -> None:
    page = uploads.start("Board minutes")
    sent = uploads.send_file(page.text)
    callback = sent.headers["Location"].removeprefix(uploads.gateway)
    token = re.search(r"upload_token=([A-Za-z0-9]+)", callback)[1]  # type: ignore[index]
    forged = [
        ("/upload/intranet/done?upload_token=" + "f" * 40 + "&photo_id=1001", STAFF),
        (f"/upload/intranet/done?upload_token={token}&photo_id=1001", STAFF),  # not its video
        (callback, {"X-Email": "bob@example.com", "X-Groups": "video-staff"}),  # not theirs
    ]
    with records_of("gateway.audit") as audited:
        for path, who in forged:
            answer = uploads.get(path, who)
            assert answer.status_code == 403, path
            assert "Video uploaded" not in answer.text
    refused = [r.__dict__ for r in audited if r.getMessage() == "upload_refused"]
    assert len(refused) == 3 and not [r for r in audited if r.getMessage() == "upload"]
    assert uploads.get(callback, STAFF).status_code == 200  # the real one still counts


def test_a_failed_upload_says_so_in_the_visitors_words(uploads: UploadWorld) -> None:
    page = uploads.start("Nothing attached")
    token = re.search(r'name="upload_token" value="([^"]+)"', page.text)[1]  # type: ignore[index]
    answer = uploads.get(
        f"/upload/intranet/done?upload_token={token}&error_message=No+file+was+uploaded.",
        STAFF,
    )
    assert answer.status_code == 422
    assert "No file reached the video site" in answer.text


def test_backends_with_upload_keys_get_an_upload_token(uploads: UploadWorld) -> None:
    body = {"title": "From the CMS", "album_id": CHANNEL, "tags": ["news", "q3"]}
    answer = requests.post(
        f"{uploads.gateway}/api/v1/sites/intranet/uploads",
        json=body,
        headers={"Authorization": f"Bearer {KEYS['editor']}"},
        timeout=15,
    )
    assert answer.status_code == 200, answer.text
    data = answer.json()
    assert set(data) == {"upload_token", "form_action", "valid_until"}
    assert data["form_action"] == f"{uploads.devsite.url}/api/photo/redeem-upload-token"
    (asked,) = uploads.calls("photo/get-upload-token")
    assert asked["params"]["tags"] == "news q3" and asked["params"]["publish"] == "0"
    refused = requests.post(
        f"{uploads.gateway}/api/v1/sites/intranet/uploads",
        json=body,
        headers={"Authorization": f"Bearer {KEYS['mint']}"},
        timeout=15,
    )
    assert refused.status_code == 403
    bad = requests.post(
        f"{uploads.gateway}/api/v1/sites/intranet/uploads",
        json={"title": "x", "album_id": 1},
        headers={"Authorization": f"Bearer {KEYS['editor']}"},
        timeout=15,
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_upload"


def test_a_bad_form_comes_back_with_what_was_typed(uploads: UploadWorld) -> None:
    form = uploads.get("/upload/intranet", STAFF)
    csrf = html.unescape(re.search(r'name="csrf" value="([^"]+)"', form.text)[1])  # type: ignore[index]
    answer = requests.post(
        f"{uploads.gateway}/upload/intranet",
        data={"csrf": csrf, "title": "Kept <b>", "album_id": 1},  # not a channel on offer
        headers={**STAFF, "Accept-Language": "da"},
        timeout=15,
    )
    assert answer.status_code == 400
    assert 'value="Kept &lt;b&gt;"' in answer.text and "Vælg en af de viste kanaler" in answer.text
    assert uploads.calls() == []


def test_an_upload_end_to_end_in_chromium(
    uploads: UploadWorld, chromium: Any, shots: Any, tmp_path: Any
) -> None:
    """A member of staff in a real browser: the form, the file page (its script under the
    page's CSP), the file straight to 23, the confirmation; every page axe-clean."""
    from tests.test_a11y import AXE, accessible

    if not AXE.exists():
        pytest.fail("axe-core is not installed: run `make test-deps`")
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 4096)
    errors: list[str] = []
    context = chromium.new_context(extra_http_headers=STAFF, bypass_csp=True)
    tab = context.new_page()
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        tab.goto(f"{uploads.gateway}/upload/intranet")
        accessible(tab, shots, "upload-form")
        tab.fill("#title-field", "Town hall <recording>")
        tab.select_option("#album", str(CHANNEL))
        tab.click("#continue")
        tab.wait_for_selector("#file")
        accessible(tab, shots, "upload-file")
        tab.set_input_files("#file", str(clip))
        tab.click("#send")
        tab.wait_for_selector("#video")
        accessible(tab, shots, "upload-done")
        assert "Town hall <recording>" in tab.inner_text("main")
        assert tab.url.startswith(f"{uploads.gateway}/upload/intranet/done?")
    finally:
        context.close()
    assert errors == []
    (made,) = [c for c in uploads.calls("photo/list") if "upload_token" in c["params"]]
    assert made["status"] == "ok"


def test_text_no_encoding_can_hold_is_a_400(uploads: UploadWorld) -> None:
    """A lone surrogate ("\\ud800") parses as JSON in Python but is no text: refused at the
    door, never a 500 on its way to 23."""
    body = '{"title": "\\ud800"}'
    answer = requests.post(
        f"{uploads.gateway}/api/v1/sites/intranet/uploads",
        data=body,
        headers={"Authorization": f"Bearer {KEYS['editor']}", "Content-Type": "application/json"},
        timeout=15,
    )
    assert answer.status_code == 400, answer.text
    minted = requests.post(
        f"{uploads.gateway}/api/v1/sites/intranet/tokens",
        data='{"photo_ids": [1001], "visitor": {"email": "\\ud800@example.com"}}',
        headers={"Authorization": f"Bearer {KEYS['mint']}", "Content-Type": "application/json"},
        timeout=15,
    )
    assert minted.status_code == 400, minted.text
    assert uploads.calls("photo/get-upload-token") == []
