#!/usr/bin/env bash
# `make run`: the emulated 23 site on :8023 and the gateway on :8000 with config/gateway.toml.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
GATEWAY_PORT=${GATEWAY_PORT:-8000}
DEVSITE_PORT=${DEVSITE_PORT:-8023}

# A fresh signing key per demo run unless one is given; real deployments set their own.
export GATEWAY_SECRET_KEY=${GATEWAY_SECRET_KEY:-$("$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(32))')}
export GATEWAY_CONFIG=${GATEWAY_CONFIG:-config/gateway.toml}

"$BIN/gateway" check-config "$GATEWAY_CONFIG"

"$BIN/gateway" devsite --port "$DEVSITE_PORT" \
  --remote-login-url "http://127.0.0.1:${GATEWAY_PORT}/sso/demo/login" &
DEVSITE_PID=$!
trap 'kill $DEVSITE_PID 2>/dev/null || true' EXIT INT TERM

"$BIN/gateway" serve --host 127.0.0.1 --port "$GATEWAY_PORT" &
GATEWAY_PID=$!
trap 'kill $GATEWAY_PID $DEVSITE_PID 2>/dev/null || true' EXIT INT TERM

for _ in $(seq 1 100); do
  curl -fsS "http://127.0.0.1:${GATEWAY_PORT}/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done

cat <<MSG

  23 Gateway demo is running.

    Open:     http://127.0.0.1:${DEVSITE_PORT}/
              (the emulated closed 23 site: it sends you to the gateway to sign in)
    Sign in:  demo@example.com  /  demo-password

    Embed:    http://127.0.0.1:${GATEWAY_PORT}/embed/demo/1002
              (an expiring player link, for signed-in visitors)
    Mint:     curl -s -X POST http://127.0.0.1:${GATEWAY_PORT}/api/v1/sites/demo/tokens \\
                -H 'Authorization: Bearer demo-api-key-not-secret' \\
                -H 'Content-Type: application/json' -d '{"photo_ids": [1001, 1002]}'

    Gateway:  http://127.0.0.1:${GATEWAY_PORT}/   (readiness: /readyz, metrics: /metrics)

  Press Ctrl-C to stop.

MSG
wait $GATEWAY_PID
