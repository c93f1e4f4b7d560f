"""derive's LaTeX set by mathtext: every row derive writes is drawn (no plain-text fallback),
broken to the page's width, matrices as grids; every text of the text pages lies on the page."""

from __future__ import annotations

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text

from derive import solve
from derive.cells import CELLS
from derive.core import Layer, make_core
from derive.matrixstory import matrix_latex
from derive.render import to_latex
from reports import mathtext, pages
from reports.build import derived_pages

WIDTH, SIZE = 480.0, 10.0


def _every_cell():
    for name, definition in CELLS.items():
        for variant in definition.variants:
            for activation in definition.activations or (None,):
                yield name, variant, activation


def _rows_derive_writes():
    for name, variant, activation in _every_cell():
        yield f"{name} {variant} {activation} n=1", to_latex(solve(name, variant=variant, activation=activation))
        if not CELLS[name].fixed:
            core = make_core(CELLS[name], variant, activation)
            yield f"{name} {variant} {activation} matrix form", matrix_latex(Layer(core, 4, 2), 50)
    yield "rnn tanh n=2", to_latex(solve("rnn", activation="tanh", hidden=2))


@pytest.mark.parametrize("label,align", list(_rows_derive_writes()), ids=lambda v: v if len(v) < 40 else "")
def test_every_row_derive_writes_is_set_and_fits(label, align):
    rows = mathtext.rows(align)
    assert rows, label
    for row in rows:
        for item in mathtext.layout(row, WIDTH, SIZE):
            texts = [c for line in item.cells for c in line] if isinstance(item, mathtext.Grid) else [item.tex]
            for tex in texts:
                mathtext.extent(tex, SIZE)  # raises ValueError if mathtext cannot set it
            if isinstance(item, mathtext.Line):
                assert item.indent + mathtext.extent(item.tex, SIZE)[0] <= WIDTH, (label, item.tex[:80])


def test_big_and_matrices_are_drawn_not_spelled_out():
    big = mathtext.to_mathtext(r"\operatorname{diag}\Big(\prod_{t=1}^{50} f_{t}\Big)")
    assert r"\Big" not in big and big.count(r"\left(") == 1 and big.count(r"\right)") == 1
    mathtext.extent(big, SIZE)
    with pytest.raises(ValueError):
        mathtext.extent(r"\operatorname{diag}\Big(f\Big)", SIZE)  # why the rewrite is needed
    matrix = r"\left(\begin{matrix}a & b\\c & d\end{matrix}\right)"
    assert mathtext.matrix(matrix) == [["a", "b"], ["c", "d"]]
    assert mathtext.layout(mathtext.Row("J_t", matrix), WIDTH, SIZE) == [mathtext.Grid("J_t", (("a", "b"), ("c", "d")))]
    narrow = mathtext.layout(mathtext.Row("J_t", matrix), 20.0, SIZE)
    assert [line.tex for line in narrow] == [r"\left[J_t\right]_{%d} = %s" % (ij, v)
                                            for ij, v in ((11, "a"), (12, "b"), (21, "c"), (22, "d"))]


def test_a_long_row_breaks_after_its_top_level_signs_only():
    row = mathtext.Row("y", " + ".join([r"\left(a + b\right) x_{%d}" % k for k in range(40)]))
    lines = mathtext.layout(row, WIDTH, SIZE)
    assert len(lines) > 1
    assert all(mathtext.extent(line.tex, SIZE)[0] + line.indent <= WIDTH for line in lines)
    assert all(line.tex.startswith("+ ") for line in lines[1:])
    assert " ".join(line.tex for line in lines) == "y = " + row.rhs


def test_a_term_too_wide_is_opened_at_its_first_bracketed_sum():
    inner = " + ".join(r"a_{%d} \odot \left(1 - b_{%d}\right)" % (k, k) for k in range(30))
    row = mathtext.Row("y", r"\operatorname{diag}\left(o \odot \left(%s\right)\right) W" % inner)
    lines = mathtext.layout(row, WIDTH, SIZE)
    assert len(lines) > 2
    assert all(line.indent + mathtext.extent(line.tex, SIZE)[0] <= WIDTH for line in lines)
    # the same text, the opened brackets (and those around them) plain: each line balances its own
    plain = r"\operatorname{diag}(o \odot (%s)) W" % inner
    assert " ".join(line.tex for line in lines) == "y = " + plain
    assert mathtext.opened("a + b") is None and mathtext.opened(r"\left(a\right)") is None


def _text_page(name: str):
    if name == "title":
        return pages.title_page({"steps": 50, "figures": ", ".join(["a long figure name"] * 12)}, ["x"] * 20)
    if name == "equations":
        return pages.equations_page()
    return pages.derived_page(name, dict(derived_pages(50))[name])


@pytest.mark.parametrize("name", ["title", "equations", *(title for title, _ in derived_pages(50))])
def test_every_text_lies_on_the_page_and_is_large_enough_to_read(name):
    page = _text_page(name)
    FigureCanvasAgg(page)
    renderer = page.canvas.get_renderer()
    width, height = page.bbox.width, page.bbox.height
    texts = [t for t in page.findobj(Text) if t.get_text()]
    assert texts
    for text in texts:
        box = text.get_window_extent(renderer)
        assert 0 <= box.x0 and box.x1 <= width and 0 <= box.y0 and box.y1 <= height, (name, text.get_text()[:60])
        assert text.get_fontsize() >= 9, (name, text.get_text()[:60])
    # readable when projected: the equations themselves at 11 pt or more, and using most of the page
    equations = [t for t in texts if t.get_text().startswith("$")]
    assert name == "title" or min(t.get_fontsize() for t in equations) >= 11, name
    lowest = min(t.get_window_extent(renderer).y0 for t in texts)
    assert lowest < 0.5 * height, (name, "the page is half empty")


def test_the_checks_page_lies_on_the_page():
    """Every case of the default check (21 lines, the longest labels), every reference: on the page."""
    from numeric.check import TOLERANCES, CheckRow, default_cases

    rows = tuple(CheckRow(cell.name, cell.variant, cell.n, steps, reference, 1.2345e-16, tolerance,
                          cell.activation.name if cell.activation else None)
                 for cell, steps in default_cases() for reference, tolerance in TOLERANCES.items())
    page = pages.check_page(rows, [(w, 0.1, 0.1) for w in (0.5, 0.9, 1.1, 2.0, -1.5)])
    FigureCanvasAgg(page)
    renderer = page.canvas.get_renderer()
    texts = [t for t in page.findobj(Text) if t.get_text()]
    assert sum(t.get_text().count("\n") for t in texts) > len(default_cases())
    for text in texts:
        box = text.get_window_extent(renderer)
        assert 0 <= box.x0 and box.x1 <= page.bbox.width and 0 <= box.y0 and box.y1 <= page.bbox.height, \
            text.get_text()[:60]
        assert text.get_fontsize() >= 9
    table = max(texts, key=lambda t: t.get_text().count("\n"))
    assert table.get_fontsize() >= 10 and table.get_window_extent(renderer).width > 0.8 * page.bbox.width
