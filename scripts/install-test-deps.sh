#!/usr/bin/env bash
# Installs the system packages the test suite talks to. Idempotent: a second run installs nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/apt-install.sh redis-server
echo "test dependencies: ok"
