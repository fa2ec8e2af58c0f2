"""Aligned columns as plain rich ``Text`` lines: the dashboard's tables, laid out in one pass.

Why not rich's ``Table``: it measures every cell, then renders it, on every redraw. The
dashboard's tables cost 4.7 ms a redraw that way, and three dashboards at 4 redraws a second
took about 3% off the unpaced data path they were watching (``docs/performance.md``). The
dashboard's tables are small and borderless, so the layout is simple: a column is as wide as
its widest cell, a line is its cells padded and joined. Lines never wrap; a line too long
for the terminal is cut with an ellipsis, so a table keeps its shape at any width.

Rules of this module: pure functions, no console, no terminal size; the caller decides what
fits. A cell is a ``str`` (drawn in its column's style) or a ``Text`` (drawn in its own).
The one exception is :class:`Framed`, the box around the dashboard: a rich renderable, so it
sees the console only when rich draws it.

>>> lines = grid([["received", "1,200"], ["Dropped", "12"]], justify="lr")
>>> [line.plain for line in lines]
['received  1,200', 'Dropped      12']
>>> [line.plain for line in beside(lines, [Text("p99"), Text("2 ms")], gap=3)]
['received  1,200   p99', 'Dropped      12   2 ms']
"""

from __future__ import annotations

from typing import Iterable, List, Optional, Sequence, Tuple, Union

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.segment import Segment
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


class Framed:
    """``parts`` in a rounded box with ``title`` on its top edge: the same characters and
    styles as rich's ``Panel(Group(*parts), title=title, title_align="left",
    border_style=border_style, padding=(0, 1))``, drawn in one pass.

    Why: a ``Panel`` wraps and measures every line through ``Padding`` and ``Group``, which
    is most of what a redraw would cost (``docs/performance.md``). A line that never wraps
    (as ``line`` and ``grid`` make them) is rendered straight to segments here; anything else
    (a wrapping message, another renderable) goes through rich's own rendering.
    """

    def __init__(self, parts: Sequence[RenderableType], title: Text, border_style: str) -> None:
        self.parts = parts
        self.title = title
        self.border_style = border_style

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        border = console.get_style(self.border_style)
        if width <= 4:  # no room for a title (rich's Panel draws a bare edge here too)
            yield Segment(box.ROUNDED.get_top([width - 2]), border)
        else:
            yield Segment(box.ROUNDED.top_left + box.ROUNDED.top, border)
            yield from self._title_edge(console, width - 4)
            yield Segment(box.ROUNDED.top + box.ROUNDED.top_right, border)
        yield Segment.line()
        inner = max(0, width - 4)
        edge, space, new_line = Segment("│", border), Segment(" "), Segment.line()
        inner_options = options.update(width=inner, height=None)
        for content in self._lines(console, inner_options, inner):
            yield edge
            yield space
            yield from content
            yield space
            yield edge
            yield new_line
        yield Segment(box.ROUNDED.get_bottom([width - 2]), border)
        yield new_line

    def _title_edge(self, console: Console, room: int) -> Iterable[Segment]:
        """The title, a space either side, in the border's style, then the edge to ``room``."""
        title = self.title.copy()
        title.plain = title.plain.replace("\n", " ")
        title.expand_tabs()
        title.pad(1)
        title.stylize_before(self.border_style)
        title.truncate(room)
        if title.style:
            title.stylize(console.get_style(title.style))
        fill = box.ROUNDED.top * (room - cell_len(title.plain))
        return Text.assemble(title, (fill, self.border_style), end="").render(console)

    def _lines(
        self, console: Console, options: ConsoleOptions, inner: int
    ) -> Iterable[List[Segment]]:
        """Each part as lines of exactly ``inner`` cells."""
        for part in _flatten(self.parts):
            if isinstance(part, Text) and part.no_wrap and "\n" not in part.plain:
                yield _one_line(console, part, inner, options.overflow)
            else:
                yield from console.render_lines(part, options, pad=True, new_lines=False)


def _flatten(parts: Sequence[RenderableType]) -> Iterable[RenderableType]:
    for part in parts:
        if isinstance(part, Group):
            yield from _flatten(part.renderables)
        else:
            yield part


def _one_line(console: Console, text: Text, inner: int, overflow: Optional[str]) -> List[Segment]:
    """What rich draws for a no-wrap ``Text`` in ``inner`` cells, without wrapping it."""
    if "\t" in text.plain:
        text = text.copy()
        text.expand_tabs(console.tab_size)
    length = text.cell_len
    if length > inner:
        text = text.copy()
        text.truncate(inner, overflow=text.overflow or overflow or "fold")
        length = text.cell_len
    segments = list(text.render(console))
    if length < inner:
        segments.append(Segment(" " * (inner - length)))
    return segments
