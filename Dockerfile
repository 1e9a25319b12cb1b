# 23 Gateway: slim image, non-root, gunicorn+gevent. Mount a config and point GATEWAY_CONFIG at it.
# Every Python package comes from requirements.lock, with its hash checked; nothing is resolved here.
FROM python:3.11-slim AS build
WORKDIR /src
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY gateway ./gateway
# Built with the locked setuptools, without fetching a build environment.
RUN pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    GATEWAY_CONFIG=/etc/23-gateway/gateway.toml GATEWAY_BIND=0.0.0.0:8000
# xmlsec1: pysaml2 checks SAML signatures with it.
RUN apt-get update && apt-get install -y --no-install-recommends xmlsec1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin gateway
COPY requirements.lock /tmp/requirements.lock
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --require-hashes --no-deps -r /tmp/requirements.lock \
    && pip install --no-cache-dir --no-deps /wheels/*.whl \
    && rm -rf /wheels /tmp/requirements.lock
WORKDIR /app
COPY app.py gunicorn.conf.py ./
# The default SQLite entitlement database (sqlite:///gateway.db) lives in /app/data: mount a
# volume there, or use PostgreSQL via [store] database_url.
RUN mkdir -p /app/data && chown gateway /app/data
VOLUME /app/data
USER gateway
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"
# gunicorn with gevent workers (the same as `gunicorn app:app -c gunicorn.conf.py`).
CMD ["gateway", "serve", "--host", "0.0.0.0", "--port", "8000"]
