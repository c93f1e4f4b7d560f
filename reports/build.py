"""The report: compute every study, draw every figure, write PNGs and one multi-page PDF.

Everything is rendered into memory first and written only at the end, each
file through a temporary file in the target folder and a rename, so an error
or Ctrl-C leaves neither a partial file nor a temporary behind.  Output is
byte-identical for the same options: no dates or versions in the metadata,
fixed seeds, and the Agg and PDF backends only.
"""

from __future__ import annotations

import io
import os
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.backends.backend_pdf import PdfPages

from derive import solve
from derive.cells import CELLS
from derive.core import Layer, make_core
from derive.errors import InvalidValue
from derive.matrixstory import matrix_latex_sections
from derive.printing import align
from derive.render import to_latex
from numeric import studies
from numeric.training import sweep, workers
from numeric.check import check_all
from numeric.io.files import check_replaceable, write_all

from . import figures, pages, training

PDF_NAME = "unrolled-report.pdf"
PDF_METADATA = {"Creator": None, "Producer": None, "CreationDate": None}
PNG_METADATA = {"Software": None}
RASTER_DPI = 200


@dataclass(frozen=True)
class Section:
    """One figure: its name for --only, how to compute it, how to draw it, what it says."""

    name: str
    compute: Callable
    draw: Callable
    caption: str | Callable[[object], str]  # text, or the text made from the computed result

    def text(self, result) -> str:
        return self.caption(result) if callable(self.caption) else self.caption


def heatmap_caption(r: studies.Heatmap) -> str:
    """What the tanh heatmap shows, in its own numbers."""
    at = {w: r.log10[int(np.argmin(np.abs(r.weights - w))), -1] for w in (0.5, 1.0, 3.0)}
    T = int(r.steps[-1])
    grows = bool(np.nanmax(r.log10) > 0)
    return ("With tanh the local factor is w (1 − h_t²): never larger than |w|, so left of |w| = 1 the gradient "
            f"must vanish: at w = 0.5, log10|∂h_{T}/∂h_0| = {at[0.5]:.1f}. Right of it the bound allows growth, "
            f"but the states saturate (h_t near ±1, tanh' near 0): at w = 3 it is {at[3.0]:.1f}, smaller than at "
            f"w = 0.5 (at w = 1, {at[1.0]:.1f}). "
            + (f"It grew (red) only over the first {int(r.steps[np.nanmax(r.log10, axis=0) > 0].max())} steps, "
               "before the states saturated: exploding is possible, not guaranteed." if grows else
               "Nothing is red: with inputs x_t ~ U(−1, 1) it grew nowhere, so exploding is possible, not guaranteed."))


def lags_caption(r: studies.LagCurves) -> str:
    """What the lag curves show, in their own numbers."""
    k = int(r.lags[-1])
    at = dict(zip(r.cells, r.median[:, -1]))
    return (f"With PyTorch's default initialisation every cell forgets: at lag {k} the median norm is "
            f"10^{at['rnn (tanh)']:.1f} for the tanh RNN, 10^{at['lstm']:.1f} for the LSTM and "
            f"10^{at['gru']:.1f} for the GRU. The LSTM's and GRU's additive paths (c_t = f c_{{t-1}} + …, "
            "h_t = z h_{t-1} + …) fall more slowly, but their gates start near σ(0) = 0.5. Started with chrono "
            f"gates (forget gate open, input gate closed) the LSTM keeps 10^{at['lstm (chrono)']:.1f}. The band "
            "spans 10–90% of 16 random seeds.")


def cliff_caption(r: studies.Cliff) -> str:
    """What the cliff shows, in its own numbers."""
    step = lambda paths: np.linalg.norm(np.diff(paths, axis=1), axis=-1)  # noqa: E731
    return ("Pascanu, Mikolov & Bengio (2013, Fig. 6): a one-unit network with no input, x_t = w σ(x_{t−1}) + b, "
            f"whose x_{r.steps} should be {r.target:g}. Where the map turns bistable the loss jumps (the wall along "
            f"the valley's lower edge), and the gradient is steep. With lr {r.lr:g}, plain descent (red) takes "
            f"steps up to {step(r.plain).max():.0f} long and is thrown off the map; with the gradient's norm "
            f"clipped to {r.threshold:g} (white) every step is at most {r.lr * r.threshold:g} long (the longest "
            f"{step(r.clipped).max():.2f}), and the descent follows the valley floor. Both computed with "
            "Unrolled's BPTT on the formula cell h = w*sigmoid(h) + b.")


def sections(steps: int, seed: int, longterm: str | Path = sweep.BUNDLED) -> tuple[Section, ...]:
    """Every figure page, in the report's order: the lecture's gradients, then the LSTM's memory."""
    horizon = max(steps, 2)
    return _gradient_sections(horizon, seed) + _memory_sections(horizon, seed, longterm)


def _gradient_sections(horizon: int, seed: int) -> tuple[Section, ...]:
    return (
        Section("unrolled", lambda: studies.unrolled(steps=horizon, seed=seed), figures.unrolled,
                "The picture the lecture draws: one box per step, the same LSTM cell (gates i, f, g, o; memories "
                "c and h) repeated, the states flowing left to right, x_t entering from below and h_t leaving "
                "above. Each arrow's number is the local Jacobian's norm ‖∂s_t/∂s_{t−1}‖ at PyTorch's "
                "initialisation; ∂s_T/∂s_0 is the product of T of them, which is why a norm below 1 vanishes."),
        Section("explode", lambda: studies.explode_vanish(2 * horizon, horizon), figures.explode_vanish,
                lambda r: "The linear RNN h_t = w h_{t-1} + u x_t multiplies what it carries by w every step, so "
                "∂h_T/∂h_0 = w^T: a straight line in log10 whose slope is log10|w|. At w = 2 the first input is "
                f"multiplied by 2^{r.marks[0][1]} = {r.marks[0][2]} (exploding); at w = 0.5 by "
                f"0.5^{r.marks[1][1]} = {0.5 ** r.marks[1][1]:.3g} (vanishing); at w = 1 it is carried unchanged."),
        Section("heatmap", lambda: studies.tanh_heatmap(horizon, seed), figures.tanh_heatmap,
                heatmap_caption),
        Section("lags", lambda: studies.lag_curves(horizon, seed=seed), figures.lag_curves,
                lags_caption),
        Section("lecture", studies.lecture_example, figures.lecture_example,
                "The lecture's LSTM, weights fixed, reads four days of prices. Company A (0, 0.5, 0.25, 1) "
                "ends with a short-term memory near 0, Company B (1, 0.5, 0.25, 1) near 1: the day-5 "
                "predictions. The table is the first worked step of the lecture."),
        Section("pascanu", lambda: studies.pascanu(horizon, seed=seed), figures.pascanu,
                "Pascanu, Mikolov & Bengio (2013): ‖∂h_T/∂h_0‖ ≤ (γσ₁)^T, with γ = sup|tanh'| = 1. Every "
                "measured point lies under the line; below σ₁ = 1 vanishing is guaranteed, above it the "
                "bound only permits growth."),
    )


def _memory_sections(horizon: int, seed: int, longterm: str | Path) -> tuple[Section, ...]:
    return (
        Section("carousel", lambda: studies.carousel(2 * horizon, seed), figures.carousel,
                "Along the LSTM's cell path ∂c_t/∂c_{t-1} = f_t, so (∂c_T/∂c_0)|_(c path only) = ∏ f_t, the "
                "constant error carousel; the full derivative (solid) also runs through h. Raising the forget-gate bias pushes f_t towards 1 and the product decays far more "
                "slowly; Jozefowicz et al. (2015) recommend a bias of 1."),
        Section("sources", lambda: studies.sources(horizon, seed), figures.sources,
                "Each row is one horizon T; each cell the size of source step k's term in the BPTT sum. In "
                "the tanh RNN the terms fade fast with T − k, so only recent steps teach the weights; the "
                "LSTM's terms stay comparable across far more steps."),
        Section("clipping", lambda: studies.clipping(horizon), figures.clipping,
                "Norm clipping (Pascanu et al. 2013, Algorithm 1) rescales the whole gradient to the "
                "threshold and keeps its direction; elementwise clipping (min-char-rnn's ±5) caps each "
                "component and so changes the direction."),
        Section("cliff", studies.cliff, figures.cliff,
                cliff_caption),
        Section("longterm", lambda: sweep.read_results(longterm), training.longterm,
                lambda result: "Trained with Unrolled's own BPTT (python cli.py sweep; this page reads the "
                "results file it wrote). " + sweep.caption(result)),
        Section("memory", lambda: sweep.read_results(longterm), training.memory, sweep.memory_caption),
    )


NAMES = tuple(s.name for s in sections(50, 0))


SVG_METADATA = {"Date": None, "Creator": None}


def figure_bytes(fig, fmt: str, dpi: int = 100) -> bytes:
    """A figure as PNG, SVG or PDF bytes, with no date or version in them (reruns are byte-identical)."""
    metadata = {"png": PNG_METADATA, "svg": SVG_METADATA, "pdf": PDF_METADATA}
    if fmt not in metadata:
        raise InvalidValue("graph", f"unknown format {fmt!r}; allowed: png, svg, pdf (from the file's suffix)")
    buffer = io.BytesIO()
    FigureCanvasAgg(fig)
    if fmt == "svg":
        import matplotlib
        with matplotlib.rc_context({"svg.hashsalt": "unrolled"}):  # fixed ids: the same bytes every run
            fig.savefig(buffer, format="svg", dpi=dpi, metadata=metadata[fmt])
    else:
        fig.savefig(buffer, format=fmt, dpi=dpi, metadata=metadata[fmt])
    return buffer.getvalue()


def _png(fig, dpi: int) -> bytes:
    return figure_bytes(fig, "png", dpi)


def _pdf(chosen, results, settings: dict, check: Callable[[], tuple] | None,
         progress: Callable[[str], None]) -> bytes:
    """Every page; ``check`` gives the checks page's rows when it is needed (the last page)."""
    derived = derived_pages(settings["steps"])
    contents = ["equations", *(title for title, _ in derived), *(s.name for s in chosen)]
    if check is not None:
        contents.append("numeric checks")
    buffer = io.BytesIO()
    with PdfPages(buffer, metadata=PDF_METADATA) as pdf:
        pdf.savefig(pages.title_page(settings, contents))
        pdf.savefig(pages.equations_page())
        for title, blocks in derived:
            pdf.savefig(pages.derived_page(title, blocks))
        for section, result in zip(chosen, results):
            # dpi: the resolution of rasterized meshes (a vector mesh of 10^4 cells takes seconds to write)
            pdf.savefig(pages.figure_page(section.draw, result, section.text(result)), dpi=RASTER_DPI)
        if check is not None:
            progress("the checks page (waiting for its process, if it is still running)")
            pdf.savefig(pages.check_page(*check()))
    return buffer.getvalue()


def derived_pages(steps: int) -> tuple[tuple[str, tuple], ...]:
    """(title, ((heading, align* LaTeX, columns), ...)) for each page of derive's own equations."""
    lstm = matrix_latex_sections(Layer(make_core(CELLS["lstm"]), 4, 1), steps)
    rnn = to_latex(solve("rnn", activation="tanh", hidden=2, steps=steps))
    return (
        ("derived: one step and its Jacobian", (
            ("One LSTM layer at any hidden size n  (python cli.py derive --cell lstm --hidden 4 --format latex)",
             align(lstm["step"] + lstm["jacobian"]), 1),
            ("The tanh RNN at n = 2, element by element  (python cli.py derive --hidden 2 --activation tanh)",
             rnn, 1))),
        ("derived: BPTT through the LSTM", (
            ("The cotangent δ of each matrix product, and the carries s̄ passed back to step t − 1",
             align(lstm["cotangents"]), 1),
            (f"The gradients: each weight's δ times its operand, summed over the T = {steps} steps",
             align(lstm["gradients"]), 2))),
    )


def _render(chosen, folder: Path, fmt: str, settings: dict, checks: Callable[[], tuple] | None,
            progress: Callable[[str], None]) -> dict[Path, bytes]:
    """Every file's bytes: each section computed, then drawn as a PNG and as a PDF page."""
    results = []
    for done, section in enumerate(chosen, 1):
        progress(f"computing {section.name} [{done}/{len(chosen)}]")
        results.append(section.compute())
    files = {}
    if fmt in ("png", "both"):
        progress("drawing the PNG files")
        files.update({folder / f"{s.name}.png": _png(s.draw(r), settings["dpi"]) for s, r in zip(chosen, results)})
    if fmt in ("pdf", "both"):
        progress("drawing the PDF pages")
        listed = {**settings, "figures": ", ".join(s.name for s in chosen)}
        files[folder / PDF_NAME] = _pdf(chosen, results, listed, checks, progress)
    return files


def targets(out: str, only: tuple[str, ...], fmt: str) -> list[Path]:
    folder = Path(out)
    paths = [folder / PDF_NAME] if fmt in ("pdf", "both") else []
    if fmt in ("png", "both"):
        paths += [folder / f"{name}.png" for name in (only or NAMES)]
    return paths


def build(out: str, *, only=(), fmt="both", steps=50, seed=0, dpi=100, force=False, longterm=sweep.BUNDLED,
          progress: Callable[[str], None] = lambda name: None) -> list[Path]:
    """Write the report into folder ``out``; returns the paths written."""
    unknown = [n for n in only if n not in NAMES]
    if unknown:
        raise InvalidValue("only", f"unknown figure {unknown[0]!r}; allowed: {', '.join(NAMES)}")
    if fmt not in ("pdf", "png", "both"):
        raise InvalidValue("format", f"unknown format {fmt!r}; allowed: pdf, png, both")
    if steps < 2 or steps > 1000:
        raise InvalidValue("steps", f"must be a whole number from 2 to 1000, got {steps}")
    if not 10 <= dpi <= 600:
        raise InvalidValue("dpi", f"must be from 10 to 600, got {dpi}")
    folder = Path(out)
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    if not existing.is_dir():
        raise InvalidValue("out", f"{str(existing)!r} is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InvalidValue("out", f"cannot write in {str(existing)!r}")
    paths = targets(out, tuple(only), fmt)
    for path in paths:
        check_replaceable(path, "out", force)
    chosen = [s for s in sections(steps, seed, longterm) if not only or s.name in only]
    if any(s.name in ("longterm", "memory") for s in chosen):
        sweep.read_results(longterm)  # a bad results file is refused before any work
    with_checks = fmt in ("pdf", "both") and not only
    # The checks (about 20 s, mostly SymPy) run in a second process while this one computes and draws.
    with workers.background(check_all, seed) if with_checks else nullcontext() as checks:
        files = _render(chosen, folder, fmt, {"steps": steps, "seed": seed, "dpi": dpi}, checks, progress)
    try:
        folder.mkdir(parents=True, exist_ok=True)  # only now: a failed run leaves no empty folder
    except OSError as error:
        raise InvalidValue("out", f"cannot create {out!r}: {error.strerror}") from None
    write_all({str(path): (lambda handle, data=data: handle.write(data)) for path, data in files.items()}, "out",
              force)
    return list(files)
