"""The gateway a test world runs: one instance with the in-process store, or two instances
on one Redis behind nginx (round robin), so every hop of a visitor flow changes instance.

Worlds are parametrized over both (``TOPOLOGIES``): each state-bearing test then proves that
OIDC states, JWT ids, e-mail links, Stripe pending logins, SAML request ids, session
revocations and rate-limit windows are shared by the whole logical gateway."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway import create_app
from gateway.settings import Settings
from tests.helpers import LiveServer, forget_state, free_port
from tests.load_balancer import NginxBalancer

TOPOLOGIES = ("one-instance", "two-instances")


@dataclass
class Gateway:
    url: str  # what visitors use: the instance, or the load balancer
    apps: list[Any]
    instances: list[str]  # each instance's own URL
    servers: list[LiveServer] = field(repr=False)
    balancer: NginxBalancer | None = field(default=None, repr=False)
    redis_url: str = ""

    @property
    def app(self) -> Any:
        return self.apps[0]

    def forget_state(self) -> None:
        if self.redis_url:
            import redis

            redis.Redis.from_url(self.redis_url).flushdb()
        for app in self.apps:
            forget_state(app)

    def stop(self) -> None:
        if self.balancer is not None:
            self.balancer.stop()
        for server in self.servers:
            server.stop()


INSTANCE_HEADER = "X-Test-Instance"


def tagged(app: Any, name: str) -> Any:
    """The app, answering with which instance it is (so tests can see a flow change hosts)."""

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            return start_response(status, [*headers, (INSTANCE_HEADER, name)], exc_info)

        return app(environ, start)

    return wsgi


def start_gateway(
    topology: str, build: Callable[[dict[str, Any]], Settings], port: int, redis_url: str = ""
) -> Gateway:
    """``build(store_section)`` makes the world's settings; the gateway's public URL must be
    ``http://127.0.0.1:<port>``, which is the instance or the balancer. ``redis_url`` names
    a database of the world's own (worlds coexist in one test session)."""
    if topology == "one-instance":
        app = create_app(build({}))
        server = LiveServer(app, port)
        return Gateway(server.url, [app], [server.url], [server])
    settings = build({"url": redis_url})
    apps = [create_app(settings), create_app(settings)]
    servers = [
        LiveServer(tagged(app, name), free_port()) for app, name in zip(apps, "AB", strict=True)
    ]
    ports = [server.server.server_port for server in servers]
    balancer = NginxBalancer(port, ports)
    return Gateway(balancer.url, apps, [s.url for s in servers], servers, balancer, redis_url)
