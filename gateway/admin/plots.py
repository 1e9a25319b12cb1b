"""Server-rendered SVG plots of the last 24 hours: no script, no external asset, so they
work under the console's strict CSP and in any browser. Each plot is an image with a title
and a text summary (for screen readers and for a quick read)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

from gateway.i18n import plain as _t

WIDTH, HEIGHT = 480, 190
LEFT, RIGHT, TOP, BOTTOM = 62, 12, 14, 32  # room for 14-unit labels, legible when scaled
COLORS = ("#0b5cad", "#b3261e", "#6b4e00", "#1b6e3a")  # >= 4.5:1 on white, told apart by dash
DASHES = ("", "6 4", "2 3", "10 3 2 3")


@dataclass(frozen=True)
class Series:
    label: str
    values: Sequence[float | None]  # one per bin, oldest first; None = no data


def _ticks(top: float) -> float:
    """A round axis maximum at or above ``top``."""
    if top <= 0:
        return 1.0
    step = float(10 ** len(str(int(top)))) / 10
    for factor in (1, 2, 2.5, 5, 10):
        if top <= step * factor:
            return step * factor
    return top


def _number(value: float, unit: str) -> str:
    text = f"{value:,.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"
    return f"{text}{unit}"


def line_chart(
    chart_id: str, title: str, series: Sequence[Series], unit: str = "", hours: int = 24
) -> Markup:
    """A line per series over ``hours``; the x axis ends at now."""
    bins = max((len(s.values) for s in series), default=0) or 1
    present = [v for s in series for v in s.values if v is not None]
    frame = _Frame(bins, _ticks(max(present, default=0.0)))
    parts = [
        f'<svg class="plot" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-labelledby="{chart_id}-t {chart_id}-d" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="{chart_id}-t">{escape(title)}</title>',
        f'<desc id="{chart_id}-d">{escape(_summary(series, unit, hours))}</desc>',
        f'<rect x="{LEFT}" y="{TOP}" width="{frame.w}" height="{frame.h}" fill="#ffffff" '
        'stroke="#767676"/>',
        *_axes(frame, unit, hours),
        *_lines(frame, series),
        "</svg>",
    ]
    # Every piece of text in it went through escape(); numbers are formatted here.
    return Markup(  # noqa: S704
        f'<figure class="chart"><figcaption>{escape(title)}</figcaption>{"".join(parts)}'
        f'<ul class="legend">{_legend(series)}</ul></figure>'
    )


@dataclass(frozen=True)
class _Frame:
    """The plot area: ``bins`` points across, values up to ``top``."""

    bins: int
    top: float
    w: int = WIDTH - LEFT - RIGHT
    h: int = HEIGHT - TOP - BOTTOM

    def x(self, i: int) -> float:
        return LEFT + (self.w * i / (self.bins - 1) if self.bins > 1 else self.w)

    def y(self, v: float) -> float:
        return TOP + self.h * (1 - v / self.top)


def _axes(frame: _Frame, unit: str, hours: int) -> list[str]:
    parts = []
    for fraction in (0.5, 1.0):
        gy = frame.y(frame.top * fraction)
        parts.append(
            f'<line x1="{LEFT}" y1="{gy:.1f}" x2="{LEFT + frame.w}" y2="{gy:.1f}" '
            'stroke="#d0d0d0"/>'
            f'<text x="{LEFT - 6}" y="{gy + 4:.1f}" text-anchor="end" font-size="14" '
            f'fill="#333333">{escape(_number(frame.top * fraction, unit))}</text>'
        )
    parts.append(
        f'<text x="{LEFT - 6}" y="{TOP + frame.h + 4}" text-anchor="end" font-size="14" '
        'fill="#333333">0</text>'
    )
    for h in range(0, hours + 1, 6):
        tx = LEFT + frame.w * h / hours
        label = _t("now") if h == hours else f"-{hours - h} h"
        parts.append(
            f'<text x="{tx:.1f}" y="{HEIGHT - 8}" text-anchor="middle" font-size="14" '
            f'fill="#333333">{label}</text>'
        )
    return parts


def _lines(frame: _Frame, series: Sequence[Series]) -> list[str]:
    parts = []
    for n, one in enumerate(series):
        color, dash = COLORS[n % len(COLORS)], DASHES[n % len(DASHES)]
        dashing = f' stroke-dasharray="{dash}"' if dash else ""
        for run in _runs(one.values):
            if len(run) == 1:  # one point: a line of length zero would not show at all
                ((i, v),) = run
                parts.append(
                    f'<circle cx="{frame.x(i):.1f}" cy="{frame.y(v):.1f}" r="3.5" fill="{color}"/>'
                )
                continue
            points = " ".join(f"{frame.x(i):.1f},{frame.y(v):.1f}" for i, v in run)
            parts.append(
                f'<polyline points="{points}" fill="none" stroke="{color}" stroke-width="2"'
                f"{dashing}/>"
            )
    return parts


def _legend(series: Sequence[Series]) -> str:
    return "".join(
        f'<li><svg width="28" height="10" aria-hidden="true"><line x1="0" y1="5" x2="28" y2="5" '
        f'stroke="{COLORS[n % len(COLORS)]}" stroke-width="2"'
        + (f' stroke-dasharray="{DASHES[n % len(DASHES)]}"' if DASHES[n % len(DASHES)] else "")
        + f"/></svg> {escape(s.label)}</li>"
        for n, s in enumerate(series)
    )


def _runs(values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    """Stretches without gaps, each drawn as one line (a single point becomes a dot-line)."""
    runs: list[list[tuple[int, float]]] = [[]]
    for i, v in enumerate(values):
        if v is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((i, v))
    drawn = []
    for run in runs:
        if len(run) == 1:
            i, v = run[0]
            run = [(i, v), (i, v)]
        if run:
            drawn.append(run)
    return drawn


def _summary(series: Sequence[Series], unit: str, hours: int) -> str:
    bits = []
    for one in series:
        present = [v for v in one.values if v is not None]
        if not present:
            bits.append(_t("%(series)s: no data", series=one.label))
        else:
            last = _number(present[-1], unit)
            top = _number(max(present), unit)
            bits.append(
                _t(
                    "%(series)s: latest %(last)s, highest %(top)s",
                    series=one.label,
                    last=last,
                    top=top,
                )
            )
    return _t("Last %(hours)s hours.", hours=hours) + " " + "; ".join(bits) + "."
