"""Small server-rendered SVG charts for the admin: no script, no CDN.

Each value has a `<title>` (the browser's tooltip) with its exact number;
the page's CSV download has them all.
"""

from collections.abc import Sequence
from datetime import date

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT = 600, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 28
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


def _frame(days: Sequence[date], top: float, unit: str) -> list[SafeString]:
    """Axes, three horizontal grid lines with values, and every fifth day's label."""
    plot_h = HEIGHT - TOP - BOTTOM
    parts = []
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h * (1 - fraction)
        parts.append(
            format_html(
                '<line x1="{}" x2="{}" y1="{}" y2="{}" class="grid"/>'
                '<text x="{}" y="{}" class="tick" text-anchor="end">{}{}</text>',
                LEFT,
                WIDTH - RIGHT,
                y,
                y,
                LEFT - 6,
                y + 4,
                _number(top * fraction),
                unit,
            )
        )
    step = (WIDTH - LEFT - RIGHT) / len(days)
    for index, day in enumerate(days):
        if index % 5 == 0 or index == len(days) - 1:
            parts.append(
                format_html(
                    '<text x="{}" y="{}" class="tick" text-anchor="middle">{}</text>',
                    round(LEFT + step * (index + 0.5), 1),
                    HEIGHT - 8,
                    day.strftime("%d.%m"),
                )
            )
    return parts


def _svg(title: str, body: list[SafeString], legend: str = "") -> SafeString:
    return format_html(
        '<figure class="chart"><figcaption>{}</figcaption>{}'
        '<svg viewBox="0 0 {} {}" role="img" aria-label="{}">{}</svg></figure>',
        title,
        legend,
        WIDTH,
        HEIGHT,
        title,
        mark_safe("".join(body)),  # noqa: S308 (every part is built with format_html)
    )


def bar_chart(title: str, days: Sequence[date], values: Sequence[int], unit: str = "") -> SafeString:
    top = _nice_top(max(values, default=0))
    plot_h = HEIGHT - TOP - BOTTOM
    step = (WIDTH - LEFT - RIGHT) / len(days)
    bars = [
        format_html(
            '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}: {}{}</title></rect>',
            round(LEFT + step * index + 1, 1),
            round(TOP + plot_h * (1 - value / top), 1),
            round(step - 2, 1),
            round(plot_h * value / top, 1),
            COLOURS[0],
            day.isoformat(),
            _number(value),
            unit,
        )
        for index, (day, value) in enumerate(zip(days, values, strict=True))
    ]
    return _svg(title, [*_frame(days, top, unit), *bars])


def line_chart(
    title: str,
    days: Sequence[date],
    series: dict[str, Sequence[float | None]],
    unit: str = "",
    top: float | None = None,
) -> SafeString:
    """One line per series; a None leaves a gap. `top` fixes the axis (e.g. 5 for ratings)."""
    peak = max((value for values in series.values() for value in values if value is not None), default=0)
    top = top or _nice_top(peak)
    plot_h = HEIGHT - TOP - BOTTOM
    step = (WIDTH - LEFT - RIGHT) / len(days)
    body = _frame(days, top, unit)
    for colour, (name, values) in zip(COLOURS, series.items(), strict=False):
        points = [
            (round(LEFT + step * (index + 0.5), 1), round(TOP + plot_h * (1 - value / top), 1), day, value)
            for index, (day, value) in enumerate(zip(days, values, strict=True))
            if value is not None
        ]
        runs, run, previous = [], [], None
        for point in points:
            index = days.index(point[2])
            if previous is not None and index != previous + 1:
                runs.append(run)
                run = []
            run.append(point)
            previous = index
        runs.append(run)
        for stretch in runs:
            if len(stretch) > 1:
                body.append(
                    format_html(
                        '<polyline points="{}" fill="none" stroke="{}" stroke-width="2"/>',
                        " ".join(f"{x},{y}" for x, y, _day, _value in stretch),
                        colour,
                    )
                )
        body += [
            format_html(
                '<circle cx="{}" cy="{}" r="2.5" fill="{}"><title>{} {}: {}{}</title></circle>',
                x,
                y,
                colour,
                name,
                day.isoformat(),
                _number(value),
                unit,
            )
            for x, y, day, value in points
        ]
    legend = format_html(
        '<ul class="legend">{}</ul>',
        format_html_join(
            "",
            '<li><span style="background:{}"></span>{}</li>',
            zip(COLOURS, series, strict=False),
        ),
    )
    return _svg(title, body, legend)
