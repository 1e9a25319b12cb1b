"""Live reload under traffic, on ``gateway serve`` with the in-process store: SIGHUP (and a
watched file) builds a new runtime beside the old one in each worker; sessions and
revocations survive, new sites and changed policies apply, a broken file is refused and the
last good configuration keeps serving, and no request fails meanwhile."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import requests

from tests.formclient import FormClient
from tests.helpers import Devsite, ServedGateway, records_of

STAFF = {"X-Email": "ada@example.com", "X-Groups": "staff"}


def _config(devsite: Devsite, groups: str, extra: str = "", watch: bool = False) -> str:
    return f"""
[gateway]
public_url = "http://127.0.0.1:8000"
secret_key = "reload-test-secret-key-0123456789abcdef"
trusted_proxies = ["127.0.0.1/32"]
watch_config = {"true" if watch else "false"}

[identity.proxy]
type = "header"
email_header = "X-Email"
groups_header = "X-Groups"

[sites.demo]
url = "{devsite.url}"
consumer_key = "demo-super-consumer"
consumer_secret = "demo-super-consumer-secret"
access_token = "demo-super-access"
access_token_secret = "demo-super-access-secret"
identity = "proxy"
allow_groups = [{groups}]
catalogue = "on_demand"
{extra}
"""


NEWS = """
[sites.news]
url = "{url}"
consumer_key = "demo-super-consumer"
consumer_secret = "demo-super-consumer-secret"
access_token = "demo-super-access"
access_token_secret = "demo-super-access-secret"
identity = "proxy"
catalogue = "on_demand"
"""


def _signed_in(gateway: str, devsite: Devsite) -> FormClient:
    browser = FormClient()
    answer = browser.get(
        f"{gateway}/sso/demo/login",
        params={"return_url": f"{devsite.url}/"},
        headers=STAFF,
        allow_redirects=False,
        timeout=15,
    )
    assert answer.status_code == 302, answer.text
    return browser


def _embed_answer(gateway: str, cookies: Any) -> requests.Response:
    return requests.get(
        f"{gateway}/embed/demo/1001", cookies=cookies, allow_redirects=False, timeout=15
    )


def _embed(gateway: str, cookies: Any) -> int:
    return _embed_answer(gateway, cookies).status_code


def _sent_to_sign_in(gateway: str, cookies: Any) -> bool:
    return "/sso/demo/login" in _embed_answer(gateway, cookies).headers.get("Location", "")


def _status(url: str) -> int:
    """What staff get at ``url`` (no redirects followed)."""
    return requests.get(url, headers=STAFF, allow_redirects=False, timeout=5).status_code


def _until(check: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


class Traffic:
    """Requests all through the reloads: none may fail (no 5xx, no refused connection)."""

    def __init__(self, gateway: str, cookies: Any) -> None:
        self.failures: list[str] = []
        self.done = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(gateway, cookies), daemon=True)
        self._thread.start()

    def _run(self, gateway: str, cookies: Any) -> None:
        while not self._stop.is_set():
            try:
                for path in ("/healthz", "/embed/demo/1001"):
                    answer = requests.get(
                        gateway + path, cookies=cookies, allow_redirects=False, timeout=10
                    )
                    if answer.status_code >= 500:
                        self.failures.append(f"{path}: {answer.status_code}")
                self.done += 1
            except requests.RequestException as exc:
                self.failures.append(repr(exc))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)


def test_a_reload_keeps_sessions_and_applies_the_new_file(devsite: Devsite, tmp_path: Path) -> None:
    served = ServedGateway(_config(devsite, '"staff"'), tmp_path)
    config = tmp_path / "gateway.toml"
    try:
        gateway = served.url
        kept = _signed_in(gateway, devsite)
        gone = _signed_in(gateway, devsite)
        copied = dict(gone.cookies)  # taken before the sign-out
        page = gone.get(f"{gateway}/sso/demo/logout", timeout=15)
        assert gone.submit(page, follow=False).status_code in (200, 303)
        assert _embed(gateway, dict(kept.cookies)) == 302
        assert _embed(gateway, copied) in (302, 303)
        assert _sent_to_sign_in(gateway, copied)

        traffic = Traffic(gateway, dict(kept.cookies))
        # A new site, and staff no longer in the allowed groups of demo.
        config.write_text(_config(devsite, '"board"', NEWS.format(url=devsite.url), watch=True))
        os.kill(served.proc.pid, signal.SIGHUP)
        news = f"{gateway}/sso/news/login?return_url={devsite.url}/"
        assert _until(lambda: _status(news) == 302, 15), served.output()[-3000:]
        assert _embed(gateway, dict(kept.cookies)) == 403  # the session survived; the policy is new
        assert _sent_to_sign_in(gateway, copied)  # the revoked copy stays revoked

        config.write_text("[gateway]\npublic_url = 'not a url'\n")  # broken: refused
        os.kill(served.proc.pid, signal.SIGHUP)
        assert _until(lambda: "configuration reload refused" in served.output(), 10)
        assert _status(news) == 302

        config.write_text(_config(devsite, '"staff"', watch=True))  # no signal: watch_config
        assert _until(lambda: _status(news) == 404, 15), served.output()[-3000:]
        assert _embed(gateway, dict(kept.cookies)) == 302
        traffic.stop()
        assert traffic.failures == [] and traffic.done > 10
        assert served.proc.poll() is None  # the master never went down
    finally:
        served.stop()


def test_a_reload_that_fails_unexpectedly_keeps_the_reloader(
    devsite: Devsite, tmp_path: Path, monkeypatch: Any
) -> None:
    """A new runtime that cannot be built for a reason no check foresaw (a driver's error) is
    refused like a broken file, and the next SIGHUP still reloads."""
    from gateway import create_app
    from gateway.live_reload import RELOADS, LiveReload
    from gateway.loader import load_settings
    from gateway.runtime import GatewayRuntime

    config = tmp_path / "gateway.toml"
    config.write_text(_config(devsite, '"staff"'))
    app = create_app(load_settings(str(config)))
    live = LiveReload(app, str(config))
    successor = GatewayRuntime.successor

    def failing(runtime: GatewayRuntime, settings: Any) -> GatewayRuntime:
        raise RuntimeError("postgresql://gateway:SECRET-db-pw@db/gateway refused")

    monkeypatch.setattr(GatewayRuntime, "successor", failing)
    refused = RELOADS.labels("refused")._value.get()
    wake = threading.Event()
    threading.Thread(target=live.run, args=(wake,), daemon=True).start()
    with records_of("gateway.reload") as seen:
        wake.set()
        assert _until(lambda: RELOADS.labels("refused")._value.get() == refused + 1, 10)
    lines = str([r.__dict__ for r in seen])
    assert "RuntimeError" in lines and "SECRET" not in lines
    first = app.extensions["gateway.runtime"]
    monkeypatch.setattr(GatewayRuntime, "successor", successor)
    config.write_text(_config(devsite, '"staff"', NEWS.format(url=devsite.url)))
    wake.set()
    assert _until(lambda: "news" in app.extensions["gateway.runtime"].sites, 10)
    assert app.extensions["gateway.runtime"] is not first
    app.extensions["gateway.runtime"].close()
