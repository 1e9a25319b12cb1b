"""``GET /embed/<site>/<id>`` for the visitor who may watch: the visitor's hot path, answered
before Flask sees the request, as the mint API is (Flask's request context, URL map, proxies
and response object cost more than the work itself).

Only the plain success is answered here: a visitor known by a trusted proxy's headers or by a
live session cookie that needs no refresh, whom the site's policy and the video's access
rules admit, for a video this worker's photo cache already knows (its first level).
Everything else (a stranger, a refusal, an unknown or cold video, a session due for refresh,
anything unexpected) goes on to the Flask view in ``web/links.py``, unchanged, before anything
was recorded: the answers, audit lines and metrics are the same either way.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from flask import Request

from gateway import cookies
from gateway.identity.base import Identity
from gateway.policy import decide, rules_decision, trusts
from gateway.runtime import SiteRuntime
from gateway.twentythree import urls
from gateway.twentythree.cache import Missing, PhotoInfo
from gateway.twentythree.minting import covering_playback
from gateway.web.fastpath import Environ, FastPath, StartResponse
from gateway.web.links import record_visitor_mint, shown_to_visitors
from gateway.web.observability import ROUTE_KEY

log = logging.getLogger("gateway.embed")

ROUTE = "/embed/<site_name>/<raw_id>"  # the Flask rule's template, for the same metrics


class EmbedFastPath(FastPath):
    path = re.compile(r"/embed/([A-Za-z0-9][A-Za-z0-9_-]{0,62})/([1-9][0-9]{0,17})")

    def answer(
        self, match: re.Match[str], environ: Environ, start_response: StartResponse
    ) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "GET":
            return self.app(environ, start_response)
        try:
            location = self._location(environ, match.group(1), int(match.group(2)))
        except Exception as exc:  # the slow path answers it, the same way it always has
            log.debug("embed fast path declined", extra={"cause": type(exc).__name__})
            location = None
        if location is None:
            return self.app(environ, start_response)
        environ[ROUTE_KEY] = ROUTE
        start_response(
            "302 Found",
            [
                ("Location", location),
                ("Cache-Control", "private, no-store"),  # the token is this visitor's
                ("Content-Length", "0"),
            ],
        )
        return [b""]

    def _location(self, environ: dict[str, Any], site_name: str, photo_id: int) -> str | None:
        site = self.runtime.sites.get(site_name)
        if site is None:
            return None
        identity = self._visitor(environ, site)
        if identity is None or not decide(site.settings, identity, self.runtime.standing).allowed:
            return None
        info = self._known_photo(site, photo_id, identity)
        if info is None:
            return None
        settings = site.settings
        ttl = covering_playback(settings.visitor_ttl, info.length, settings.visitor_ttl_max)
        expire = site.minter.expire_after(ttl)
        token = site.minter.token(info, expire)
        record_visitor_mint("embed", settings, identity, photo_id, expire)
        return urls.embed_url(settings.url, info.photo_id, token)

    def _visitor(self, environ: dict[str, Any], site: SiteRuntime) -> Identity | None:
        """As ``web.visitor.visitor_for`` sees them, when no cookie needs writing."""
        identifiers = site.request_identifiers
        request = Request(environ)
        for provider in identifiers:
            identity = provider.identify(request)
            if identity is not None:
                return identity
        raw = request.cookies.get(self.runtime.cookies.name(cookies.SESSION))
        if not raw:
            return None
        sessions = self.runtime.sessions
        session = sessions.load(raw)
        if session is None or sessions.touched(session) is not None:
            return None  # a stranger, or a session the slow path slides on
        ident = session.identity
        if not trusts(site.settings, ident) or not self.runtime.keeps_sessions_for(ident):
            return None
        return ident

    def _known_photo(
        self, site: SiteRuntime, photo_id: int, identity: Identity
    ) -> PhotoInfo | None:
        """The photo, when this worker knows it and the visitor may see it."""
        info = site.cache.in_first_level(photo_id)
        if info is None or isinstance(info, Missing):
            return None
        settings = site.settings
        if not shown_to_visitors(settings, info):
            return None
        if (
            settings.rules
            and not rules_decision(
                settings, identity, info.albums, info.tags, self.runtime.standing
            ).allowed
        ):
            return None
        return info
