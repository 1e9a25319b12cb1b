"""Serving the gateway: the one room that decides the server, its workers and its timeouts.

``gateway serve`` runs gunicorn with gevent workers, the same as the design card's
``gunicorn app:app -c gunicorn.conf.py``: no slow client holds a worker that others need.
One server path: ``bench/bench_servers.py`` and ``bench/bench_scale.py`` measured granian
(behind an RSGI bridge) faster by about a sixth on one worker, but gunicorn+gevent scales to
two workers 1.6-1.8x where granian reached 1.15-1.23x, and production runs several workers.
"""

from __future__ import annotations


def run(config_file: str, host: str, port: int) -> None:
    """Run the gateway in this process (``gateway serve``)."""
    from gateway.serve.gunicorn_server import patch_for_gevent

    patch_for_gevent()  # before anything imports ssl or the providers
    from gateway.loader import load_settings_or_exit
    from gateway.serve.gunicorn_server import run_gunicorn

    settings = load_settings_or_exit(config_file)  # fail fast, before any worker starts
    run_gunicorn(config_file, f"{host}:{port}", settings.store.shared)
