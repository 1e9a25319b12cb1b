#!/usr/bin/env bash
# A self-signed certificate for gateway.localhost in ./tls (for trying the topology locally;
# production uses a real certificate).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p tls
openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=gateway.localhost" \
  -addext "subjectAltName=DNS:gateway.localhost" \
  -keyout tls/gateway.key -out tls/gateway.crt
chmod 644 tls/gateway.crt tls/gateway.key
echo "wrote tls/gateway.crt and tls/gateway.key"
