"""gunicorn settings for ``gunicorn app:app -c gunicorn.conf.py``: the same counts as
``gateway serve``, gevent workers (slow clients hold no thread), JSON logs."""

import os

from gateway.serve.counts import worker_class

if worker_class() == "gevent":  # before anything imports ssl (the settings pull in requests)
    from gevent import monkey

    monkey.patch_all()

from gateway.loader import load_settings_or_exit
from gateway.serve.gunicorn_server import gunicorn_options

_settings = load_settings_or_exit()  # $GATEWAY_CONFIG; exits with every problem listed if invalid
_bind = os.environ.get("GATEWAY_BIND", "0.0.0.0:8000")
globals().update(gunicorn_options(_settings.store.shared, _bind))
