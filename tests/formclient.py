"""A small HTTP "browser" for flows through HTML forms: keeps cookies, fills and submits forms."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import requests


class _Forms(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append(
                {"action": a.get("action", ""), "method": a.get("method", "get"), "fields": {}}
            )
        elif tag in ("input", "button") and self.forms and a.get("name"):
            self.forms[-1]["fields"].setdefault(a["name"], a.get("value", ""))


def forms(html: str) -> list[dict[str, Any]]:
    parser = _Forms()
    parser.feed(html)
    return parser.forms


class FormClient(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.headers["Accept"] = "text/html,application/xhtml+xml,*/*;q=0.8"  # as browsers do

    def submit(
        self, page: requests.Response, index: int = 0, follow: bool = True, **values: str
    ) -> requests.Response:
        form = forms(page.text)[index]
        data = {**form["fields"], **values}
        url = urljoin(page.url, form["action"] or page.url)
        if form["method"].lower() == "post":
            return self.post(url, data=data, allow_redirects=follow, timeout=15)
        return self.get(url, params=data, allow_redirects=follow, timeout=15)

    def follow_until(self, response: requests.Response, prefix: str) -> requests.Response:
        """Follow redirects by hand until the next hop starts with ``prefix``; return the
        response whose Location points there (so a test can stop at a callback)."""
        while response.is_redirect:
            location = urljoin(response.url, response.headers["Location"])
            if location.startswith(prefix):
                return response
            response = self.get(location, allow_redirects=False, timeout=15)
        return response
