"""Prometheus metrics, defined once. In multi-worker gunicorn, PROMETHEUS_MULTIPROC_DIR is set."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# The gateway's own HTTP traffic.
REQUESTS = Counter(
    "gateway_http_requests_total", "HTTP requests served", ["endpoint", "method", "status"]
)
REQUEST_SECONDS = Histogram(
    "gateway_http_request_seconds",
    "Time to serve an HTTP request",
    ["endpoint"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15),
)
# Calls to 23: how many and how long.
UPSTREAM_CALLS = Counter(
    "gateway_upstream_calls_total", "Calls to 23 APIs", ["site", "method", "outcome"]
)
UPSTREAM_SECONDS = Histogram(
    "gateway_upstream_call_seconds",
    "Time of one 23 API call, retries included",
    ["site", "method"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15),
)
# What visitors and backends were given: tokens, player answers, sessions.
SESSIONS_GRANTED = Counter(
    "gateway_sessions_total", "Site access decisions", ["site", "provider", "outcome"]
)
TOKENS_MINTED = Counter(
    "gateway_tokens_minted_total", "Time-limited tokens minted", ["site", "via"]
)
PROTECTION_ANSWERS = Counter(
    "gateway_protection_answers_total",
    "Answers to the 23 player's protection calls",
    ["site", "outcome"],
)
# The photo cache and the catalogue that fills it; cold lookups a key could not afford.
CACHE_EVENTS = Counter("gateway_cache_events_total", "Photo cache lookups", ["cache", "result"])
COLD_LOOKUPS_REFUSED = Counter(
    "gateway_cold_lookups_refused_total",
    "Mint calls refused because the key used up its cold lookups for the minute",
    ["site", "api_key"],
)
CATALOGUE_SYNCS = Counter(
    "gateway_catalogue_syncs_total", "Full catalogue syncs run by this process", ["site", "outcome"]
)
# Readiness, per site: a degraded site stays served from what is cached.
UPSTREAM_UP = Gauge(
    "gateway_upstream_up",
    "1 when the site's 23 API answered the last readiness check with super credentials, else 0",
    ["site"],
    multiprocess_mode="mostrecent",
)
# Bounded security state: a flood fills a kind, never the memory.
STATE_REFUSED = Counter(
    "gateway_state_refused_total",
    "New security state (pending sign-ins, used-once markers, rate windows) refused: its bound "
    "was reached",
    ["kind"],
)
