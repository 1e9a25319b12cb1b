#!/usr/bin/env bash
# Installs the system and npm packages the test suite talks to. Idempotent: a second run
# installs nothing. Everything comes from Debian's packages and the npm registry.
set -euo pipefail
cd "$(dirname "$0")/.."

# redis-server: the shared store; chromium: the visitor flows in a real browser;
# postgresql: the entitlement store's production database (a throwaway cluster per test run);
# xmlsec1: SAML signatures (a runtime need too); simplesamlphp + PHP: a real SAML IdP for the
# tests (nginx satisfies its web-server dependency without Apache; the tests use PHP's own
# server); nginx is also the load balancer in front of two gateway instances in the tests.
# slapd + ldap-utils: a real directory for the LDAP tests (started by the tests).
scripts/apt-install.sh redis-server chromium postgresql xmlsec1 \
  simplesamlphp php-cli php-cgi php-xml php-mbstring nginx slapd ldap-utils

# A real OpenID provider (panva/oidc-provider) for the SSO tests, pinned by package-lock.json.
if [[ ! -d tests/oidc/node_modules/oidc-provider || tests/oidc/package-lock.json -nt tests/oidc/node_modules/.package-lock.json ]]; then
  (cd tests/oidc && npm ci --no-audit --no-fund --silent)
fi
# axe-core, injected into the pages by the accessibility tests.
if [[ ! -f tests/axe/node_modules/axe-core/axe.min.js || tests/axe/package-lock.json -nt tests/axe/node_modules/.package-lock.json ]]; then
  (cd tests/axe && npm ci --no-audit --no-fund --silent)
fi
echo "test dependencies: ok"
