"""The emulated closed 23 site: its API (both envelope styles) and its visitor-facing pages.

Strict on purpose: whatever it accepts, a real 23 site would accept. OAuth signatures are
verified by oauthlib, permission levels are enforced, tokens are single use, and legacy calls
without ``format=json&raw=1`` get XML as on 23.
"""

from __future__ import annotations

import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urljoin

from flask import Flask, Response, redirect, request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from markupsafe import escape
from werkzeug.wrappers import Response as BaseResponse

from gateway.devsite.catalog import (
    LEVELS,
    STILL_SIZES,
    Credential,
    Photo,
    User,
    demo_credentials,
    demo_photos,
    demo_users,
)
from gateway.devsite.oauth import OAuthVerifier
from gateway.twentythree.tokens import verify_token

TOKEN_LIFETIME = 15 * 60  # session and login tokens, as on 23
SESSION_IDLE = 30 * 60  # 23's signed sessions die after 30 idle minutes
COOKIE = "devsite_session"


@dataclass
class DevsiteOptions:
    remote_login_url: str = "http://127.0.0.1:8000/sso/demo/login"
    return_param: str = "return_url"
    credentials: list[Credential] = field(default_factory=demo_credentials)
    photos: list[Photo] = field(default_factory=demo_photos)
    users: list[User] = field(default_factory=demo_users)
    site_name: str = "Demo Video Site"


class ApiFailure(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class _State:
    session_tokens: dict[str, tuple[float, dict[str, str]]] = field(default_factory=dict)
    login_tokens: dict[str, tuple[float, dict[str, str]]] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)
    mode: str = "ok"  # ok | slow | down | garbage | hang | error
    hang_seconds: float = 30.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self, table: dict[str, tuple[float, dict[str, str]]], data: dict[str, str]) -> str:
        token = secrets.token_hex(24)
        with self.lock:
            now = time.time()
            for key in [k for k, (exp, _) in table.items() if exp < now]:
                del table[key]
            table[token] = (now + TOKEN_LIFETIME, data)
        return token

    def redeem(
        self, table: dict[str, tuple[float, dict[str, str]]], token: str
    ) -> dict[str, str] | None:
        with self.lock:
            entry = table.pop(token, None)  # single use: gone whether or not it is still valid
        if entry is None or entry[0] < time.time():
            return None
        return entry[1]


def _at_least(level: str, required: str) -> bool:
    return LEVELS.index(level) >= LEVELS.index(required)


def _int_param(params: dict[str, str], name: str, required: bool = False) -> int | None:
    raw = params.get(name, "")
    if raw == "":
        if required:
            raise ApiFailure("invalid_input", f"The parameter {name} is required.")
        return None
    if not raw.isdigit() or len(raw) > 12:
        raise ApiFailure("invalid_input", f"The parameter {name} must be a number.")
    return int(raw)


def create_devsite(options: DevsiteOptions | None = None) -> Flask:
    opts = options or DevsiteOptions()
    app = Flask("gateway.devsite")
    app.config["DEVSITE_OPTIONS"] = opts
    state = _State()
    app.config["DEVSITE_STATE"] = state
    verifier = OAuthVerifier(opts.credentials)
    photos = {p.photo_id: p for p in opts.photos}
    users = {u.user_id: u for u in opts.users}
    cookies = URLSafeTimedSerializer(secrets.token_hex(32), salt="devsite-session")

    def token_opens(photo: Photo, token: str) -> bool:
        """The photo's base token, or an unexpired time-limited token made from it."""
        if hmac.compare_digest(token.encode(), photo.token.encode()):
            return True
        return verify_token(photo.token, photo.photo_id, token)

    # ------------------------------------------------------------------ API methods

    def photo_list(p: dict[str, str], level: str) -> tuple[str, Any]:
        photo_id = _int_param(p, "photo_id")
        token = p.get("token", "")
        with_unpublished = p.get("include_unpublished_p") == "1" and _at_least(level, "read")
        if photo_id is not None:
            photo = photos.get(photo_id)
            if photo is None:
                raise ApiFailure("no_such_photo", "The photo does not exist.")
            if token:
                if not token_opens(photo, token):
                    raise ApiFailure("invalid_photo_token", "The token for the photo is wrong.")
                return "photos", [photo.as_api(level)]
            if not _at_least(level, "anonymous"):
                raise ApiFailure("token_required", "This site needs a token for anonymous access.")
            visible = photo.published or with_unpublished
            return "photos", [photo.as_api(level)] if visible else []
        if token:
            raise ApiFailure("invalid_input", "A token needs a photo_id.")
        if not _at_least(level, "anonymous"):
            raise ApiFailure("token_required", "This site needs a token for anonymous access.")
        listed = [ph for ph in photos.values() if ph.published or with_unpublished]
        return "photos", _page(p, [ph.as_api(level) for ph in listed])

    def user_list(p: dict[str, str], level: str) -> tuple[str, Any]:
        term = p.get("search", "").lower()
        found = []
        for u in users.values():
            if term and term not in f"{u.username} {u.email} {u.full_name}".lower():
                continue
            obj: dict[str, Any] = {
                "user_id": str(u.user_id),
                "username": u.username,
                "display_name": u.full_name,
                "url": f"/user/{u.username}/",
            }
            if _at_least(level, "admin"):
                obj.update(
                    email=u.email, full_name=u.full_name, site_admin="t" if u.site_admin else "f"
                )
            found.append(obj)
        return "users", _page(p, found)

    def session_get_token(p: dict[str, str], level: str) -> tuple[str, Any]:
        return_url = p.get("return_url") or "/"
        data = {
            "email": p.get("email", ""),
            "full_name": p.get("full_name", ""),
            "return_url": return_url,
            "kind": "visitor",
        }
        token = state.issue(state.session_tokens, data)
        return "sessiontoken", {"access_token": token, "return_url": return_url}

    def user_get_login_token(p: dict[str, str], level: str) -> tuple[str, Any]:
        user_id = _int_param(p, "user_id", required=True)
        user = users.get(user_id or 0)
        if user is None:
            raise ApiFailure("no_such_user", "The user does not exist.")
        return_url = p.get("return_url") or "/"
        data = {
            "email": user.email,
            "full_name": user.full_name,
            "return_url": return_url,
            "kind": "user",
        }
        token = state.issue(state.login_tokens, data)
        return "logintoken", {
            "login_token": token,
            "return_url": return_url,
            "user_id": str(user.user_id),
        }

    def protection_verify(p: dict[str, str], level: str) -> tuple[str, Any]:
        object_id = _int_param(p, "object_id", required=True)
        if not p.get("protection_method"):
            raise ApiFailure("invalid_input", "The parameter protection_method is required.")
        photo = photos.get(object_id or 0)
        if photo is None:
            raise ApiFailure("no_such_photo", "The photo does not exist.")
        if not photo.protected_token:
            raise ApiFailure("invalid_input", "The object is not protected.")
        if photo.password and not hmac.compare_digest(
            p.get("verification_data", "").encode(), photo.password.encode()
        ):
            raise ApiFailure("permission_denied", "The password is not correct.")
        return "protectedtoken", {
            "object_id": str(photo.photo_id),
            "object_type": "photo",
            "protected_token": photo.protected_token,
        }

    def echo(p: dict[str, str], level: str) -> tuple[str, Any]:
        return "echo", dict(p)

    def site_get(p: dict[str, str], level: str) -> tuple[str, Any]:
        return "site", {"site_name": opts.site_name, "domain": request.host}

    methods: dict[str, tuple[str, Callable[[dict[str, str], str], tuple[str, Any]]]] = {
        "photo/list": ("none", photo_list),
        "user/list": ("anonymous", user_list),
        "session/get-token": ("super", session_get_token),
        "user/get-login-token": ("super", user_get_login_token),
        "protection/verify": ("write", protection_verify),
        "echo": ("none", echo),
        "site/get": ("anonymous", site_get),
    }

    # ------------------------------------------------------------------ API dispatch

    @app.route("/api/<path:method>", methods=["GET", "POST"])
    def api(method: str) -> BaseResponse:
        api2 = method.startswith("2/")
        method = method[2:] if api2 else method
        if method == "session/redeem-token":
            return _redeem(state.session_tokens, request.args.get("session_token", ""))
        if method == "user/redeem-login-token":
            return _redeem(state.login_tokens, request.args.get("login_token", ""))

        if state.mode not in ("ok", "slow"):
            with state.lock:  # recorded on arrival, so a hang lands in the right test's log
                state.calls.append({"method": method, "status": "fault", "mode": state.mode})
        fault = _fault() if state.mode != "ok" else None
        if fault is not None:
            return fault
        body = _form_body()  # read (and cache) the raw body before the form parser consumes it
        # On POST 23 reads only the body; the query string is ignored entirely.
        params = dict(request.form if request.method == "POST" else request.args)
        oauth_given = request.headers.get("Authorization", "").startswith("OAuth ") or any(
            k.startswith("oauth_") for k in params
        )
        level: str | None = "none"
        if oauth_given:
            level = verifier.level(
                _signed_uri(), request.method, body, {k: v for k, v in request.headers.items()}
            )
        public = {k: v for k, v in params.items() if not k.startswith("oauth_")}
        entry = {
            "method": method,
            "http_method": request.method,
            "api2": api2,
            "level": level or "invalid",
            "params": public,
        }
        try:
            if level is None:
                raise ApiFailure("invalid_signature", "The API signature is invalid.")
            if method not in methods:
                raise ApiFailure("invalid_input", f"There is no API method {method}.")
            required, handler = methods[method]
            if not _at_least(level, required):
                raise ApiFailure(
                    "permission_denied",
                    "You don't have the necessary permissions to perform this action "
                    f"(required level: '{required}')",
                )
            key, payload = handler(public, level)
            envelope: dict[str, Any] = {"status": "ok", "permission_level": level, "cached": "0"}
            if api2:
                envelope["data"] = payload
            else:
                envelope[key] = payload
                envelope["endpoint"] = f"/api/{method}"
            entry["status"] = "ok"
        except ApiFailure as exc:
            envelope = {
                "status": "error",
                "code": exc.code,
                "message": exc.message,
                "permission_level": level or "none",
            }
            entry.update(status="error", code=exc.code)
        with state.lock:
            state.calls.append(entry)
        return _render(envelope, params, api2)

    def _fault() -> Response | None:
        mode = state.mode
        if mode == "down":
            return Response(
                "<html><body>503 Service Unavailable</body></html>", 503, mimetype="text/html"
            )
        if mode == "garbage":
            return Response(
                "<html><body>Oops, something went wrong</body></html>", 200, mimetype="text/html"
            )
        if mode == "error":
            return Response(
                json.dumps(
                    {"status": "error", "code": "internal_error", "message": "Internal error"}
                ),
                mimetype="application/json",
            )
        if mode == "hang":  # the client should give up first; the call never completes
            time.sleep(state.hang_seconds)
            return Response(
                "<html><body>504 Gateway Timeout</body></html>", 504, mimetype="text/html"
            )
        if mode == "slow":  # the client should wait; the call then completes normally
            time.sleep(state.hang_seconds)
        return None

    def _signed_uri() -> str:
        if request.method == "POST":
            return request.base_url
        raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
        return request.host_url.rstrip("/") + raw if raw else request.url

    def _form_body() -> str:
        if request.mimetype == "application/x-www-form-urlencoded":
            return request.get_data(cache=True, as_text=True)
        return ""  # multipart fields are never signed

    def _render(envelope: dict[str, Any], params: dict[str, str], api2: bool) -> Response:
        body = json.dumps(envelope)
        if api2:
            callback = params.get("callback")
            if callback:
                return Response(f"/* */\n{callback}({body});", mimetype="application/javascript")
            return Response(body, mimetype="application/json")
        if params.get("format") != "json":
            attrs = " ".join(
                f'{k}="{escape(v)}"' for k, v in envelope.items() if isinstance(v, str)
            )
            return Response(
                f'<?xml version="1.0" encoding="utf-8"?>\n<response {attrs}/>', mimetype="text/xml"
            )
        if "raw" in params:
            return Response(body, mimetype="application/json")
        if params.get("callback"):
            return Response(f"{params['callback']}({body});", mimetype="text/javascript")
        return Response(
            f"var {params.get('varname', 'visual')} = {body}", mimetype="text/javascript"
        )

    def _redeem(table: dict[str, tuple[float, dict[str, str]]], token: str) -> BaseResponse:
        data = state.redeem(table, token) if token else None
        if data is None:
            return Response(
                "The token is invalid, consumed or expired.", 403, mimetype="text/plain"
            )
        response = redirect(urljoin(request.host_url, data["return_url"]))
        response.set_cookie(
            COOKIE, cookies.dumps(data), httponly=True, samesite="Lax", max_age=SESSION_IDLE
        )
        return response

    # ------------------------------------------------------------------ visitor pages

    def visitor() -> dict[str, str] | None:
        try:
            data = cookies.loads(request.cookies.get(COOKIE, ""), max_age=SESSION_IDLE)
        except BadSignature:
            return None
        return data if isinstance(data, dict) else None

    def closed(page: Callable[[dict[str, str]], str]) -> BaseResponse:
        who = visitor()
        if who is None:
            target = opts.remote_login_url
            sep = "&" if "?" in target else "?"
            return redirect(f"{target}{sep}{urlencode({opts.return_param: request.url})}")
        response = Response(_html(opts.site_name, page(who)))
        # Sliding idle expiry, like 23's signed sessions.
        response.set_cookie(
            COOKIE, cookies.dumps(who), httponly=True, samesite="Lax", max_age=SESSION_IDLE
        )
        return response

    @app.get("/")
    def home() -> BaseResponse:
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

        return closed(page)

    @app.get("/video/<int:photo_id>")
    @app.get("/video/<int:photo_id>/<slug>")
    def video_page(photo_id: int, slug: str = "") -> BaseResponse:
        photo = photos.get(photo_id)
        if photo is None or not photo.published:
            return Response("No such video", 404, mimetype="text/plain")

        def page(who: dict[str, str]) -> str:
            src = f"/v.ihtml?{urlencode({'token': photo.token, 'photo_id': photo.photo_id})}"
            return f'<h1>{escape(photo.title)}</h1><iframe src="{escape(src)}"></iframe>'

        return closed(page)

    @app.get("/logout")
    def logout() -> BaseResponse:
        response = redirect("/")
        response.delete_cookie(COOKIE)
        return response

    @app.get("/v.ihtml")
    @app.get("/v.ihtml/player.html")
    def player() -> BaseResponse:
        photo_id = request.args.get("photo_id", "")
        photo = photos.get(int(photo_id)) if photo_id.isdigit() else None
        if photo is None or not token_opens(photo, request.args.get("token", "")):
            return Response("Access denied", 403, mimetype="text/plain")
        return Response(
            _html(
                photo.title,
                f'<div id="player" data-photo-id="{photo.photo_id}">'
                f"Playing {escape(photo.title)}</div>",
            )
        )

    @app.get("/<int:tree_id>/<int:photo_id>/<token>/<kind>")
    @app.get("/<int:tree_id>/<int:photo_id>/<token>/<kind>/<filename>")
    def media(
        tree_id: int, photo_id: int, token: str, kind: str, filename: str = ""
    ) -> BaseResponse:
        photo = photos.get(photo_id)
        if photo is None or photo.tree_id != tree_id or not token_opens(photo, token):
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

    @app.get("/m/d/<int:photo_id>/<token>")
    def mobile(photo_id: int, token: str) -> BaseResponse:
        photo = photos.get(photo_id)
        if photo is None or not token_opens(photo, token):
            return Response("Access denied", 403, mimetype="text/plain")
        fmt = photo.formats[-1]
        return redirect(f"/{photo.tree_id}/{photo.photo_id}/{token}/{fmt}/{photo.filename(fmt)}")

    # ------------------------------------------------------------------ test controls

    @app.get("/_devsite/calls")
    def calls() -> Response:
        with state.lock:
            return Response(json.dumps(state.calls), mimetype="application/json")

    @app.post("/_devsite/reset")
    def reset() -> Response:
        with state.lock:
            state.calls.clear()
            state.mode = "ok"
        return Response("{}", mimetype="application/json")

    @app.post("/_devsite/mode")
    def mode() -> Response:
        body = request.get_json(silent=True) or {}
        if body.get("mode") not in ("ok", "slow", "down", "garbage", "hang", "error"):
            return Response(
                '{"error": "mode must be ok|slow|down|garbage|hang|error"}',
                400,
                mimetype="application/json",
            )
        state.mode = body["mode"]
        state.hang_seconds = float(body.get("seconds", state.hang_seconds))
        return Response("{}", mimetype="application/json")

    return app


def _page(params: dict[str, str], items: list[Any]) -> list[Any]:
    """One page of ``items`` by 23's ``p`` (1-based) and ``size`` (default 20, at most 100)."""
    size_raw, page_raw = params.get("size") or "20", params.get("p") or "1"
    size = min(max(int(size_raw), 1), 100) if size_raw.isdigit() else 20
    page = max(int(page_raw), 1) if page_raw.isdigit() else 1
    return items[(page - 1) * size : page * size]


def _html(title: str, body: str) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(title)}</title><style>body{{font:16px system-ui,sans-serif;"
        "max-width:40rem;margin:3rem auto;padding:0 1rem;color:#1d1d1f}"
        "h1{font-size:1.6rem}</style></head>"
        f"<body><p><small>Emulated 23 site</small></p>{body}</body></html>"
    )
