"""Aligned columns as plain rich ``Text`` lines: the dashboard's tables, laid out in one pass.

Why not rich's ``Table``: it measures every cell, then renders it, on every redraw. The
dashboard's tables cost 4.7 ms a redraw that way, and three dashboards at 4 redraws a second
took about 3% off the unpaced data path they were watching (``docs/performance.md``). The
dashboard's tables are small and borderless, so the layout is simple: a column is as wide as
its widest cell, a line is its cells padded and joined. Lines never wrap; a line too long
for the terminal is cut with an ellipsis, so a table keeps its shape at any width.

Rules of this module: pure functions, no console, no terminal size; the caller decides what
fits. A cell is a ``str`` (drawn in its column's style) or a ``Text`` (drawn in its own).

>>> lines = grid([["received", "1,200"], ["Dropped", "12"]], justify="lr")
>>> [line.plain for line in lines]
['received  1,200', 'Dropped      12']
>>> [line.plain for line in beside(lines, [Text("p99"), Text("2 ms")], gap=3)]
['received  1,200   p99', 'Dropped      12   2 ms']
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple, Union

from rich.cells import cell_len
from rich.text import Text

Cell = Union[str, Text]


def line(*parts: Union[Cell, Tuple[str, str]]) -> Text:
    """One line that never wraps, from strings, ``Text`` and ``(string, style)`` pairs."""
    text = Text(no_wrap=True, overflow="ellipsis")
    for part in parts:
        if isinstance(part, Text):
            text.append_text(part)
        elif isinstance(part, tuple):
            text.append(part[0], style=part[1])
        else:
            text.append(part)
    return text


def grid(
    rows: Sequence[Sequence[Cell]],
    justify: str,
    gap: int = 2,
    header: Optional[Sequence[str]] = None,
    header_style: str = "bold",
    styles: Sequence[str] = (),
    min_widths: Sequence[int] = (),
) -> List[Text]:
    """``rows`` as aligned lines. ``justify`` has one letter per column, ``l`` or ``r``;
    ``styles`` and ``min_widths`` are per column too (missing ones mean none)."""
    all_rows: List[Sequence[Cell]] = ([header] if header is not None else []) + list(rows)
    widths = [0] * len(justify)
    for index in range(len(justify)):
        floor = min_widths[index] if index < len(min_widths) else 0
        widths[index] = max([floor] + [_width(row[index]) for row in all_rows if index < len(row)])
    lines = []
    for number, row in enumerate(all_rows):
        is_header = header is not None and number == 0
        text = Text(no_wrap=True, overflow="ellipsis")
        for index, cell in enumerate(row):
            if index:
                text.append(" " * gap)
            style = header_style if is_header else (styles[index] if index < len(styles) else "")
            _append_padded(text, cell, widths[index], justify[index], style)
        text.rstrip()
        lines.append(text)
    return lines


def beside(left: Sequence[Text], right: Sequence[Text], gap: int = 3) -> List[Text]:
    """Two blocks of lines side by side, the left one padded to its widest line."""
    width = width_of(left)
    lines = []
    for index in range(max(len(left), len(right))):
        text = Text(no_wrap=True, overflow="ellipsis")
        if index < len(left):
            text.append_text(left[index])
        if index < len(right):
            text.append(" " * (width - text.cell_len + gap))
            text.append_text(right[index])
        lines.append(text)
    return lines


def width_of(lines: Sequence[Text]) -> int:
    """The widest line's width in terminal cells."""
    return max((piece.cell_len for piece in lines), default=0)


def _width(cell: Cell) -> int:
    return cell.cell_len if isinstance(cell, Text) else cell_len(cell)


def _append_padded(text: Text, cell: Cell, width: int, justify: str, style: str) -> None:
    padding = " " * (width - _width(cell))
    if justify == "r":
        text.append(padding)
    if isinstance(cell, Text):
        text.append_text(cell)
    else:
        text.append(cell, style=style or None)
    if justify != "r":
        text.append(padding)
