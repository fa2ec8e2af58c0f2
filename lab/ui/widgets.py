"""Small drawing helpers shared by the dashboard and the module panels: numbers with units,
sparklines, and bars coloured by how full they are. Pure functions of their arguments."""

from __future__ import annotations

from typing import Any, Dict, Optional

from rich.text import Text

SPARK_CHARS = "▁▂▃▄▅▆▇█"


def sparkline(values, width: int, ceiling: Optional[float] = None) -> str:
    """The last ``width`` values as block characters, scaled to ``ceiling`` (or the max)."""
    values = list(values)[-width:]
    if not values:
        return ""
    top = ceiling if ceiling else max(values)
    if top <= 0:
        return SPARK_CHARS[0] * len(values)
    steps = len(SPARK_CHARS) - 1
    return "".join(SPARK_CHARS[min(steps, max(0, round(v / top * steps)))] for v in values)


def fmt_count(value: Any) -> str:
    return f"{int(value):,}" if isinstance(value, (int, float)) else "-"


def fmt_rate(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "-"
    return f"{value:,.0f}/s" if value >= 100 else f"{value:,.1f}/s"


def fmt_seconds(value: Any) -> str:
    """A duration with a unit a person reads at a glance: 850 us, 12 ms, 4.9 s."""
    if not isinstance(value, (int, float)):
        return "-"
    if value >= 1.0:
        return f"{value:.1f} s"
    if value >= 0.001:
        return f"{value * 1e3:.0f} ms"
    return f"{value * 1e6:.0f} µs"


def fmt_measured(summary: Optional[Dict[str, Any]], key: str) -> str:
    """A value of a latency window (``p99_s``...), "n/a" when the window holds no sample:
    nothing measured is not "0 µs"; "-" when there is no window at all."""
    if summary is None:
        return "-"
    return "n/a" if not summary["max_s"] > 0 else fmt_seconds(summary[key])


def plural(count: int, word: str, many: str = "") -> str:
    """``1 switch``, ``2 switches``: a count and its noun, in the right number."""
    return f"{count:,} {word if count == 1 else many or word + 's'}"


def gauge_color(fill: float) -> str:
    if fill >= 0.9:
        return "red"
    if fill >= 0.5:
        return "yellow"
    return "green"


def bar(value: float, ceiling: float, width: int, label: str) -> Text:
    """A horizontal bar of ``value`` out of ``ceiling``, coloured by how full it is."""
    fill = max(0.0, min(1.0, value / ceiling)) if ceiling > 0 else 0.0
    filled = round(fill * width)
    color = gauge_color(fill)
    text = Text("█" * filled, style=f"bold {color}")
    text.append("░" * (width - filled), style="dim")
    text.append(f" {label}", style=f"bold {color}")
    return text


def gauge(depth: int, capacity: Optional[int], width: int) -> Text:
    if capacity is None:
        text = Text("unbounded ", style="bold magenta")
        text.append(f"{depth:,} queued", style="bold")
        return text
    fill = depth / capacity if capacity > 0 else 0.0
    return bar(depth, capacity, width, f"{depth:,}/{capacity:,} ({min(fill, 1.0):.0%})")


def memory_gauge(rss: float, guard: Optional[float], width: int) -> Text:
    """RSS against the memory guard: how close the unbounded queue is to being stopped."""
    if not guard:
        return Text(f"{rss:.0f} MB")
    return bar(rss, guard, width, f"{rss:.0f}/{guard:.0f} MB")
