"""One function per figure: a study's results in, a matplotlib ``Figure`` out, nothing computed.

Figures are built on ``matplotlib.figure.Figure`` directly (no pyplot), so no
state leaks between them and no display is needed.
"""

from __future__ import annotations

import numpy as np
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from numeric import studies

SIZE = (8.0, 5.0)
COLORS = {"rnn (tanh)": "tab:red", "lstm": "tab:blue", "gru": "tab:green"}


def _canvas(fig, size=SIZE):
    """The given Figure or SubFigure (a PDF page), or a new stand-alone Figure."""
    return fig if fig is not None else Figure(figsize=size, layout="constrained")


def _figure(title: str, fig=None) -> tuple[Figure, object]:
    fig = _canvas(fig)
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=11)
    return fig, ax


def explode_vanish(r: studies.ExplodeVanish, fig=None) -> Figure:
    T = r.marks[0][1]
    fig, ax = _figure(f"h_t = w h_(t−1) + u x_t unrolled: the first input is multiplied by $w^T$ "
                      f"($2^{{{T}}}$ and $0.5^{{{T}}}$ at T = {T})", fig)
    for w, row in zip(r.weights, r.log10):
        # above the zero line: w = 1 lies on it and must stay visible
        ax.plot(r.steps, row, label=f"w = {w:g}: |∂h_T/∂h_0| = ${w:g}^T$", lw=2, zorder=3)
    for w, T, exact in r.marks:
        y = T * np.log10(w)
        ax.plot([T], [y], "ko", ms=6, zorder=4)
        value = f"{exact}" if w > 1 else f"{float(w) ** T:.3g} (= {exact})"
        ax.annotate(f"${w:g}^{{{T}}}$ = {value}", (T, y), xytext=(8, 8 if w > 1 else -18),
                    textcoords="offset points", fontsize=9)
    ax.set_xlabel("steps unrolled, T")
    ax.set_ylabel("log10 |∂h_T/∂h_0|")
    ax.axhline(0, color="0.6", lw=0.8, zorder=1)
    ax.legend(loc="upper left")
    return fig


def tanh_heatmap(r: studies.Heatmap, fig=None) -> Figure:
    fig, ax = _figure("tanh RNN: left of γ|w| = 1 the gradient must vanish; right of it, it may grow or saturate", fig)
    # white is 0 (no change), blue shrinking, red growing; each side scaled to its own extreme, so a side
    # with nothing on it (no growth for these inputs) shows no colour rather than a pale one
    low, high = min(np.nanmin(r.log10), -1e-9), max(np.nanmax(r.log10), 1e-9)
    mesh = ax.pcolormesh(r.weights, r.steps, r.log10.T, cmap="RdBu_r", shading="nearest",
                         norm=TwoSlopeNorm(0.0, low, high), rasterized=True)
    ax.axvline(1 / r.gamma, color="k", ls="--", lw=1.5, label="γ|w| = 1 (γ = sup tanh' = 1)")
    fig.colorbar(mesh, ax=ax, label="mean log10 |∂h_T/∂h_0| over 32 input sequences")
    ax.set_xlabel("recurrent weight w")
    ax.set_ylabel("steps unrolled, T")
    ax.legend(loc="upper right")
    return fig


def lag_curves(r: studies.LagCurves, fig=None) -> Figure:
    fig, ax = _figure(f"How far back the gradient reaches: RNN against LSTM against GRU (hidden size {r.hidden})", fig)
    dashes = {"gru": "--", "lstm (chrono)": "-."}
    for name, med, lo, hi in zip(r.cells, r.median, r.low, r.high):
        color = COLORS.get(name, "tab:purple")
        ax.plot(r.lags, med, color=color, lw=2, ls=dashes.get(name, "-"), label=f"{name}: median over seeds")
        ax.fill_between(r.lags, lo, hi, color=color, alpha=0.15, label=f"{name}: 10–90% of seeds")
    ax.set_xlabel("lag k (steps back from T)")
    ax.set_ylabel("log10 ‖∂s_T/∂s_{T−k}‖₂")
    ax.legend(fontsize=8, ncol=2, loc="lower left")
    return fig


def lecture_example(r: studies.Lecture, fig=None) -> Figure:
    fig = _canvas(fig, (8.0, 9.0))
    fig.suptitle("The lecture's LSTM reads days 1–4 and predicts day 5: Company A → 0, Company B → 1", fontsize=11)
    axes = fig.subplots(3, 1, height_ratios=[1, 1, 0.8])
    labels = {"i_t": "input gate i", "f_t": "forget gate f", "g_t": "potential memory g",
              "o_t": "output gate o", "c_t": "long-term memory c", "h_t": "short-term memory h"}
    for ax, (company, (inputs, values)) in zip(axes[:2], r.company.items()):
        for j, name in enumerate(r.quantities):
            ax.plot(r.days, values[:, j], marker="o", label=labels.get(name, name))
        ax.plot(r.days, inputs, "k--", marker="s", label="input (price)")
        ax.annotate(f"day-5 prediction\nh_4 = {values[-1, r.quantities.index('h_t')]:.4f}",
                    (r.days[-1], values[-1, r.quantities.index("h_t")]), xytext=(12, 0),
                    textcoords="offset points", va="center", fontsize=9,
                    bbox={"boxstyle": "round", "fc": "white", "ec": "0.6"})
        ax.set_xlim(r.days[0] - 0.2, r.days[-1] + 0.9)  # room right of day 4 for the prediction
        ax.set_title(company, fontsize=10)
        ax.set_xlabel("day")
        ax.set_ylabel("value")
        ax.set_xticks(r.days)
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    table_ax = axes[2]
    table_ax.axis("off")
    table_ax.set_title("The first worked step: long-term memory 2, short-term memory 1, input 1", fontsize=10)
    rows = [[labels.get(n, n), f"{v:.4f}"] for n, v in r.worked]
    table = table_ax.table(cellText=rows, colLabels=["quantity", "value"], loc="center", colWidths=[0.4, 0.2])
    table.auto_set_font_size(False)
    table.set_fontsize(9)
    return fig


def pascanu(r: studies.Pascanu, fig=None) -> Figure:
    fig, ax = _figure(f"Pascanu's condition: ‖∂h_{r.lag}/∂h_0‖ stays under (γσ₁)^{r.lag} (tanh, hidden size {r.hidden})", fig)
    for j in range(r.measured.shape[1]):
        ax.plot(r.sigma1, r.measured[:, j], "o", color="tab:blue", ms=3, alpha=0.6,
                label="measured, one random W_hh per seed" if j == 0 else None)
    ax.plot(r.sigma1, r.bound, "k-", lw=2, label=f"bound log10 (γσ₁)^{r.lag}, γ = 1")
    ax.axvline(1.0, color="0.5", ls="--", lw=1, label="γσ₁ = 1")
    ax.set_xlabel("largest singular value σ₁ of W_hh")
    ax.set_ylabel(f"log10 ‖∂h_{r.lag}/∂h_0‖₂")
    ax.legend(loc="upper left")
    return fig


def carousel(r: studies.Carousel, fig=None) -> Figure:
    fig, ax = _figure("The constant error carousel: a larger forget-gate bias slows the vanishing of ∂c_T/∂c_0", fig)
    for b, full, path, color in zip(r.biases, r.full, r.path, ("tab:red", "tab:blue", "tab:green")):
        ax.plot(r.steps, full, color=color, lw=2, label=f"b_f = {b:g}: |∂c_T/∂c_0| (all paths)")
        ax.plot(r.steps, path, color=color, lw=1, ls="--", label=f"b_f = {b:g}: ∏ f_t (cell path alone)")
    ax.set_xlabel("steps unrolled, T")
    ax.set_ylabel("log10 of the derivative")
    ax.legend(fontsize=8, ncol=2, loc="lower left")
    return fig


def sources(r: studies.Sources, fig=None) -> Figure:
    fig = _canvas(fig, (10.0, 4.8))
    fig.suptitle("Where the gradient comes from: each source step k's term in ∂L/∂W at horizon T", fontsize=11)
    axes = fig.subplots(1, 2, sharey=True)
    finite = r.log10[np.isfinite(r.log10)]
    lo, hi = (np.percentile(finite, 2), np.max(finite)) if finite.size else (-1, 1)
    for ax, name, grid in zip(axes, r.cells, r.log10):
        n = grid.shape[0]
        mesh = ax.pcolormesh(np.arange(1, n + 1), np.arange(1, n + 1), grid, vmin=lo, vmax=hi,
                             cmap="viridis", shading="nearest", rasterized=True)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("source step k")
    axes[0].set_ylabel("horizon T")
    fig.colorbar(mesh, ax=axes, label="log10 |term of step k| (blank: k > T)")
    return fig


def clipping(r: studies.Clipping, fig=None) -> Figure:
    fig, ax = _figure(f"Clipping an exploding gradient (linear RNN, w = 1.2, T = {r.steps})", fig)
    x = np.arange(len(r.names))
    width = 0.27
    for offset, values, label in ((-width, r.before, "before"),
                                  (0.0, r.by_norm, f"norm clipping to ‖g‖ ≤ {r.threshold:g} (keeps the direction)"),
                                  (width, r.by_value, f"elementwise clipping to ±{r.bound:g} (changes the direction)")):
        ax.bar(x + offset, values, width, label=label)
    ax.set_yscale("symlog", linthresh=1e-2)
    top = max(np.max(np.abs(v)) for v in (r.before, r.by_norm, r.by_value))
    decades = np.arange(-2, int(np.ceil(np.log10(top))) + 2)
    ax.set_yticks([0, *(10.0 ** decades)], ["0", *(f"$10^{{{d}}}$" for d in decades)])
    ax.set_ylim(0, 10.0 ** decades[-1])  # one decade over the tallest bar
    ax.set_xticks(x, [f"∂L/∂{n}" for n in r.names])
    ax.set_ylabel("gradient component (symmetric log scale)")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=3, fontsize=8.5, frameon=False)
    return fig


def unrolled(r: studies.Unrolled, fig=None) -> Figure:
    """The lecture's picture: one box per step, the same cell each time, states flowing left to right.

    Inside a box, the cell's quantities in the order it computes them; x_t enters from below and the
    output state leaves upwards; each arrow between steps carries ‖∂s_t/∂s_{t−1}‖ at random weights.
    """
    fig = _canvas(fig, (10.0, 4.6))
    ax = fig.add_subplot()
    ax.set_title(f"{r.label} unrolled: the same cell at every step, its states flowing left to right", fontsize=11)
    ax.set_xlim(-0.8, len(r.steps) * 2.0 - 0.4)
    ax.set_ylim(-1.9, 2.3)
    ax.axis("off")
    height = 0.32 * len(r.quantities) + 0.3
    for i, t in enumerate(r.steps):
        if t is None:
            ax.text(i * 2.0 + 0.6, 0, "⋯", ha="center", va="center", fontsize=26)
        else:
            _box(ax, r, i * 2.0, t, height)
            _arrows_in(ax, r, i * 2.0, t, height)
    return fig


def _box(ax, r: studies.Unrolled, x: float, t: int, height: float) -> None:
    """Step t's box: its quantities in order, x_t coming in below, the output going up."""
    ax.add_patch(FancyBboxPatch((x, -height / 2), 1.2, height, boxstyle="round,pad=0.05",
                                fc="#eef3fb", ec="tab:blue", lw=1.5))
    ax.text(x + 0.6, height / 2 - 0.08, f"step {t}", ha="center", va="top", fontsize=9, weight="bold")
    for k, q in enumerate(r.quantities):
        bold = "bold" if q in r.states else "normal"
        ax.text(x + 0.6, height / 2 - 0.42 - 0.32 * k, f"{q}_{t}", ha="center", va="center", fontsize=10,
                weight=bold)
    ax.annotate("", (x + 0.6, -height / 2 - 0.05), (x + 0.6, -height / 2 - 0.6),
                arrowprops=dict(arrowstyle="->", color="0.3"))
    ax.text(x + 0.6, -height / 2 - 0.7, f"x_{t}", ha="center", va="top", fontsize=10)
    ax.annotate("", (x + 0.6, height / 2 + 0.6), (x + 0.6, height / 2 + 0.05),
                arrowprops=dict(arrowstyle="->", color="0.3"))
    ax.text(x + 0.6, height / 2 + 0.65, f"{r.output}_{t}", ha="center", va="bottom", fontsize=10)


def _arrows_in(ax, r: studies.Unrolled, x: float, t: int, height: float) -> None:
    """The states flowing into step t's box (from s_0, the box before it or the ellipsis), and ‖J_t‖."""
    rows = {s: 0.35 * (len(r.states) - 1) / 2 - 0.35 * j for j, s in enumerate(r.states)}
    for s, y in rows.items():
        ax.annotate("", (x - 0.05, y), (x - 0.75, y), arrowprops=dict(arrowstyle="->", color="tab:red", lw=1.5))
        before = "0" if t == 1 else f"{t - 1}"
        ax.text(x - 0.75, y + 0.05, f"{s}_{before}", fontsize=8, va="bottom", color="tab:red")
    if t in r.log10_jacobian:
        ax.text(x - 0.4, -height / 2 - 0.25, f"‖J_{t}‖ = 10^{r.log10_jacobian[t]:.2f}", fontsize=7.5,
                ha="center", color="tab:red")


def cliff(r: studies.Cliff, fig=None) -> Figure:
    """The loss surface of x_t = w σ(x_{t−1}) + b over (w, b), with plain and norm-clipped descent."""
    fig, ax = _figure(f"The cliff (Pascanu et al. 2013, Fig. 6): x_t = w σ(x_(t−1)) + b,\n"
                      f"loss (x_{r.steps} − {r.target:g})² from x_0 = {r.x0:g}", fig)
    finite = r.log10_loss[np.isfinite(r.log10_loss)]
    mesh = ax.pcolormesh(r.w, r.b, r.log10_loss, cmap="viridis", shading="nearest",
                         vmin=np.percentile(finite, 1), vmax=finite.max(), rasterized=True)
    fig.colorbar(mesh, ax=ax, label=f"log10 (x_{r.steps} − target)²")
    for paths, color, label in ((r.plain, "tab:red", f"plain gradient descent (lr {r.lr:g}): thrown off the map"),
                                (r.clipped, "white", f"norm clipped to ‖g‖ ≤ {r.threshold:g}: down the valley")):
        for k, path in enumerate(paths):
            ax.plot(path[:, 0], path[:, 1], "-", color=color, lw=1.5, label=label if k == 0 else None)
            ax.plot(path[-1, 0], path[-1, 1], "o", color=color, ms=4)
    ax.plot(r.plain[:, 0, 0], r.plain[:, 0, 1], "k^", ms=7, label="start")
    ax.set_xlim(r.w[0], r.w[-1])
    ax.set_ylim(r.b[0], r.b[-1])
    ax.set_xlabel("w")
    ax.set_ylabel("b")
    ax.legend(loc="lower left", fontsize=8, facecolor="0.85")
    return fig
