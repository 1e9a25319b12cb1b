"""The long-lived objects one gateway process shares between requests."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.settings import Settings
from gateway.twentythree.client import TwentyThreeClient
from gateway.twentythree.readiness import ReadinessProbe


@dataclass(frozen=True)
class Services:
    settings: Settings
    clients: Mapping[str, TwentyThreeClient]
    readiness: ReadinessProbe

    @classmethod
    def build(cls, settings: Settings) -> Services:
        g = settings.gateway
        clients = {
            name: TwentyThreeClient(
                site,
                connect_timeout=g.upstream_connect_timeout,
                read_timeout=g.upstream_read_timeout,
            )
            for name, site in settings.sites.items()
        }
        return cls(
            settings=settings,
            clients=clients,
            readiness=ReadinessProbe(clients, interval=g.readiness_interval),
        )
