"""BPTT over a grid of settings as C, printed from the core's stages (``plan.plan``).

Forward, per step and unit r: a product P = W v is P_r = Σ_c W[r, c] v_c, and an
elementwise stage is its equations printed by ``ccode`` after ``cse``.  Backward, the
stages in reverse: an elementwise stage adds ū = Σ_q q̄ ∂q/∂u (``stage_vjp``) to each of
its inputs u; a product adds W̄[r, c] += P̄_r v_c and v̄_c += Σ_r P̄_r W[r, c], and an
operand that is not a symbol passes v̄ on through ``operand_partials``.  Everything is
unrolled per unit and per element: meant for small n (a grid of n ≤ 8, most often 1).

Settings run in blocks of C; a block runs forward then backward through time in its
thread's own buffer, one ``omp simd`` loop over the block per step.  Arrays are
element-major: theta[e · N + b], out[e · N + b], a setting's own inputs x[(t · m + c) · N + b]
and s0[i · N + b] (a layer's batch of sequences is a grid sharing its weights), and in the
buffer [(t · W + k) · C + j].
"""

from __future__ import annotations

from functools import cache

import sympy as sp
from sympy.codegen import ast
from sympy.printing.c import ccode

from derive.core import Core
from derive.rules import Elementwise, operand_partials

from .plan import Names, Plan, names, plan

FUNCTIONS = {"sigmoid": "sigmoid_", "relu": "relu_", "Heaviside": "heaviside_"}
#: (type, exp, fmin, a bound on −a that keeps e^{−a} finite) per C type.
REALS = {"double": ("double", "exp", "fmin", "700.0"), "float": ("float", "expf", "fminf", "80.0f")}
PRELUDE = """#include <math.h>
#include <stdlib.h>
typedef {0} real;
static inline real sigmoid_(real a) {{ return 1 / (1 + {1}({2}(-a, {3}))); }}  /* one exp, vectorised; no inf */
static inline real relu_(real a) {{ return a > 0 ? a : 0; }}
static inline real heaviside_(real a, real at_zero) {{ return a > 0 ? 1 : (a == 0 ? at_zero : 0); }}
"""
SIGNATURE = """/* Returns 0, or 1 when a thread's buffers could not be allocated (nothing is then valid). */
int bptt(long N, long T, long C, const real *restrict theta, const real *restrict shared,
         const real *restrict x, const real *restrict s0, long first, int every, real *restrict out) {"""
PAD = " " * 16


def _print(expr: sp.Expr, real: str) -> str:
    aliases = {ast.real: ast.float32} if real == "float" else {}
    return ccode(expr, user_functions=FUNCTIONS, type_aliases=aliases)


def _named(expr: sp.Expr, unit: dict) -> sp.Expr:
    """``expr`` in C names; a symbol without one is an error here, not in the compiler."""
    unknown = sorted(map(str, expr.free_symbols - set(unit)))
    if unknown:
        raise ValueError(f"{unknown[0]} is missing from the generated code's names")
    return expr.xreplace(unit)


def _code(exprs, unit: dict, targets: list[str], prefix: str, real: str) -> list[str]:
    """C statements ``target expr;`` for each expression, sharing subexpressions (``prefix``0, …)."""
    subs, reduced = sp.cse([_named(e, unit) for e in exprs], symbols=sp.numbered_symbols(prefix))
    lines = [f"{PAD}const real {s} = {_print(v, real)};" for s, v in subs]
    return lines + [f"{PAD}{t} {_print(v, real)};" for t, v in zip(targets, reduced)]


def _loads(nm: Names, shared: frozenset) -> list[str]:
    """Every parameter element p_e: from theta (a value per setting) or from shared."""
    lines, own, common = [], 0, 0
    for name, shape in nm.core.shapes(nm.n, nm.m).items():
        for e in range(nm.offsets[name], nm.offsets[name] + int(sp.prod(shape))):
            if name in shared:
                lines.append(f"{PAD}const real p{e} = shared[{common}];")
                common += 1
            else:
                lines.append(f"{PAD}const real p{e} = theta[{own} * N + start + j];")
                own += 1
    return lines


def _columns(nm: Names, weight: str) -> int:
    return nm.core.shapes(nm.n, nm.m)[weight][1]


def _operands(nm: Names, maps, real: str) -> list[str]:
    """v_c for each operand of ``maps`` that is not a symbol (r_t h_{t-1}), at every column."""
    lines = []
    for v, mp in {mp.operand: mp for mp in maps if not mp.operand.is_Symbol}.items():
        for c in range(_columns(nm, mp.weight)):
            lines.append(f"{PAD}const real {nm.value(v, c)} = {_print(_named(v, nm.unit(c, True)), real)};")
    return lines


def _products(nm: Names, maps, real: str) -> list[str]:
    """P_r = Σ_c W[r, c] v_c for every product of a stage."""
    lines = _operands(nm, maps, real)
    for mp in maps:
        for r in range(nm.n):
            terms = " + ".join(f"p{nm.element(mp.weight, r, c)} * {nm.value(mp.operand, c)}"
                               for c in range(_columns(nm, mp.weight)))
            lines.append(f"{PAD}const real {nm.value(mp.symbol, r)} = {terms};")
    return lines


def _products_vjp(nm: Names, maps, real: str) -> list[str]:
    """W̄[r, c] += P̄_r v_c, v̄_c += P̄_r W[r, c]; then v̄ through an operand's partials."""
    lines = []
    for mp in maps:
        for r in range(nm.n):
            bar = nm.cot(mp.symbol, r)
            for c in range(_columns(nm, mp.weight)):
                e, v_bar = nm.element(mp.weight, r, c), nm.cot(mp.operand, c)
                lines.append(f"{PAD}g{e} += {bar} * {nm.value(mp.operand, c)};")
                if v_bar is not None:
                    lines.append(f"{PAD}{v_bar} += {bar} * p{e};")
    for v, mp in {mp.operand: mp for mp in maps if not mp.operand.is_Symbol}.items():
        for u, partial in operand_partials(mp):
            for c in range(_columns(nm, mp.weight)):
                if nm.cot(u, c) is not None:
                    d = _print(_named(partial, nm.unit(c, True)), real)
                    lines.append(f"{PAD}{nm.cot(u, c)} += {nm.cot(v, c)} * ({d});")
    return lines


def _slots(nm: Names, p: Plan, frame: str, write: bool = False) -> list[str]:
    """Read (or write) what a frame keeps: slot k of unit r at [(k · n + r) · C + j]."""
    out = []
    for k, sym in enumerate(p.stored):
        for r in range(nm.n):
            cell = f"{frame}[{k * nm.n + r} * C + j]"
            out.append(f"{PAD}{cell} = {nm.value(sym, r)};" if write else f"{PAD}const real {nm.value(sym, r)} = {cell};")
    return out


def _previous(nm: Names) -> list[str]:
    """s_{t−1} from the frame before: the states are a frame's first slots."""
    return [f"{PAD}const real {nm.value(sym, r)} = now[{k * nm.n + r} * C + j];"
            for k, (_, sym) in enumerate(nm.core.prev) for r in range(nm.n)]


def _forward(nm: Names, p: Plan, shared: frozenset, real: str) -> list[str]:
    """One step of one setting: s_{t−1} -> every stage -> the frame of step t."""
    lines = _loads(nm, shared) + _previous(nm)
    for index, step in enumerate(p.steps):
        if not isinstance(step, Elementwise):
            lines += _products(nm, step, real)
            continue
        for r in range(nm.n):
            targets = [f"const real {nm.value(q, r)} =" for q in (*step.quantities, *step.saved)]
            lines += _code(step.forward, nm.unit(r), targets, f"a{index}_{r}_", real)
    return lines + _slots(nm, p, "next", write=True)


def _cotangents(nm: Names, p: Plan) -> list[str]:
    """ū = 0 for every value of the step, but s̄_t: the carried adjoint, adj[(k · n + r) · C + j]."""
    core = nm.core
    states = {core.current(s): k for k, s in enumerate(core.states)}
    lines = []
    for sym in (*(core.current(name) for name, _ in core.equations), *(mp.symbol for mp in core.maps),
                *(sym for _, sym in core.prev), *p.operands):
        for r in range(nm.n):
            start = f"adj[{states[sym] * nm.n + r} * C + j]" if sym in states else "0"
            lines.append(f"{PAD}real {nm.cot(sym, r)} = {start};")
    total = sum(int(sp.prod(s)) for s in core.shapes(nm.n, nm.m).values())
    return lines + [f"{PAD}real g{e} = 0;" for e in range(total)]


def _backward(nm: Names, p: Plan, shared: frozenset, real: str) -> list[str]:
    """One step of BPTT for one setting: s̄_t -> every stage in reverse -> s̄_{t−1}, θ̄ += …"""
    core = nm.core
    lines = _loads(nm, shared) + _previous(nm) + _slots(nm, p, "next")
    lines += _operands(nm, core.maps, real) + _cotangents(nm, p)
    for index, step in reversed(list(enumerate(p.steps))):
        if not isinstance(step, Elementwise):
            lines += _products_vjp(nm, step, real)
            continue
        for r in range(nm.n):
            kept = [(u, e) for u, e in zip(step.inputs, step.vjp) if e != 0 and nm.cot(u, r) is not None]
            lines += _code([e for _, e in kept], nm.unit(r), [f"{nm.cot(u, r)} +=" for u, _ in kept],
                           f"b{index}_{r}_", real)
    total = sum(int(sp.prod(s)) for s in core.shapes(nm.n, nm.m).values())
    lines += [f"{PAD}out[{e} * N + start + j] += g{e};" for e in range(total)]
    output = core.states.index(core.output)
    return lines + [f"{PAD}adj[{k * nm.n + r} * C + j] = {nm.cot(sym, r)}{' + carry' if k == output else ''};"
                    for k, (_, sym) in enumerate(core.prev) for r in range(nm.n)]


def _loop(head: list[str], body: list[str]) -> list[str]:
    """A step's loop over the block's settings, after what it loads once for all of them."""
    return [*head, "            #pragma omp simd", "            for (long j = 0; j < L; j++) {", *body, "            }"]


def _reads(m: int, S: int, per_setting: frozenset) -> tuple[list[str], list[str]]:
    """(x_c at step t for c < m, slot i of s_0 for i < S) as C: shared, x[t · m + c] and s0[i];
    a setting's own, element-major like theta: x[(t · m + c) · N + start + j], s0[i · N + start + j]."""
    return ([f"x[(t * {m} + {c}) * N + start + j]" if "x" in per_setting else f"x[t * {m} + {c}]" for c in range(m)],
            [f"s0[{i} * N + start + j]" if "s0" in per_setting else f"s0[{i}]" for i in range(S)])


def _start(first: list[str], total: int, own_s0: bool) -> list[str]:
    """The block's first frame and s̄_T set (``first``), and its rows of out zeroed.

    With a setting's own s_0, out is zeroed in a loop of its own: in one loop with those loads,
    gcc turns the zeroing into a memset per element and then emits 4x the code (LSTM n = 3:
    3.6 s to compile instead of 0.8 s; n = 8: over 20 minutes instead of 3.6 s)."""
    if not own_s0:
        return _loop([], first + [f"{PAD}out[{e} * N + start + j] = 0;" for e in range(total)])
    return [f"            for (long e = 0; e < {total}; e++)",
            "                for (long j = 0; j < L; j++) out[e * N + start + j] = 0;", *_loop([], first)]


def _block(core: Core, n: int, m: int, shared: frozenset, real: str, per_setting: frozenset) -> list[str]:
    """One block of L settings: s_0 and s̄_T = ∂L/∂s_T set, T steps forwards, then BPTT down to ``first``."""
    nm, p = names(core, n, m), plan(core)
    S, W = len(core.states) * n, frame_width(core, n, m)
    total = sum(int(sp.prod(s)) for s in core.shapes(n, m).values())
    seed = [1 if k // n == core.states.index(core.output) else 0 for k in range(S)]
    xs, s0 = _reads(m, S, per_setting)
    # A shared x_t is loaded once a step for the whole block; a setting's own, in the simd loop over it.
    own = "x" in per_setting
    loads = [f"{PAD if own else ' ' * 12}const real x{c} = {read};" for c, read in enumerate(xs)]
    head, body = ([], loads) if own else (loads, [])
    now = f"            const real *restrict now = buf + t * {W} * C;"
    return [
        *_start([f"{PAD}buf[{i} * C + j] = {s0[i]};" for i in range(S)] +
                [f"{PAD}adj[{i} * C + j] = {seed[i]};" for i in range(S)], total, "s0" in per_setting),
        "            for (long t = 0; t < T; t++) {",
        *_loop([now, f"            real *restrict next = buf + (t + 1) * {W} * C;", *head],
               body + _forward(nm, p, shared, real)),
        "            }",
        "            for (long t = T - 1; t >= first - 1; t--) {",
        *_loop([now, f"            const real *restrict next = buf + (t + 1) * {W} * C;", *head,
                "            const real carry = every && t > 0 ? 1 : 0;  /* the loss at every step */"],
               body + _backward(nm, p, shared, real)),
        "            }",
    ]


@cache
def source(core: Core, n: int, m: int, *, shared: frozenset = frozenset(), real: str = "double",
           per_setting: frozenset = frozenset()) -> str:
    """The C source of BPTT of ``core`` at hidden size n, input size m, over a grid of settings.

    ``shared`` names the parameters every setting shares (read from ``shared``, the others
    from ``theta``, element-major); ``per_setting`` names the inputs, "x" and "s0", that each
    setting has its own of (x as (T, m, N), s0 as (S, N); else x (T, m), s0 (S,), shared);
    ``real`` is "double" or "float".  The loss is
    L = Σ_i (output)_T[i], plus Σ_i (output)_t[i] at every step t ≥ 1 when ``every``.
    Each thread takes blocks of C settings in a buffer of its own, (T + 1) frames of W values
    per setting (``frame_width``), and s̄, the adjoint it carries back.

    >>> from derive.cells import CELLS
    >>> from derive.core import make_core
    >>> text = source(make_core(CELLS["rnn"], activation="tanh"), 1, 1)
    >>> [line.strip() for line in text.splitlines() if "tanh(" in line or "pow(" in line]
    ['const real q0_0 = tanh(P0_0 + P1_0 + p2);', 'const real b1_0_0 = dq0_0*(1 - pow(q0_0, 2));']
    """
    S, W = len(core.states) * n, frame_width(core, n, m)
    return "\n".join([
        PRELUDE.format(*REALS[real]), SIGNATURE,
        "    int failed = 0;", "    #pragma omp parallel reduction(|:failed)", "    {",
        f"        real *restrict buf = malloc(sizeof(real) * (T + 1) * {W} * C);",
        f"        real *restrict adj = malloc(sizeof(real) * {S} * C);",
        "        if (!buf || !adj) failed = 1;",
        "        #pragma omp for schedule(static)",
        "        for (long start = 0; start < N; start += C) {",
        "            if (!buf || !adj) continue;",
        "            const long L = N - start < C ? N - start : C;",
        *_block(core, n, m, shared, real, per_setting),
        "        }", "        free(buf);", "        free(adj);", "    }", "    return failed;", "}",
    ])


def frame_width(core: Core, n: int, m: int) -> int:
    """Values a step keeps per setting: n for each stored symbol (``Plan.stored``)."""
    return len(plan(core).stored) * n
