"""Return URLs: a corpus of hostile payloads (each refused before any upstream call) and the
benign forms that must keep working."""

from __future__ import annotations

import itertools
from urllib.parse import quote, urljoin, urlsplit

import pytest
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import create_app
from gateway.redirects import UnsafeReturnUrl, safe_return_url
from tests.helpers import Devsite, make_settings, site_settings, site_table

SITE = site_settings("intranet", "https://video.example.com", return_hosts=["www.example.com"])

EVIL_HOSTS = [
    "evil.com",
    "evil.example",
    "video.example.com.evil.com",
    "evilvideo.example.com",
    "video-example.com",
    "example.com",
    "127.0.0.1",
    "[::1]",
    "0x7f000001",
    "video.example.com.",
    "vidéo.example.com",
    "xn--vido-bpa.example.com",
    "video.example.co",
    "video.example.com:443.evil.com",
    "sub.video.example.com",
    "www.example.com.evil.com",
    "2130706433",
]


# Whole values, each a trick of its own (with EVIL_HOSTS in each shape, and encodings, below).
TRICKS = [
    # scheme-relative and backslash tricks
    "//",
    "///evil.com",
    "////evil.com",
    "/\\evil.com",
    "\\\\evil.com",
    "/\\/evil.com",
    "\\/evil.com",
    "https:\\\\evil.com",
    "https:/\\evil.com",
    "https://video.example.com\\@evil.com",
    "/.\\evil.com",
    "https://video.example.com\\evil.com",
    # user info
    "https://video.example.com@evil.com/",
    "https://user:pw@video.example.com/",
    "https://evil.com@video.example.com/",
    "https://video.example.com:@evil.com",
    "https://video.example.com%40evil.com/",
    "https://@video.example.com/",
    "https://video.example.com%2540evil.com/",
    # other schemes
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "javascript://video.example.com/%0aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "file:///etc/passwd",
    "ftp://video.example.com/",
    "mailto:a@video.example.com",
    "jar:https://video.example.com!/",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "java\nscript:alert(1)",
    "http://video.example.com/",  # downgrade from https
    # control characters and whitespace, raw and encoded
    "/\t/evil.com",
    "/\n/evil.com",
    "/\r\n/evil.com",
    "/%09/evil.com",
    "/%0a/evil.com",
    "/%0d%0a/evil.com",
    "/%00",
    "/x%00.html",
    "/\x00",
    "/x\x7f",
    "/%7f",
    "/ /evil.com",
    "/a b",
    " /video/1",
    "/video/1 ",
    "\t/video/1",
    "/%E2%80%A8/evil.com",
    "/\u2028evil",
    "/%C2%85evil",
    "/\u00a0evil",
    "/%EF%BB%BFevil",
    # encoded slashes and dots that become scheme-relative
    "/%2F/evil.com",
    "/%2f%2fevil.com",
    "%2F%2Fevil.com",
    "/%5Cevil.com",
    "/%5cevil.com",
    "%5C%5Cevil.com",
    "/%252F/evil.com",
    "/%25252F/evil.com",
    "%252F%252Fevil.com",
    "/%2F%2F%2Fevil.com",
    "https%3A%2F%2Fevil.com",
    "https:%2F%2Fevil.com",
    "%68ttps://evil.com",
    "https://video.example.com%2F@evil.com",
    "https://video.example.com%23@evil.com",
    "https://video.example.com%3F@evil.com",
    "https://%76ideo.example.com/",
    # ports and odd authorities
    "https://video.example.com:8443/",
    "https://video.example.com:99999/",
    "https://video.example.com:-1/",
    "https://video.example.com:abc/",
    "https://[video.example.com]/",
    "https://video.example.com..",
    "https://video..example.com/",
    "https:///video.example.com/",
    "https://",
    "https:",
    "http:",
    "http://",
    "//video.example.com/",
    # no leading slash
    "video.example.com/x",
    "evil.com",
    ".evil.com",
    "@evil.com",
    "#//evil.com",
    "?//evil.com",
    "./video",
    "../video",
    "~/video",
    # overlong
    "/" + "a" * 2048,
    "https://video.example.com/" + "a" * 3000,
    # non-ASCII
    "/vidéo",
    "https://video.example.com/ü",
    "/\uff0f\uff0fevil.com",
    "\uff0f\uff0fevil.com",
]


def hostile_corpus() -> list[str]:
    corpus: list[str] = []
    for host in EVIL_HOSTS:
        corpus += [
            f"https://{host}/",
            f"http://{host}/x",
            f"//{host}",
            f"//{host}/path",
            f"https:{host}",
            f"https:/{host}",
        ]
    corpus += TRICKS
    # Triple-encoded and mixed-case variants of the classic payloads.
    for payload in ("//evil.com", "/\\evil.com", "https://evil.com"):
        corpus.append(quote(payload, safe=""))
        corpus.append(quote(quote(payload, safe=""), safe=""))
    return list(dict.fromkeys(corpus))


BENIGN = [
    "/",
    "/video/1001",
    "/video/1001/welcome-to-the-demo-site",
    "/search?q=hello%20world&p=2",
    "/video/1?t=30#player",
    "/a/b/c.html",
    "/video/1?next=%2Fvideo%2F2",
    "/?q=//not-a-host",
    "https://video.example.com",
    "https://video.example.com/",
    "https://video.example.com/video/1?a=1&b=2#x",
    "https://VIDEO.example.com/x",
    "https://video.example.com:443/x",
    "https://www.example.com/welcome",
    "",
]


@settings(max_examples=600, deadline=None)
@given(
    st.text(max_size=80) | st.from_regex(r"(https?:)?/{0,3}[\\a-z.@:%0-9/-]{0,40}", fullmatch=True)
)
def test_whatever_is_accepted_stays_on_the_site(value: str) -> None:
    """Any string at all: either refused, or where a browser would go from the site's page
    is the site's own host (or a return host), over the site's scheme."""
    try:
        accepted = safe_return_url(value, SITE)
    except UnsafeReturnUrl:
        return
    landing = urlsplit(urljoin("https://video.example.com/video/1", accepted))
    assert landing.scheme == "https"
    assert landing.hostname in ("video.example.com", "www.example.com"), value
    assert landing.username is None and landing.password is None


@pytest.mark.parametrize("value", hostile_corpus())
def test_hostile_return_urls_are_refused(value: str) -> None:
    with pytest.raises(UnsafeReturnUrl):
        safe_return_url(value, SITE)


@pytest.mark.parametrize("value", BENIGN)
def test_benign_return_urls_pass(value: str) -> None:
    assert safe_return_url(value, SITE) == (value or "/")


def test_loopback_http_site_accepts_its_own_http_urls() -> None:
    dev = site_settings("dev", "http://127.0.0.1:8023")
    assert safe_return_url("http://127.0.0.1:8023/video/1", dev) == "http://127.0.0.1:8023/video/1"
    for value in ("http://127.0.0.1:8024/", "http://localhost:8023/", "http://127.0.0.1/"):
        with pytest.raises(UnsafeReturnUrl):
            safe_return_url(value, dev)


@pytest.fixture()
def sso_client(devsite: Devsite) -> FlaskClient:
    settings = make_settings(
        {
            "intranet": site_table(
                "https://video.example.com", identity="proxy", return_hosts=["www.example.com"]
            )
        },
        gateway={"trusted_proxies": ["127.0.0.1/32"]},
        identity={"proxy": {"type": "header"}},
    )
    return create_app(settings).test_client()


def test_every_hostile_url_is_a_400_json_at_the_endpoint(sso_client: FlaskClient) -> None:
    headers = {"X-Forwarded-Email": "a@example.com"}
    for value in itertools.islice(hostile_corpus(), None):
        response = sso_client.get(
            "/sso/intranet/login",
            query_string={"return_url": value},
            headers=headers,
            environ_base={"REMOTE_ADDR": "127.0.0.1"},
        )
        assert response.status_code == 400, value
        assert response.json["error"]["code"] == "invalid_return_url", value
    # The site's url points nowhere reachable: a single upstream call would have failed loudly
    # as 502/504 above, so 400 everywhere also proves no call was attempted first.
