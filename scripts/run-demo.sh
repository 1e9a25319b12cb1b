#!/usr/bin/env bash
# `make run`: the emulated 23 site and the gateway with config/gateway.toml, on
# $DEVSITE_PORT (default 8023) and $GATEWAY_PORT (default 8000).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
GATEWAY_PORT=${GATEWAY_PORT:-8000}
DEVSITE_PORT=${DEVSITE_PORT:-8023}
HOST=127.0.0.1

fail() { echo "error: $*" >&2; exit 1; }

for pair in "GATEWAY_PORT:$GATEWAY_PORT" "DEVSITE_PORT:$DEVSITE_PORT"; do
  name=${pair%%:*} port=${pair#*:}
  [[ "$port" =~ ^[0-9]+$ && "$port" -ge 1 && "$port" -le 65535 ]] || fail "$name=$port is not a port number"
  if ! "$BIN/python" -c "import socket,sys; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('$HOST', int(sys.argv[1]))); s.listen()" "$port" 2>/dev/null; then
    fail "port $port is in use. Set $name to a free port, e.g.: make run $name=$((port + 100))"
  fi
done
[[ "$GATEWAY_PORT" != "$DEVSITE_PORT" ]] || fail "GATEWAY_PORT and DEVSITE_PORT must differ"

# A fresh signing key per demo run unless one is given; real deployments set their own.
export GATEWAY_SECRET_KEY=${GATEWAY_SECRET_KEY:-$("$BIN/python" -c 'import secrets; print(secrets.token_urlsafe(32))')}
export GATEWAY_CONFIG=${GATEWAY_CONFIG:-config/gateway.toml}
export DEMO_GATEWAY_URL="http://$HOST:$GATEWAY_PORT" DEMO_SITE_URL="http://$HOST:$DEVSITE_PORT"

"$BIN/gateway" check-config "$GATEWAY_CONFIG" >/dev/null

PIDS=()
cleanup() { kill "${PIDS[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT
# Ctrl-C is how the demo is meant to end: a clean stop, not an error for make to report.
trap 'echo "23 Gateway demo stopped."; exit 0' INT
trap 'echo "23 Gateway demo stopped."; exit 143' TERM

"$BIN/gateway" devsite --host "$HOST" --port "$DEVSITE_PORT" \
  --remote-login-url "$DEMO_GATEWAY_URL/sso/demo/login" &
PIDS+=($!)
# In a session of its own: Ctrl-C stops it through the trap (SIGTERM, gunicorn's graceful stop)
# instead of reaching its worker, where gevent would print a traceback for a clean exit.
setsid "$BIN/gateway" serve --host "$HOST" --port "$GATEWAY_PORT" &
PIDS+=($!)

# The banner only once both answer; a process that dies on the way stops the demo.
answers() { "$BIN/python" -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=1)" "$1" 2>/dev/null; }
for _ in $(seq 1 300); do
  for pid in "${PIDS[@]}"; do kill -0 "$pid" 2>/dev/null || fail "the demo stopped while starting (see the lines above)"; done
  answers "$DEMO_SITE_URL/_devsite/calls" && answers "$DEMO_GATEWAY_URL/healthz" && break
  sleep 0.1
done
answers "$DEMO_SITE_URL/_devsite/calls" && answers "$DEMO_GATEWAY_URL/healthz" || fail "the demo did not answer within 30 s"

cat <<MSG

  23 Gateway demo is running.

    Open:     $DEMO_SITE_URL/
              (the emulated closed 23 site: it sends you to the gateway to sign in)
    Sign in:  demo@example.com  /  demo-password

    Console:  $DEMO_GATEWAY_URL/admin   (the same account: plots, audit, configuration)
    Embed:    $DEMO_GATEWAY_URL/embed/demo/1002
              (an expiring player link, for signed-in visitors)
    Mint:     curl -s -X POST $DEMO_GATEWAY_URL/api/v1/sites/demo/tokens \\
                -H 'Authorization: Bearer demo-api-key-not-secret' \\
                -H 'Content-Type: application/json' -d '{"photo_ids": [1001, 1002]}'

    Gateway:  $DEMO_GATEWAY_URL/   (readiness: /readyz, metrics: /metrics)

  Press Ctrl-C to stop.

MSG
# Ctrl-C reaches every process of the demo: each stops cleanly (0, or 130/143 for the signal)
# and so does the demo. Anything else is a process that failed on its own.
status=0
wait -n "${PIDS[@]}" || status=$?
case $status in
  0 | 130 | 143) echo "23 Gateway demo stopped."; exit 0 ;;
esac
fail "a demo process stopped (exit $status; see the lines above)"
