"""Setting laid-out ``mathtext`` rows on a matplotlib figure: equations line by line, matrices
as grids between drawn brackets (``reports.mathtext`` lays them out)."""

from __future__ import annotations

from matplotlib.lines import Line2D

from .mathtext import GRID_AFTER, GRID_GAP, GRID_HOOK, GRID_PAD, Grid, Row, column_widths, extent, layout


#: Space after each line, after each row and around a matrix's rows, in font sizes.
_LINE_GAP, _ROW_GAP, _CELL_GAP = 0.4, 0.5, 0.6
#: Between the columns of a two-column block: no equation runs into the next.
_COLUMN_GAP = 12.0


def draw(fig, equations: tuple[Row, ...], left: float, top: float, width: float, *, size: float,
         columns: int = 1) -> float:
    """Set ``equations`` on ``fig`` from (``left``, ``top``) in inches, ``width`` inches wide, in
    ``columns`` side by side (row k in column k mod columns); returns the height used in inches."""
    page = tuple(72 * v for v in fig.get_size_inches())
    column = width * 72 / columns
    room = column - (_COLUMN_GAP if columns > 1 else 0.0)
    y = top * 72
    for first in range(0, len(equations), columns):
        used = [_draw_row(fig, row, (left * 72 + k * column, y), room, size, page)
                for k, row in enumerate(equations[first:first + columns])]
        y -= max(used) + _ROW_GAP * size
    return top - y / 72


def _draw_row(fig, row: Row, at: tuple[float, float], width: float, size: float, page) -> float:
    """One equation with its top left at ``at`` (points); returns the height used in points."""
    x, y = at
    start = y
    for item in layout(row, width, size):
        if isinstance(item, Grid):
            y -= _draw_grid(fig, item, (x, y), size, page)
        else:
            _, height, depth = extent(item.tex, size)
            baseline = y - (height - depth)
            fig.text((x + item.indent) / page[0], baseline / page[1], f"${item.tex}$", fontsize=size,
                     va="baseline")
            y -= height + _LINE_GAP * size
    return start - y


def _draw_grid(fig, grid: Grid, at: tuple[float, float], size: float, page: tuple[float, float]) -> float:
    """A matrix after ``lhs =``, its top left at ``at`` (points); returns its height in points."""
    (x, y), (fig_w, fig_h) = at, page
    heights = [max(extent(c, size)[1] for c in line) + _CELL_GAP * size for line in grid.cells]
    widths = column_widths(grid, size)
    height = sum(heights)
    fig.text(x / fig_w, (y - height / 2) / fig_h, f"${grid.lhs} =$", fontsize=size, va="center")
    left = x + extent(f"{grid.lhs} =", size)[0] + GRID_AFTER
    right = left + 2 * GRID_PAD + sum(widths) + GRID_GAP * (len(widths) - 1)
    for edge, hook in ((left, GRID_HOOK), (right, -GRID_HOOK)):
        xs = [edge + hook, edge, edge, edge + hook]
        ys = [y, y, y - height, y - height]
        fig.add_artist(Line2D([a / fig_w for a in xs], [b / fig_h for b in ys], color="k", lw=0.8,
                              transform=fig.transFigure))
    top = y
    for line, h in zip(grid.cells, heights):
        cx = left + GRID_PAD
        for cell, w in zip(line, widths):
            fig.text((cx + w / 2) / fig_w, (top - h / 2) / fig_h, f"${cell}$", fontsize=size, ha="center",
                     va="center")
            cx += w + GRID_GAP
        top -= h
    return height + _LINE_GAP * size
