"""The analytics charts, drawn on the server as SVG with pygal: no CDN and no script in the browser.

Each chart is shipped as an `<img>` with a data URI, so the SVG is only ever an image (pygal puts a small config
script in its SVG; as an image it never runs). Every chart comes with the numbers as a table on the page.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pygal
from pygal.style import Style

from telephony.store.analytics import Figures

STYLE = Style(
    background="#ffffff", plot_background="#ffffff", foreground="#1d2433", foreground_strong="#1d2433",
    foreground_subtle="#5b6475", colors=("#2457c5", "#067647", "#b42318", "#b54708", "#6941c6"),
    font_family="system-ui, sans-serif", label_font_size=12, major_label_font_size=12, title_font_size=15,
)  # fmt: skip
OUTCOME_LABELS = {
    "bridged": "bridged", "declined": "declined", "busy": "busy", "no_answer": "no answer", "failed": "failed",
    "voicemail_reached": "agent voicemail", "caller_hung_up_before_bridge": "caller gone",
    "handoff_callback": "callback", "handoff_voicemail": "caller voicemail", "handoff_caller_hung_up": "abandoned",
    "handoff_ticket": "ticket",
}  # fmt: skip


@dataclass(frozen=True)
class Chart:
    """One chart: its title, the image (a data URI) and the numbers drawn, for the table beside it."""

    key: str
    title: str
    image: str
    rows: list[tuple[str, float]]


def _image(chart: pygal.Graph) -> str:
    svg = chart.render(is_unicode=True)
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _options(title: str, count: int) -> dict[str, object]:
    return {
        "title": title, "style": STYLE, "js": [], "disable_xml_declaration": True, "show_legend": False,
        "width": 720, "height": max(220, 60 + 34 * count), "explicit_size": True, "print_values": True,
        "value_formatter": lambda v: f"{v:g}", "margin": 12,
    }  # fmt: skip


def bars(key: str, title: str, counts: dict[str, int] | dict[str, float]) -> Chart:
    """Horizontal bars, the largest first."""
    rows = sorted(((str(k), float(v)) for k, v in counts.items()), key=lambda kv: (-kv[1], kv[0]))
    chart = pygal.HorizontalBar(**_options(title, len(rows)))
    chart.x_labels = [label for label, _ in reversed(rows)]
    chart.add(title, [value for _, value in reversed(rows)])
    return Chart(key, title, _image(chart), rows)


def per_day(key: str, title: str, values: dict[str, float]) -> Chart:
    """A line over the days, in order."""
    rows = sorted(values.items())
    options = {**_options(title, 4), "height": 300, "print_values": False, "x_label_rotation": 35, "dots_size": 3}
    chart = pygal.Line(**options)
    chart.x_labels = [day[5:] for day, _ in rows]  # MM-DD
    chart.x_labels_major_every = max(1, len(rows) // 10)
    chart.show_minor_x_labels = len(rows) <= 12
    chart.add(title, [value for _, value in rows])
    return Chart(key, title, _image(chart), [(day, value) for day, value in rows])


def analytics_charts(figures: Figures) -> list[Chart]:
    """The charts of the analytics page, from one window's figures."""
    outcomes = {OUTCOME_LABELS.get(k, k): v for k, v in figures.outcome_mix.items() if v}
    charts = [
        per_day("per_day", "Handoffs per 100 calls, by day", figures.per_day),
        bars("by_category", "Handoffs by category", figures.by_category),
        bars("by_trigger", "Handoffs by trigger", figures.by_trigger),
        bars("by_queue", "Handoffs by queue", figures.by_queue),
        bars("outcomes", "Transfer outcomes", outcomes),
    ]
    return [chart for chart in charts if chart.rows]
