"""The PDF's pages: title, equations (matplotlib mathtext, no TeX needed), figures, checks."""

from __future__ import annotations

import textwrap

from matplotlib.figure import Figure

from numeric.present.checks import check_legend, check_lines

from . import mathtext, typeset

A4 = (8.27, 11.69)
MARGIN = 0.6  # inches

#: (label, mathtext): the lecture's equations, each one line that mathtext sets
EQUATIONS = (
    ("The RNN step", r"h_t = \phi(W_{hh} h_{t-1} + W_{xh} x_t + b_h)"),
    ("Its local Jacobian", r"J_t = \frac{\partial h_t}{\partial h_{t-1}} = \mathrm{diag}(\phi'(a_t))\, W_{hh}"),
    ("The chain rule over T steps",
     r"\frac{\partial h_T}{\partial h_k} = J_T J_{T-1} \cdots J_{k+1} = \prod_{t=k+1}^{T} J_t"),
    ("Linear, scalar: the lecture's example",
     r"\frac{\partial h_T}{\partial h_0} = w^T,\quad 2^{50} = 1125899906842624,\quad 0.5^{50} \approx 8.88\times 10^{-16}"),
    ("tanh, scalar", r"\frac{\partial h_T}{\partial h_k} = w^{T-k} \prod_{t=k+1}^{T} (1 - h_t^2)"),
    ("Pascanu, Mikolov & Bengio (2013)",
     r"\left\|\frac{\partial h_T}{\partial h_k}\right\| \leq (\gamma\,\sigma_1)^{T-k},\quad \gamma = \sup|\phi'|"),
    ("The LSTM step (gates i, f, g, o)", r"c_t = f_t \odot c_{t-1} + i_t \odot g_t,\quad h_t = o_t \odot \tanh(c_t)"),
    ("The constant error carousel, along the cell path alone",
     r"\left.\frac{\partial c_T}{\partial c_0}\right|_{c\ \mathrm{path\ only}} = \prod_{t=1}^{T} f_t"),
    ("BPTT for a loss on the last state",
     r"\frac{\partial L}{\partial \theta} = \sum_{k=1}^{T} \frac{\partial L}{\partial s_T}\left(\prod_{t=k+1}^{T} J_t\right)\frac{\partial^+ s_k}{\partial \theta}"),
    ("The lecture's sigmoid", r"\sigma(x) = \frac{e^x}{e^x + 1}"),
)


def _monospace_size(lines: list[str], width: float, largest: float) -> float:
    """The largest font size up to ``largest`` at which every line fits ``width`` inches (a monospace
    character is about 0.6 em wide): as large as the page allows, for a room's back row."""
    longest = max((len(line) for line in lines), default=1)
    return min(largest, width * 72 / (0.6 * longest))


def title_page(settings: dict, contents: list[str]) -> Figure:
    """The title, the settings and the list of pages (``contents``, from page 2 on)."""
    fig = Figure(figsize=A4)
    fig.text(0.5, 0.82, "Unrolled", ha="center", fontsize=36, weight="bold")
    fig.text(0.5, 0.76, "Why gradients vanish or explode in recurrent networks", ha="center", fontsize=15)
    # long values (the figure list) wrap under themselves rather than run off the page
    lines = [textwrap.fill(f"{key}: {value}", 56, subsequent_indent=" " * (len(key) + 2)) for key, value in settings.items()]
    fig.text(0.12, 0.68, "Settings\n" + "\n".join(lines), va="top", fontsize=13, family="monospace")
    listed = [f"{i:>2}  {name}" for i, name in enumerate(["title", *contents], 1)]
    fig.text(0.12, 0.47, "Pages\n" + "\n".join(listed), va="top", fontsize=13, family="monospace")
    return fig


def equations_page() -> Figure:
    fig = Figure(figsize=A4)
    fig.text(0.5, 0.955, "The equations", ha="center", fontsize=18, weight="bold")
    y = 0.9
    for label, tex in EQUATIONS:
        fig.text(0.06, y, label, fontsize=12, color="0.35")
        fig.text(0.08, y - 0.037, f"${mathtext.to_mathtext(tex)}$", fontsize=15)
        y -= 0.088
    return fig


#: Derived pages are set at the largest of these sizes whose equations fit the page.
DERIVED_SIZES = (14.0, 12.5, 11.0, 10.0)
BOTTOM = 0.5  # inches left free at the foot of a page


def derived_page(title: str, blocks: tuple[tuple[str, str, int], ...], sizes=DERIVED_SIZES) -> Figure:
    """derive's own LaTeX, set by ``reports.mathtext``: (heading, ``align*`` block, columns) per block,
    at the largest size in ``sizes`` that fits the page."""
    for size in sizes:
        fig, top = _derived(title, blocks, size)
        if top >= BOTTOM:
            break
    return fig


def _derived(title: str, blocks, size: float) -> tuple[Figure, float]:
    fig = Figure(figsize=A4)
    fig.text(0.5, 0.965, title[0].upper() + title[1:], ha="center", fontsize=16, weight="bold")
    top = A4[1] * 0.93
    for heading, align, columns in blocks:
        fig.text(MARGIN / A4[0], top / A4[1], heading, fontsize=size * 0.85, color="0.35", va="top")
        top -= 0.032 * size
        top -= typeset.draw(fig, mathtext.rows(align), MARGIN + 0.15, top, A4[0] - 2 * MARGIN - 0.15, size=size,
                              columns=columns)
        top -= 0.02 * size
    return fig, top


def figure_page(draw, result, caption: str) -> Figure:
    page = Figure(figsize=A4, layout="constrained")
    top, bottom = page.subfigures(2, 1, height_ratios=[4.2, 1])
    draw(result, top)
    bottom.text(0.06, 0.85, caption, va="top", ha="left", fontsize=10.5, wrap=True)
    return page


def check_page(rows, laws) -> Figure:
    fig = Figure(figsize=A4)
    fig.text(0.5, 0.96, "Numeric checks (python cli.py check)", ha="center", fontsize=16, weight="bold")
    head, *lines = check_lines(rows, ("ok", "yes", "NO"))
    width = A4[0] - 2 * 0.4
    size = _monospace_size([head, *lines], width, 12.0 if len(lines) <= 40 else 9.0)
    fig.text(0.4 / A4[0], 0.925, "\n".join([head, *lines]), va="top", family="monospace", fontsize=size)
    legend = [line for item in check_legend(rows) for line in textwrap.wrap(item, 80)]
    law = ["Law: the fitted slope of log10|∂h_T/∂h_0| against T equals log10|w| (linear RNN)",
           *(f"  w = {w:<5} slope {s:.10f}   log10|w| {e:.10f}" for w, s, e in laws)]
    below = 0.925 - (len(lines) + 1) * size * 1.2 / 72 / A4[1] - 0.025  # under the table, 1.2 lines per pt
    rest = [*legend, "", *law]
    fig.text(0.4 / A4[0], below, "\n".join(rest), va="top", family="monospace",
             fontsize=_monospace_size(rest, width, 11.0))
    return fig
