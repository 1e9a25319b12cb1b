"""The console's plots from the per-minute telemetry: 24 hours in 10-minute bins."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from markupsafe import Markup

from gateway.admin.plots import Series, line_chart
from gateway.i18n import plain as _t
from gateway.telemetry import MINUTES, Telemetry, percentile_ms

BIN_MINUTES = 10


@dataclass(frozen=True)
class SiteFigures:
    site: str
    totals: Mapping[str, int]
    charts: Sequence[Markup]
    p50_ms: float | None
    p99_ms: float | None
    hit_ratio: float | None


def _merge(rows: Sequence[Mapping[str, int]]) -> Counter[str]:
    total: Counter[str] = Counter()
    for row in rows:
        total.update(row)
    return total


def _ratio(hits: int, misses: int) -> float | None:
    return 100.0 * hits / (hits + misses) if hits + misses else None


def site_figures(telemetry: Telemetry, site: str, chart_prefix: str) -> SiteFigures:
    minutes = telemetry.series(site, MINUTES)
    bins = [_merge(minutes[i : i + BIN_MINUTES]) for i in range(0, len(minutes), BIN_MINUTES)]
    totals = _merge(minutes)

    def counts(name: str) -> list[float | None]:
        return [float(b.get(name, 0)) for b in bins]

    def percentile(q: float) -> list[float | None]:
        return [percentile_ms(b, "upstream_ms", q) for b in bins]

    ratios = [_ratio(b.get("cache_hits", 0), b.get("cache_misses", 0)) for b in bins]
    p = chart_prefix
    charts = [
        line_chart(
            f"{p}-signins",
            _t("Sign-ins per 10 minutes"),
            [
                Series(_t("granted"), counts("granted")),
                Series(_t("refused"), counts("refused")),
                Series(_t("failed"), counts("failed")),
            ],
        ),
        line_chart(
            f"{p}-tokens",
            _t("Tokens minted per 10 minutes"),
            [Series(_t("tokens"), counts("tokens"))],
        ),
        line_chart(
            f"{p}-latency",
            _t("23 API latency"),
            [Series("p50", percentile(0.5)), Series("p99", percentile(0.99))],
            unit=" ms",
        ),
        line_chart(
            f"{p}-upstream",
            _t("23 API calls and errors per 10 minutes"),
            [
                Series(_t("calls"), counts("upstream_calls")),
                Series(_t("errors"), counts("upstream_errors")),
            ],
        ),
        line_chart(
            f"{p}-cache", _t("Photo cache hit ratio"), [Series(_t("hits"), ratios)], unit=" %"
        ),
        line_chart(
            f"{p}-ready",
            _t("Readiness checks per 10 minutes"),
            [Series(_t("passed"), counts("ready_ok")), Series(_t("failed"), counts("ready_fail"))],
        ),
    ]
    return SiteFigures(
        site,
        dict(totals),
        charts,
        percentile_ms(totals, "upstream_ms", 0.5),
        percentile_ms(totals, "upstream_ms", 0.99),
        _ratio(totals.get("cache_hits", 0), totals.get("cache_misses", 0)),
    )
