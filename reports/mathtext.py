"""derive's LaTeX, set on a page by matplotlib's mathtext (no TeX installation needed).

mathtext draws one line of inline math.  derive writes ``align*`` blocks whose
right-hand sides can be far wider than a page, matrices (``\\begin{matrix}``) and
``\\Big(``.  Here a row is broken after its top-level + and − signs into as many
lines as the width needs, a matrix is set as a grid of cells between drawn
brackets (or, when even that is too wide, entry by entry), and ``\\Big`` becomes
``\\left``/``\\right``.  Nothing falls back to plain text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from matplotlib.font_manager import FontProperties
from matplotlib.lines import Line2D
from matplotlib.mathtext import MathTextParser

_PARSER = MathTextParser("path")
_MATRIX = re.compile(r"^\\left[(\[]\\begin\{matrix\}(.*)\\end\{matrix\}\\right[)\]]$", re.S)


@dataclass(frozen=True)
class Row:
    """One equation: ``lhs = rhs`` in mathtext."""

    lhs: str
    rhs: str


def rows(align: str) -> tuple[Row, ...]:
    """The rows ``lhs &= rhs`` of an ``align*`` block (comments and the environment dropped).

    >>> rows("% a comment\\n\\\\begin{align*}\\n  x &= 1 \\\\\\\\\\n  y &= 2\\n\\\\end{align*}")
    (Row(lhs='x', rhs='1'), Row(lhs='y', rhs='2'))
    """
    body = "\n".join(line for line in align.splitlines() if not line.lstrip().startswith("%"))
    body = body.replace(r"\begin{align*}", "").replace(r"\end{align*}", "")
    out = []
    for line in re.split(r"\\\\\s*\n", body):
        if line.strip():
            lhs, _, rhs = line.partition("&=")
            out.append(Row(to_mathtext(lhs.strip()), to_mathtext(rhs.strip())))
    return tuple(out)


def to_mathtext(tex: str) -> str:
    r"""LaTeX that mathtext lacks, in forms it has: ``\Big(`` is ``\left(``.

    >>> to_mathtext(r"\operatorname{diag}\Big(\prod f_t\Big)")
    '\\operatorname{diag}\\left(\\prod f_t\\right)'
    """
    tex = tex.replace(r"\frac{", r"\dfrac{")  # inline fractions are set too small to read
    return re.sub(r"\\[Bb]igg?[lr]?(?=[(\[|.)\]])", lambda m: _side(m.string, m), tex)


def _side(tex: str, match: re.Match) -> str:
    opening = tex[match.end()] in "([" or match.group(0).endswith("l")
    return r"\left" if opening else r"\right"


def terms(tex: str) -> list[str]:
    r"""``tex`` cut before each + and − that is outside every brace and \left…\right pair.

    >>> terms(r"a + \left(b + c\right) - d^{x + 1}")
    ['a', '+ \\left(b + c\\right)', '- d^{x + 1}']
    """
    out, depth, start, i = [], 0, 0, 0
    while i < len(tex):
        if tex.startswith(r"\left", i):
            depth, i = depth + 1, i + 5
            continue
        if tex.startswith(r"\right", i):
            depth, i = depth - 1, i + 6
            continue
        c = tex[i]
        depth += {"{": 1, "}": -1}.get(c, 0)
        if depth == 0 and c in "+-" and tex[i - 1:i] == " " and tex[i + 1:i + 2] == " ":
            out.append(tex[start:i].strip())
            start = i
        i += 1
    out.append(tex[start:].strip())
    return [t for t in out if t]


def matrix(tex: str) -> list[list[str]] | None:
    r"""The entries of ``\left(\begin{matrix} a & b \\ c & d \end{matrix}\right)``, or None."""
    found = _MATRIX.match(tex.strip())
    if found is None or r"\begin{matrix}" in found.group(1):
        return None
    return [[cell.strip() for cell in line.split("&")] for line in found.group(1).split(r"\\")]


@lru_cache(maxsize=4096)
def extent(tex: str, size: float) -> tuple[float, float, float]:
    """(width, height, depth) in points of ``$tex$`` at font size ``size``; ValueError if mathtext cannot."""
    parsed = _PARSER.parse(f"${tex}$", dpi=72, prop=FontProperties(size=size))
    return parsed.width, parsed.height, parsed.depth


@dataclass(frozen=True)
class Line:
    """One line of a set equation: mathtext at ``indent`` points from the left edge."""

    indent: float
    tex: str


@dataclass(frozen=True)
class Grid:
    """A matrix after ``lhs =``: cells in rows, set in columns between brackets."""

    lhs: str
    cells: tuple[tuple[str, ...], ...]


def layout(row: Row, width: float, size: float) -> list[Line | Grid]:
    """``row`` as lines no wider than ``width`` points (a grid for a matrix that fits)."""
    entries = matrix(row.rhs)
    if entries is not None:
        grid = Grid(row.lhs, tuple(map(tuple, entries)))
        if grid_width(grid, size) <= width:
            return [grid]
        out = []
        for i, line in enumerate(entries, 1):
            for j, cell in enumerate(line, 1):
                out += layout(Row(r"\left[%s\right]_{%d%d}" % (row.lhs, i, j), cell), width, size)
        return out
    head = f"{row.lhs} = "
    indent = extent(head.strip() + r"\ ", size)[0]
    lines: list[str] = []
    current, known = head, 0.0
    for term in terms(row.rhs):
        if current == head:
            current, known = head + term, extent(head + term, size)[0]
            continue
        limit = width - (indent if lines else 0.0)
        # A term's own width plus the binary operator's spacing (3–4 pt at 10 pt) estimates the
        # joined width; only a close call is measured exactly (measuring costs ~5 ms).
        estimate = known + extent(term, size)[0] + 0.5 * size
        exact = extent(current + " " + term, size)[0] if 0.85 * limit < estimate < 1.15 * limit else estimate
        if exact > limit:
            lines.append(current)
            current, known = term, extent(term, size)[0]
        else:
            current, known = current + " " + term, exact
    lines.append(current)
    return [Line(0.0 if k == 0 else indent, tex) for k, tex in enumerate(lines)]


_GAP = 12.0   # points between matrix columns
_PAD = 4.0    # points between a bracket and the entries
_AFTER = 6.0  # points between "J_t =" and the left bracket


def grid_width(grid: Grid, size: float) -> float:
    columns = zip(*grid.cells)
    widths = [max(extent(c, size)[0] for c in column) for column in columns]
    return extent(f"{grid.lhs} =", size)[0] + _AFTER + 2 * _PAD + sum(widths) + _GAP * (len(widths) - 1)


def draw(fig, rows_: tuple[Row, ...], left: float, top: float, width: float, size: float,
         columns: int = 1) -> float:
    """Set ``rows_`` on ``fig`` from (``left``, ``top``) in inches, ``width`` inches wide, in
    ``columns`` side by side (row k in column k mod columns); returns the height used in inches."""
    page = tuple(72 * v for v in fig.get_size_inches())
    column = width * 72 / columns
    y = top * 72
    for first in range(0, len(rows_), columns):
        used = [_draw_row(fig, row, left * 72 + k * column, y, column - (12 if columns > 1 else 0), size, page)
                for k, row in enumerate(rows_[first:first + columns])]
        y -= max(used) + 0.25 * size
    return top - y / 72


def _draw_row(fig, row: Row, x: float, y: float, width: float, size: float, page) -> float:
    """One equation with its top at y (points); returns the height used in points."""
    start = y
    for item in layout(row, width, size):
        if isinstance(item, Grid):
            y -= _draw_grid(fig, item, x, y, size, *page)
        else:
            _, height, depth = extent(item.tex, size)
            fig.text((x + item.indent) / page[0], (y - height) / page[1], f"${item.tex}$", fontsize=size,
                     va="baseline")
            y -= height + depth + 0.4 * size
    return start - y


def _draw_grid(fig, grid: Grid, x: float, y: float, size: float, fig_w: float, fig_h: float) -> float:
    """A matrix after ``lhs =``, top at y (points); returns its height in points."""
    rows_h = [max(extent(c, size)[1] + extent(c, size)[2] for c in line) + 0.6 * size for line in grid.cells]
    widths = [max(extent(c, size)[0] for c in column) for column in zip(*grid.cells)]
    height = sum(rows_h)
    lhs = f"${grid.lhs} =$"
    fig.text(x / fig_w, (y - height / 2) / fig_h, lhs, fontsize=size, va="center")
    left = x + extent(f"{grid.lhs} =", size)[0] + _AFTER
    right = left + 2 * _PAD + sum(widths) + _GAP * (len(widths) - 1)
    for edge, hook in ((left, 4.0), (right, -4.0)):
        xs = [edge + hook, edge, edge, edge + hook]
        ys = [y, y, y - height, y - height]
        fig.add_artist(Line2D([a / fig_w for a in xs], [b / fig_h for b in ys], color="k", lw=0.8,
                              transform=fig.transFigure))
    top = y
    for line, h in zip(grid.cells, rows_h):
        cx = left + _PAD
        for cell, w in zip(line, widths):
            fig.text((cx + w / 2) / fig_w, (top - h / 2) / fig_h, f"${cell}$", fontsize=size, ha="center",
                     va="center")
            cx += w + _GAP
        top -= h
    return height + 0.5 * size
