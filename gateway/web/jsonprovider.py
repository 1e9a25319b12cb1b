"""Flask's JSON through orjson: several times faster on the mint path, and it keeps key order."""

from __future__ import annotations

import json
from typing import Any

import orjson
from flask import Flask, Response
from flask.json.provider import JSONProvider


def _dumps(obj: Any) -> bytes:
    try:
        return orjson.dumps(obj)
    except TypeError:  # e.g. an integer beyond 64 bits, which orjson refuses
        return json.dumps(obj, separators=(",", ":")).encode()


def loads(s: str | bytes) -> Any:
    """orjson, with the standard parser's reading of what orjson refuses; ValueError when it
    is not JSON at all."""
    try:
        return orjson.loads(s)
    except orjson.JSONDecodeError:
        pass
    # orjson refuses integers beyond 64 bits; the standard parser reads them so that
    # validation can say "invalid photo id" rather than "invalid JSON". A document nested
    # deeper than the parser's stack is no request at all: a ValueError, so a 400.
    try:
        found = json.loads(s)
        # ...but not a lone surrogate ("\ud800"), which orjson rightly refuses: no text can
        # hold it (it would fail later, on its way to 23, as a 500).
        json.dumps(found, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except UnicodeEncodeError:
        raise ValueError("JSON text with a lone surrogate") from None
    return found


class OrjsonProvider(JSONProvider):
    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return _dumps(obj).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads(s)

    def response(self, *args: Any, **kwargs: Any) -> Response:
        obj = self._prepare_response_obj(args, kwargs)
        return Response(_dumps(obj), mimetype="application/json")


class GatewayFlask(Flask):
    json_provider_class = OrjsonProvider
