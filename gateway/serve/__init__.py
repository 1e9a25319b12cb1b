"""Serving the gateway: the one room that decides the server, its workers and its timeouts.

``gateway serve`` runs gunicorn with gevent workers by default (``--server granian`` for
granian), the same as the design card's ``gunicorn app:app -c gunicorn.conf.py``. The choice
rests on ``bench/bench_servers.py`` and ``bench/bench_scale.py``: as fast on one worker, and
it scales to more workers better. Either way no slow client holds a thread that others need.
"""

from __future__ import annotations

SERVERS = ("gunicorn", "granian")
DEFAULT_SERVER = "gunicorn"


def run(config_file: str, host: str, port: int, server: str = DEFAULT_SERVER) -> None:
    """Run the gateway in this process (``gateway serve``)."""
    if server == "gunicorn":
        from gateway.serve.gunicorn_server import patch_for_gevent

        patch_for_gevent()
    from gateway.loader import load_settings_or_exit

    settings = load_settings_or_exit(config_file)  # fail fast, before any worker starts
    shared = settings.store.shared
    if server == "gunicorn":
        from gateway.serve.gunicorn_server import run_gunicorn

        run_gunicorn(config_file, f"{host}:{port}", shared)
    else:
        from gateway.serve.granian_server import run_granian

        run_granian(config_file, host, port, shared)
