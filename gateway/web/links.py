"""Visitor links: ``/embed/<site>/<id>`` and ``/download/<site>/<id>/<format>``.

A signed-in visitor whom the site's policy (and the access rules covering the video) allows
gets a 302 to 23 with a token minted just now, living ``visitor_ttl`` or, for a long video,
long enough to watch it twice over (capped by ``visitor_ttl_max``). Anyone else goes through
the site's sign-in and comes back here (``next``), without a 23 session being made for it.
Unpublished videos stay unpublished for visitors (404) unless the site sets
``visitor_unpublished``; backends with an API key still mint them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from flask import Blueprint, redirect, request, url_for
from werkzeug.wrappers import Response

from gateway import metrics
from gateway.errors import NotFound, TooManyRequests
from gateway.identity.base import Identity
from gateway.logs import audit
from gateway.policy import rules_decision
from gateway.settings import SiteSettings
from gateway.store import StoreUnavailable
from gateway.twentythree import urls
from gateway.twentythree.cache import NO_SUCH_PHOTO, Missing, PhotoInfo
from gateway.twentythree.minting import covering_playback
from gateway.web.current import photo_id_or_400, runtime, site_or_404
from gateway.web.visitor import (
    NotSignedIn,
    allowed_visitor,
    deny,
    keep_alive,
    signed_out_elsewhere,
)

bp = Blueprint("links", __name__)


class NoSuchVideo(NotFound, code=NO_SUCH_PHOTO):
    """This video does not exist or is not available."""


class NoSuchFormat(NotFound, code="no_such_format"):
    """This video has no file in that format."""


def shown_to_visitors(site: SiteSettings, info: PhotoInfo) -> bool:
    """Unpublished videos stay unpublished for visitors unless the site says otherwise."""
    return info.published or site.visitor_unpublished


def visitor_photo(site: SiteSettings, photo_id: int, identity: Identity) -> PhotoInfo:
    """What 23 says about a video this visitor may see (cached). 23's "no such photo", and an
    unpublished video on a site that keeps those to itself, are both a 404; an access rule
    covering the video that the visitor does not meet is a 403 (and an audit line)."""
    spend = _visitor_budget(site, identity)
    found = runtime().site(site.name).minter.photos([photo_id], spend)[photo_id]
    if isinstance(found, Missing):
        raise NoSuchVideo()
    if not shown_to_visitors(site, found):
        raise NoSuchVideo()  # the same answer as unknown: ids cannot be probed
    if site.rules:
        decision = rules_decision(site, identity, found.albums, found.tags, runtime().standing)
        if not decision.allowed:
            deny(site, identity, decision, "forbidden_by_rule", photo_ids=[photo_id])
    return found


def _visitor_budget(site: SiteSettings, identity: Identity) -> Callable[[int], None]:
    """Lookups at 23 a visitor's requests may cause: each visitor and all of a site's visitors
    together have a minute's budget, so a signed-in stranger asking for made-up ids cannot
    drive 23's API. While the store is down nothing can be counted and lookups go on."""

    def spend(cold: int) -> None:
        limiter = runtime().limiter
        who = hashlib.sha256(f"{identity.provider}\0{identity.email.lower()}".encode()).hexdigest()
        message = "Too many videos had to be looked up just now; please try again in a minute."
        try:
            for name, budget in (
                (f"cold-visitor:{site.name}:{who[:32]}", site.cold_lookups_per_visitor),
                (f"cold-visitors:{site.name}", site.cold_lookups_all_visitors),
            ):
                limiter.spend(name, cold, budget, message, "too_many_cold_lookups")
        except TooManyRequests:
            audit("cold_lookups_refused", site=site.name, email=identity.email)
            raise
        except StoreUnavailable:
            pass

    return spend


def visitor_token(
    site: SiteSettings, photo_id: int, identity: Identity
) -> tuple[PhotoInfo, str, int]:
    """The photo's facts, a token minted now, and its expiry: ``visitor_ttl``, or longer for a
    long video so pausing and seeking never outlive it (at most ``visitor_ttl_max``)."""
    info = visitor_photo(site, photo_id, identity)
    minter = runtime().site(site.name).minter
    ttl = covering_playback(site.visitor_ttl, info.length, site.visitor_ttl_max)
    expire = minter.expire_after(ttl)
    return info, minter.token(info, expire), expire


def record_visitor_mint(
    via: str, site: SiteSettings, identity: Identity, photo_id: int, expire: int
) -> None:
    """Metrics and the audit line for a token minted for a visitor (never the token)."""
    metrics.TOKENS_MINTED.labels(site.name, via).inc()
    audit(
        "tokens_minted",
        via=via,
        site=site.name,
        email=identity.email,
        provider=identity.provider,
        photo_ids=[photo_id],
        expire=expire,
    )


def _signed_in_or_login(site: SiteSettings) -> Identity | Response:
    try:
        return allowed_visitor(site)
    except NotSignedIn:
        told = signed_out_elsewhere(site)  # a newer device of theirs ended this session
        if told is not None:
            return told
        return redirect(url_for("sso.login", site_name=site.name, next=request.path), code=302)


def _send(
    via: str, site: SiteSettings, identity: Identity, photo_id: int, url: str, expire: int
) -> Response:
    record_visitor_mint(via, site, identity, photo_id, expire)
    # A bare 302 (werkzeug's redirect() writes an HTML body and re-quotes the URL, which is
    # ours and already quoted): the hot path of every embed.
    response = Response(
        status=302,
        headers=(("Location", url), ("Cache-Control", "private, no-store")),  # this visitor's
    )
    keep_alive(response)
    return response


@bp.get("/embed/<site_name>/<raw_id>")
def embed(site_name: str, raw_id: str) -> Response:
    site = site_or_404(site_name)
    photo_id = photo_id_or_400(raw_id)
    identity = _signed_in_or_login(site)
    if isinstance(identity, Response):
        return identity
    info, token, expire = visitor_token(site, photo_id, identity)
    url = urls.embed_url(site.url, info.photo_id, token)
    return _send("embed", site, identity, photo_id, url, expire)


@bp.get("/download/<site_name>/<raw_id>/<fmt>")
def download(site_name: str, raw_id: str, fmt: str) -> Response:
    site = site_or_404(site_name)
    photo_id = photo_id_or_400(raw_id)
    if not urls.FORMAT_RE.fullmatch(fmt):
        raise NoSuchFormat()
    identity = _signed_in_or_login(site)
    if isinstance(identity, Response):
        return identity
    info, token, expire = visitor_token(site, photo_id, identity)
    if fmt not in info.files:
        raise NoSuchFormat()
    url = urls.file_url(site.url, info.tree_id, info.photo_id, token, fmt, info.files[fmt])
    return _send("download", site, identity, photo_id, url, expire)
