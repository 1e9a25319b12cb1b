"""The visitor pages in the visitor's language: English, and Danish, chosen from the
browser's ``Accept-Language``. Catalogues live in ``gateway/translations/<lang>.json``,
keyed by the English text (which is also the fallback for anything not translated).

Catalogue strings are ours, so they may carry markup; values put into them are escaped
(``Markup`` formatting). JSON answers stay in English: they are for developers.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from flask import has_request_context, request
from markupsafe import Markup

LANGUAGES = ("en", "da")
TRANSLATED = ("da",)  # every catalogue has the same keys: the English texts
DEFAULT = "en"
_FOLDER = Path(__file__).with_name("translations")


@cache
def catalogue(language: str) -> dict[str, str]:
    path = _FOLDER / f"{language}.json"
    if language == DEFAULT or not path.exists():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return {str(k): str(v) for k, v in data.items()}


def language() -> str:
    if not has_request_context():
        return DEFAULT
    return request.accept_languages.best_match(LANGUAGES, default=DEFAULT) or DEFAULT


def gettext(text: str, **values: Any) -> Markup:
    """``text`` in the request's language, with ``values`` escaped into its %(name)s slots.

    Only our own strings (the catalogue's keys) may carry markup; anything else is escaped,
    so a message that ever held a visitor's input could not inject into a page."""
    known = catalogue(TRANSLATED[0])
    if text in known:
        chosen = catalogue(language()).get(text, text)
        translated = Markup(chosen)  # noqa: S704 - one of our catalogue's strings
    else:
        translated = Markup.escape(text)
    return translated % values if values else translated


def plain(text: str, **values: Any) -> str:
    """``text`` in the request's language as plain text, for code that escapes it itself
    (the console's SVG plots). Only for catalogue strings without markup."""
    return str(gettext(text, **values))


def money(minor: int, currency: str) -> str:
    """An amount in the currency's smallest unit, as the page's language writes it:
    "99.00 DKK" in English, "99,00 DKK" in Danish."""
    text = f"{minor / 100:,.2f}"
    if language() == "da":
        text = text.replace(",", "\u00a0").replace(".", ",")
    return f"{text} {currency}".strip()


def per_interval(interval: str) -> Markup:
    """ "per month", "per year"... in the page's language ("" for a one-off payment)."""
    wording = {"day": "per day", "week": "per week", "month": "per month", "year": "per year"}
    return gettext(wording[interval]) if interval in wording else Markup("")
