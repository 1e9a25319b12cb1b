"""What a provider answers a browser with, made into a response: a redirect as it is, a
``Page`` rendered with its form's CSRF token and cookie, a ``Notice`` as a message page."""

from __future__ import annotations

from flask import render_template, request
from werkzeug.wrappers import Response

from gateway.cookies import FORM
from gateway.csrf import FORM_MAX_AGE, FormGuard
from gateway.identity.base import Notice, Page, Shown
from gateway.web.current import runtime
from gateway.web.message_pages import message_page


def show(shown: Shown) -> Response:
    if isinstance(shown, Page):
        return render_page(shown)
    if isinstance(shown, Notice):
        return message_page(
            shown.status,
            shown.code,
            shown.message,
            title=shown.title or None,
            retry_url=shown.retry_url,
        )
    return shown


def guard(purpose: str) -> FormGuard:
    svc = runtime()
    return FormGuard(purpose, svc.settings.gateway.secret_keys, svc.cookies)


def render_page(page: Page) -> Response:
    context = dict(page.context)
    nonce = ""
    if page.form:
        context["csrf"], nonce = guard(page.form).issue(request)
    response = Response(
        render_template(page.template, **context), status=page.status, mimetype="text/html"
    )
    response.headers.update(page.headers)
    if nonce:
        runtime().cookies.set(response, FORM, nonce, FORM_MAX_AGE)
    return response
