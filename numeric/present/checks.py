"""The ``check`` table: one row per cell, size and horizon, one column per reference."""

from __future__ import annotations

import textwrap

from ..check import INDEPENDENT, CheckRow


#: The check table's columns: (reference, short heading), derive's own Jacobians first.
CHECK_COLUMNS = (("forward mode", "forward"), ("mpmath 50 digits", "mpmath J"),
                 ("finite differences", "fin. diff."), ("complex step", "complex"), ("mpmath.diff", "mp.diff"))


def check_cases(rows: tuple[CheckRow, ...]) -> list[tuple[str, list[str], bool]]:
    """One entry per cell, size and horizon: (label, error per column or '—', all passed)."""
    cases: dict[tuple, dict] = {}
    for r in rows:
        cell = r.cell if r.activation is None else f"{r.cell} {r.activation}"
        cases.setdefault((cell, r.variant, r.hidden, r.steps), {})[r.reference] = r
    out = []
    for (cell, variant, n, steps), by_ref in cases.items():
        errors = [f"{by_ref[ref].error:.1e}" + ("" if by_ref[ref].passed else "!") if ref in by_ref else "—"
                  for ref, _ in CHECK_COLUMNS]
        out.append((f"{cell:<12}{variant:<9}{n:>2}{steps:>4}", errors, all(r.passed for r in by_ref.values())))
    return out


def check_legend(rows: tuple[CheckRow, ...]) -> list[str]:
    """What each column compares against, which share derive's derivatives, and the tolerances."""
    tolerance = {r.reference: r.tolerance for r in rows}
    # no-break spaces keep a column's name on one line when the legend is wrapped
    shared = [short.replace(" ", "\u00a0") for ref, short in CHECK_COLUMNS if ref not in INDEPENDENT]
    own = [short.replace(" ", "\u00a0") for ref, short in CHECK_COLUMNS if ref in INDEPENDENT]
    return [
        "Largest relative error of the compiled reverse-mode gradient against each reference "
        "('!' above tolerance, '—' not run).",
        f"Sharing derive's Jacobians (they check the code, not the derivatives): {', '.join(shared)}.",
        f"Independent of derive (they differentiate the forward pass themselves): {', '.join(own)}; "
        "mp.diff is mpmath.diff of the stepped forward pass at 50 digits along random directions.",
        "Tolerances: " + ", ".join(f"{short} {tolerance[ref]:.0e}".replace(" ", "\u00a0")
                                   for ref, short in CHECK_COLUMNS if ref in tolerance) + ".",
    ]


def check_lines(rows: tuple[CheckRow, ...], verdict: tuple[str, str, str] = ("result", "pass", "FAIL")) -> list[str]:
    """The header and one line per case: errors in the columns of ``CHECK_COLUMNS``, then the verdict."""
    head, good, bad = verdict
    return [f"{'cell':<12}{'variant':<9}{'n':>2}{'T':>4}" + "".join(f"{short:>11}" for _, short in CHECK_COLUMNS)
            + f"  {head}",
            *(label + "".join(f"{e:>11}" for e in errors) + f"  {good if passed else bad}"
              for label, errors, passed in check_cases(rows))]


def check_table(rows: tuple[CheckRow, ...], laws) -> str:
    """The ``check`` table: one row per cell, size and horizon, one column per reference."""
    lines = check_lines(rows)
    lines += ["", *(line for item in check_legend(rows) for line in textwrap.wrap(item, 100))]
    lines += ["", "law: slope of log10|∂h_T/∂h_0| against T equals log10|w| (linear RNN)"]
    for w, slope, expected in laws:
        ok = abs(slope - expected) <= 1e-9
        lines.append(f"  w = {w:<5} fitted slope {slope:.12f}  log10|w| {expected:.12f}  {'pass' if ok else 'FAIL'}")
    return "\n".join(lines)


def law_passed(laws) -> bool:
    return all(abs(slope - expected) <= 1e-9 for _, slope, expected in laws)
