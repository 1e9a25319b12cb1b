"""The catalogue sync of a 100,000-video site from the emulated site (``gateway devsite``, its
own process, /api/2, pages of 100), with and without ``fields``, measured in one run.

Printed: seconds and bytes transferred for each sync, and the ratios (goal: ``fields`` makes
the sync at least 3x smaller). Each sync is the gateway's own ``Catalogue.sync`` into an
in-process store; the bytes are the response bodies the client read.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import requests

from bench.common import devsite
from gateway.devsite.catalog import DEMO_SUPER
from gateway.store import MemoryStore
from gateway.twentythree import catalogue as catalogue_module
from gateway.twentythree import transport
from gateway.twentythree.cache import Missing
from gateway.twentythree.catalogue import Catalogue
from gateway.twentythree.client import TwentyThreeClient
from tests.helpers import site_settings

VIDEOS = 100_000


@contextmanager
def counting_bytes() -> Iterator[list[int]]:
    """The bytes of every response body the 23 client reads, while the block runs."""
    read = transport.read_capped
    total = [0]

    def counted(response: requests.Response) -> bytes:
        body = read(response)
        total[0] += len(body)
        return body

    transport.read_capped = counted
    try:
        yield total
    finally:
        transport.read_capped = read


def sync_once(port: int, fields: bool) -> tuple[float, int, int]:
    """(seconds, bytes, videos) of one full sync."""
    site = site_settings(
        "demo",
        f"http://127.0.0.1:{port}",
        *DEMO_SUPER,
        catalogue="sync",
        catalogue_refresh=86400,
        catalogue_max_age=2 * 86400,
    )
    client = TwentyThreeClient(site, connect_timeout=3, read_timeout=60)
    store = MemoryStore(max_entries=10_000_000)
    catalogue = Catalogue(site, client, store, fetch=lambda i: Missing(i))
    saved = catalogue_module.PHOTO_FIELDS
    if not fields:
        catalogue_module.PHOTO_FIELDS = ""  # an empty fields list: 23 sends every property
    try:
        with counting_bytes() as total:
            started = time.perf_counter()
            assert catalogue.sync(force=True), "the sync failed"
            seconds = time.perf_counter() - started
    finally:
        catalogue_module.PHOTO_FIELDS = saved
        client.close()
    state: Any = catalogue.state(fresh=True)
    return seconds, total[0], state.videos


def main() -> None:
    with devsite(extra_photos=VIDEOS - 5) as port:
        with_fields = sync_once(port, fields=True)
        without = sync_once(port, fields=False)
    for name, (seconds, size, videos) in (("with fields", with_fields), ("all fields", without)):
        print(f"sync of {videos:,} videos, {name:<11}: {seconds:6.1f} s  {size / 1e6:8.1f} MB")
    print(
        f"fields: {without[1] / with_fields[1]:.1f}x fewer bytes (goal >= 3), "
        f"{without[0] / with_fields[0]:.1f}x faster"
    )


if __name__ == "__main__":
    main()
