"""What a terminal receives for a renderable: shared by the dashboard and panel tests."""

from __future__ import annotations

import io

from rich.console import Console, Group
from rich.panel import Panel

from lab.ui.textgrid import Framed


def ansi(renderable, width: int, height: int) -> str:
    """The bytes a colour terminal of ``width`` x ``height`` would be sent."""
    out = io.StringIO()
    console = Console(
        file=out, width=width, height=height, force_terminal=True, color_system="truecolor"
    )
    console.print(renderable)
    return out.getvalue()


def as_panel(framed: Framed) -> Panel:
    """The reference for ``Framed``: rich's own Panel around the same parts."""
    return Panel(
        Group(*framed.parts),
        title=framed.title,
        title_align="left",
        border_style=framed.border_style,
        padding=(0, 1),
    )
