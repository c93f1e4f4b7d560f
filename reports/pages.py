"""The PDF's pages: title, equations (matplotlib mathtext, no TeX needed), figures, checks."""

from __future__ import annotations

import textwrap

from matplotlib.figure import Figure

from numeric.present import check_legend, check_lines

from . import mathtext

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


def title_page(settings: dict, contents: list[str]) -> Figure:
    """The title, the settings and the list of pages (``contents``, from page 2 on)."""
    fig = Figure(figsize=A4)
    fig.text(0.5, 0.8, "Unrolled", ha="center", fontsize=32, weight="bold")
    fig.text(0.5, 0.74, "Why gradients vanish or explode in recurrent networks", ha="center", fontsize=14)
    # long values (the figure list) wrap under themselves rather than run off the page
    lines = [textwrap.fill(f"{key}: {value}", 60, subsequent_indent=" " * (len(key) + 2)) for key, value in settings.items()]
    fig.text(0.15, 0.62, "Settings\n" + "\n".join(lines), va="top", fontsize=11, family="monospace")
    listed = [f"{i:>2}  {name}" for i, name in enumerate(["title", *contents], 1)]
    fig.text(0.15, 0.42, "Pages\n" + "\n".join(listed), va="top", fontsize=11, family="monospace")
    return fig


def equations_page() -> Figure:
    fig = Figure(figsize=A4)
    fig.text(0.5, 0.95, "The equations", ha="center", fontsize=16, weight="bold")
    y = 0.88
    for label, tex in EQUATIONS:
        fig.text(0.08, y, label, fontsize=10, color="0.35")
        fig.text(0.1, y - 0.035, f"${mathtext.to_mathtext(tex)}$", fontsize=13)
        y -= 0.085
    return fig


def derived_page(title: str, blocks: tuple[tuple[str, str, int], ...], size: float = 10) -> Figure:
    """derive's own LaTeX, set by ``reports.mathtext``: (heading, ``align*`` block, columns) per block."""
    fig = Figure(figsize=A4)
    fig.text(0.5, 0.965, title[0].upper() + title[1:], ha="center", fontsize=14, weight="bold")
    top = A4[1] * 0.93
    for heading, align, columns in blocks:
        fig.text(MARGIN / A4[0], top / A4[1], heading, fontsize=9.5, color="0.35", va="top")
        top -= 0.32
        top -= mathtext.draw(fig, mathtext.rows(align), MARGIN + 0.15, top, A4[0] - 2 * MARGIN - 0.15, size, columns)
        top -= 0.2
    return fig


def figure_page(draw, result, caption: str) -> Figure:
    page = Figure(figsize=A4, layout="constrained")
    top, bottom = page.subfigures(2, 1, height_ratios=[4.2, 1])
    draw(result, top)
    bottom.text(0.06, 0.85, caption, va="top", ha="left", fontsize=10.5, wrap=True)
    return page


def check_page(rows, laws) -> Figure:
    fig = Figure(figsize=A4)
    fig.text(0.5, 0.96, "Numeric checks (python cli.py check)", ha="center", fontsize=14, weight="bold")
    head, *lines = check_lines(rows, ("ok", "yes", "NO"))
    size = 9.5 if len(lines) <= 40 else 8
    fig.text(0.05, 0.92, "\n".join([head, *lines]), va="top", family="monospace", fontsize=size)
    legend = [line for item in check_legend(rows) for line in textwrap.wrap(item, 88)]
    law = ["Law: the fitted slope of log10|∂h_T/∂h_0| against T equals log10|w| (linear RNN)",
           *(f"  w = {w:<5} slope {s:.10f}   log10|w| {e:.10f}" for w, s, e in laws)]
    below = 0.92 - (len(lines) + 1) * size * 1.2 / 72 / A4[1] - 0.02  # under the table, 1.2 lines per pt
    fig.text(0.05, below, "\n".join([*legend, "", *law]), va="top", family="monospace", fontsize=9)
    return fig
