"""What the WSGI layers in front of Flask share: the hot paths (the mint API and ``/embed``)
each answer one path of their own and pass every other request on, unchanged."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from gateway.runtime import GatewayRuntime

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]


class FastPath:
    """Answers the requests whose ``PATH_INFO`` matches ``path`` whole; ``app`` gets the rest."""

    path: ClassVar[re.Pattern[str]]

    def __init__(self, app: WsgiApp, current: Callable[[], GatewayRuntime]) -> None:
        self.app = app
        self._current = current  # the runtime now: a reload swaps it

    @property
    def runtime(self) -> GatewayRuntime:
        return self._current()

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        match = self.path.fullmatch(environ.get("PATH_INFO", ""))
        if match is None:
            return self.app(environ, start_response)
        return self.answer(match, environ, start_response)

    def answer(
        self, match: re.Match[str], environ: Environ, start_response: StartResponse
    ) -> Iterable[bytes]:
        raise NotImplementedError
