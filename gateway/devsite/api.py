"""The emulated site's API, both dialects, strict as 23 is: OAuth signatures verified by
oauthlib, permission levels enforced, legacy calls without ``format=json&raw=1`` answered in
XML, POST reading only its body. ``/api/2`` follows 23's 2026 OpenAPI file: typed values under
``data``, failures as HTTP statuses, pages capped at ``pagination_max`` (``page_max``),
listings newest first unless ``orderby``/``order`` say otherwise, ``fields`` honoured, and
bearer tokens exchanged for an API token at ``user/tokens``."""

from __future__ import annotations

import hmac
import json
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, request
from markupsafe import escape
from werkzeug.wrappers import Response as BaseResponse

from gateway.devsite import uploads
from gateway.devsite.pages import redeem
from gateway.devsite.site import ApiFailure, EmulatedSite, at_least, current

bp = Blueprint("devsite_api", __name__)

Params = dict[str, str]
Handler = Callable[[EmulatedSite, Params, str], tuple[str, Any]]


def _int_param(params: Params, name: str, required: bool = False) -> int | None:
    raw = params.get(name, "")
    if raw == "":
        if required:
            raise ApiFailure("invalid_input", f"The parameter {name} is required.")
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise ApiFailure("invalid_input", f"The parameter {name} must be a number.")
    return int(raw)


# api/2 answers failures with HTTP statuses (23's OpenAPI file: 400, 401, 403, 404, 412, 500).
API2_STATUS = {
    "invalid_input": 400,
    "invalid_type": 400,
    "invalid_signature": 401,
    "missing_authentication": 401,
    "invalid_token": 401,
    "token_required": 401,
    "permission_denied": 403,
    "invalid_photo_token": 403,
    "no_such_photo": 404,
    "no_such_user": 404,
    "no_such_object": 404,
    "internal_error": 500,
}
ORDERBY = ("uploaded", "published", "created", "creation", "default-published", "taken")


class Page(list[Any]):
    """One page of a listing, with what 23 echoes beside it: ``p``, ``size``, ``total_count``."""

    def __init__(self, items: list[Any], page: int, size: int, total: int) -> None:
        super().__init__(items)
        self.page, self.size, self.total = page, size, total

    def paging(self, typed: bool) -> dict[str, Any]:
        shown: Callable[[int], Any] = (lambda n: n) if typed else str
        return {"p": shown(self.page), "size": shown(self.size), "total_count": shown(self.total)}


def _page(
    params: Params, items: list[Any], render: Callable[[Any], Any] = lambda x: x, most: int = 100
) -> Page:
    """One page of ``items`` by 23's ``p`` (1-based) and ``size`` (default 20, at most
    ``most``: the site's pagination_max), each item shown with ``render``."""
    size_raw, page_raw = params.get("size") or "20", params.get("p") or "1"
    size = min(max(int(size_raw), 1), most) if size_raw.isdigit() else 20
    page = max(int(page_raw), 1) if page_raw.isdigit() else 1
    shown = [render(item) for item in items[(page - 1) * size : page * size]]
    return Page(shown, page, size, len(items))


def _newest_first(params: Params) -> bool:
    """photo/list's order: ``default-published``, ``desc`` (newest first) unless asked."""
    orderby, order = params.get("orderby") or "default-published", params.get("order") or "desc"
    if orderby not in ORDERBY or order not in ("asc", "desc"):
        raise ApiFailure("invalid_input", "orderby or order is not one this site offers.")
    return order == "desc"


# ---------------------------------------------------------------- the methods


def photo_list(site: EmulatedSite, p: Params, level: str) -> tuple[str, Any]:
    photo_id = _int_param(p, "photo_id")
    token = p.get("token", "")
    typed = p.get("_api2") == "1"
    asked = p.get("include_unpublished_p", "").lower() in ("1", "t", "true")
    with_unpublished = asked and at_least(level, "read")
    if photo_id is not None:
        photo = site.photos.get(photo_id)
        if photo is None:
            raise ApiFailure("no_such_photo", "The photo does not exist.")
        if token:
            if not site.token_opens(photo, token):
                raise ApiFailure("invalid_photo_token", "The token for the photo is wrong.")
            return "photos", [photo.as_api(level, typed)]
        if not at_least(level, "anonymous"):
            raise ApiFailure("token_required", "This site needs a token for anonymous access.")
        visible = photo.published or with_unpublished
        return "photos", [photo.as_api(level, typed)] if visible else []
    upload_token = p.get("upload_token", "")
    if upload_token:  # what one upload token made (the gateway confirms a callback with it)
        made = uploads.uploaded_with(site, upload_token)
        return "photos", [photo.as_api(level, typed) for photo in made]
    if token:
        raise ApiFailure("invalid_input", "A token needs a photo_id.")
    if not at_least(level, "anonymous"):
        raise ApiFailure("token_required", "This site needs a token for anonymous access.")
    newest_first = _newest_first(p)
    listed = [ph for ph in site.photo_list(newest_first) if ph.published or with_unpublished]
    page = _page(p, listed, lambda ph: ph.as_api(level, typed), site.state.page_max)
    site.after_page(page.page)  # a listing that moves while it is read (test control)
    return "photos", page


def user_list(site: EmulatedSite, p: Params, level: str) -> tuple[str, Any]:
    term = p.get("search", "").lower()
    found = []
    for u in site.users.values():
        if term and term not in f"{u.username} {u.email} {u.full_name}".lower():
            continue
        obj: dict[str, Any] = {
            "user_id": u.user_id if p.get("_api2") == "1" else str(u.user_id),
            "username": u.username,
            "display_name": u.full_name,
            "url": f"/user/{u.username}/",
        }
        if at_least(level, "admin") and p.get("_api2") != "1":  # api/2 lists no e-mail
            obj.update(
                email=u.email, full_name=u.full_name, site_admin="t" if u.site_admin else "f"
            )
        found.append(obj)
    return "users", _page(p, found)


def user_get(site: EmulatedSite, p: Params, level: str) -> tuple[str, Any]:
    user = site.users.get(_int_param(p, "user_id", required=True) or 0)
    if user is None:
        raise ApiFailure("no_such_user", "The user does not exist.")
    obj: dict[str, Any] = {"user_id": user.user_id, "username": user.username}
    obj["display_name"] = user.full_name
    if at_least(level, "admin"):
        obj.update(
            email=user.email, full_name=user.full_name, site_admin="t" if user.site_admin else "f"
        )
    return "user", obj


def session_get_token(site: EmulatedSite, p: Params, level: str) -> tuple[str, Any]:
    return_url = p.get("return_url") or "/"
    data = {
        "email": p.get("email", ""),
        "full_name": p.get("full_name", ""),
        "return_url": return_url,
        "kind": "visitor",
    }
    token = site.state.issue(site.state.session_tokens, data)
    shown = {"access_token": token, "return_url": return_url}
    return "sessiontoken", shown | {"email": data["email"], "full_name": data["full_name"]}


def user_get_login_token(site: EmulatedSite, p: Params, level: str) -> tuple[str, Any]:
    user = site.users.get(_int_param(p, "user_id", required=True) or 0)
    if user is None:
        raise ApiFailure("no_such_user", "The user does not exist.")
    return_url = p.get("return_url") or "/"
    data = {
        "email": user.email,
        "full_name": user.full_name,
        "return_url": return_url,
        "kind": "user",
    }
    token = site.state.issue(site.state.login_tokens, data)
    return "logintoken", {
        "login_token": token,
        "return_url": return_url,
        "user_id": user.user_id if p.get("_api2") == "1" else str(user.user_id),
    }


def protection_verify(site: EmulatedSite, p: Params, level: str) -> tuple[str, Any]:
    photo = site.photos.get(_int_param(p, "object_id", required=True) or 0)
    if not p.get("protection_method"):
        raise ApiFailure("invalid_input", "The parameter protection_method is required.")
    if photo is None:
        raise ApiFailure("no_such_photo", "The photo does not exist.")
    if not photo.protected_token:
        raise ApiFailure("invalid_input", "The object is not protected.")
    if photo.password and not hmac.compare_digest(
        p.get("verification_data", "").encode(), photo.password.encode()
    ):
        raise ApiFailure("permission_denied", "The password is not correct.")
    return "protectedtoken", {
        "object_id": photo.photo_id if p.get("_api2") == "1" else str(photo.photo_id),
        "object_type": "photo",
        "protected_token": photo.protected_token,
    }


def echo(site: EmulatedSite, p: Params, level: str) -> tuple[str, Any]:
    return "echo", dict(p)


def site_get(site: EmulatedSite, p: Params, level: str) -> tuple[str, Any]:
    return "site", {"site_name": site.options.site_name, "domain": request.host}


METHODS: dict[str, tuple[str, Handler]] = {  # method -> (lowest level, handler)
    "photo/list": ("none", photo_list),
    "user/list": ("anonymous", user_list),
    "user/get": ("anonymous", user_get),
    "session/get-token": ("super", session_get_token),
    "user/get-login-token": ("super", user_get_login_token),
    "protection/verify": ("write", protection_verify),
    "photo/get-upload-token": ("write", uploads.get_upload_token),
    "echo": ("none", echo),
    "site/get": ("anonymous", site_get),
}


# ---------------------------------------------------------------- dispatch


@bp.route("/api/<path:method>", methods=["GET", "POST"])
def api(method: str) -> BaseResponse:
    site = current()
    state = site.state
    api2 = method.startswith("2/")
    method = method[2:] if api2 else method
    if method == "session/redeem-token":
        return redeem(state.session_tokens, request.values.get("session_token", ""))
    if method == "user/redeem-login-token":
        return redeem(state.login_tokens, request.args.get("login_token", ""))
    if method == "photo/redeem-upload-token":  # the browser's post: no OAuth, no envelope
        return uploads.redeem_upload_token(site)
    if state.mode not in ("ok", "slow"):
        # Recorded on arrival, so a hang lands in the right test's log.
        state.record({"method": method, "status": "fault", "mode": state.mode})
    fault = _fault(site) if state.mode != "ok" else None
    if fault is not None:
        return fault
    body = _form_body()  # read (and cache) the raw body before the form parser consumes it
    # On POST 23 reads only the body; the query string is ignored entirely.
    params = dict(request.form if request.method == "POST" else request.args)
    public = {k: v for k, v in params.items() if not k.startswith("oauth_")}
    auth, level = _caller(site, params, body)
    entry: dict[str, Any] = {
        "method": method,
        "http_method": request.method,
        "api2": api2,
        "auth": auth,
        "traceparent": bool(request.headers.get("traceparent")),
        "level": level or "invalid",
        "params": public,
    }
    try:
        if api2 and method == "user/tokens":
            key, payload = user_tokens(site, public)
        else:
            key, payload = _dispatch(
                site, method, public | ({"_api2": "1"} if api2 else {}), level, auth
            )
        envelope = _envelope(method, key, _only_fields(payload, public), level or "none", api2)
        if isinstance(payload, Page):
            entry["page"] = str(payload.page)
            entry["page_items"] = len(payload)
        entry["status"] = "ok"
        status = 200
    except ApiFailure as exc:
        envelope = {
            "status": "error",
            "code": exc.code,
            "message": exc.message,
            "permission_level": level or "none",
        }
        entry.update(status="error", code=exc.code)
        status = API2_STATUS.get(exc.code, 400) if api2 else 200
    state.record(entry)
    response = _render(envelope, params, api2)
    response.status_code = status
    return response


def _caller(site: EmulatedSite, params: Params, body: str) -> tuple[str, str | None]:
    """(how the call authenticated, its permission level; None for bad credentials)."""
    authorization = request.headers.get("Authorization", "")
    if authorization.startswith("Bearer "):
        valid = site.state.bearer_valid(authorization[len("Bearer ") :].strip())
        return "bearer", "super" if valid else None
    if authorization.startswith("OAuth ") or any(k.startswith("oauth_") for k in params):
        return "oauth", site.verifier.level(
            _signed_uri(), request.method, body, dict(request.headers)
        )
    return "none", "none"


def _dispatch(
    site: EmulatedSite, method: str, params: Params, level: str | None, auth: str
) -> tuple[str, Any]:
    if level is None:
        if auth == "bearer":
            raise ApiFailure("invalid_token", "The bearer token is invalid or expired.")
        raise ApiFailure("invalid_signature", "The API signature is invalid.")
    if method not in METHODS:
        raise ApiFailure("invalid_input", f"There is no API method {method}.")
    required, handler = METHODS[method]
    if not at_least(level, required):
        raise ApiFailure(
            "permission_denied",
            "You don't have the necessary permissions to perform this action "
            f"(required level: '{required}')",
        )
    return handler(site, params, level)


def user_tokens(site: EmulatedSite, params: Params) -> tuple[str, Any]:
    """What twentythree-cli's token exchange reads: a bearer token per site the API token
    opens (``cross_sites_p``: every one of them, not only this domain)."""
    given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not any(hmac.compare_digest(given.encode(), t.encode()) for t in site.options.api_tokens):
        raise ApiFailure("missing_authentication", "A valid API token is required.")
    token, expires = site.state.issue_bearer()
    entries = [
        {
            "domain": request.host,
            "site_name": site.options.site_name,
            "bearer_token": token,
            "expiration_time": expires,
        }
    ]
    if params.get("cross_sites_p", "").lower() in ("1", "t", "true"):
        other, _ = site.state.issue_bearer()  # a second site this token opens: not ours
        entries.insert(
            0,
            {
                "domain": "other-site.example.net",
                "site_name": "Another site",
                "bearer_token": other,
                "expiration_time": expires,
            },
        )
    return "tokens", entries


def _envelope(method: str, key: str, payload: Any, level: str, api2: bool) -> dict[str, Any]:
    envelope: dict[str, Any] = {"status": "ok", "permission_level": level}
    envelope["cached"] = False if api2 else "0"
    if api2:
        envelope["data"] = payload
    else:
        envelope[key] = payload
        envelope["endpoint"] = f"/api/{method}"
    if isinstance(payload, Page):
        envelope.update(payload.paging(api2))
    return envelope


def _only_fields(payload: Any, params: Params) -> Any:
    """``fields=a,b``: each object keeps only those keys (23: "Default behaviour is to return
    all properties")."""
    wanted = {f.strip() for f in params.get("fields", "").split(",") if f.strip()}
    if not wanted:
        return payload

    def pick(obj: Any) -> Any:
        return {k: v for k, v in obj.items() if k in wanted} if isinstance(obj, dict) else obj

    if isinstance(payload, Page):
        return Page([pick(o) for o in payload], payload.page, payload.size, payload.total)
    if isinstance(payload, list):
        return [pick(o) for o in payload]
    return pick(payload)


def _fault(site: EmulatedSite) -> Response | None:
    mode = site.state.mode
    if mode == "down":
        return Response(
            "<html><body>503 Service Unavailable</body></html>", 503, mimetype="text/html"
        )
    if mode == "garbage":
        return Response(
            "<html><body>Oops, something went wrong</body></html>", 200, mimetype="text/html"
        )
    if mode == "error":
        body = {"status": "error", "code": "internal_error", "message": "Internal error"}
        return Response(json.dumps(body), mimetype="application/json")
    if mode == "hang":  # the client should give up first; the call never completes
        time.sleep(site.state.hang_seconds)
        return Response("<html><body>504 Gateway Timeout</body></html>", 504, mimetype="text/html")
    if mode == "slow":  # the client should wait; the call then completes normally
        time.sleep(site.state.hang_seconds)
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


def _render(envelope: dict[str, Any], params: Params, api2: bool) -> Response:
    body = json.dumps(envelope)
    if api2:
        callback = params.get("callback")
        if callback:
            return Response(f"/* */\n{callback}({body});", mimetype="application/javascript")
        return Response(body, mimetype="application/json")
    if params.get("format") != "json":
        attrs = " ".join(f'{k}="{escape(v)}"' for k, v in envelope.items() if isinstance(v, str))
        return Response(
            f'<?xml version="1.0" encoding="utf-8"?>\n<response {attrs}/>', mimetype="text/xml"
        )
    if "raw" in params:
        return Response(body, mimetype="application/json")
    if params.get("callback"):
        return Response(f"{params['callback']}({body});", mimetype="text/javascript")
    return Response(f"var {params.get('varname', 'visual')} = {body}", mimetype="text/javascript")
