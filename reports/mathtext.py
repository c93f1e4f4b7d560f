"""derive's LaTeX, set on a page by matplotlib's mathtext (no TeX installation needed).

mathtext draws one line of inline math.  derive writes ``align*`` blocks whose
right-hand sides can be far wider than a page, matrices (``\\begin{matrix}``) and
``\\Big(``.  Here a row is broken after its top-level + and − signs into as many
lines as the width needs; a term still too wide is opened at the first bracket
that holds a sum (its ``\\left(``/``\\right)`` become plain brackets, since every
line must balance them).  A matrix is set as a grid of cells between drawn
brackets (or, when even that is too wide, entry by entry), and ``\\Big`` becomes
``\\left``/``\\right``.  Nothing falls back to plain text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from matplotlib.font_manager import FontProperties
from matplotlib.mathtext import MathTextParser

_PARSER = MathTextParser("path")
_MATRIX = re.compile(r"^\\left[(\[]\\begin\{matrix\}(.*)\\end\{matrix\}\\right[)\]]$", re.S)
_DELIMITER = r"(\\[{}|]|[()\[\]|.])"
_SIZED = re.compile(r"\\(left|right)(?![a-zA-Z])" + _DELIMITER)
_BIG = re.compile(r"\\[Bb]igg?([lr]?)(?![a-zA-Z])" + _DELIMITER)
_OPENING, _CLOSING = ("(", "[", r"\{"), (")", "]", r"\}")


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
    r"""LaTeX that mathtext lacks, in forms it has: ``\Big(`` is ``\left(``, and a top-level ``\frac``
    a ``\dfrac`` (mathtext sets an inline fraction too small to read; in an exponent it stays small).

    >>> to_mathtext(r"\operatorname{diag}\Big(\prod f_t\Big) + \Big|a\Big| + \frac{1}{2}^{\frac{1}{2}}")
    '\\operatorname{diag}\\left(\\prod f_t\\right) + \\left|a\\right| + \\dfrac{1}{2}^{\\frac{1}{2}}'
    """
    return _sized(_display_fractions(tex))


def _display_fractions(tex: str) -> str:
    out, depth, i = [], 0, 0
    while i < len(tex):
        if depth == 0 and tex.startswith("\\frac{", i):
            out.append("\\dfrac")
            i += 5
            continue
        if tex[i] == "\\":  # a command or an escaped brace: it does not change the depth
            out.append(tex[i:i + 2])
            i += 2
            continue
        depth += {"{": 1, "}": -1}.get(tex[i], 0)
        out.append(tex[i])
        i += 1
    return "".join(out)


def _sized(tex: str) -> str:
    """``\\Big``, ``\\bigl``, … before a delimiter as ``\\left``/``\\right``; | and \\| alternate."""
    seen: dict[str, int] = {}

    def side(match: re.Match) -> str:
        suffix, delimiter = match.groups()
        if suffix:
            opening = suffix == "l"
        elif delimiter in _OPENING or delimiter in _CLOSING:
            opening = delimiter in _OPENING
        else:  # |, \| or .: the first of a pair opens
            seen[delimiter] = seen.get(delimiter, 0) + 1
            opening = seen[delimiter] % 2 == 1
        return ("\\left" if opening else "\\right") + delimiter

    return _BIG.sub(side, tex)


def _pairs(tex: str) -> list[tuple[re.Match, re.Match]]:
    """The matching ``\\left``…``\\right`` pairs of ``tex``, in the order they open."""
    stack, pairs = [], []
    for match in _SIZED.finditer(tex):
        if match.group(1) == "left":
            stack.append(match)
        elif stack:
            pairs.append((stack.pop(), match))
    return sorted(pairs, key=lambda pair: pair[0].start())


def terms(tex: str) -> list[str]:
    r"""``tex`` cut before each + and − that is outside every brace and \left…\right pair.

    >>> terms(r"a + \left(b + c\right) - d^{x + 1} + \leftarrow")
    ['a', '+ \\left(b + c\\right)', '- d^{x + 1}', '+ \\leftarrow']
    """
    out, depth, start, i = [], 0, 0, 0
    while i < len(tex):
        sized = _SIZED.match(tex, i)
        if sized:
            depth += 1 if sized.group(1) == "left" else -1
            i = sized.end()
            continue
        if tex[i] == "\\":
            i += 2
            continue
        depth += {"{": 1, "}": -1}.get(tex[i], 0)
        if depth == 0 and tex[i] in "+-" and tex[i - 1:i] == " " and tex[i + 1:i + 2] == " ":
            out.append(tex[start:i].strip())
            start = i
        i += 1
    out.append(tex[start:].strip())
    return [t for t in out if t]


def opened(term: str) -> list[str] | None:
    r"""``term`` opened at the first ``\left…\right`` group that holds a sum: [the text up to the
    group and its first summand, each further summand, the last with the rest of the term]; that
    group's and the enclosing groups' sized brackets become plain ones (each line must balance them).
    None when no group holds a sum.

    >>> opened(r"\operatorname{diag}\left(o \odot \left(a + b\right)\right) W")
    ['\\operatorname{diag}(o \\odot (a', '+ b)) W']
    """
    pairs = _pairs(term)
    for left, right in pairs:
        inner = terms(term[left.end():right.start()])
        if len(inner) < 2:
            continue
        around = [(a, b) for a, b in pairs if a.start() <= left.start() and b.end() >= right.end()]
        head = _plain(term[:left.end()], [a for a, _ in around], 0)
        tail = _plain(term[right.start():], [b for _, b in around], right.start())
        return [head + inner[0], *inner[1:-1], inner[-1] + tail]
    return None


def _plain(text: str, sized: list[re.Match], offset: int) -> str:
    """``text`` (starting at ``offset`` in the term) with the sized brackets ``sized`` made plain."""
    for match in sorted(sized, key=lambda m: m.start(), reverse=True):
        delimiter = "" if match.group(2) == "." else match.group(2)
        text = text[:match.start() - offset] + delimiter + text[match.end() - offset:]
    return text


def matrix(tex: str) -> list[list[str]] | None:
    r"""The entries of ``\left(\begin{matrix} a & b \\ c & d \end{matrix}\right)``, or None."""
    found = _MATRIX.match(tex.strip())
    if found is None or r"\begin{matrix}" in found.group(1):
        return None
    return [[cell.strip() for cell in line.split("&")] for line in found.group(1).split(r"\\")]


@lru_cache(maxsize=4096)
def extent(tex: str, size: float) -> tuple[float, float, float]:
    """(width, height, depth) in points of ``$tex$`` at font size ``size``, the height counting the
    depth below the baseline; ValueError if mathtext cannot set it."""
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


#: Joining two terms adds the binary operator's spacing: 3–4 pt at 10 pt.  Half the font size is
#: more than that, so a line's width estimated from its pieces' own widths is never too small.
_JOIN = 0.5


def layout(row: Row, width: float, size: float) -> list[Line | Grid]:
    """``row`` as lines no wider than ``width`` points (a grid for a matrix that fits); a line is wider
    only when a term has no bracketed sum left to open."""
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
    if extent(head + row.rhs, size)[0] <= width:  # most rows: one parse, which drawing reuses
        return [Line(0.0, head + row.rhs)]
    indent = extent(head.strip() + r"\ ", size)[0]
    pieces = [piece for term in terms(row.rhs) for piece in _fitted(term, width - indent, size)]
    # Each piece is measured alone (a mathtext parse costs ~1 ms per 10 characters) and a line's
    # width is the sum: an upper bound, so no line is wider than the limit.
    lines, current, used = [], head + pieces[0], indent + extent(pieces[0], size)[0]
    for piece in pieces[1:]:
        wide = extent(piece, size)[0]
        if used + _JOIN * size + wide > width:
            lines.append(current)
            current, used = piece, indent + wide
        else:
            current, used = current + " " + piece, used + _JOIN * size + wide
    lines.append(current)
    return [Line(0.0 if k == 0 else indent, tex) for k, tex in enumerate(lines)]


def _fitted(term: str, width: float, size: float) -> list[str]:
    """``term``, opened again and again until each piece fits ``width`` or cannot be opened."""
    if extent(term, size)[0] <= width:
        return [term]
    pieces = opened(term)
    if pieces is None:
        return [term]
    return [p for piece in pieces for p in _fitted(piece, width, size)]


GRID_GAP = 12.0   # points between matrix columns
GRID_PAD = 4.0    # points between a bracket and the entries
GRID_AFTER = 6.0  # points between "J_t =" and the left bracket
GRID_HOOK = 4.0   # points of a bracket's top and bottom strokes


def column_widths(grid: Grid, size: float) -> list[float]:
    return [max(extent(c, size)[0] for c in column) for column in zip(*grid.cells)]


def grid_width(grid: Grid, size: float) -> float:
    widths = column_widths(grid, size)
    return extent(f"{grid.lhs} =", size)[0] + GRID_AFTER + 2 * GRID_PAD + sum(widths) + GRID_GAP * (len(widths) - 1)
