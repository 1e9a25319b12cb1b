"""The emulated site's visitor-facing side: closed pages, the player, media files and the
redeem URLs that sign a browser in."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlencode, urljoin

from flask import Blueprint, Response, redirect, request
from itsdangerous import BadSignature
from markupsafe import escape
from werkzeug.wrappers import Response as BaseResponse

from gateway.devsite.catalog import STILL_SIZES
from gateway.devsite.site import COOKIE, SESSION_IDLE, TokenTable, current

bp = Blueprint("devsite_pages", __name__)


def html(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(title)}</title><style>body{{font:16px system-ui,sans-serif;"
        "max-width:40rem;margin:3rem auto;padding:0 1rem;color:#1d1d1f}"
        "h1{font-size:1.6rem}</style></head>"
        f"<body><p><small>Emulated 23 site</small></p>{body}</body></html>"
    )


def redeem(table: TokenTable, token: str) -> BaseResponse:
    """A session or login token redeemed by the visitor's browser: the site's cookie."""
    site = current()
    data = site.state.redeem(table, token) if token else None
    if data is None:
        return Response("The token is invalid, consumed or expired.", 403, mimetype="text/plain")
    response = redirect(urljoin(request.host_url, data["return_url"]))
    response.set_cookie(
        COOKIE, site.cookies.dumps(data), httponly=True, samesite="Lax", max_age=SESSION_IDLE
    )
    return response


def _visitor() -> dict[str, str] | None:
    try:
        data = current().cookies.loads(request.cookies.get(COOKIE, ""), max_age=SESSION_IDLE)
    except BadSignature:
        return None
    return data if isinstance(data, dict) else None


def _closed(page: Callable[[dict[str, str]], str]) -> BaseResponse:
    """A page of the closed site: strangers go to its remote login URL."""
    site = current()
    who = _visitor()
    if who is None:
        target = site.options.remote_login_url
        sep = "&" if "?" in target else "?"
        return redirect(f"{target}{sep}{urlencode({site.options.return_param: request.url})}")
    response = Response(html(site.options.site_name, page(who)))
    # Sliding idle expiry, like 23's signed sessions.
    response.set_cookie(
        COOKIE, site.cookies.dumps(who), httponly=True, samesite="Lax", max_age=SESSION_IDLE
    )
    return response


@bp.get("/")
def home() -> BaseResponse:
    photos = current().photos

    def page(who: dict[str, str]) -> str:
        items = "".join(
            f'<li><a href="/video/{p.photo_id}">{escape(p.title)}</a></li>'
            for p in photos.values()
            if p.published
        )
        return (
            f'<h1 id="welcome">Welcome, {escape(who.get("full_name") or who["email"])}'
            f'</h1><p id="email">Signed in as {escape(who["email"])} '
            f'({escape(who["kind"])})</p><ul>{items}</ul><p><a href="/logout">Log out</a>'
        )

    return _closed(page)


@bp.get("/video/<int:photo_id>")
@bp.get("/video/<int:photo_id>/<slug>")
def video_page(photo_id: int, slug: str = "") -> BaseResponse:
    photo = current().photos.get(photo_id)
    if photo is None or not photo.published:
        return Response("No such video", 404, mimetype="text/plain")

    def page(who: dict[str, str]) -> str:
        src = f"/v.ihtml?{urlencode({'token': photo.token, 'photo_id': photo.photo_id})}"
        return f'<h1>{escape(photo.title)}</h1><iframe src="{escape(src)}"></iframe>'

    return _closed(page)


@bp.get("/logout")
def logout() -> BaseResponse:
    """As 23 does with a remote logout URL: the site's own session ends, then the visitor
    goes to the sign-in service's logout with a way back (else the next visit to the closed
    site would sign them straight back in)."""
    target = current().options.remote_logout_url
    back = urljoin(request.host_url, "/")
    response = redirect(f"{target}?{urlencode({'return_url': back})}" if target else "/")
    response.delete_cookie(COOKIE)
    return response


@bp.get("/v.ihtml")
@bp.get("/v.ihtml/player.html")
def player() -> BaseResponse:
    site = current()
    photo_id = request.args.get("photo_id", "")
    photo = site.photos.get(int(photo_id)) if photo_id.isascii() and photo_id.isdigit() else None
    if photo is None or not site.token_opens(photo, request.args.get("token", "")):
        return Response("Access denied", 403, mimetype="text/plain")
    body = f'<div id="player" data-photo-id="{photo.photo_id}">Playing {escape(photo.title)}</div>'
    return Response(html(photo.title, body))


@bp.get("/<int:tree_id>/<int:photo_id>/<token>/<kind>")
@bp.get("/<int:tree_id>/<int:photo_id>/<token>/<kind>/<filename>")
def media(tree_id: int, photo_id: int, token: str, kind: str, filename: str = "") -> BaseResponse:
    site = current()
    photo = site.photos.get(photo_id)
    if photo is None or photo.tree_id != tree_id or not site.token_opens(photo, token):
        return Response("Access denied", 403, mimetype="text/plain")
    if kind in photo.formats and filename in ("", photo.filename(kind)):
        mimetype = "audio/mpeg" if kind == "audio" else "video/mp4"
        return Response(b"\x00\x00\x00\x18ftypmp42" + kind.encode(), mimetype=mimetype)
    custom = kind.partition("x")
    if (kind in STILL_SIZES and not filename) or (
        custom[0].isdigit() and custom[2].isdigit() and filename == "thumbnail.jpg"
    ):
        return Response(b"\xff\xd8\xff\xe0" + kind.encode(), mimetype="image/jpeg")
    return Response("Not found", 404, mimetype="text/plain")


@bp.get("/m/d/<int:photo_id>/<token>")
def mobile(photo_id: int, token: str) -> BaseResponse:
    site = current()
    photo = site.photos.get(photo_id)
    if photo is None or not site.token_opens(photo, token):
        return Response("Access denied", 403, mimetype="text/plain")
    fmt = photo.formats[-1]
    return redirect(f"/{photo.tree_id}/{photo.photo_id}/{token}/{fmt}/{photo.filename(fmt)}")
