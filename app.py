"""WSGI entry point: ``gunicorn app:app -c gunicorn.conf.py`` (config from $GATEWAY_CONFIG)."""

from gateway import create_app

app = create_app()
