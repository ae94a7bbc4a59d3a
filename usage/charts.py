"""Small server-rendered SVG charts for the admin: no script, no CDN.

Each value has a `<title>` (the browser's tooltip) with its exact number;
the page's CSV download has them all. The markup is built with f-strings:
every number is formatted here and every text (titles, tutor names) goes
through `escape()` once.
"""

from collections.abc import Sequence
from datetime import date

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 600, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 28
PLOT_HEIGHT = HEIGHT - TOP - BOTTOM
# Distinguishable for most colour blindness (Okabe-Ito).
COLOURS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"]


def _nice_top(peak: float) -> float:
    """A round axis maximum at or above `peak`."""
    if peak <= 0:
        return 1
    step = 10 ** (len(str(int(peak))) - 1)
    for multiple in (1, 2, 2.5, 5, 10):
        if peak <= multiple * step:
            return multiple * step
    return 10 * step


def _number(value: float) -> str:
    return f"{value:,.0f}".replace(",", " ") if value >= 100 or value == int(value) else f"{value:.2f}"


def _y(value: float, top: float) -> float:
    return round(TOP + PLOT_HEIGHT * (1 - value / top), 1)


def _frame(days: Sequence[date], top: float, unit: str) -> list[str]:
    """Axes, three horizontal grid lines with values, and every fifth day's label."""
    parts = []
    for fraction in (0, 0.5, 1):
        y, label = _y(top * fraction, top), _number(top * fraction)
        parts.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y}" y2="{y}" class="grid"/>'
            f'<text x="{LEFT - 6}" y="{y + 4}" class="tick" text-anchor="end">{label}{unit}</text>'
        )
    step = (WIDTH - LEFT - RIGHT) / len(days)
    for index, day in enumerate(days):
        if index % 5 == 0 or index == len(days) - 1:
            x = round(LEFT + step * (index + 0.5), 1)
            parts.append(
                f'<text x="{x}" y="{HEIGHT - 8}" class="tick" text-anchor="middle">{day:%d.%m}</text>'
            )
    return parts


def _figure(title: str, body: list[str], legend: str = "") -> SafeString:
    title = escape(title)
    return mark_safe(  # noqa: S308 (texts escaped above and in the callers; the rest is numbers)
        f'<figure class="chart"><figcaption>{title}</figcaption>{legend}'
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{title}">{"".join(body)}</svg></figure>'
    )


def bar_chart(title: str, days: Sequence[date], values: Sequence[int], unit: str = "") -> SafeString:
    unit = escape(unit)
    top = _nice_top(max(values, default=0))
    step = (WIDTH - LEFT - RIGHT) / len(days)
    bars = [
        f'<rect x="{round(LEFT + step * index + 1, 1)}" y="{_y(value, top)}" width="{round(step - 2, 1)}" '
        f'height="{round(PLOT_HEIGHT * value / top, 1)}" fill="{COLOURS[0]}">'
        f"<title>{day.isoformat()}: {_number(value)}{unit}</title></rect>"
        for index, (day, value) in enumerate(zip(days, values, strict=True))
    ]
    return _figure(title, [*_frame(days, top, unit), *bars])


def line_chart(
    title: str,
    days: Sequence[date],
    series: dict[str, Sequence[float | None]],
    unit: str = "",
    top: float | None = None,
) -> SafeString:
    """One line per series; a None leaves a gap. `top` fixes the axis (e.g. 5 for ratings)."""
    unit = escape(unit)
    peak = max((value for values in series.values() for value in values if value is not None), default=0)
    top = top or _nice_top(peak)
    step = (WIDTH - LEFT - RIGHT) / len(days)
    body = _frame(days, top, unit)
    legend = []
    for colour, (name, values) in zip(COLOURS, series.items(), strict=False):
        name = escape(name)
        legend.append(f'<li><span style="background:{colour}"></span>{name}</li>')
        stretch: list[str] = []  # the points of the current unbroken run
        for index, (day, value) in enumerate(zip(days, values, strict=True)):
            if value is None:
                body.append(_polyline(stretch, colour))
                stretch = []
                continue
            x, y = round(LEFT + step * (index + 0.5), 1), _y(value, top)
            stretch.append(f"{x},{y}")
            body.append(
                f'<circle cx="{x}" cy="{y}" r="2.5" fill="{colour}">'
                f"<title>{name} {day.isoformat()}: {_number(value)}{unit}</title></circle>"
            )
        body.append(_polyline(stretch, colour))
    return _figure(title, body, f'<ul class="legend">{"".join(legend)}</ul>')


def _polyline(points: list[str], colour: str) -> str:
    if len(points) < 2:
        return ""
    return f'<polyline points="{" ".join(points)}" fill="none" stroke="{colour}" stroke-width="2"/>'
