"""How many worker processes and threads make one logical gateway, and gunicorn's worker
class. Imports nothing heavy: gunicorn.conf.py reads it before gevent patches the stdlib."""

from __future__ import annotations

import importlib.util
import logging
import os
import tempfile
from dataclasses import dataclass

log = logging.getLogger("gateway.serve")


@dataclass(frozen=True)
class Counts:
    workers: int
    threads: int


def worker_class() -> str:
    """gevent when installed (slow clients hold no thread); ``GATEWAY_WORKER_CLASS`` overrides."""
    gevent = importlib.util.find_spec("gevent") is not None
    return os.environ.get("GATEWAY_WORKER_CLASS") or ("gevent" if gevent else "gthread")


def worker_counts(shared_store: bool) -> Counts:
    """With the in-process store, single-use state and caches live in one process, so there is
    exactly one worker process; with a shared (Redis) store, one worker per CPU.
    ``GATEWAY_WORKERS`` and ``GATEWAY_THREADS`` override the counts."""
    cpus = os.cpu_count() or 1
    workers = int(os.environ.get("GATEWAY_WORKERS") or (cpus if shared_store else 1))
    if workers > 1 and not shared_store:
        log.warning('several workers need [store] url = "redis://..."; running one worker')
        workers = 1
    threads = int(os.environ.get("GATEWAY_THREADS") or max(8, 4 * cpus))
    if workers > 1:
        # prometheus-client aggregates the workers' metrics through files in this folder.
        # It must be set before any worker imports prometheus_client.
        os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="gw-metrics-"))
    return Counts(max(1, workers), max(1, threads))
