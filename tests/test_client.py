"""The 23 API client against the emulated site over loopback, and its envelope rules."""

from __future__ import annotations

import socket
import time

import pytest

from gateway.errors import (
    UpstreamBadResponse,
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.settings import SiteSettings
from gateway.twentythree.client import TwentyThreeClient, _parse
from tests.helpers import DEMO_READ, DEMO_SUPER, Devsite, site_settings


def _site(
    url: str, creds: tuple[str, str, str, str] = DEMO_SUPER, api_version: int = 1
) -> SiteSettings:
    return site_settings("demo", url, *creds, api_version=api_version)


def _client(
    url: str, creds: tuple[str, str, str, str] = DEMO_SUPER, api2: bool = False, **kw: object
) -> TwentyThreeClient:
    """A client of the legacy dialect (these tests' subject), or api/2 with ``api2``."""
    site = _site(url, creds, 2 if api2 else 1)
    return TwentyThreeClient(site, connect_timeout=1.0, read_timeout=1.0, **kw)  # type: ignore[arg-type]


def test_signed_read_legacy_envelope(devsite: Devsite) -> None:
    response = _client(devsite.url).call(
        "photo/list", {"photo_id": 1003, "include_unpublished_p": 1}
    )
    assert response.permission_level == "super"
    (photo,) = response.items("photos")
    assert photo["photo_id"] == "1003" and photo["token"] == devsite.photos[1003].token
    (call,) = devsite.calls()
    assert call["http_method"] == "GET" and call["level"] == "super"
    assert call["params"]["format"] == "json" and call["params"]["raw"] == "1"


def test_api2_envelope(devsite: Devsite) -> None:
    response = _client(devsite.url, api2=True).call("photo/list", {"photo_id": 1001})
    (photo,) = response.items("photos")
    assert photo["photo_id"] == 1001 and photo["published_p"] is True  # typed, as the spec
    assert devsite.calls()[0]["api2"] is True


def test_post_sends_everything_in_the_signed_body(devsite: Devsite) -> None:
    response = _client(devsite.url).call(
        "session/get-token",
        {"email": "a@example.com", "full_name": "Å Ø", "return_url": "/x"},
        read=False,
    )
    token = response.payload("sessiontoken")
    assert token["return_url"] == "/x" and len(token["access_token"]) >= 32
    (call,) = devsite.calls()
    assert call["http_method"] == "POST" and call["level"] == "super"
    assert call["params"]["full_name"] == "Å Ø"


def test_wrong_secret_is_invalid_signature(devsite: Devsite) -> None:
    creds = (DEMO_SUPER[0], "not-the-secret", DEMO_SUPER[2], DEMO_SUPER[3])
    with pytest.raises(UpstreamRejected) as info:
        _client(devsite.url, creds).call("photo/list", {"size": 1})
    assert info.value.upstream_code == "invalid_signature"
    assert info.value.status == 502


def test_permission_levels_are_enforced(devsite: Devsite) -> None:
    with pytest.raises(UpstreamRejected) as info:
        _client(devsite.url, DEMO_READ).call("session/get-token", {"email": "a@b.c"}, read=False)
    assert info.value.upstream_code == "permission_denied"
    assert "super" in info.value.upstream_message


def test_no_such_photo_keeps_23s_code(devsite: Devsite) -> None:
    with pytest.raises(UpstreamRejected) as info:
        _client(devsite.url).call("photo/list", {"photo_id": 999999})
    assert info.value.upstream_code == "no_such_photo"
    assert info.value.to_dict()["error"]["upstream_code"] == "no_such_photo"


def test_5xx_reads_are_retried_once_then_unavailable(devsite: Devsite) -> None:
    devsite.mode("down")
    with pytest.raises(UpstreamUnavailable):
        _client(devsite.url).call("photo/list", {"size": 1})
    assert [c["status"] for c in devsite.calls()] == ["fault", "fault"]


def test_writes_are_never_retried(devsite: Devsite) -> None:
    devsite.mode("down")
    with pytest.raises(UpstreamUnavailable):
        _client(devsite.url).call("session/get-token", {"email": "a@b.c"}, read=False)
    assert len(devsite.calls()) == 1


def test_garbage_is_a_bad_response(devsite: Devsite) -> None:
    devsite.mode("garbage")
    with pytest.raises(UpstreamBadResponse):
        _client(devsite.url).call("photo/list", {"size": 1})


def test_unexpected_status_error_is_rejected(devsite: Devsite) -> None:
    devsite.mode("error")
    with pytest.raises(UpstreamRejected) as info:
        _client(devsite.url).call("photo/list", {"size": 1})
    assert info.value.upstream_code == "internal_error"


def test_hanging_site_times_out_quickly(devsite: Devsite) -> None:
    devsite.mode("hang", seconds=3)
    started = time.monotonic()
    with pytest.raises(UpstreamTimeout) as info:
        _client(devsite.url).call("photo/list", {"size": 1})
    assert time.monotonic() - started < 2.5
    assert info.value.status == 504


def test_refused_connection_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(UpstreamUnavailable):
        _client(f"http://127.0.0.1:{port}").call("photo/list", {"size": 1})


def test_method_names_are_checked() -> None:
    with pytest.raises(ValueError):
        _client("http://127.0.0.1:9").call("../oauth/access_token")


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (200, b'{"status": "error", "code": "invalid_input", "message": "x"}', UpstreamRejected),
        (400, b'{"status": "error", "code": "invalid_input"}', UpstreamRejected),
        (404, b"<html>not found</html>", UpstreamBadResponse),
        (500, b'{"status": "ok"}', UpstreamUnavailable),
        (503, b"", UpstreamUnavailable),
        (200, b"var visual = {}", UpstreamBadResponse),
        (200, b"[1, 2]", UpstreamBadResponse),
        (200, b'{"photos": []}', UpstreamBadResponse),
        (302, b'{"status": "ok"}', UpstreamBadResponse),
    ],
)
def test_envelope_rules(status: int, body: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        _parse("photo/list", status, body)


def test_payload_of_either_style() -> None:
    legacy = _parse(
        "session/get-token", 200, b'{"status":"ok","sessiontoken":{"access_token":"a"}}'
    )
    assert legacy.payload("sessiontoken") == {"access_token": "a"}
    current = _parse("session/get-token", 200, b'{"status":"ok","data":{"access_token":"b"}}')
    assert current.payload("sessiontoken") == {"access_token": "b"}
    with pytest.raises(UpstreamBadResponse):
        _parse("session/get-token", 200, b'{"status":"ok"}').payload("sessiontoken")
