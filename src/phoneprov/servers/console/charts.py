"""Charts as inline SVG drawn on the server: no script, no CDN, readable by screen readers.

Each chart is an ``<svg role="img">`` with a ``<title>`` and a ``<desc>``
that says the numbers in words, so the page still tells everything with
images and scripts off. Labels are escaped (they come from phones).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from markupsafe import Markup, escape

WIDTH = 640
BAR_HEIGHT = 22
PALETTE = ("#1f5f99", "#2e7d32", "#b45309", "#7b1fa2", "#b71c1c", "#00695c", "#4e342e")


def _frame(title: str, desc: str, height: int, body: str) -> Markup:
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" class="chart" '
        f'viewBox="0 0 {WIDTH} {height}" width="100%">'
        f"<title>{escape(title)}</title><desc>{escape(desc)}</desc>{body}</svg>"
    )


def bars(title: str, values: Sequence[tuple[str, int]], unit: str = "phones") -> Markup:
    """Horizontal bars, largest first; each bar labelled with its name and count."""
    shown = sorted(values, key=lambda item: (-item[1], item[0]))[:12]
    if not shown:
        return _frame(title, f"No {unit}.", 30, '<text x="4" y="20">none</text>')
    top = max(count for _, count in shown) or 1
    label_width = 170
    room = WIDTH - label_width - 70
    parts: list[str] = []
    for index, (name, count) in enumerate(shown):
        y = index * (BAR_HEIGHT + 6)
        width = max(1, round(room * count / top))
        colour = PALETTE[index % len(PALETTE)]
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 16}" text-anchor="end">'
            f"{escape(name or '(none)')}</text>"
            f'<rect x="{label_width}" y="{y}" width="{width}" height="{BAR_HEIGHT}" '
            f'fill="{colour}"/>'
            f'<text x="{label_width + width + 6}" y="{y + 16}">{count}</text>'
        )
    desc = "; ".join(f"{name or '(none)'}: {count} {unit}" for name, count in shown)
    return _frame(title, desc, len(shown) * (BAR_HEIGHT + 6), "".join(parts))


def columns(title: str, since: float, per_minute: Sequence[int], bucket: int = 15) -> Markup:
    """Counts per minute drawn as columns of ``bucket`` minutes, with hour marks."""
    grouped = [sum(per_minute[i : i + bucket]) for i in range(0, len(per_minute), bucket)]
    height, base = 160, 130
    top = max(grouped, default=0) or 1
    step = WIDTH / max(len(grouped), 1)
    parts = [f'<line x1="0" y1="{base}" x2="{WIDTH}" y2="{base}" stroke="#555"/>']
    for index, count in enumerate(grouped):
        h = round((base - 10) * count / top)
        if h:
            parts.append(
                f'<rect x="{index * step:.1f}" y="{base - h}" width="{max(step - 1, 1):.1f}" '
                f'height="{h}" fill="{PALETTE[0]}"/>'
            )
    marks = max(1, len(grouped) // 6)
    for index in range(0, len(grouped), marks):
        stamp = datetime.fromtimestamp(since + index * bucket * 60, UTC).strftime("%H:%M")
        parts.append(f'<text x="{index * step:.1f}" y="{base + 20}">{stamp}</text>')
    parts.append(f'<text x="{WIDTH - 4}" y="12" text-anchor="end">max {top}</text>')
    total = sum(per_minute)
    busiest = max(per_minute, default=0)
    desc = (
        f"{total} in the last {len(per_minute) // 60} hours; at most {busiest} in one minute "
        f"(columns of {bucket} minutes, UTC)."
    )
    return _frame(title, desc, height, "".join(parts))
