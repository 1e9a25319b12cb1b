#!/usr/bin/env bash
# Installs the system and npm packages the test suite talks to. Idempotent: a second run
# installs nothing. Today the suite needs only the Python packages from pyproject.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null || need_apt+=(redis-server)

if ((${#need_apt[@]})); then
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
echo "test dependencies: ok"
